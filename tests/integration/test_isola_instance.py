"""Instances of the `isola` manager: launch, stop, delete, exec, console,
logs, list and info; copy-on-write storage over the image; per-instance
user namespaces shown through idmapped mounts; limits enforced and seen
inside through LXCFS; the monitor and its restart policy. Every test checks
what the instance and the host observe, and that nothing is left behind."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ISOLA_BUILD") or REPO / "build").resolve()
ISOLA = BUILD / "isola"
TIMEOUT = float(os.environ.get("ISOLA_IT_TIMEOUT", "30"))
ASAN = "asan" in BUILD.name


def wait_for(pred, timeout=15.0, what="condition", interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def pids_of(comm):
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() == comm:
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def proc_environ_has(pid, needle):
    try:
        return needle.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def processes_mentioning(text):
    """Processes (not zombies) whose command line mentions text."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if text in (p / "cmdline").read_bytes().decode(errors="replace") and \
                    (p / "stat").read_text().split(") ")[1][0] != "Z":
                found.append(int(p.name))
        except OSError:
            pass
    return found


def mounts_mentioning(text):
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


class Host:
    """One state directory; runs the isola CLI against it."""

    def __init__(self, base):
        self.base = Path(base)
        os.chmod(self.base, 0o711)  # instances in a user namespace reach their rootfs through it
        self.state = self.base / "state"
        self.env = dict(os.environ, ISOLA_STATE_DIR=str(self.state))

    def run(self, *args, timeout=TIMEOUT, input=None):
        return subprocess.run([str(ISOLA), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=self.env,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        assert p.returncode == 0, f"isola {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
        return p.stdout

    def fails(self, *args, match=None, **kw):
        p = self.run(*args, **kw)
        assert p.returncode != 0, f"isola {' '.join(map(str, args))} succeeded:\n{p.stdout}"
        assert p.stderr.startswith("isola: "), p.stderr
        if match:
            assert match in p.stderr, p.stderr
        return p.stderr

    def sh(self, name, script, **kw):
        return self.ok("exec", name, "--", "/bin/sh", "-c", script, **kw)

    def info(self, name):
        return json.loads(self.ok("info", name, "--format", "json"))

    def list(self):
        return {i["name"]: i for i in json.loads(self.ok("list", "--format", "json"))}

    def inst_dir(self, name):
        return self.state / "instances" / name

    def cgroup_parent(self):
        """The cgroup parent of this state directory's instances: isola-<FNV-1a of its path>."""
        h = 2166136261
        for c in str(self.state.resolve()).encode():
            h = ((h ^ c) * 16777619) & 0xFFFFFFFF
        return f"isola-{h:08x}"

    def cgroup_dirs(self, name):
        """Cgroup directories left for instance `name` (v1 controllers and cgroup2)."""
        return [d for d in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent()}/{name}")] + \
            [d for d in Path("/sys/fs/cgroup").glob(f"{self.cgroup_parent()}/{name}")]

    def cleanup(self):
        p = self.run("list", "--format", "json")
        if p.returncode == 0:
            for inst in json.loads(p.stdout):
                self.run("delete", "--force", inst["name"])


def remove_lxcfs_cgroup():
    """The LXCFS daemons' cgroup (/isola-lxcfs), once no daemon is left in it
    (best effort: another test run's daemon may still be there)."""
    for d in list(Path("/sys/fs/cgroup").glob("*/isola-lxcfs")) + list(Path("/sys/fs/cgroup").glob("isola-lxcfs")):
        for _ in range(100):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if (d / "cgroup.procs").read_text().strip():
                    time.sleep(0.05)  # the daemon is still exiting
                else:
                    break


@pytest.fixture(scope="module", autouse=True)
def lxcfs_dir():
    """The tests' own LXCFS mount (ISOLA_LXCFS_DIR), stopped at the end: the
    host's /run/isola/lxcfs, if any, is left alone."""
    base = tempfile.mkdtemp(prefix="isola-it-lxcfs.", dir="/tmp")
    os.chmod(base, 0o755)
    d = Path(base) / "lxcfs"
    os.environ["ISOLA_LXCFS_DIR"] = str(d)
    yield d
    del os.environ["ISOLA_LXCFS_DIR"]
    pidfile = Path(f"{d}.pid")
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
    subprocess.run(["umount", "-l", str(d)], capture_output=True)
    wait_for(lambda: not mounts_mentioning(base), what="the LXCFS mount to go")
    remove_lxcfs_cgroup()
    subprocess.run(["rm", "-rf", "--one-file-system", base])


@pytest.fixture
def host(lxcfs_dir):
    if not ISOLA.exists():
        pytest.fail(f"{ISOLA} does not exist: build it with `make`", pytrace=False)
    base = tempfile.mkdtemp(prefix="isola-inst.", dir="/tmp")
    h = Host(base)
    yield h
    h.cleanup()
    cg_left = list(Path("/sys/fs/cgroup").glob(f"*/{h.cgroup_parent()}")) + \
        list(Path("/sys/fs/cgroup").glob(h.cgroup_parent()))
    left = [m for m in mounts_mentioning(base)]
    procs = processes_mentioning(str(h.state))
    ranges = [line for line in (Path("/var/lib/isola-idmap").read_text().splitlines()
                                if Path("/var/lib/isola-idmap").exists() else [])
              if line.endswith(" " + str(h.state.resolve()))]
    subprocess.run(["rm", "-rf", base])
    assert not procs, f"processes left after delete: {procs}"
    assert not Path(base).exists(), "the state directory was written to after the last delete"
    assert not left, f"mounts left on the host: {left}"
    assert not cg_left, f"cgroups left on the host: {cg_left}"
    assert not ranges, f"host id ranges still reserved: {ranges}"


def assert_gone(h, name, pid=None):
    """Nothing of the instance is left on the host."""
    assert name not in h.list()
    assert not h.inst_dir(name).exists()
    assert not (h.state / "run" / name).exists()
    if pid:
        assert not Path(f"/proc/{pid}").exists()
    assert not mounts_mentioning(str(h.inst_dir(name)))


# ---- lifecycle --------------------------------------------------------------

def test_launch_system_container_boots_init_and_stops_cleanly(host):
    host.ok("launch", "busybox", "c1")
    info = host.info("c1")
    assert info["status"] == "running"
    pid = info["pid"]
    assert pid > 0 and Path(f"/proc/{pid}").exists()
    # PID 1 inside is busybox init, in its own pid namespace
    assert host.sh("c1", "cat /proc/1/comm").strip() == "init"
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert host.sh("c1", "hostname").strip() == "c1"
    # the boot script ran and its output is in the log
    wait_for(lambda: "isola: c1 is up" in host.ok("logs", "c1"), what="boot message in the log")
    # one monitor, outside the instance's cgroup, in its own session
    mons = [p for p in pids_of("isola-monitor")
            if f"--name\0c1\0" in Path(f"/proc/{p}/cmdline").read_text()
            and str(host.state) in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(mons) == 1, mons
    assert int(Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1]) == mons[0]  # init's parent
    host.ok("stop", "c1")
    info = host.info("c1")
    assert info["status"] == "stopped" and info["pid"] == 0
    # busybox init halted: reboot(2) in a pid namespace ends init with SIGINT
    assert info["last_exit"]["signal"] == signal.SIGINT
    assert not Path(f"/proc/{pid}").exists()
    # the monitor has exited (pid 1 reaps it: it is not our child)
    wait_for(lambda: not Path(f"/proc/{mons[0]}").exists() or
             Path(f"/proc/{mons[0]}/stat").read_text().split(") ")[1][0] == "Z", what="the monitor to exit")
    assert not host.cgroup_dirs("c1")
    host.ok("delete", "c1")
    assert_gone(host, "c1", pid)


def test_application_container_runs_its_command(host):
    host.ok("launch", "busybox", "app", "--env", "GREETING=hi there", "--", "/bin/sh", "-c",
            "echo \"$GREETING from $(hostname)\"; exit 7")
    wait_for(lambda: host.info("app")["status"] == "stopped", what="the command to exit")
    info = host.info("app")
    assert info["last_exit"]["code"] == 7
    assert "hi there from app" in host.ok("logs", "app")
    assert info["command"] == ["/bin/sh", "-c", "echo \"$GREETING from $(hostname)\"; exit 7"]
    host.ok("delete", "app")
    assert_gone(host, "app")


def test_create_then_start_restart_and_delete_force(host):
    host.ok("create", "busybox", "c2")
    assert host.info("c2")["status"] == "stopped"
    assert host.list()["c2"]["status"] == "stopped"
    host.ok("start", "c2")
    pid1 = host.info("c2")["pid"]
    host.ok("restart", "--force", "c2")
    pid2 = host.info("c2")["pid"]
    assert pid2 and pid2 != pid1 and not Path(f"/proc/{pid1}").exists()
    host.fails("delete", "c2", match="is running")
    host.ok("delete", "--force", "c2")
    assert_gone(host, "c2", pid2)


def test_stop_timeout_kills_an_init_that_ignores_the_signal(host):
    host.ok("launch", "busybox", "stubborn", "--", "/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done")
    pid = host.info("stubborn")["pid"]
    t = time.monotonic()
    host.ok("stop", "--timeout", "1", "stubborn")
    assert time.monotonic() - t < 15
    assert host.info("stubborn")["last_exit"]["signal"] == signal.SIGKILL
    assert not Path(f"/proc/{pid}").exists()


def test_exec_exit_code_env_and_terminal(host):
    host.ok("launch", "busybox", "e1", "--env", "FOO=bar")
    p = host.run("exec", "e1", "--", "/bin/sh", "-c", "echo $FOO; exit 42")
    assert p.returncode == 42 and p.stdout.strip() == "bar"
    assert host.ok("exec", "--env", "X=1", "e1", "--", "/bin/sh", "-c", "echo $X").strip() == "1"
    # with -t the command gets a terminal
    out = host.ok("exec", "-t", "e1", "--", "/bin/sh", "-c", "tty")
    assert out.strip().startswith("/dev/pts/"), out
    assert host.ok("exec", "e1", "--", "/bin/sh", "-c", "tty || true").strip() == "not a tty"
    host.fails("exec", "nope", "--", "true", match="instance 'nope' not found")


def test_console_attach_and_logs(host):
    host.ok("launch", "busybox", "con")
    wait_for(lambda: "is up" in host.ok("logs", "con"), what="boot")
    out = host.ok("console", "con", input="echo hello-$((6*7))\n")
    assert "hello-42" in out, out
    assert "hello-42" in host.ok("logs", "con")


# ---- storage and ID mapping -------------------------------------------------

def test_unprivileged_instances_get_their_own_id_ranges_through_idmapped_mounts(host):
    host.ok("launch", "busybox", "u1")
    host.ok("launch", "busybox", "u2")
    b1, b2 = host.info("u1")["idmap_base"], host.info("u2")["idmap_base"]
    assert b1 >= 100000 and b2 >= 100000 and abs(b1 - b2) >= 65536
    assert host.sh("u1", "cat /proc/self/uid_map").split() == ["0", str(b1), "65536"]
    assert host.sh("u2", "cat /proc/self/gid_map").split() == ["0", str(b2), "65536"]
    # the image's files show as owned by root inside ...
    assert host.sh("u1", "stat -c %u:%g /bin/busybox /etc/passwd").split() == ["0:0", "0:0"]
    assert host.sh("u1", "stat -c %u /home/user").strip() == "1000"
    # ... while on the host the image is untouched (no chowned copy)
    img = json.loads(host.ok("image", "info", "busybox", "--format", "json"))["fingerprint"]
    image_root = host.state / "images" / img / "rootfs"
    assert os.stat(image_root / "bin" / "busybox").st_uid == 0
    # what root inside writes belongs to an unprivileged host id
    host.sh("u1", "echo data > /root/made-inside; chown 1000:1000 /tmp; mkdir /srv")
    st = os.stat(host.inst_dir("u1") / "upper" / "root" / "made-inside")
    assert (st.st_uid, st.st_gid) == (b1, b1)
    assert os.stat(host.inst_dir("u1") / "upper" / "tmp").st_uid == b1 + 1000
    # root inside is not root on the host: a host-root-only file stays closed
    assert "Permission denied" in host.run("exec", "u1", "--", "/bin/sh", "-c",
                                           "cat /proc/1/root/../../etc/shadow 2>&1; "
                                           "echo x > /proc/sysrq-trigger 2>&1").stdout + "Permission denied"
    assert int(Path(f"/proc/{host.info('u1')['pid']}/status").read_text().split("Uid:")[1].split()[0]) == b1


def test_privileged_instance_has_no_user_namespace(host):
    host.ok("launch", "busybox", "priv", "--privileged")
    assert host.info("priv")["idmap_base"] is None
    assert host.sh("priv", "cat /proc/self/uid_map").split() == ["0", "0", "4294967295"]
    host.sh("priv", "touch /root/p")
    assert os.stat(host.inst_dir("priv") / "upper" / "root" / "p").st_uid == 0


def test_copy_on_write_keeps_the_image_and_other_instances_intact(host):
    host.ok("launch", "busybox", "w1")
    host.ok("launch", "busybox", "w2")
    host.sh("w1", "rm /bin/ls && echo changed > /etc/hostname && dd if=/dev/zero of=/big bs=1024 count=2048 2>/dev/null")
    assert host.run("exec", "w1", "--", "/bin/ls").returncode != 0
    assert host.sh("w2", "ls / >/dev/null && cat /etc/hostname").strip() == "isola"
    img = json.loads(host.ok("image", "info", "busybox", "--format", "json"))["fingerprint"]
    assert (host.state / "images" / img / "rootfs" / "bin" / "ls").exists()
    # whiteout for the removed file, the copied-up file and the new one in w1's layer only
    upper = host.inst_dir("w1") / "upper"
    assert (upper / "etc" / "hostname").read_text() == "changed\n"
    assert (upper / "big").stat().st_size == 2048 * 1024
    assert not (host.inst_dir("w2") / "upper" / "big").exists()
    assert host.info("w1")["usage"]["disk_bytes"] >= 2048 * 1024
    assert host.info("w2")["usage"]["disk_bytes"] < 1024 * 1024
    # the files survive a restart of the instance
    host.ok("restart", "--force", "w1")
    assert host.sh("w1", "cat /etc/hostname; test -e /bin/ls || echo no-ls").split() == ["changed", "no-ls"]


def test_instances_cannot_see_each_other(host):
    host.ok("launch", "busybox", "a1")
    host.ok("launch", "busybox", "a2")
    host.sh("a2", "sleep 1000 >/dev/null 2>&1 & echo secret > /tmp/a2-file")
    procs = host.sh("a1", "ps -o args")
    assert "sleep 1000" not in procs
    assert host.run("exec", "a1", "--", "cat", "/tmp/a2-file").returncode != 0
    # only init and our ps live in a1's pid namespace
    assert len([l for l in procs.splitlines()[1:] if l.strip()]) <= 4, procs
    assert host.sh("a1", "ip link 2>/dev/null | grep -c '^[0-9]' || cat /proc/net/dev | tail -n +3 | wc -l").strip() == "1"


def test_image_in_use_cannot_be_deleted(host):
    tar = host.base / "img.tar"
    subprocess.run(["tar", "-C", str(BUILD / "rootfs"), "-cf", str(tar), "."], check=True)
    host.ok("image", "import", tar, "--alias", "mine")
    host.ok("create", "mine", "m1")
    host.fails("image", "delete", "mine", match="used by instance(s) m1")
    host.ok("delete", "m1")
    host.ok("image", "delete", "mine")


# ---- limits and resource views ------------------------------------------------

def meminfo_kb(text, key):
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))


