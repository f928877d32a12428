"""isola-oci hardening: what a config or a tenant-controlled rootfs must not
get the runtime to do (procfs through a symlink, device nodes outside /dev,
relative mount destinations), bind-mount attributes that land on the mount
that was made (also while a tenant swaps the destination), hook timeouts
that hold while the hook ignores its stdin, pid files that are never seen
half-written, and the kernel version check."""

import os
import stat
import subprocess

import pytest

from conftest import RUNTIME_NAME
from helpers import add_mount, bind, find_mount, parse_mountinfo, sh


def mount_index(config, destination):
    return next(i for i, m in enumerate(config["mounts"]) if m["destination"] == destination)


# ---- 1. proc/sysfs on a symlink, devices outside /dev, relative destinations ----

@pytest.mark.parametrize("dest,fstype", [("/proc", "proc"), ("/sys", "sysfs")])
def test_proc_sysfs_on_symlink_refused(ctx, bundle, dest, fstype):
    """SECURITY: rootfs/proc (or /sys) is a symlink to /etc: the runtime must
    refuse to mount procfs (sysfs) there instead of following it, naming the
    mount."""
    b = bundle(sh("cat /proc/self/mountinfo"))
    target = b.rootfs / dest.lstrip("/")
    subprocess.run(["rm", "-rf", str(target)], check=True)
    os.symlink("etc", target)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0, f"{fstype} was mounted through the symlink:\n{r}"
    # and nothing of it reached the host
    with open("/proc/self/mountinfo") as f:
        assert str(b.rootfs / "etc") not in f.read()
    assert not (b.rootfs / "etc" / "self").exists() and not (b.rootfs / "etc" / "kernel").exists()
    assert ctx.run("state", b.id).rc != 0


@pytest.mark.isola_only
@pytest.mark.parametrize("dest", ["/proc", "/sys"])
def test_proc_sysfs_on_symlink_error_names_the_mount(ctx, bundle, dest):
    config = sh("true")
    b = bundle(config)
    i = mount_index(config, dest)
    target = b.rootfs / dest.lstrip("/")
    subprocess.run(["rm", "-rf", str(target)], check=True)
    os.symlink("etc", target)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0
    assert f"mounts[{i}].destination" in r.err, r.err
    assert "symlink" in r.err, r.err


def test_proc_on_real_directory_still_works(run_container):
    rc, out, err = run_container(sh("cat /proc/self/mountinfo"))
    assert rc == 0, err
    mounts = parse_mountinfo(out)
    assert find_mount(mounts, "/proc")["fstype"] == "proc"
    assert find_mount(mounts, "/sys")["fstype"] == "sysfs"


@pytest.mark.parametrize("path", ["/etc/hostname", "/dev/../etc/hostname", "/devil", "/dev"])
@pytest.mark.xfail_runtime("runc", reason="runc 1.1.5 creates linux.devices entries "
                                          "anywhere in the rootfs")
def test_device_outside_dev_refused(ctx, bundle, path):
    """SECURITY: a linux.devices entry outside /dev must be refused; the
    bundle's rootfs file it names stays what it was."""
    config = sh("true")
    config["linux"]["devices"] = [{"type": "c", "path": path, "major": 1, "minor": 3,
                                   "fileMode": 0o666, "uid": 0, "gid": 0}]
    b = bundle(config)
    hostname = b.rootfs / "etc" / "hostname"
    hostname.write_text("image hostname\n")
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0, f"device {path} accepted:\n{r}"
    st = os.lstat(hostname)
    assert stat.S_ISREG(st.st_mode) and hostname.read_text() == "image hostname\n"
    assert not os.path.lexists(b.rootfs / "devil")


@pytest.mark.isola_only
def test_device_outside_dev_error_names_the_field(ctx, run_container):
    config = sh("true")
    config["linux"]["devices"] = [
        {"type": "c", "path": "/dev/null2", "major": 1, "minor": 3},
        {"type": "c", "path": "/etc/hostname", "major": 1, "minor": 3}]
    rc, out, err = run_container(config)
    assert rc != 0
    assert "linux.devices[1].path" in err and "/dev" in err, err


