"""The default paths, as a user on a fresh host has them: no ISOLA_STATE_DIR,
ISOLA_RUN_DIR or ISOLA_LXCFS_DIR, the state in /var/lib/isola, the runtime
state in /run/isola (0700) and LXCFS at /run/isola/lxcfs, exactly as the
README's first commands use them. A previous run's directories are moved
aside and put back afterwards; a store with instances of a real user is not
touched (the tests are skipped). What the tests make is deleted, and the
LXCFS daemon they started is stopped unless one was running before."""

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from test_isola_instance import (ISOLA, TIMEOUT, meminfo_kb, mounts_mentioning, processes_mentioning,
                                 remove_lxcfs_cgroup, wait_for)

STATE = Path("/var/lib/isola")
RUN = Path("/run/isola")
LXCFS = RUN / "lxcfs"
ENV = {k: v for k, v in os.environ.items() if k not in ("ISOLA_STATE_DIR", "ISOLA_RUN_DIR", "ISOLA_LXCFS_DIR")}


def isola(*args, timeout=TIMEOUT, input=None):
    return subprocess.run([str(ISOLA), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=ENV, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def ok(*args, **kw):
    p = isola(*args, **kw)
    assert p.returncode == 0, f"isola {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
    return p.stdout


def lxcfs_mounted():
    return any(line.split()[4] == str(LXCFS) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def instances_in(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return [r[0] for r in con.execute("SELECT name FROM instances")]
        finally:
            con.close()
    except sqlite3.Error:
        return []


def stop_lxcfs():
    pidfile = Path(f"{LXCFS}.pid")
    try:
        pid = int(pidfile.read_text())
        if "lxcfs" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass
    wait_for(lambda: not lxcfs_mounted(), what="LXCFS to unmount")


@pytest.fixture(scope="module")
def fresh_host():
    if not ISOLA.exists():
        pytest.fail(f"{ISOLA} does not exist: build it with `make`", pytrace=False)
    users = instances_in(STATE / "isola.db")
    if users:
        pytest.skip(f"{STATE} holds instances of a real user ({', '.join(users)}): not touching them")
    lxcfs_before = lxcfs_mounted()
    aside = []
    tag = f"pytest-aside-{os.getpid()}"
    for d in (STATE,) + (() if lxcfs_before else (RUN,)):
        if d.exists():
            moved = d.with_name(f"{d.name}.{tag}")
            d.rename(moved)
            aside.append((moved, d))
    yield
    p = isola("list", "--format", "json")
    if p.returncode == 0:
        for inst in json.loads(p.stdout):
            isola("delete", "--force", inst["name"])
    if not lxcfs_before:
        stop_lxcfs()
        remove_lxcfs_cgroup()
    cg_left = list(Path("/sys/fs/cgroup").glob("*/isola")) + list(Path("/sys/fs/cgroup").glob("isola"))
    procs = processes_mentioning(str(STATE))
    left = mounts_mentioning(str(STATE)) + ([] if lxcfs_before else mounts_mentioning(str(RUN)))
    subprocess.run(["rm", "-rf", str(STATE)] + ([] if lxcfs_before else [str(RUN)]))
    for moved, d in aside:
        moved.rename(d)
    assert not procs, f"processes left: {procs}"
    assert not left, f"mounts left: {left}"
    assert not cg_left, f"cgroups left: {cg_left}"


def test_readme_launch_works_with_the_default_paths(fresh_host):
    ok("launch", "busybox", "web", "--limit", "memory=128MiB")
    free = ok("exec", "web", "--", "free", "-m").splitlines()[1].split()
    assert free[1] == "128", free
    assert meminfo_kb(ok("exec", "web", "--", "cat", "/proc/meminfo"), "MemTotal") == 128 * 1024
    assert int(ok("exec", "web", "--", "grep", "-c", "^processor", "/proc/cpuinfo")) >= 1
    assert ok("list", "--format", "json").count('"running"') == 1
    # the runtime's state stays closed to everyone but root
    assert RUN.stat().st_mode & 0o777 == 0o700
    assert STATE.stat().st_mode & 0o777 == 0o711
    ok("stop", "web")
    ok("delete", "web")
    assert not (STATE / "instances" / "web").exists()
    assert not (RUN / "web").exists()


def test_a_start_failure_reports_its_first_cause(fresh_host):
    """The init fails at its first mount while the runtime may still be
    compiling the seccomp filter (a cold cache): the init's error is the one
    reported, never the broken pipe the runtime's next message meets."""
    ok("create", "busybox", "broken")
    upper = STATE / "instances" / "broken" / "upper"
    (upper / "proc").write_text("not a directory\n")  # /proc in the instance becomes a file
    seen = {}
    for _ in range(20):
        subprocess.run(["rm", "-rf", str(RUN / ".cache")])
        p = isola("start", "broken")
        assert p.returncode != 0
        msg = p.stderr.strip()
        seen[msg] = seen.get(msg, 0) + 1
    for msg in seen:
        assert "/proc" in msg and "Not a directory" in msg, seen
        assert "Broken pipe" not in msg and "exited during create" not in msg, seen
    info = ok("info", "broken")
    assert "stopped" in info
    assert not processes_mentioning("instances/broken")
    (upper / "proc").unlink()
    ok("start", "broken")
    assert ok("exec", "broken", "--", "echo", "fine").strip() == "fine"
    ok("delete", "--force", "broken")