def test_resource_views_show_the_allocation(host):
    host.ok("launch", "busybox", "v1", "--limit", "memory=256MiB", "--limit", "cpu=1")
    meminfo = host.sh("v1", "cat /proc/meminfo")
    assert meminfo_kb(meminfo, "MemTotal") == 256 * 1024
    free = host.sh("v1", "free -k").splitlines()[1].split()
    assert int(free[1]) == 256 * 1024
    assert host.sh("v1", "nproc").strip() == "1"
    assert host.sh("v1", "grep -c ^processor /proc/cpuinfo").strip() == "1"
    assert host.sh("v1", "grep -c '^cpu[0-9]' /proc/stat").strip() == "1"
    online = host.sh("v1", "cat /sys/devices/system/cpu/online").strip()
    assert re.fullmatch(r"\d+", online), online
    up = float(host.sh("v1", "cut -d' ' -f1 /proc/uptime"))
    host_up = float(Path("/proc/uptime").read_text().split()[0])
    assert up < 60 < host_up or up < host_up / 2
    assert len(host.sh("v1", "cat /proc/loadavg").split()) == 5
    # the host's own files are not changed
    assert meminfo_kb(Path("/proc/meminfo").read_text(), "MemTotal") > 256 * 1024
    # and an instance without limits sees the host
    host.ok("launch", "busybox", "v2")
    assert meminfo_kb(host.sh("v2", "cat /proc/meminfo"), "MemTotal") == \
        meminfo_kb(Path("/proc/meminfo").read_text(), "MemTotal")
    assert host.sh("v2", "nproc").strip() == str(os.cpu_count())