def test_device_under_dev_still_works(ctx, run_container):
    config = sh("ls -l /dev/null2 /dev/sub/zero2")
    config["linux"]["devices"] = [
        {"type": "c", "path": "/dev/null2", "major": 1, "minor": 3, "fileMode": 0o666},
        {"type": "c", "path": "/dev/sub/zero2", "major": 1, "minor": 5, "fileMode": 0o640}]
    rc, out, err = run_container(config)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("crw-rw-rw-") and "1,   3" in lines[0], out
    assert lines[1].startswith("crw-r-----") and "1,   5" in lines[1], out


@pytest.mark.parametrize("dest", ["mnt/rel", "./mnt/rel", "../mnt/rel"])
@pytest.mark.xfail_runtime("runc", reason="runc 1.1.5 takes a relative destination as "
                                          "relative to /")
def test_relative_mount_destination_refused(ctx, bundle, dest):
    config = sh("cat /proc/self/mountinfo")
    add_mount(config, dest, "tmpfs", "tmpfs", ["size=1m"])
    b = bundle(config)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0, f"relative destination {dest} accepted:\n{r}"
    assert ctx.run("state", b.id).rc != 0


@pytest.mark.isola_only
def test_relative_mount_destination_error_names_the_field(ctx, run_container):
    config = sh("true")
    add_mount(config, "mnt/rel", "tmpfs", "tmpfs", ["size=1m"])
    rc, out, err = run_container(config)
    assert rc != 0
    i = mount_index(config, "mnt/rel")
    assert f"mounts[{i}].destination" in err and "absolute" in err, err


# ---- races against a tenant that shares the rootfs ----------------------------
#
# Container A runs a small static program in a rootfs R that the containers B
# created next share (root.path = R). The program swaps paths in R while B's
# runtime sets B up; what B's runtime does must land where it meant it to.

RACER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/fs.h>

static char **args;

static void *exchange(void *unused)
{
	/* flip two directories, forever */
	for (;;)
		syscall(SYS_renameat2, AT_FDCWD, args[2], AT_FDCWD, args[3], RENAME_EXCHANGE);
	return NULL;
}

static void *pairs(void *unused)
{
	/* exchange DIR/e<2k> and DIR/e<2k+1> for k < N, forever */
	int n = atoi(args[3]);
	char a[4096], b[4096];
	for (;;)
		for (int k = 0; k < n; k++) {
			snprintf(a, sizeof a, "%s/e%d", args[2], 2 * k);
			snprintf(b, sizeof b, "%s/e%d", args[2], 2 * k + 1);
			syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
		}
	return NULL;
}

