"""runc compatibility in the cgroup and seccomp layers (issue 10): each test
runs one bundle and asserts what runc 1.1 does with it, so that the same test
passes with ISOLA_RUNTIME=/usr/sbin/runc. Where runc is the one that is wrong
the test says why and is an expected failure for runc only.

- syscalls newer than a seccomp profile get ENOSYS, not the default action;
- the device cgroup applies the config's rules, not an allow for every
  linux.devices node;
- create and run refuse a frozen cgroup instead of hanging;
- cgroup v1 with BFQ: blockIO.weightDevice goes to blkio.bfq.weight_device;
- cgroup v1: update --memory -1 lifts memory+swap too."""

import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import default_config, sh
from test_resources import cgroup_dir

DATA = Path(__file__).resolve().parents[1] / "data"
CG = Path("/sys/fs/cgroup")

# ---- seccomp: syscalls newer than the profile ------------------------------

# Runs each probe in a child (a kill action then ends only that child) and
# prints "<name> <result>": "ok", the errno name, or "signal <n>".
# Probes: a native syscall number, "i386:<nr>" through int 0x80 (the compat
# ABI, seen by seccomp as AUDIT_ARCH_I386) or "x32:<nr>" (the number with
# bit 30 set, seen as AUDIT_ARCH_X86_64; the kernel here has no x32 ABI, so
# only the filter's answer differs from ENOSYS).
PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long sys_i386(long nr)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
	return ret;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			const char *a = argv[i];
			long r;
			if (!strncmp(a, "i386:", 5)) {
				r = sys_i386(atol(a + 5));
				if (r < 0 && r > -4096) {
					errno = (int)-r;
					r = -1;
				}
			} else if (!strncmp(a, "x32:", 4)) {
				r = syscall(0x40000000L | atol(a + 4), 0, 0, 0, 0, 0, 0);
			} else {
				r = syscall(atol(a), 0, 0, 0, 0, 0, 0);
			}
			if (r == -1)
				printf("%s %s\n", a, strerrorname_np(errno));
			else
				printf("%s ok\n", a);
			_exit(0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			return 2;
		if (WIFSIGNALED(st))
			printf("%s signal %d\n", argv[i], WTERMSIG(st));
	}
	return 0;
}
"""


@pytest.fixture(scope="module")
def probe_bin():
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler (cc) to build the static probe")
    d = tempfile.mkdtemp(prefix="isola-it-probe.")
    try:
        src = Path(d) / "probe.c"
        src.write_text(PROBE_C)
        out = Path(d) / "probe"
        subprocess.run([cc, "-static", "-O2", "-o", str(out), str(src)], check=True,
                       capture_output=True)
        yield out.read_bytes()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def install_probe(b, data):
    dest = b.rootfs / "probe"
    dest.write_bytes(data)
    os.chmod(dest, 0o755)


SYS_kexec_load = 246      # named by no rule of the profile, below its highest
SYS_cachestat = 451       # explicit rule: EACCES
SYS_futex_requeue = 456   # explicit rule: EPERM; the highest number the profile names
SYS_mseal = 462           # newer than the profile and than libseccomp 2.5.4
SYS_none = 1000           # no such syscall


def newer_syscalls_profile(default_action, default_errno):
    """Docker's profile (tests/data), with explicit rules for two syscalls
    numbered above everything else it names."""
    p = json.loads((DATA / "seccomp-default.json").read_text())
    names = {n for s in p["syscalls"] for n in s["names"]}
    assert not names & {"kexec_load", "cachestat", "futex_requeue", "mseal"}
    p["defaultAction"] = default_action
    p.pop("defaultErrnoRet", None)
    if default_errno is not None:
        p["defaultErrnoRet"] = default_errno
    p["syscalls"] += [
        {"names": ["cachestat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
        {"names": ["futex_requeue"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM},
    ]
    return p


@pytest.mark.parametrize("default_action,default_errno,refused", [
    ("SCMP_ACT_ERRNO", None, "EPERM"),      # containerd's, Kubernetes RuntimeDefault
    ("SCMP_ACT_ERRNO", 1, "EPERM"),         # Docker's (defaultErrnoRet 1)
    ("SCMP_ACT_ERRNO", errno.EACCES, "EACCES"),
    ("SCMP_ACT_KILL_PROCESS", None, "signal 31"),
])
def test_seccomp_newer_syscalls_get_enosys(ctx, bundle, probe_bin, default_action,
                                           default_errno, refused):
    """Numbers above the highest syscall the profile names (that libseccomp
    knows) fail with ENOSYS, natively and on the i386 compat ABI, so that libc
    falls back; below it the default action stays (EPERM, or the kill), and
    explicit rules keep their own errno. x32 numbers are compared with the
    x32 table's highest (pwritev2, 547): 462 stays refused."""
    probes = ["39", str(SYS_mseal), str(SYS_none), str(SYS_futex_requeue), str(SYS_cachestat),
              f"i386:{SYS_mseal}", f"i386:{SYS_none}", f"x32:{SYS_mseal}", f"x32:{SYS_none}",
              str(SYS_kexec_load)]
    config = default_config(["/probe", *probes])
    config["linux"]["seccomp"] = newer_syscalls_profile(default_action, default_errno)
    b = bundle(config)
    install_probe(b, probe_bin)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    got = dict(line.split(" ", 1) for line in r.out.splitlines())
    assert got == {
        "39": "ok",                                   # getpid: allowed
        str(SYS_mseal): "ENOSYS",
        str(SYS_none): "ENOSYS",
        str(SYS_futex_requeue): "EPERM",               # explicit rule, kept
        str(SYS_cachestat): "EACCES",                  # explicit rule, kept
        f"i386:{SYS_mseal}": "ENOSYS",
        f"i386:{SYS_none}": "ENOSYS",
        f"x32:{SYS_mseal}": refused,
        f"x32:{SYS_none}": "ENOSYS",
        str(SYS_kexec_load): refused,                  # not named, below the highest
    }, str(r)