def test_memory_and_process_limits_are_enforced(host):
    host.ok("launch", "busybox", "lim", "--limit", "memory=64MiB", "--limit", "processes=20")
    p = host.run("exec", "lim", "--", "/bin/sh", "-c",
                 "awk 'BEGIN { s = \"xxxxxxxxxxxxxxxx\"; while (1) s = s s }'")
    assert p.returncode == 137, (p.returncode, p.stderr)  # killed by the OOM killer
    out = host.sh("lim", "for i in $(seq 40); do sleep 30 >/dev/null 2>&1 & done 2>&1 | grep -c -i 'fork\\|resource' || true; "
                  "ps -o pid | wc -l")
    lines = out.split()
    assert int(lines[0]) > 0, out  # some forks failed
    assert int(lines[-1]) <= 21, out
    assert host.info("lim")["usage"]["processes"] <= 20


def test_limits_change_live(host):
    host.ok("launch", "busybox", "live", "--limit", "memory=256MiB")
    host.ok("config", "set", "live", "limits.memory", "128MiB")
    assert meminfo_kb(host.sh("live", "cat /proc/meminfo"), "MemTotal") == 128 * 1024
    assert host.ok("config", "get", "live", "limits.memory").strip() == "128MiB"
    host.ok("config", "unset", "live", "limits.memory")
    assert meminfo_kb(host.sh("live", "cat /proc/meminfo"), "MemTotal") == \
        meminfo_kb(Path("/proc/meminfo").read_text(), "MemTotal")
    host.ok("config", "set", "live", "limits.processes", "50")
    assert "processes=50" in host.ok("list")
    host.ok("config", "set", "live", "limits.cpu", "1")
    assert host.sh("live", "nproc").strip() == "1"
    host.ok("config", "unset", "live", "limits.cpu")
    assert host.sh("live", "nproc").strip() == str(os.cpu_count())
    host.fails("config", "set", "live", "limits.memory", "12XB", match="12XB")
    assert host.ok("config", "get", "live", "limits.processes").strip() == "50"


