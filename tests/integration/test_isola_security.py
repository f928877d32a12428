"""Instances against the host: what an instance holds of the host and what
the host lets other users and other stores see of an instance.

- host id ranges are reserved host-wide in /etc/subuid and /etc/subgid
  (owner `isola`): two stores never share one, a range given to a user
  afterwards is refused, delete releases, a lost store's ranges come back;
- an unprivileged host user cannot read or write an instance's files;
- the monitor lives in the instance's cgroup and answers sysinfo(2) at a
  bounded rate;
- a killed monitor shows as `degraded` and `stop` still stops; a killed
  LXCFS is restarted and its files are mounted again in running instances;
- the monitor keeps none of the caller's fds and no copy of the host's
  mount table.

Each attack or reproduction checks what the host and the instance observe."""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_isola_instance import (ASAN, ISOLA, TIMEOUT, Host, lxcfs_dir, meminfo_kb,  # noqa: F401
                                 monitor_of, mounts_mentioning, processes_mentioning, wait_for)

SUBID_FILES = ("/etc/subuid", "/etc/subgid")
REGISTRY = Path("/var/lib/isola-idmap")
RANGE = 65536


def isola_ranges(path):
    """(base, count) of every `isola:` line in a subordinate id file."""
    out = []
    try:
        for line in Path(path).read_text().splitlines():
            parts = line.split(":")
            if len(parts) == 3 and parts[0] == "isola":
                out.append((int(parts[1]), int(parts[2])))
    except FileNotFoundError:
        pass
    return sorted(out)


def registry_entries(store=None):
    """(base, count, name, store) of the host's id registry, optionally of one store."""
    out = []
    try:
        text = REGISTRY.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        base, count, name, st = line.split(" ", 3)
        if store is None or st == str(store):
            out.append((int(base), int(count), name, st))
    return out


def overlaps(a, b, n=RANGE, m=RANGE):
    return a < b + m and b < a + n


def edit_subids(add=None, remove_owner=None):
    """Append `add` (a line) to / remove an owner's lines from both files,
    keeping every other byte as it was."""
    for f in SUBID_FILES:
        p = Path(f)
        text = p.read_text() if p.exists() else ""
        lines = text.splitlines(keepends=True)
        if remove_owner:
            lines = [l for l in lines if not l.startswith(remove_owner + ":")]
        if add:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(add + "\n")
        p.write_text("".join(lines))


def make_host():
    base = tempfile.mkdtemp(prefix="isola-sec.", dir="/tmp")
    return Host(base)


def finish_host(h):
    """Delete everything of a store and check nothing is left of it."""
    h.cleanup()
    cg_left = list(Path("/sys/fs/cgroup").glob(f"*/{h.cgroup_parent()}")) + \
        list(Path("/sys/fs/cgroup").glob(h.cgroup_parent()))
    left = mounts_mentioning(str(h.base))
    procs = processes_mentioning(str(h.state))
    regs = registry_entries(h.state.resolve()) if h.state.exists() else []
    subprocess.run(["rm", "-rf", str(h.base)])
    assert not procs, f"processes left after delete: {procs}"
    assert not left, f"mounts left on the host: {left}"
    assert not cg_left, f"cgroups left on the host: {cg_left}"
    assert not regs, f"id registry entries left: {regs}"


@pytest.fixture
def subids():
    """The isola lines of /etc/subuid and /etc/subgid are as before the test
    once its stores are deleted (fixture order: this one tears down last)."""
    before = {f: isola_ranges(f) for f in SUBID_FILES}
    yield
    after = {f: isola_ranges(f) for f in SUBID_FILES}
    assert after == before, f"isola lines left in the subordinate id files: {after} (before: {before})"


@pytest.fixture
def host(subids, lxcfs_dir):  # noqa: F811
    if not ISOLA.exists():
        pytest.fail(f"{ISOLA} does not exist: build it with `make`", pytrace=False)
    h = make_host()
    yield h
    finish_host(h)


@pytest.fixture
def host2(subids, lxcfs_dir):  # noqa: F811
    h = make_host()
    yield h
    finish_host(h)


# ---- host id ranges ------------------------------------------------------------