@pytest.mark.parametrize("default_errno", [None, errno.ENOSYS])
def test_seccomp_no_stub_for_allow_or_enosys_default(ctx, bundle, probe_bin, default_errno):
    """With an allowing default the kernel answers newer syscalls itself
    (mseal exists on this kernel: it must not become ENOSYS), and a default
    errno of ENOSYS needs no stub; explicit rules decide as written."""
    probes = ["39", str(SYS_mseal), str(SYS_futex_requeue), str(SYS_none)]
    if default_errno is None:
        p = {"defaultAction": "SCMP_ACT_ALLOW",
             "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
             "syscalls": [{"names": ["futex_requeue"], "action": "SCMP_ACT_ERRNO",
                           "errnoRet": errno.EPERM}]}
        host = Path(ctx.dir) / "probe"
        host.write_bytes(probe_bin)
        os.chmod(host, 0o755)
        kernel = subprocess.run([str(host), str(SYS_mseal), str(SYS_none)], capture_output=True,
                                text=True, check=True).stdout
        want = dict(line.split(" ", 1) for line in kernel.splitlines())
        assert want[str(SYS_mseal)] != "ENOSYS", "this kernel has no mseal: the test needs one"
    else:
        p = newer_syscalls_profile("SCMP_ACT_ERRNO", default_errno)
        want = {str(SYS_mseal): "ENOSYS", str(SYS_none): "ENOSYS"}
    want.update({"39": "ok", str(SYS_futex_requeue): "EPERM"})
    config = default_config(["/probe", *probes])
    config["linux"]["seccomp"] = p
    b = bundle(config)
    install_probe(b, probe_bin)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    got = dict(line.split(" ", 1) for line in r.out.splitlines())
    assert got == want, str(r)


# ---- create / run into a frozen cgroup --------------------------------------

def freezer_hierarchy(kind):
    """(mount point, freeze file, frozen value, thawed value) of the v1
    freezer or the cgroup2 hierarchy; None when the host has none."""
    if kind == "v1":
        d = CG / "freezer"
        if (d / "tasks").exists():  # a v1 hierarchy (cgroup2 has no tasks file)
            return d, "freezer.state", "FROZEN", "THAWED"
        return None
    for d in (CG, CG / "unified"):
        if (d / "cgroup.controllers").exists():
            return d, "cgroup.freeze", "1", "0"
    return None


def drain_and_remove(top):
    """Thaw `top` and everything below it, kill what runs there, remove it
    (deepest first). For the test's own directories only."""
    dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for d in [top] + dirs[::-1]:
        for f, v in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            try:
                (d / f).write_text(v)
            except OSError:
                pass
    for _ in range(100):
        pids = []
        for d in [top] + dirs:
            try:
                pids += [int(x) for x in (d / "cgroup.procs").read_text().split()]
            except OSError:
                pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.05)
    for d in dirs + [top]:
        try:
            d.rmdir()
        except OSError:
            pass