static void *replace(void *unused)
{
	/* as soon as args[2] is a device node, replace it with a symlink to args[3] */
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.racer%lx", args[2], (unsigned long)pthread_self());
	for (;;) {
		struct stat st;
		symlink(args[3], tmp);
		if (lstat(args[2], &st) == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
			rename(tmp, args[2]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	args = argv;
	void *(*fn)(void *) = NULL;
	if (argc == 5 && !strcmp(argv[1], "exchange"))
		fn = exchange;
	else if (argc == 5 && !strcmp(argv[1], "symlink"))
		fn = replace;
	else if (argc == 5 && !strcmp(argv[1], "pairs"))
		fn = pairs;
	if (!fn) {
		fprintf(stderr, "usage: racer exchange A B THREADS | symlink PATH TARGET THREADS | "
				"pairs DIR N THREADS\n");
		return 2;
	}
	for (int i = atoi(argv[4]); i > 1; i--) {
		pthread_t t;
		pthread_create(&t, NULL, fn, NULL);
	}
	fn(NULL);
	return 0;
}
"""

RACE_ROUNDS = int(os.environ.get("ISOLA_IT_RACE_ROUNDS", "60"))
RACER_THREADS = os.environ.get("ISOLA_IT_RACER_THREADS", "2")
SUBMOUNTS = int(os.environ.get("ISOLA_IT_RACE_SUBMOUNTS", "150"))


@pytest.fixture(scope="module")
def racer(scratch_base):
    d = scratch_base / "racer"
    d.mkdir(exist_ok=True)
    (d / "racer.c").write_text(RACER_C)
    subprocess.run(["cc", "-static", "-O2", "-o", str(d / "racer"), str(d / "racer.c")],
                   check=True)
    return d / "racer"


def start_racer(ctx, bundle, racer, args, prepare=None, config_edit=None):
    """Container A: runs the racer in its own copy of the rootfs, R, which it
    can write; prepare(R) runs first. Returns A's bundle."""
    config = sh(" ".join(["exec", "/racer", *args]))
    config["root"]["readonly"] = False
    if config_edit:
        config_edit(config)
    a = bundle(config)
    subprocess.run(["cp", str(racer), str(a.rootfs / "racer")], check=True)
    if prepare:
        prepare(a.rootfs)
    ctx.create(a).ok()
    ctx.run("start", a.id).ok()
    ctx.wait_status(a.id, "running")
    return a


def run_sharing(ctx, bundle, rootfs, config):
    """Container B, in the foreground, on A's rootfs."""
    config["root"]["path"] = str(rootfs)
    b = bundle(config, rootfs=False)
    return ctx.run("run", "--bundle", b.path, b.id)


def test_bind_attributes_land_on_the_bind_mount_under_a_swap(ctx, bundle, racer):
    """SECURITY: B binds host directory RW on /srv/a/data and rbinds host
    directory RO read-only (nosuid) on /srv/b/data, while A keeps exchanging
    /srv/a and /srv/b in the shared rootfs. Wherever RO's mount ends up in B,
    it must be read-only: the runtime must apply the flags to the mount it
    made, not to whatever the path names a moment later (that may be RW's
    mount). RO carries submounts, as a host directory with volumes would:
    the recursive bind takes longer, and a runtime that looks the
    destination up again afterwards loses more often."""
    rw = ctx.hostdir("rw", 0o777)
    ro = ctx.hostdir("ro", 0o777)
    (ro / "marker").write_text("")
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-R", "-l", str(ro)]))
    subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
    for k in range(SUBMOUNTS):
        (ro / f"m{k}").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "isola-it-sub", str(ro / f"m{k}")],
                       check=True)

    def mkdirs(rootfs):
        for d in ("a", "b"):
            (rootfs / "srv" / d / "data").mkdir(parents=True, exist_ok=True)
    a = start_racer(ctx, bundle, racer, ["exchange", "/srv/a", "/srv/b", RACER_THREADS], mkdirs)
    probe = ("for d in /srv/a/data /srv/b/data; do "
             "[ -e $d/marker ] && touch $d/written-{} 2>/dev/null; done; true")
    ran = 0
    for i in range(RACE_ROUNDS):
        config = sh(probe.format(i))
        bind(config, rw, "/srv/a/data", "bind")
        bind(config, ro, "/srv/b/data", "rbind", "ro", "nosuid")
        r = run_sharing(ctx, bundle, a.rootfs, config)
        ran += r.rc == 0
    written = sorted(p.name for p in ro.iterdir() if p.name.startswith("written-"))
    assert written == [], (f"the read-only bind mount was writable in {len(written)} of "
                           f"{ran} containers that ran ({RACE_ROUNDS} tried)")
    assert ran > 0, "no container ran at all"


def test_tmpcopyup_of_a_changing_image_does_not_hang(ctx, bundle, racer):
    """SECURITY (denial of service): B mounts a tmpfs with tmpcopyup on /data
    of the shared rootfs, whose entries A keeps exchanging in pairs, a regular
    file with a FIFO. The runtime copying the image's /data must never open a
    FIFO it took for a regular file (it would block forever): every B create
    ends, copied or refused, within the command timeout."""
    pairs = 100

    def fill(rootfs):
        d = rootfs / "data"
        d.mkdir()
        for k in range(pairs):
            (d / f"e{2 * k}").write_text("file\n")
            os.mkfifo(d / f"e{2 * k + 1}")
    a = start_racer(ctx, bundle, racer, ["pairs", "/data", str(pairs), RACER_THREADS], fill)
    for _ in range(RACE_ROUNDS // 3):
        config = sh("ls /data | wc -l")
        add_mount(config, "/data", "tmpfs", "tmpfs", ["tmpcopyup", "size=4m"])
        r = run_sharing(ctx, bundle, a.rootfs, config)  # fails the test if it hangs
        if r.rc == 0:
            assert r.out.split() == [str(2 * pairs)], f"a partial copy was used:\n{r}"


def no_dev_mounts(config):
    """/dev comes from the (shared) rootfs itself: no tmpfs on it."""
    config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/dev")]


def test_device_mode_not_applied_through_a_swapped_symlink(ctx, bundle, racer):
    """SECURITY: the rootfs has no /dev tmpfs, so the runtime makes B's device
    nodes in the shared rootfs' /dev, while A keeps replacing /dev/null with a
    symlink to a host file. The runtime's chmod of the node it made must not
    follow that symlink (before pivot_root it would reach the host). B lists
    /dev/null many times in linux.devices: each entry is one more window for
    the racer (64 per container instead of 1), so that a runtime with the
    window loses within a few containers."""
    victim = ctx.dir / "victim"
    victim.write_text("host secret\n")
    os.chmod(victim, 0o600)
    a = start_racer(ctx, bundle, racer, ["symlink", "/dev/null", str(victim), RACER_THREADS],
                    config_edit=no_dev_mounts)
    ran = 0
    for _ in range(RACE_ROUNDS):
        config = sh("true")
        no_dev_mounts(config)
        config["linux"]["devices"] = [{"type": "c", "path": "/dev/null", "major": 1, "minor": 3,
                                       "fileMode": 0o666, "uid": 0, "gid": 0}] * 64
        r = run_sharing(ctx, bundle, a.rootfs, config)
        ran += r.rc == 0
        mode = stat.S_IMODE(os.stat(victim).st_mode)
        assert mode == 0o600, f"the host file became {mode:o} after {ran} containers"
    assert victim.read_text() == "host secret\n"


# ---- 2. bind-mount and filesystem flags take effect ---------------------------

def test_bind_flags_observed_inside(ctx, run_container):
    """ro, nosuid, nodev, noexec on a bind mount: the container sees them on
    that mount, and cannot write or execute there."""
    src = ctx.hostdir("flags", 0o777)
    (src / "run.sh").write_text("#!/bin/sh\necho executed\n")
    os.chmod(src / "run.sh", 0o755)
    config = sh("cat /proc/self/mountinfo; echo ---; touch /mnt/flags/x 2>&1; "
                "/mnt/flags/run.sh 2>&1; true")
    bind(config, src, "/mnt/flags", "bind", "ro", "nosuid", "nodev", "noexec")
    rc, out, err = run_container(config)
    assert rc == 0, err
    info, _, rest = out.partition("---\n")
    opts = find_mount(parse_mountinfo(info), "/mnt/flags")["mount_opts"]
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts, opts
    assert "Read-only file system" in rest, rest
    assert "executed" not in rest and "Permission denied" in rest, rest
    assert not (src / "x").exists()


def test_tmpcopyup_read_only_tmpfs(ctx, run_container):
    """A tmpfs with tmpcopyup and ro gets the image's content and is then
    read-only (the copy happens before it is made read-only)."""
    config = sh("cat /etc/copied.txt; touch /etc/new 2>&1; true")
    config["root"]["readonly"] = False
    add_mount(config, "/etc", "tmpfs", "tmpfs", ["tmpcopyup", "ro", "size=4m"])
    b = ctx.bundle(config)
    (b.rootfs / "etc" / "copied.txt").write_text("from the image\n")
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    assert r.out.startswith("from the image\n"), r.out
    assert "Read-only file system" in r.out, r.out


# ---- 3. hook timeouts hold while the hook ignores its stdin -------------------

@pytest.mark.parametrize("name", ["createRuntime", "prestart", "createContainer"])
def test_hook_timeout_when_hook_never_reads_stdin(ctx, bundle, name):
    """The state on the hook's stdin is far bigger than a pipe buffer (many
    annotations) and the hook never reads it: the timeout must still kill it
    and fail the operation (the runtime must not block writing the state
    first). Without a timeout that counts from the start, the command would
    hang for the hook's whole sleep, beyond the test's command timeout."""
    marker = ctx.dir / "hook-started"
    script = ctx.dir / "noread.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 1000\n")
    os.chmod(script, 0o755)
    config = sh("true")
    config["annotations"] = {f"org.example.filler.{i}": "x" * 1000 for i in range(300)}
    config["hooks"] = {name: [{"path": str(script), "args": [str(script)], "timeout": 1}]}
    b = bundle(config)
    if name == "prestart" and RUNTIME_NAME == "isola":
        ctx.create(b).ok()
        r = ctx.run("start", b.id)
    else:
        r = ctx.create(b)
    assert r.rc != 0, str(r)
    assert marker.exists(), "the hook did not run"
    if RUNTIME_NAME == "isola":
        assert "timed out" in r.err, r.err
        assert f"hooks.{name}[0]" in r.err, r.err


# ---- 4. pid files are never seen empty or half-written ------------------------

PIDFILE_POLLER_C = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { stop = 1; }

/* Read argv[1] as fast as possible until SIGTERM; then print how many reads
 * saw a whole pid, and every content that was not one (empty, partial). */
int main(int argc, char **argv)
{
	signal(SIGTERM, on_term);
	long whole = 0, bad = 0;
	while (!stop) {
		char buf[64];
		int fd = open(argv[1], O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		char *end;
		long v = strtol(buf, &end, 10);
		if (n > 0 && v > 0 && *end == 0) {
			whole++;
		} else if (bad++ < 5) {
			printf("bad: '%s'\n", buf);
		}
	}
	printf("whole %ld bad %ld\n", whole, bad);
	return 0;
}
"""

EXEC_ROUNDS = int(os.environ.get("ISOLA_IT_EXEC_ROUNDS", "40"))


def test_exec_pid_file_never_partial(ctx, bundle):
    """While `exec --pid-file F` runs again and again (F is rewritten each
    time, as containerd's shim reads it), a reader polling F only ever sees a
    whole pid: never an empty or truncated file."""
    src = ctx.dir / "poller.c"
    src.write_text(PIDFILE_POLLER_C)
    subprocess.run(["cc", "-O2", "-o", str(ctx.dir / "poller"), str(src)], check=True)
    b = bundle(sh("exec sleep 1000"))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    pidfile = ctx.dir / "exec.pid"
    ctx.run("exec", "--pid-file", pidfile, b.id, "true").ok()
    poller = ctx.spawn([str(ctx.dir / "poller"), str(pidfile)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(EXEC_ROUNDS):
            ctx.run("exec", "-d", "--pid-file", pidfile, b.id, "true").ok()
    finally:
        poller.terminate()
        out, _ = poller.communicate(timeout=10)
    last = out.strip().splitlines()[-1]
    assert last.startswith("whole ") and " bad 0" in last, out
    assert int(last.split()[1]) > 0, out
    assert int(pidfile.read_text()) > 0


# ---- 6. the kernel version check ----------------------------------------------

def uname26(argv, **kw):
    """Run argv with the UNAME26 personality: the kernel itself reports a
    2.6.x release to uname(2) (setarch --uname-2.6), no fake in the runtime."""
    machine = os.uname().machine
    return subprocess.run(["setarch", machine, "--uname-2.6", *map(str, argv)],
                          capture_output=True, text=True, timeout=20, **kw)


@pytest.mark.isola_only
def test_old_kernel_refused_by_isola_oci(ctx, bundle):
    seen = uname26(["uname", "-r"]).stdout.strip()
    assert seen.startswith("2.6."), seen
    b = bundle(sh("true"))
    p = uname26(ctx.argv(["run", "--bundle", b.path, b.id]), env=ctx._env(None))
    assert p.returncode != 0
    assert "Linux 5.12 or newer is needed" in p.stderr, p.stderr
    assert f"this kernel is {seen}" in p.stderr, p.stderr
    assert not (ctx.root / b.id).exists()
    # The same binary runs on this kernel.
    assert ctx.run("run", "--bundle", b.path, b.id).rc == 0


@pytest.mark.isola_only
def test_old_kernel_refused_by_isola(ctx):
    from conftest import BUILD
    isola = BUILD / "isola"
    if not isola.exists():
        pytest.skip(f"{isola} not built")
    state = ctx.hostdir("isola-state", 0o700)
    env = dict(os.environ, ISOLA_STATE_DIR=str(state))
    p = uname26([isola, "list"], env=env)
    assert p.returncode != 0
    assert "Linux 5.12 or newer is needed; this kernel is 2.6." in p.stderr, p.stderr
    assert list(state.iterdir()) == [], "isola touched its state directory"


# ---- 5. compiler hardening of the binaries ------------------------------------

@pytest.mark.isola_only
def test_binaries_are_hardened():
    """PIE, full RELRO, stack protector, stack clash and CET instrumentation,
    FORTIFY: scripts/check-hardening.sh on the binaries under test (the ASan
    build is checked without FORTIFY and static linking)."""
    from conftest import BUILD, REPO
    script = REPO / "scripts" / "check-hardening.sh"
    for args in (["--static", BUILD / "isola-oci", BUILD / "isola-monitor"], [BUILD / "isola"]):
        p = subprocess.run([str(script), *map(str, args)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