def test_two_stores_launching_at_once_get_disjoint_ranges_reserved_in_subid_files(host, host2):
    # the stores exist first: concurrent first opens of a new database can
    # fail with "database is locked" (PRAGMA journal_mode), not what this is about
    for h in (host, host2):
        h.ok("image", "list")
    procs = []
    for h in (host, host2):
        for i in range(3):
            procs.append(subprocess.Popen([str(ISOLA), "launch", "busybox", f"c{i}"], env=h.env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
    bases = [(h.state, n, h.info(n)["idmap_base"]) for h in (host, host2) for n in ("c0", "c1", "c2")]
    for i, a in enumerate(bases):
        for b in bases[i + 1:]:
            assert not overlaps(a[2], b[2]), f"{a} and {b} share host ids"
    # every range is reserved for other tools to see, and recorded with its store
    for f in SUBID_FILES:
        reserved = isola_ranges(f)
        for _, _, b in bases:
            assert (b, RANGE) in reserved, (f, b, reserved)
    for st, n, b in bases:
        assert (b, RANGE, n, str(st.resolve())) in registry_entries(st.resolve())
    # inside, each instance's root is its own range
    assert host2.sh("c1", "cat /proc/self/uid_map").split() == ["0", str(bases[4][2]), str(RANGE)]


def test_a_range_given_to_a_user_afterwards_is_refused_and_skipped(host):
    user = f"isolaitlate{os.getpid()}"
    host.ok("create", "busybox", "late")
    base = host.info("late")["idmap_base"]
    try:
        # an administrator gives part of the instance's range to a user
        edit_subids(add=f"{user}:{base + 1000}:10")
        err = host.fails("start", "late")
        assert "/etc/subuid" in err and user in err and str(base) in err, err
        assert host.info("late")["status"] == "stopped"
        # and one just above it: a new instance goes around both
        edit_subids(add=f"{user}:{base + RANGE}:{RANGE}")
        host.ok("create", "busybox", "next")
        nb = host.info("next")["idmap_base"]
        assert not overlaps(nb, base) and not overlaps(nb, base + RANGE), (base, nb)
    finally:
        edit_subids(remove_owner=user)
    host.ok("start", "late")
    assert host.sh("late", "cat /proc/self/uid_map").split() == ["0", str(base), str(RANGE)]


def test_useradd_does_not_hand_out_an_instance_range(host):
    user = f"isolaitua{os.getpid()}"
    host.ok("create", "busybox", "ua")
    base = host.info("ua")["idmap_base"]
    backups = {f + "-": Path(f + "-").read_bytes() for f in SUBID_FILES if Path(f + "-").exists()}
    try:
        # useradd may choose only between the instance's range and the next one
        lo, hi = base, base + 2 * RANGE - 1
        p = subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin",
                            "-K", f"SUB_UID_MIN={lo}", "-K", f"SUB_UID_MAX={hi}", "-K", f"SUB_UID_COUNT={RANGE}",
                            "-K", f"SUB_GID_MIN={lo}", "-K", f"SUB_GID_MAX={hi}", "-K", f"SUB_GID_COUNT={RANGE}",
                            user], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        for f in SUBID_FILES:
            mine = [tuple(map(int, l.split(":")[1:])) for l in Path(f).read_text().splitlines()
                    if l.startswith(user + ":")]
            assert mine, f"useradd gave {user} no range in {f}"
            for b, n in mine:
                assert not overlaps(b, base, n, RANGE), f"{f}: useradd gave {user} {b}+{n}, instance has {base}"
    finally:
        subprocess.run(["userdel", user], capture_output=True, timeout=60)
        edit_subids(remove_owner=user)
        for f, data in backups.items():
            Path(f).write_bytes(data)


def test_delete_releases_a_range_and_a_lost_store_gives_its_ranges_back(host, host2):
    host.ok("create", "busybox", "d1")
    b = host.info("d1")["idmap_base"]
    assert (b, RANGE) in isola_ranges("/etc/subuid") and (b, RANGE) in isola_ranges("/etc/subgid")
    host.ok("delete", "d1")
    assert (b, RANGE) not in isola_ranges("/etc/subuid") and (b, RANGE) not in isola_ranges("/etc/subgid")
    assert not registry_entries(host.state.resolve())
    host.ok("create", "busybox", "d2")
    assert host.info("d2")["idmap_base"] == b
    host.ok("delete", "d2")
    # a store removed by hand (nothing running): its range is taken back
    host2.ok("create", "busybox", "lost")
    b2 = host2.info("lost")["idmap_base"]
    shutil.rmtree(host2.state)
    host.ok("create", "busybox", "d3")
    assert host.info("d3")["idmap_base"] == b2
    assert isola_ranges("/etc/subuid").count((b2, RANGE)) == 1
    assert [e[2] for e in registry_entries() if e[0] == b2] == ["d3"]


# ---- files of an instance and other host users ------------------------------------

def as_nobody(*cmd):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *cmd],
                          capture_output=True, text=True, timeout=30)