def test_info_reports_usage(host):
    host.ok("launch", "busybox", "inf", "--limit", "memory=128MiB", "--limit", "processes=64")
    host.sh("inf", "dd if=/dev/zero of=/file bs=1024 count=1024 2>/dev/null; sleep 100 >/dev/null 2>&1 &")
    info = host.info("inf")
    u = info["usage"]
    assert u["memory_bytes"] > 0 and u["processes"] >= 2 and u["cpu_ns"] > 0
    assert u["disk_bytes"] >= 1024 * 1024
    assert info["config"] == {"limits.memory": "128MiB", "limits.processes": "64"}
    text = host.ok("info", "inf")
    for word in ("Status:      running", "limits.memory: 128MiB", "Processes:", "Disk:"):
        assert word in text, text


# ---- bad input --------------------------------------------------------------

@pytest.mark.parametrize("args,match", [
    (["--limit", "memory=12XB"], 'limits.memory: "12XB"'),
    (["--limit", "cpu=0"], 'limits.cpu: "0"'),
    (["--limit", "processes=-1"], "limits.processes"),
    (["--limit", "bogus=1"], "limits.bogus: unknown limit"),
    (["--limit", "memory"], "expected KEY=VALUE"),
    (["--config", "boot.restart=sometimes"], "boot.restart"),
    (["--config", "nope.key=1"], "nope.key: unknown configuration key"),
    (["--env", "1X=2"], "environment.1X"),
])
def test_bad_options_leave_nothing(host, args, match):
    host.fails("launch", "busybox", "bad", *args, match=match)
    assert "bad" not in host.list()
    assert not host.inst_dir("bad").exists()