def run_bounded(ctx, *args, limit=15):
    """Run the runtime; a hang is killed after `limit` seconds and reported
    as None (not counted as a runtime timeout: the hang is the finding)."""
    p = ctx.popen(*args)
    try:
        p.wait(limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()
        return None
    return p.result()


@pytest.mark.parametrize("kind,which", [
    ("v1", "self"),
    pytest.param("v1", "ancestor", marks=pytest.mark.xfail_runtime(
        "runc", reason="runc 1.1 asks freezer.self_freezing and calls a cgroup frozen by its "
        "parent thawed: the init freezes on entry and create hangs")),
    pytest.param("v2", "self", marks=pytest.mark.xfail_runtime(
        "runc", strict=False, reason="on a hybrid host runc 1.1 reads only the v1 freezer: a "
        "frozen cgroup2 directory freezes the init and create hangs")),
    pytest.param("v2", "ancestor", marks=pytest.mark.xfail_runtime(
        "runc", reason="runc 1.1 reads the target's own cgroup.freeze, not its parents'")),
])
def test_create_into_frozen_cgroup_is_refused(ctx, bundle, kind, which):
    """A frozen cgroup (a paused container's, left behind; a frozen slice)
    would freeze the init the moment it enters: create and run fail at once
    with an error saying so, and leave no state, no process, no cgroup they
    made, and the frozen cgroup as it was (frozen, not removed)."""
    h = freezer_hierarchy(kind)
    if h is None:
        pytest.skip(f"no {kind} freezer on this host")
    mnt, ffile, frozen, _ = h
    top_rel = f"{ctx.token}-frozen"
    cg_rel = f"{top_rel}/ct"
    top = mnt / top_rel
    ctx.cleanups.append(lambda: drain_and_remove(top))
    ctx.cgroup_paths.add("/" + top_rel)
    target = mnt / cg_rel
    frozen_dir = target if which == "self" else top
    frozen_dir.mkdir(parents=True)
    (frozen_dir / ffile).write_text(frozen)
    config = default_config(["true"])
    config["linux"]["cgroupsPath"] = "/" + cg_rel
    b = bundle(config)
    others = [h for h in [CG] + [p for p in CG.iterdir() if p.is_dir()]
              if h != mnt and (h / "cgroup.procs").exists()]
    for cmd in (("create", "--bundle", b.path, b.id), ("run", "--bundle", b.path, b.id)):
        r = run_bounded(ctx, *cmd)
        if r is None:
            drain_and_remove(top)  # the init is frozen there: free it for teardown
            pytest.fail(f"{cmd[0]} into a frozen cgroup hung")
        assert r.rc != 0, str(r)
        assert "frozen" in r.err, str(r)
        assert not (ctx.root / b.id).exists(), "state directory left behind"
        assert ctx.run("state", b.id).rc != 0
        assert ctx.marked_pids() == [], "processes left behind"
        assert frozen_dir.is_dir(), "removed a cgroup it did not make"
        assert (frozen_dir / ffile).read_text().strip() == frozen
        if which == "ancestor":
            assert not target.exists(), "the cgroup it made is left"
        left = [str(o / top_rel) for o in others if (o / top_rel).exists()]
        assert left == [], "cgroups left in other hierarchies"


# ---- update --memory -1 with a memory+swap limit -----------------------------

MiB = 1024 * 1024


def memory_files(pid):
    """(memory dir, v2?) of the process's memory cgroup; skips without one."""
    d = cgroup_dir(pid, "memory")
    if d is None:
        pytest.skip("no memory controller for the container on this host")
    d = Path(d)
    v2 = (d / "memory.max").exists()
    if not v2 and not (d / "memory.memsw.limit_in_bytes").exists():
        pytest.skip("cgroup v1 without swap accounting (no memory.memsw.*)")
    if v2 and not (d / "memory.swap.max").exists():
        pytest.skip("cgroup v2 without swap accounting (no memory.swap.max)")
    return d, v2


def memory_limits(d, v2):
    """(memory, memory+swap) as v1 shows them; None for unlimited."""
    if v2:
        mem = (d / "memory.max").read_text().strip()
        swap = (d / "memory.swap.max").read_text().strip()
        mem = None if mem == "max" else int(mem)
        return mem, None if swap == "max" or mem is None else mem + int(swap)
    unlimited = int((CG / "memory" / "memory.limit_in_bytes").read_text())
    vals = [int((d / f).read_text()) for f in ("memory.limit_in_bytes",
                                                 "memory.memsw.limit_in_bytes")]
    return tuple(None if v >= unlimited else v for v in vals)


@pytest.mark.parametrize("flags,want", [
    (("--memory", "-1"), (None, None)),              # runc lifts memory+swap too
    (("--memory-swap", "-1"), (64 * MiB, None)),
    (("--memory", "-1", "--memory-swap", "-1"), (None, None)),
    (("--memory", "96m"), (96 * MiB, 128 * MiB)),   # still under memory+swap
])
def test_update_memory_unlimited_with_swap_limit(ctx, bundle, flags, want):
    """A container created with memory 64 MiB and memory+swap 128 MiB:
    `update --memory -1` succeeds and leaves both unlimited, as under runc
    (the kernel refuses a memory limit above memory+swap, so memory+swap goes
    first); --memory-swap -1 lifts only memory+swap."""
    v2_root = CG / "cgroup.controllers"
    if not (CG / "memory" / "tasks").exists() and not (
            v2_root.exists() and "memory" in v2_root.read_text().split()):
        pytest.skip("no memory controller on this host")
    config = default_config(["sleep", "1000"])
    config["linux"]["resources"]["memory"] = {"limit": 64 * MiB, "swap": 128 * MiB}
    b = bundle(config)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    d, v2 = memory_files(ctx.state(b.id)["pid"])
    assert memory_limits(d, v2) == (64 * MiB, 128 * MiB)
    ctx.run("update", *flags, b.id).ok()
    assert memory_limits(d, v2) == want
    assert ctx.state(b.id)["status"] == "running"


# ---- cgroup v1 blkio with BFQ: weightDevice ---------------------------------

@pytest.fixture
def bfq_loop(ctx):
    """A loop device of this test's own, switched to the BFQ scheduler (put
    back before it is detached); (major, minor)."""
    if not (CG / "blkio" / "tasks").exists():
        pytest.skip("no cgroup v1 blkio hierarchy (cgroup v2 has io.bfq.weight)")
    if not shutil.which("losetup"):
        pytest.skip("no losetup (util-linux)")
    img = ctx.dir / "bfq.img"
    with open(img, "wb") as f:
        f.truncate(16 * MiB)
    dev = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True,
                         text=True, check=True).stdout.strip()
    sched = Path("/sys/block") / Path(dev).name / "queue" / "scheduler"
    old = sched.read_text().split("[")[1].split("]")[0]

    def restore():
        try:
            sched.write_text(old)
        finally:
            subprocess.run(["losetup", "--detach", dev], check=True)
    ctx.cleanups.append(restore)
    if "bfq" not in sched.read_text().replace("[", " ").replace("]", " ").split():
        pytest.skip("the BFQ I/O scheduler is not available on this kernel")
    sched.write_text("bfq")
    st = os.stat(dev)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def test_blkio_bfq_weight_device(ctx, bundle, bfq_loop):
    """Without CFQ (gone since Linux 5.0) v1 weights go to BFQ's files:
    blockIO.weight to blkio.bfq.weight, each blockIO.weightDevice entry to
    blkio.bfq.weight_device as "MAJ:MIN WEIGHT" (blkio.bfq.weight takes a
    bare number and refuses that line), as runc does. The container starts
    and the kernel reports the per-device weight."""
    major, minor = bfq_loop
    config = default_config(["sleep", "1000"])
    config["linux"]["resources"]["blockIO"] = {
        "weight": 300, "weightDevice": [{"major": major, "minor": minor, "weight": 500}]}
    b = bundle(config)
    ctx.create(b).ok()
    d = Path(cgroup_dir(ctx.state(b.id)["pid"], "blkio"))
    assert (d / "blkio.bfq.weight").read_text().split() == ["300"]
    lines = (d / "blkio.bfq.weight_device").read_text().splitlines()
    assert f"{major}:{minor} 500" in lines, lines
    ctx.run("start", b.id).ok()
    assert ctx.state(b.id)["status"] == "running"