def test_other_host_users_cannot_read_or_write_an_instance(host):
    host.ok("launch", "busybox", "priv1")
    host.sh("priv1", "echo tenant-secret > /root/secret; chmod 644 /root/secret; chmod 755 /root; "
                     "echo t > /tmp/public; chmod 666 /tmp/public")
    upper = host.inst_dir("priv1") / "upper"
    assert (upper / "root" / "secret").read_text() == "tenant-secret\n"  # root on the host can
    p = as_nobody("cat", str(upper / "root" / "secret"))
    assert p.returncode != 0 and "tenant-secret" not in p.stdout, p
    assert "Permission denied" in p.stderr, p.stderr
    p = as_nobody("/bin/sh", "-c", f"echo x > {upper}/tmp/planted")
    assert p.returncode != 0 and not (upper / "tmp" / "planted").exists(), p
    p = as_nobody("/bin/sh", "-c", f"echo x >> {upper}/tmp/public")
    assert p.returncode != 0, p
    assert as_nobody("ls", str(host.inst_dir("priv1"))).returncode != 0
    # the instance's own directory is open to its root group only
    st = os.stat(host.inst_dir("priv1"))
    base = host.info("priv1")["idmap_base"]
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, base, 0o750)
    # the instance still works: it boots, writes, runs commands, restarts
    wait_for(lambda: "is up" in host.ok("logs", "priv1"), what="boot")
    host.ok("restart", "--force", "priv1")
    assert host.sh("priv1", "cat /root/secret; touch /tmp/new && echo ok").split() == ["tenant-secret", "ok"]
    # a privileged instance's directory is root's alone
    host.ok("create", "busybox", "priv2", "--privileged")
    assert os.stat(host.inst_dir("priv2")).st_mode & 0o7777 == 0o700


# ---- the monitor's cgroup and the sysinfo rate -------------------------------------

HAMMER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* hammer NPROC SECONDS WANT_TOTALRAM: each child calls sysinfo(2) in a loop and
 * prints "calls wrong" (an answer whose total memory is not WANT is wrong). */
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	double secs = atof(argv[2]);
	unsigned long long want = strtoull(argv[3], NULL, 10);
	for (int i = 0; i < n; i++) {
		if (fork() != 0)
			continue;
		struct timespec t0, t;
		long calls = 0, wrong = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			struct sysinfo si;
			if (sysinfo(&si) != 0 || (unsigned long long)si.totalram * si.mem_unit != want)
				wrong++;
			calls++;
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
		printf("%ld %ld\n", calls, wrong);
		return 0;
	}
	while (wait(NULL) > 0)
		;
	return 0;
}
"""


def static_binary(tmp, name, source):
    src = Path(tmp) / f"{name}.c"
    src.write_text(source)
    out = Path(tmp) / name
    p = subprocess.run(["cc", "-O2", "-static", "-o", str(out), str(src)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot build a static test program (cc -static): {p.stderr.strip()[:200]}")
    return out.read_bytes()


def copy_in(host, name, data, path):
    p = subprocess.run([str(ISOLA), "exec", name, "--", "/bin/sh", "-c", f"cat > {path} && chmod 755 {path}"],
                       input=data, capture_output=True, env=host.env, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr


def proc_cgroups(pid):
    """controller set -> path, from /proc/PID/cgroup."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        out[ctrls] = path
    return out


def cg_of(cgs, ctrl):
    """The path of one v1 controller, or the cgroup2 path where it is not mounted on its own."""
    return next((v for k, v in cgs.items() if ctrl in k.split(",")), cgs.get(""))


def cpu_usage_ns(cgpath):
    """CPU time of a cgroup (v1 cpuacct, else cgroup2 cpu.stat)."""
    v1 = Path("/sys/fs/cgroup/cpuacct") / cgpath.lstrip("/") / "cpuacct.usage"
    if v1.exists():
        return int(v1.read_text())
    stat = (Path("/sys/fs/cgroup") / cgpath.lstrip("/") / "cpu.stat").read_text()
    return int(re.search(r"^usage_usec (\d+)", stat, re.M).group(1)) * 1000