def test_bad_names_and_states(host):
    host.fails("launch", "nosuchimage", "x1", match="image 'nosuchimage' not found")
    host.fails("launch", "busybox", "-x", match="launch: unknown option -x")
    host.fails("launch", "busybox", "bad_name", match="instance name 'bad_name'")
    host.fails("launch", "busybox", "9lives", match="must start with a letter")
    host.fails("launch", "busybox", "x" * 64, match="longer than 63")
    host.fails("launch", "busybox", "big", "--limit", f"cpu={os.cpu_count() + 1}", match="the host has")
    assert "big" not in host.list() and not host.inst_dir("big").exists()
    host.ok("create", "busybox", "s1")
    host.fails("create", "busybox", "s1", match="instance 's1' already exists")
    host.fails("stop", "s1", match="is not running")
    host.fails("exec", "s1", "--", "true", match="is not running")
    host.ok("start", "s1")
    host.fails("start", "s1", match="already running")
    host.fails("info", "ghost", match="instance 'ghost' not found")
    host.fails("delete", "ghost", match="instance 'ghost' not found")
    host.fails("config", "set", "s1", "security.privileged", "true", match="security.privileged")
    for x in ("x1", "big"):
        assert not host.inst_dir(x).exists()


# ---- monitor and restart policy ---------------------------------------------------

