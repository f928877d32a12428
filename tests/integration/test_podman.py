"""podman (4.3) with isola-oci as its OCI runtime (`podman --runtime PATH`):
the container lifecycle, exec, terminals, logs, ps/top/inspect/stats, stop,
kill, pause, restart, rm, resource limits, read-only roots, capabilities,
seccomp profiles, --userns=auto and networking. The image is the busybox
rootfs imported from a tarball; storage, network and configuration live in a
private temp directory (clients.Engine). A failing step prints what podman
and isola-oci said."""

import json
import os
import time
from pathlib import Path

import pytest

from clients import (Engine, ISOLA_STATE, cgroup_value, cgroups_named, need, ok, run_pty)

AUTO_USER = f"isolaitauto{os.getpid()}"  # owner of the --userns=auto range
AUTO_BASE, AUTO_SIZE = 3_000_000, 200_000


def _edit_subid(add):
    for f in ("/etc/subuid", "/etc/subgid"):
        p = Path(f)
        lines = p.read_text().splitlines() if p.exists() else []
        lines = [l for l in lines if not l.startswith(AUTO_USER + ":")]
        if add:
            lines.append(f"{AUTO_USER}:{AUTO_BASE}:{AUTO_SIZE}")
        p.write_text("".join(l + "\n" for l in lines))


@pytest.fixture(scope="module")
def engine(runtime_bin, rootfs):
    need("podman", "podman")
    need("conmon", "conmon")
    # --userns=auto takes its ids from this name's /etc/subuid and /etc/subgid ranges.
    _edit_subid(True)
    e = Engine(runtime_bin)
    try:
        yield e.setup(rootfs, auto_userns_user=AUTO_USER)
    finally:
        problems = e.close()
        _edit_subid(False)
    assert not problems, "left behind: " + "; ".join(problems)