def proc_cpu_s(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(ASAN, reason="the sanitized monitor's CPU use is not the monitor's")
def test_monitor_is_charged_to_the_instance_and_sysinfo_is_rate_limited(host, tmp_path):
    hammer = static_binary(tmp_path, "hammer", HAMMER_C)
    host.ok("launch", "busybox", "hot", "--limit", "cpu=0.5", "--limit", "memory=128MiB")
    mon = monitor_of(host, "hot")
    init = host.info("hot")["pid"]
    inst_cg = f"/{host.cgroup_parent()}/hot"
    mcg, icg = proc_cgroups(mon), proc_cgroups(init)
    # the monitor is in a leaf beside the instance's processes, under the instance's cgroup
    for ctrl in ("cpu", "cpuacct", "memory", "pids"):
        m, i = cg_of(mcg, ctrl), cg_of(icg, ctrl)
        assert m.startswith(inst_cg + "/"), (ctrl, m)
        assert i.startswith(inst_cg + "/") and i != m, (ctrl, i)
    copy_in(host, "hot", hammer, "/hammer")
    seconds = 3.0
    mon_cg = cg_of(mcg, "cpuacct")
    cg0, inst0, mon0, t0 = cpu_usage_ns(mon_cg), cpu_usage_ns(inst_cg), proc_cpu_s(mon), time.monotonic()
    out = host.ok("exec", "hot", "--", "/hammer", "4", str(seconds), str(128 << 20), timeout=60)
    wall = time.monotonic() - t0
    cg1, inst1, mon1 = cpu_usage_ns(mon_cg), cpu_usage_ns(inst_cg), proc_cpu_s(mon)
    rows = [tuple(map(int, l.split())) for l in out.strip().splitlines()]
    calls = sum(r[0] for r in rows)
    wrong = sum(r[1] for r in rows)
    assert len(rows) == 4 and calls > 0, out
    # never the host's values, however hard the instance asks
    assert wrong == 0, f"{wrong} of {calls} sysinfo answers did not show the instance's memory"
    # what the monitor spent is charged to the instance's cgroup ...
    assert cg1 - cg0 > 0 and inst1 - inst0 >= cg1 - cg0
    # ... and bounded: a small share of one CPU, not what the callers ask for
    assert mon1 - mon0 <= 0.10 * wall, f"monitor used {mon1 - mon0:.2f} s of CPU in {wall:.1f} s ({calls} calls)"


# ---- a killed monitor or LXCFS --------------------------------------------------------

def test_killed_monitor_shows_degraded_and_stop_still_stops(host):
    host.ok("launch", "busybox", "orphan")
    init = host.info("orphan")["pid"]
    mon = monitor_of(host, "orphan")
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: host.list()["orphan"]["status"] == "degraded", what="list to say degraded")
    inst = host.list()["orphan"]
    assert "monitor gone" in inst["problem"], inst
    assert re.search(r"orphan\s+degraded: monitor gone", host.ok("list")), host.ok("list")
    assert "degraded: monitor gone" in host.ok("info", "orphan")
    assert Path(f"/proc/{init}").exists()  # the instance itself runs on
    for cmd in (["exec", "orphan", "--", "true"], ["console", "orphan"]):
        err = host.fails(*cmd)
        assert "monitor gone" in err and "Connection refused" not in err, err
    host.ok("stop", "orphan")
    assert not Path(f"/proc/{init}").exists() or \
        Path(f"/proc/{init}/stat").read_text().split(") ")[1][0] == "Z"
    info = host.info("orphan")
    assert info["status"] == "stopped" and info["pid"] == 0
    assert not host.cgroup_dirs("orphan")
    assert not (host.state / "run" / "orphan").exists()
    assert not processes_mentioning(str(host.state))
    # and it starts again, looked after by a new monitor
    host.ok("start", "orphan")
    assert host.sh("orphan", "echo back").strip() == "back"
    assert monitor_of(host, "orphan") not in (None, mon)


def test_killed_monitor_delete_force_cleans_up(host):
    host.ok("launch", "busybox", "orphan2")
    init = host.info("orphan2")["pid"]
    os.kill(monitor_of(host, "orphan2"), signal.SIGKILL)
    wait_for(lambda: host.list()["orphan2"]["status"] == "degraded", what="degraded")
    host.fails("delete", "orphan2", match="degraded")
    host.ok("delete", "--force", "orphan2")
    assert "orphan2" not in host.list()
    assert not Path(f"/proc/{init}").exists() or \
        Path(f"/proc/{init}/stat").read_text().split(") ")[1][0] == "Z"
    assert not host.cgroup_dirs("orphan2")