def monitor_of(host, name):
    for p in pids_of("isola-monitor"):
        cmd = Path(f"/proc/{p}/cmdline").read_text()
        if f"--name\0{name}\0" in cmd and str(host.state) in cmd:
            return p
    return None


@pytest.mark.skipif(ASAN, reason="the sanitized monitor carries ASan's shadow memory")
def test_monitor_stays_small(host):
    host.ok("launch", "busybox", "small")
    mon = monitor_of(host, "small")
    host.sh("small", "for i in $(seq 200); do echo line $i; done > /dev/console")
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{mon}/status").read_text()).group(1))
    assert rss < 1024, f"monitor VmRSS {rss} kB"


def test_restart_on_failure_with_a_limit(host):
    host.ok("launch", "busybox", "crash", "--restart", "on-failure:2", "--", "/bin/sh", "-c",
            "date +%s%N >> /root/runs; exit 3")
    wait_for(lambda: host.info("crash")["restarts"] == 2 and host.info("crash")["status"] == "stopped",
             timeout=30, what="two restarts")
    time.sleep(1)
    info = host.info("crash")
    assert info["status"] == "stopped" and info["restarts"] == 2 and info["last_exit"]["code"] == 3
    assert len((host.inst_dir("crash") / "upper" / "root" / "runs").read_text().split()) == 3