class Podman:
    """One test's view: podman commands, unique names, and cleanup."""

    _n = 0

    def __init__(self, engine):
        self.e = engine
        self.names = []
        self.image = engine.image

    def __call__(self, *args, **kw):
        return self.e.podman(*args, **kw)

    def ok(self, *args, **kw):
        return ok(self.e.podman(*args, **kw))

    def name(self):
        Podman._n += 1
        n = f"it{os.getpid()}-{Podman._n}"
        self.names.append(n)
        return n

    def inspect(self, name, fmt):
        return self.ok("inspect", "--format", fmt, name).out.strip()

    def run_d(self, *args):
        """podman run -d NAME; returns (name, full id)."""
        n = self.name()
        cid = self.ok("run", "-d", "--name", n, *args).out.strip().splitlines()[-1]
        return n, cid

    def wait_logs(self, name, text, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            r = self("logs", name)
            if text in r.out:
                return r.out
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the logs of {name}:\n{r}\n{self.e.diag()}")
            time.sleep(0.1)


@pytest.fixture
def pm(engine):
    p = Podman(engine)
    yield p
    ids = []
    for n in p.names:
        r = engine.podman("inspect", "--format", "{{.Id}}", n)
        if r.rc == 0:
            ids.append(r.out.strip())
    if p.names:
        engine.podman("rm", "-f", "-t", "0", *p.names, timeout=120)
    left = [str(ISOLA_STATE / i) for i in ids if (ISOLA_STATE / i).exists()]
    left += [str(d) for i in ids for d in cgroups_named(f"libpod-{i}")]
    assert not left, "left behind after podman rm: " + ", ".join(left)


def status_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in:\n{text}")


# ---- run --------------------------------------------------------------------

def test_run_foreground_output_exit_code_and_runtime(pm):
    r = pm("run", "--rm", pm.image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.rc == 3, str(r)
    assert r.out == "out\n", str(r)
    assert "err" in r.err, str(r)


@pytest.mark.isola_only
def test_container_uses_isola_oci(pm, runtime_bin):
    n, cid = pm.run_d(pm.image, "sleep", "100")
    assert pm.inspect(n, "{{.OCIRuntime}}") == str(runtime_bin)
    # isola-oci keeps its state under its default root, named by the id.
    state = json.loads((ISOLA_STATE / cid / "state.json").read_text())
    assert state["id"] == cid and state["pid"] == int(pm.inspect(n, "{{.State.Pid}}"))


def test_ulimits_from_containers_conf(pm):
    r = pm.ok("run", "--rm", pm.image, "cat", "/proc/self/limits")
    for name in ("Max open files", "Max processes"):
        line = next(l for l in r.out.splitlines() if l.startswith(name))
        assert line.split()[-3:-1] == ["1024", "1024"], str(r)


def test_run_detached_logs_ps_inspect_top(pm):
    n, cid = pm.run_d(pm.image, "sh", "-c", "echo started; exec sleep 100")
    pm.wait_logs(n, "started")
    ps = pm.ok("ps", "--format", "{{.Names}} {{.Status}}").out
    assert any(l.startswith(n + " Up") for l in ps.splitlines()), ps
    assert pm.inspect(n, "{{.State.Status}} {{.State.Running}}") == "running true"
    pid = int(pm.inspect(n, "{{.State.Pid}}"))
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"100"]
    assert f"libpod-{cid}" in Path(f"/proc/{pid}/cgroup").read_text()
    top = pm.ok("top", n, "pid", "args").out
    assert "sleep 100" in top, top


def test_run_interactive_terminal(pm, engine):
    rc, screen = run_pty(["podman", "--runtime", engine.runtime, "run", "-it", "--rm",
                          pm.image, "sh"], "tty; echo X$((6*7))Y; exit 5\r", env=engine.env)
    assert rc == 5, screen + engine.diag()
    assert "/dev/pts/0" in screen and "X42Y" in screen, screen + engine.diag()


# ---- exec -------------------------------------------------------------------

def test_exec_output_exit_code_env_user(pm):
    n, _ = pm.run_d(pm.image, "sleep", "100")
    r = pm.ok("exec", "-e", "FOO=bar", n, "sh", "-c", "echo $FOO; cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.out.split("\n")[0] == "bar" and "sleep 100" in r.out, str(r)
    assert pm("exec", n, "sh", "-c", "exit 7").rc == 7
    assert pm.ok("exec", "--user", "1000:1000", n, "id", "-u").out.strip() == "1000"
    assert pm.ok("exec", "-w", "/proc", n, "pwd").out.strip() == "/proc"


def test_exec_interactive_terminal(pm, engine):
    n, _ = pm.run_d(pm.image, "sleep", "100")
    rc, screen = run_pty(["podman", "--runtime", engine.runtime, "exec", "-it", n, "sh"],
                         "tty; echo X$((6*7))Y; exit 4\r", env=engine.env)
    assert rc == 4, screen + engine.diag()
    assert "/dev/pts/" in screen and "X42Y" in screen, screen + engine.diag()


# ---- stop, kill, pause, restart, rm -----------------------------------------

TRAP = ("trap 'echo got-term; exit 3' TERM; trap 'echo got-usr1' USR1; echo started; "
        "while :; do sleep 0.1; done")


def test_stop_graceful(pm):
    n, _ = pm.run_d(pm.image, "sh", "-c", TRAP)
    pm.wait_logs(n, "started")
    t = time.monotonic()
    pm.ok("stop", "-t", "20", n)
    assert time.monotonic() - t < 10
    assert pm.inspect(n, "{{.State.Status}} {{.State.ExitCode}}") == "exited 3"
    assert "got-term" in pm.ok("logs", n).out


def test_stop_forced_after_timeout(pm):
    # sleep as PID 1 has no SIGTERM handler: the kernel drops the signal.
    n, _ = pm.run_d(pm.image, "sleep", "100")
    t = time.monotonic()
    r = pm.ok("stop", "-t", "1", n)
    assert time.monotonic() - t < 8, str(r)
    assert "SIGKILL" in r.err, str(r)
    assert pm.inspect(n, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


def test_kill_with_signal_then_default(pm):
    n, _ = pm.run_d(pm.image, "sh", "-c", TRAP)
    pm.wait_logs(n, "started")
    pm.ok("kill", "-s", "USR1", n)
    pm.wait_logs(n, "got-usr1")
    assert pm.inspect(n, "{{.State.Status}}") == "running"
    pm.ok("kill", n)  # SIGKILL
    pm.ok("wait", n)
    assert pm.inspect(n, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


def test_pause_unpause(pm):
    n, _ = pm.run_d(pm.image, "sh", "-c",
                    "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.05; done")
    pid = int(pm.inspect(n, "{{.State.Pid}}"))
    pm.ok("pause", n)
    assert pm.inspect(n, "{{.State.Status}}") == "paused"
    assert "Paused" in pm.ok("ps", "-a", "--filter", f"name={n}", "--format", "{{.Status}}").out
    frozen = cgroup_value(pid, "freezer", "freezer.state", "cgroup.freeze")
    assert frozen in ("FROZEN", "1"), frozen
    pm.ok("unpause", n)
    assert pm.inspect(n, "{{.State.Status}}") == "running"
    # Running again: the counter moves on.
    a = pm.ok("exec", n, "cat", "/tmp/n").out
    deadline = time.monotonic() + 10
    while pm.ok("exec", n, "cat", "/tmp/n").out == a:
        assert time.monotonic() < deadline, f"counter stuck at {a!r} after unpause"
        time.sleep(0.1)


def test_restart(pm):
    n, _ = pm.run_d(pm.image, "sh", "-c", "echo started; exec sleep 100")
    pm.wait_logs(n, "started")
    pid1 = pm.inspect(n, "{{.State.Pid}}")
    pm.ok("restart", "-t", "0", n)
    assert pm.inspect(n, "{{.State.Status}}") == "running"
    assert pm.inspect(n, "{{.State.Pid}}") != pid1
    assert pm.wait_logs(n, "started\nstarted")


@pytest.mark.isola_only
def test_rm_running_container(pm):
    n, cid = pm.run_d(pm.image, "sleep", "100")
    pid = int(pm.inspect(n, "{{.State.Pid}}"))
    assert (ISOLA_STATE / cid).is_dir()
    pm.ok("rm", "-f", "-t", "0", n)
    assert n not in pm.ok("ps", "-a", "--format", "{{.Names}}").out.split()
    assert not (ISOLA_STATE / cid).exists()
    assert not Path(f"/proc/{pid}").exists() or b"sleep" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not cgroups_named(f"libpod-{cid}")


def test_stats(pm):
    n, _ = pm.run_d(pm.image, "sh", "-c", "sleep 100 & sleep 100")
    time.sleep(0.2)
    r = pm.ok("stats", "--no-stream", "--format", "json", n)
    s = json.loads(r.out)[0]
    assert s["name"] == n, r.out
    assert int(s["pids"]) >= 2, r.out
    assert not s["mem_usage"].startswith("0B"), r.out


# ---- limits and security options -------------------------------------------

def test_memory_cpus_pids_limits(pm):
    n, _ = pm.run_d("--memory", "64m", "--cpus", "0.5", "--pids-limit", "20", pm.image, "sleep", "100")
    pid = int(pm.inspect(n, "{{.State.Pid}}"))
    assert cgroup_value(pid, "memory", "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    assert cgroup_value(pid, "pids", "pids.max", "pids.max") == "20"
    quota = cgroup_value(pid, "cpu", "cpu.cfs_quota_us", "cpu.max").split()
    period = cgroup_value(pid, "cpu", "cpu.cfs_period_us", "cpu.max").split()[-1]
    assert int(quota[0]) * 2 == int(period), (quota, period)
    # The pids limit is enforced: 30 background sleeps cannot all start.
    r = pm("exec", n, "sh", "-c", "for i in $(seq 30); do sleep 10 & done 2>&1; wait")
    assert "can't fork" in r.out + r.err or r.rc != 0, str(r)


def test_read_only_root(pm):
    r = pm.ok("run", "--rm", "--read-only", pm.image, "sh", "-c",
              "touch /x 2>&1; touch /tmp/y /var/tmp/y /run/y && echo writable; "
              "cat /run/isola-it/marker; grep -E ' / ' /proc/mounts")
    assert "Read-only file system" in r.out, str(r)
    assert "writable" in r.out, str(r)
    # /run is a tmpfs with the image's /run copied in (tmpcopyup).
    assert "from-the-image" in r.out, str(r)
    assert " ro," in r.out.splitlines()[-1] or " ro " in r.out.splitlines()[-1], str(r)


CAP_NET_RAW = 13
# Engine.CAPS, the containers.conf default_capabilities, as numbers
PODMAN_DEFAULT_CAPS = {0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31}


def test_capabilities_default_drop_add(pm):
    r = pm.ok("run", "--rm", pm.image, "cat", "/proc/self/status")
    eff = int(status_field(r.out, "CapEff"), 16)
    assert {b for b in range(64) if eff >> b & 1} == PODMAN_DEFAULT_CAPS, hex(eff)
    r = pm.ok("run", "--rm", "--cap-drop", "all", "--cap-add", "NET_RAW", pm.image,
              "cat", "/proc/self/status")
    for f in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(r.out, f), 16) == 1 << CAP_NET_RAW, str(r)
    r = pm("run", "--rm", "--cap-drop", "CHOWN", pm.image, "chown", "1:1", "/tmp")
    assert r.rc != 0 and "Operation not permitted" in r.err, str(r)


def test_seccomp_default_profile_and_unconfined(pm):
    r = pm.ok("run", "--rm", pm.image, "grep", "Seccomp", "/proc/self/status")
    assert status_field(r.out, "Seccomp") == "2", str(r)
    r = pm.ok("run", "--rm", "--security-opt", "seccomp=unconfined", pm.image,
              "grep", "Seccomp", "/proc/self/status")
    assert status_field(r.out, "Seccomp") == "0", str(r)


def test_seccomp_custom_profile(pm, engine):
    profile = engine.dir / "deny-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    r = pm("run", "--rm", "--security-opt", f"seccomp={profile}", pm.image, "sh", "-c",
           "touch /tmp/f && echo touched; mkdir /tmp/d")
    assert "touched" in r.out and r.rc != 0, str(r)
    assert "Operation not permitted" in r.err, str(r)


def test_userns_auto(pm):
    r = pm.ok("run", "--rm", "--userns=auto", pm.image, "sh", "-c",
              "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /f && stat -c %u /f")
    lines = r.out.split("\n")
    for line in lines[:2]:
        inside, outside, size = map(int, line.split())
        assert inside == 0 and AUTO_BASE <= outside < AUTO_BASE + AUTO_SIZE and size >= 1024, str(r)
    assert lines[2:4] == ["0", "0"], str(r)


# ---- networks -----------------------------------------------------------------

def test_network_none(pm):
    r = pm.ok("run", "--rm", "--network", "none", pm.image, "ls", "/sys/class/net")
    assert r.out.split() == ["lo"], str(r)


def test_default_network(pm, engine):
    r = pm.ok("run", "--rm", "--cap-add", "NET_RAW", pm.image, "sh", "-c",
              f"ip -4 -o addr show eth0; ping -c 1 -W 5 {engine.subnet}.1")
    assert f"inet {engine.subnet}." in r.out, str(r)
    assert "1 packets received" in r.out, str(r)