def test_killed_lxcfs_is_restarted_and_running_instances_see_their_limits_again(host, lxcfs_dir):  # noqa: F811
    host.ok("launch", "busybox", "lx1", "--limit", "memory=96MiB")
    host.ok("launch", "busybox", "lx2", "--limit", "memory=160MiB")
    assert meminfo_kb(host.sh("lx1", "cat /proc/meminfo"), "MemTotal") == 96 * 1024
    pid = int(Path(f"{lxcfs_dir}.pid").read_text())
    os.kill(pid, signal.SIGKILL)

    def reads(name, mib):
        p = host.run("exec", name, "--", "cat", "/proc/meminfo")
        return p.returncode == 0 and meminfo_kb(p.stdout, "MemTotal") == mib * 1024

    # the monitors notice, LXCFS comes back and each instance's files are mounted again
    wait_for(lambda: reads("lx1", 96) and reads("lx2", 160), timeout=30, interval=0.2,
             what="/proc/meminfo to read again inside the instances")
    new = int(Path(f"{lxcfs_dir}.pid").read_text())
    assert new != pid
    for name in ("lx1", "lx2"):
        assert host.sh(name, "head -c 100 /proc/uptime /proc/stat /proc/cpuinfo >/dev/null && echo ok").strip() == "ok"
    # an instance started afterwards gets the new daemon too
    host.ok("launch", "busybox", "lx3", "--limit", "memory=64MiB")
    assert meminfo_kb(host.sh("lx3", "cat /proc/meminfo"), "MemTotal") == 64 * 1024


# ---- what the monitor holds of the caller and the host -----------------------------------

def fd_targets(pid):
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            pass
    return out


def test_monitor_keeps_none_of_the_callers_fds(host):
    # the reproduction: `isola launch busybox x 5>&1 | cat` must return
    p = subprocess.run(["/bin/sh", "-c", f'"{ISOLA}" launch busybox fd1 5>&1 | cat'], env=host.env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # an extra fd on a pipe: launch returns and the reader sees EOF
    r, w = os.pipe()
    ino = f"pipe:[{os.fstat(w).st_ino}]"
    try:
        p = subprocess.Popen([str(ISOLA), "launch", "busybox", "fd2"], pass_fds=(w,), env=host.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(w)
        w = -1
        assert p.wait(timeout=60) == 0, p.stderr.read()
        ready, _, _ = select.select([r], [], [], 15)
        assert ready and os.read(r, 16) == b"", "the pipe's reader never saw EOF: someone kept the caller's fd"
        for name in ("fd1", "fd2"):
            for pid in (monitor_of(host, name), host.info(name)["pid"]):
                assert ino not in fd_targets(pid), (name, pid)
        assert host.sh("fd2", "ls /proc/1/fd | sort -n | tr '\\n' ' '").split() == ["0", "1", "2"]
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_monitor_and_instance_do_not_pin_host_mounts(host, tmp_path):
    tag = f"isolaprobe{os.getpid()}"
    before, after, ext = tmp_path / "before", tmp_path / "after", tmp_path / "ext"
    for d in (before, after, ext):
        d.mkdir()
    img = tmp_path / "fs.img"
    subprocess.run(["truncate", "-s", "8M", str(img)], check=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(img)], check=True)
    dev = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True,
                         check=True).stdout.strip()
    mounted = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", f"{tag}-before", str(before)], check=True)
        mounted.append(before)
        subprocess.run(["mount", dev, str(ext)], check=True)
        mounted.append(ext)
        host.ok("launch", "busybox", "mnt1")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", f"{tag}-after", str(after)], check=True)
        mounted.append(after)
        for d in list(mounted):
            subprocess.run(["umount", str(d)], check=True)
            mounted.remove(d)
        mon, init = monitor_of(host, "mnt1"), host.info("mnt1")["pid"]
        for pid in (mon, init):
            mi = Path(f"/proc/{pid}/mountinfo").read_text()
            assert tag not in mi and dev not in mi and str(tmp_path) not in mi, (pid, mi)
        # the file system's superblock is gone: its device can be opened exclusively
        fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
        os.close(fd)
        assert host.sh("mnt1", "echo alive").strip() == "alive"
    finally:
        for d in mounted:
            subprocess.run(["umount", "-l", str(d)])
        subprocess.run(["losetup", "-d", dev])