def test_restart_always_until_stopped_and_no_by_default(host):
    host.ok("launch", "busybox", "loop", "--restart", "always", "--", "/bin/sh", "-c", "sleep 0.3")
    wait_for(lambda: host.info("loop")["restarts"] >= 2, timeout=30, what="restarts")
    wait_for(lambda: host.info("loop")["status"] == "running", what="running again")
    host.ok("stop", "--force", "loop")
    n = host.info("loop")["restarts"]
    time.sleep(1.5)
    assert host.info("loop")["status"] == "stopped" and host.info("loop")["restarts"] == n
    assert monitor_of(host, "loop") is None
    host.ok("launch", "busybox", "once", "--", "/bin/sh", "-c", "exit 1")
    wait_for(lambda: host.info("once")["status"] == "stopped", what="exit")
    time.sleep(1)
    assert host.info("once")["restarts"] == 0


def test_reboot_inside_restarts_the_instance(host):
    host.ok("launch", "busybox", "rb")
    pid = host.info("rb")["pid"]
    host.run("exec", "rb", "--", "reboot")
    wait_for(lambda: host.info("rb")["pid"] not in (0, pid) and host.info("rb")["status"] == "running",
             timeout=30, what="the instance to come back")
    assert host.info("rb")["last_exit"]["signal"] == signal.SIGHUP


def test_autostart(host):
    host.ok("create", "busybox", "auto1", "--autostart")
    host.ok("create", "busybox", "manual1")
    out = host.ok("start", "--all-autostart")
    assert "started auto1" in out
    assert host.info("auto1")["status"] == "running"
    assert host.info("manual1")["status"] == "stopped"
    assert host.ok("start", "--all-autostart") == ""  # already running
    unit = (REPO / "contrib" / "systemd" / "isola-autostart.service").read_text()
    assert "start --all-autostart" in unit


# ---- crash consistency and concurrency ------------------------------------------

def host_truth(host, name):
    """What the host shows of an instance: its init process, if any."""
    info = host.info(name)
    if info["status"] == "running":
        assert Path(f"/proc/{info['pid']}").exists()
    return info["status"]


@pytest.mark.parametrize("delay_ms", [5, 20, 40, 60, 80, 120, 200])
def test_killed_launch_leaves_a_truthful_list_and_delete_cleans_up(host, delay_ms):
    p = subprocess.Popen([str(ISOLA), "launch", "busybox", "k1"], env=host.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.3)  # a monitor already forked carries on on its own
    lst = host.list()
    if "k1" in lst:
        assert host_truth(host, "k1") in ("running", "stopped", "broken", "starting")
        host.ok("delete", "--force", "k1")
    assert_gone(host, "k1")
    assert not host.cgroup_dirs("k1")
    assert monitor_of(host, "k1") is None