# ---- the device cgroup: the config's rules, not an allow per linux.devices ----

KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600,
        "uid": 0, "gid": 0}
# Opens /dev/kmsg write-only (no syslog permission needed for that) and
# writes nothing: the device cgroup alone decides.
OPEN_KMSG = "ls -l /dev/kmsg; if (: 3>/dev/kmsg); then echo open-ok; else echo open-refused; fi"


@pytest.mark.parametrize("rules,opens", [
    ([{"allow": False, "access": "rwm"}], False),
    ([{"allow": True, "access": "rwm"},
      {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"}], False),
    ([{"allow": False, "access": "rwm"},
      {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}], True),
], ids=["deny-all", "allow-all-but-kmsg", "allow-kmsg"])
def test_linux_devices_follow_the_device_rules(ctx, bundle, rules, opens):
    """linux.devices creates /dev/kmsg; whether it can be opened is up to
    linux.resources.devices (plus the runtime's defaults, which do not
    include it), as under runc: creating a node is no permission to use it.
    The node is made even where the rules deny mknod for it: runc makes its
    nodes before the rules apply, isola-oci allows mknod of exactly the
    nodes the config lists."""
    config = sh(OPEN_KMSG)
    config["linux"]["devices"] = [KMSG]
    config["linux"]["resources"]["devices"] = rules
    b = bundle(config)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    assert r.out.startswith("crw"), str(r)  # the node is there either way
    assert ("open-ok" if opens else "open-refused") in r.out, str(r)
    if not opens:
        assert "not permitted" in r.err, str(r)