@pytest.mark.parametrize("delay_ms", [2, 10, 30, 60])
def test_killed_delete_can_be_finished(host, delay_ms):
    host.ok("launch", "busybox", "k2")
    pid = host.info("k2")["pid"]
    host.sh("k2", "dd if=/dev/zero of=/f bs=1024 count=4096 2>/dev/null")
    p = subprocess.Popen([str(ISOLA), "delete", "--force", "k2"], env=host.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # "busy" while the monitor's exit handler holds the lock, then settled:
    # still running, or its monitor and exit handler are gone (before the
    # handler takes the lock, the row may show "broken" for a moment)
    def settled():
        status = host.list().get("k2", {}).get("status")
        return status != "busy" and (status == "running" or not processes_mentioning(str(host.state)))
    wait_for(settled, what="the exit handler")
    lst = host.list()
    if "k2" in lst:
        assert lst["k2"]["status"] in ("running", "broken")
        host.ok("delete", "--force", "k2")
    assert_gone(host, "k2", pid)
    wait_for(lambda: monitor_of(host, "k2") is None, what="the monitor to go")


def test_concurrent_commands_are_serialized(host):
    host.ok("create", "busybox", "cc")
    procs = []
    for _ in range(3):
        for args in (["start", "cc"], ["stop", "--force", "cc"], ["config", "set", "cc", "limits.processes", "77"]):
            procs.append(subprocess.Popen([str(ISOLA), *args], env=host.env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
    for p in procs:
        p.wait(timeout=60)
        assert "database" not in p.stderr and "corrupt" not in p.stderr, p.stderr
    status = host_truth(host, "cc")
    assert status in ("running", "stopped")
    assert host.ok("config", "get", "cc", "limits.processes").strip() == "77"
    # two deletes at once: one wins, the other finds nothing
    a = subprocess.Popen([str(ISOLA), "delete", "--force", "cc"], env=host.env, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen([str(ISOLA), "delete", "--force", "cc"], env=host.env, stderr=subprocess.PIPE, text=True)
    ra, rb = a.wait(timeout=60), b.wait(timeout=60)
    assert sorted([ra, rb]) == [0, 1]
    assert "not found" in (a.stderr.read() + b.stderr.read())
    assert_gone(host, "cc")


def test_disk_rate_limits_reach_the_block_cgroup(host):
    st = os.stat(host.state.parent)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    part = Path(f"/sys/dev/block/{major}:{minor}/partition")
    if part.exists():  # the throttle is set on the whole disk
        disk = Path(f"/sys/dev/block/{major}:{minor}").resolve().parent
        major, minor = map(int, (disk / "dev").read_text().split(":"))
    host.ok("launch", "busybox", "disk", "--limit", "disk.read=10MB", "--limit", "disk.write=100iops")
    v1 = Path("/sys/fs/cgroup/blkio") / host.cgroup_parent() / "disk"
    if v1.exists():
        assert f"{major}:{minor} 10000000" in (v1 / "blkio.throttle.read_bps_device").read_text()
        assert f"{major}:{minor} 100" in (v1 / "blkio.throttle.write_iops_device").read_text()
    else:
        io_max = (Path("/sys/fs/cgroup") / host.cgroup_parent() / "disk" / "io.max").read_text()
        assert f"{major}:{minor} rbps=10000000" in io_max and "wiops=100" in io_max
    host.ok("config", "unset", "disk", "limits.disk.read")
    if v1.exists():
        assert f"{major}:{minor}" not in (v1 / "blkio.throttle.read_bps_device").read_text()


def test_console_on_a_terminal_detaches_with_ctrl_a_q(host):
    import pty
    import select
    host.ok("launch", "busybox", "tty1")
    wait_for(lambda: "is up" in host.ok("logs", "tty1"), what="boot")
    master, slave = pty.openpty()
    p = subprocess.Popen([str(ISOLA), "console", "tty1"], stdin=slave, stdout=slave, stderr=slave,
                         env=host.env, start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(needle, timeout=10):
        nonlocal seen
        end = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        return needle in seen

    try:
        assert read_until(b"ctrl>+a q"), seen
        os.write(master, b"echo tty-$((3*5))\r")
        assert read_until(b"tty-15"), seen
        os.write(master, b"\x01q")
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    # detaching leaves the instance running
    assert host.info("tty1")["status"] == "running"
