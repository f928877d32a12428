"""Issue 10, rootfs, mounts and hooks: the same bundle must behave as under
runc 1.1.5. Every test here also runs with ISOLA_RUNTIME=/usr/sbin/runc,
which is how its expectation was checked; where runc's behaviour is a bug,
the test is marked xfail for runc and says why."""

import os
import re
import subprocess

import pytest

from conftest import RUNTIME_NAME
from helpers import bind, default_config, find_mount, hook, parse_mountinfo, sh, \
    wait_file, wait_for, write_script
from test_namespaces import USERNS_HOST_ID, needs_userns, userns_config


# ---- 1. user namespaces: bind sources the container's root cannot reach ------

def vault_with_volume(ctx):
    """A 0700 root-owned host directory (like /var/lib/containers/storage or a
    kubelet pod directory) holding a volume directory and a file that belong
    to the container's root (host id 100000)."""
    vault = ctx.hostdir("vault", 0o700)
    vol = vault / "vol"
    vol.mkdir()
    (vol / "data").write_text("volume data\n")
    os.chown(vol, USERNS_HOST_ID, USERNS_HOST_ID)
    os.chown(vol / "data", USERNS_HOST_ID, USERNS_HOST_ID)
    single = vault / "single"
    single.write_text("single file\n")
    os.chown(single, USERNS_HOST_ID, USERNS_HOST_ID)
    return vault


@needs_userns
@pytest.mark.parametrize("kind", ["bind", "rbind"])
def test_userns_bind_source_under_a_directory_root_cannot_search(ctx, run_container, kind):
    """podman --userns=auto volumes, Kubernetes hostUsers: false: the runtime
    (host root) reaches the sources, not the container's root (host uid
    100000, which cannot search the 0700 directory). The container reads and
    writes its volume, as itself."""
    vault = vault_with_volume(ctx)
    c = userns_config("cat /mnt/vol/data /mnt/single; echo new > /mnt/vol/new && echo wrote; "
                      "ls /mnt/vol | sort | tr '\\n' ' '; echo")
    bind(c, vault / "vol", "/mnt/vol", kind, "rw")
    bind(c, vault / "single", "/mnt/single", kind, "ro")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0, err
    assert out.splitlines() == ["volume data", "single file", "wrote", "data new "], out
    st = os.stat(vault / "vol" / "new")
    assert (st.st_uid, st.st_gid) == (USERNS_HOST_ID, USERNS_HOST_ID)


@needs_userns
def test_userns_bind_source_keeps_its_options(ctx, run_container):
    """Opened by the runtime, mounted by the init: ro and nosuid still apply,
    and the mount is the one asked for (the source's content)."""
    vault = vault_with_volume(ctx)
    c = userns_config("cat /proc/self/mountinfo; echo x > /mnt/vol/no 2>/dev/null || echo refused")
    bind(c, vault / "vol", "/mnt/vol", "rbind", "ro", "nosuid")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0, err
    m = find_mount(parse_mountinfo(out), "/mnt/vol")
    assert m is not None, out
    assert {"ro", "nosuid"} <= m["mount_opts"], m
    assert out.splitlines()[-1] == "refused"
    assert not (vault / "vol" / "no").exists()


@needs_userns
def test_userns_bind_source_through_a_hosts_symlink(ctx, run_container):
    """A symlink of the host's (root's) on the way is followed, as root: a
    kubelet or storage directory moved to another disk and linked back."""
    vault = vault_with_volume(ctx)
    os.symlink(vault, ctx.dir / "storage")
    c = userns_config("cat /mnt/vol/data")
    bind(c, ctx.dir / "storage" / "vol", "/mnt/vol", "rbind")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0, err
    assert out == "volume data\n"


@needs_userns
@pytest.mark.xfail_runtime("runc", reason="runc opens bind sources as host root following every "
                           "symlink: one the container's user left in its volume leads it to a "
                           "file only host root may reach")
def test_userns_symlink_the_container_planted_is_not_followed_as_host_root(ctx, run_container):
    """SECURITY: the container's root plants a symlink in its volume; a later
    bundle binds a path through it (a subPath-style volume). The runtime,
    host root, must not follow it into the 0700 directory: the path is
    looked up with the container's root's rights, as before, and is refused."""
    vault = vault_with_volume(ctx)
    (vault / "secret").write_text("host secret\n")
    os.chmod(vault / "secret", 0o644)
    tenant_vol = ctx.hostdir("tenant-vol", 0o755)
    os.chown(tenant_vol, USERNS_HOST_ID, USERNS_HOST_ID)
    c = userns_config(f"ln -s {vault}/secret /mnt/vol/sub && echo planted")
    bind(c, tenant_vol, "/mnt/vol", "rbind")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0 and out == "planted\n", err
    assert os.lstat(tenant_vol / "sub").st_uid == USERNS_HOST_ID
    c = userns_config("cat /mnt/sub")
    bind(c, tenant_vol / "sub", "/mnt/sub", "bind")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert "host secret" not in out
    assert rc != 0 and "Permission denied" in err, err


@needs_userns
def test_userns_bind_source_keeps_the_host_mounts_locked_flags(ctx, run_container):
    """The source is opened in the container's mount namespace, where the
    user namespace locked the host mount's flags: a container root with
    CAP_SYS_ADMIN cannot remount a read-only, nosuid host mount writable or
    suid through its bind mount."""
    vault = vault_with_volume(ctx)
    ro = vault / "vol"
    subprocess.run(["mount", "--bind", ro, ro], check=True)
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", str(ro)]))
    subprocess.run(["mount", "-o", "remount,bind,ro,nosuid", ro], check=True)
    c = userns_config("mount -o remount,bind,ro,nosuid,noexec /mnt/vol && echo can-remount; "
                      "mount -o remount,bind,rw /mnt/vol 2>/dev/null && echo REMOUNTED-RW; "
                      "mount -o remount,bind,ro,suid /mnt/vol 2>/dev/null && echo REMOUNTED-SUID; "
                      "touch /mnt/vol/x 2>/dev/null && echo WROTE; cat /mnt/vol/data")
    admin = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]
    for k in c["process"]["capabilities"]:
        c["process"]["capabilities"][k] = list(admin)
    bind(c, ro, "/mnt/vol", "rbind")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0, err
    # It may remount (adding flags is allowed), but not drop a locked one.
    assert out.splitlines() == ["can-remount", "volume data"], out
    assert not (ro / "x").exists()


@needs_userns
def test_userns_missing_bind_source_names_it(ctx, run_container):
    c = userns_config("true")
    missing = ctx.dir / "no-such-dir"
    bind(c, missing, "/mnt/x", "rbind")
    rc, out, err = run_container(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc != 0
    assert str(missing) in err, err


@needs_userns
@pytest.mark.parametrize("joined", ["user+network", "network"])
def test_userns_joined_by_path_bind_source_under_a_0700_directory(ctx, bundle, joined):
    """The slow path (namespaces joined by path, as containerd's CRI does):
    a container joining the pod's user and network namespaces, and a pod
    sandbox joining the network namespace CNI made while creating its own
    user namespace (Kubernetes hostUsers: false). The same volumes."""
    vault = vault_with_volume(ctx)
    holder_config = userns_config("sleep 1000") if joined == "user+network" else sh("sleep 1000")
    holder = bundle(holder_config, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    ctx.create(holder).ok()
    pid = ctx.state(holder.id)["pid"]
    c = userns_config("cat /mnt/vol/data /mnt/single")
    c["linux"]["namespaces"] = [
        {"type": "network", "path": f"/proc/{pid}/ns/net"},
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if joined == "user+network":
        # The maps stay: runc wants them, and checks them against the joined namespace.
        c["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    else:
        c["linux"]["namespaces"].append({"type": "user"})
        # sysfs needs a network namespace of the container's user namespace.
        c["mounts"] = [m for m in c["mounts"] if m["type"] != "sysfs"
                       and m["destination"] != "/sys/fs/cgroup"]
    bind(c, vault / "vol", "/mnt/vol", "rbind", "rw")
    bind(c, vault / "single", "/mnt/single", "bind", "ro")
    b = bundle(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    assert r.out.splitlines() == ["volume data", "single file"]


# ---- 2. --no-pivot must not leave a fully visible procfs or sysfs ------------

# Run as uid 1000: mapping the parent's uid 0 into a nested user namespace
# needs CAP_SETFCAP, which the default capabilities lack.
USERNS_OK = "unshare -Ur true && echo USERNS-OK; "
NESTED_PROC = USERNS_OK + ("unshare -Urmpf sh -c 'mount -t proc proc /proc && echo PROC-MOUNTED && "
                           "ls /proc/kcore /proc/sysrq-trigger' 2>&1; true")
NESTED_SYS = USERNS_OK + ("unshare -Urmn sh -c 'mount -t sysfs sysfs /sys && echo SYSFS-MOUNTED' "
                          "2>&1; true")


def nested_probe(ctx, bundle, probe, *args, userns=False):
    if userns:
        c = userns_config(probe)
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        b = bundle(c, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    else:
        b = bundle(sh(probe, user={"uid": 1000, "gid": 1000}))
    r = ctx.run("run", *args, "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    # The probe can fail only where it should: a nested user namespace is
    # allowed, and made.
    assert "USERNS-OK" in r.out, r.out
    return r.out


@pytest.mark.parametrize("probe,win", [(NESTED_PROC, "PROC-MOUNTED"), (NESTED_SYS, "SYSFS-MOUNTED")],
                         ids=["proc", "sysfs"])
@pytest.mark.parametrize("userns", [False, pytest.param(True, marks=needs_userns)],
                         ids=["host-userns", "own-userns"])
def test_no_pivot_nested_namespace_cannot_mount_unmasked_proc_or_sys(ctx, bundle, probe, win,
                                                                     userns):
    """With --no-pivot the host's root stays in the container's mount
    namespace, under its chroot. The kernel allows a new procfs or sysfs in
    a nested user namespace only where a fully visible one exists in the
    mount namespace: the host's /proc and /sys must be gone or covered, or
    the container gets a /proc without maskedPaths and readonlyPaths
    (/proc/kcore, /proc/sysrq-trigger). In a container with its own user
    namespace the host's mounts are locked and cannot be detached: they are
    covered instead."""
    out = nested_probe(ctx, bundle, probe, "--no-pivot", userns=userns)
    assert win not in out, out


@pytest.mark.parametrize("probe,win", [(NESTED_PROC, "PROC-MOUNTED"), (NESTED_SYS, "SYSFS-MOUNTED")],
                         ids=["proc", "sysfs"])
def test_pivot_root_nested_namespace_cannot_mount_unmasked_proc_or_sys(ctx, bundle, probe, win):
    """The reference: with pivot_root, the host's mounts are gone."""
    out = nested_probe(ctx, bundle, probe)
    assert win not in out, out


def test_no_pivot_container_still_sees_its_own_proc_and_sys(ctx, bundle):
    b = bundle(sh("cat /proc/self/mountinfo; ls /sys/kernel >/dev/null && echo sys-ok; "
                  "cat /proc/1/cmdline | tr '\\0' ' '; echo"))
    r = ctx.run("run", "--no-pivot", "--bundle", b.path, b.id)
    assert r.rc == 0, str(r)
    mounts = parse_mountinfo(r.out)
    assert find_mount(mounts, "/proc")["fstype"] == "proc"
    assert find_mount(mounts, "/sys")["fstype"] == "sysfs"
    assert "sys-ok" in r.out
    # The host's own /proc and /sys are still there, for the host.
    assert os.path.exists("/proc/self/mountinfo") and os.path.isdir("/sys/kernel")


# ---- 3. a read-only /dev ---------------------------------------------------------

def readonly_dev_config(script):
    c = sh(script)
    dev = next(m for m in c["mounts"] if m["destination"] == "/dev")
    dev["options"].append("ro")
    return c


def test_readonly_dev_is_populated_then_read_only(ctx, run_container):
    """/dev tmpfs with "ro": devpts, shm, mqueue are mounted beneath it, the
    devices and symlinks are made, and then it is read-only."""
    c = readonly_dev_config("cat /proc/self/mountinfo; ls /dev | sort | tr '\\n' ' '; echo; "
                            "echo hi > /dev/null && echo null-ok; "
                            "touch /dev/new 2>/dev/null && echo created || echo refused; "
                            "touch /dev/shm/x && echo shm-ok")
    rc, out, err = run_container(c)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[-3:] == ["null-ok", "refused", "shm-ok"], out
    listing = set(lines[-4].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
            "ptmx", "fd", "stdin", "stdout", "stderr"} <= listing, listing
    dev = find_mount(parse_mountinfo(out), "/dev")
    assert "ro" in dev["mount_opts"], dev
    for sub in ("/dev/pts", "/dev/shm", "/dev/mqueue"):
        assert find_mount(parse_mountinfo(out), sub) is not None, sub


def test_readonly_dev_with_terminal(ctx, bundle):
    """/dev/console is made (bound over a file in /dev) before /dev becomes
    read-only."""
    from test_tty import on_pty
    c = readonly_dev_config("test -c /dev/console && echo console-ok; "
                            "touch /dev/x 2>/dev/null || echo refused")
    c["process"]["terminal"] = True
    b = bundle(c)
    rc, out = on_pty(ctx.argv(["run", "--bundle", str(b.path), b.id]))
    assert rc == 0, out
    assert "console-ok" in out and "refused" in out, out


def test_readonly_tmpfs_elsewhere_with_a_mount_beneath(ctx, run_container):
    """The same for any read-only tmpfs with mounts beneath it (a read-only
    /run holding a secret bind mount)."""
    src = ctx.hostdir("secret", 0o755)
    (src / "token").write_text("s3cret\n")
    c = sh("cat /run/secrets/token; touch /run/x 2>/dev/null && echo created || echo refused")
    c["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "ro", "mode=755"]})
    bind(c, src, "/run/secrets", "rbind", "ro")
    rc, out, err = run_container(c)
    assert rc == 0, err
    assert out.splitlines() == ["s3cret", "refused"], out


# ---- 4. hooks get fds 0-2 only -----------------------------------------------------

HOOK_KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"]

def fd_hooks(ctx, b):
    """Each hook kind lists its open fds into OUT/<kind>.fds (ls exec'd by the
    hook's shell: what it holds is what the hook was given, plus the fd ls
    opens to read the listing)."""
    hooks = {}
    for n in HOOK_KINDS:
        out = "/out" if n == "startContainer" else b.out
        hooks[n] = [hook("/bin/sh", "-c", f"exec ls -l /proc/self/fd > {out}/{n}.fds")]
    b.config["hooks"] = hooks
    b.write()


def hook_fds(b, name):
    """{fd: target} the hook had (without the directory ls read)."""
    text = wait_file(b.out / f"{name}.fds")
    fds = {}
    for line in text.splitlines():
        m = re.search(r"\s(\d+) -> (.*)$", line)
        if m and not re.fullmatch(r"'?/proc/\d+/fd'?", m.group(2)):
            fds[int(m.group(1))] = m.group(2)
    return fds


def lifecycle_with_extra_fd(ctx, b, preserve):
    """create (with the runtime holding an inheritable fd 3, passed on with
    --preserve-fds 1 or not), start, wait, delete."""
    data = ctx.dir / "fd3.txt"
    data.write_text("fd 3\n")
    fd = os.open(data, os.O_RDONLY)

    def to_fd3():
        os.dup2(fd, 3)
    extra = ["--preserve-fds", "1"] if preserve else []
    try:
        ctx.create(b, *extra, pass_fds=(3,), preexec_fn=to_fd3).ok()
        ctx.run("start", b.id, pass_fds=(3,), preexec_fn=to_fd3).ok()
        ctx.wait_status(b.id, "stopped")
        ctx.run("delete", b.id, pass_fds=(3,), preexec_fn=to_fd3).ok()
    finally:
        os.close(fd)


# Found by running this file against runc 1.1.5 (it starts hooks with Go's
# exec.Cmd, which closes only close-on-exec fds): its createContainer hooks
# get the init's sync socket and pipes, its startContainer hooks the fds
# --preserve-fds meant for the container process, its poststop hooks (run by
# `delete`) whatever fd `delete`'s caller left open. Bugs: a hook is a host
# program run with the runtime's privileges, and the sync socket lets it talk
# to (and confuse) the container's init.
RUNC_LEAKS = {("createContainer", False), ("createContainer", True), ("startContainer", True),
              ("poststop", False), ("poststop", True)}


def hook_fd_params():
    for kind in HOOK_KINDS:
        for preserve in (False, True):
            marks = []
            if (kind, preserve) in RUNC_LEAKS:
                marks.append(pytest.mark.xfail_runtime(
                    "runc", reason=f"{kind} hooks get fds other than 0-2 "
                    f"({'--preserve-fds' if preserve else 'inherited'})"))
            yield pytest.param(kind, preserve, marks=marks,
                               id=f"{kind}-{'preserve-fds' if preserve else 'inherited-fd'}")


@pytest.mark.parametrize("kind,preserve", list(hook_fd_params()))
def test_hooks_get_only_stdio(ctx, bundle, kind, preserve):
    """Every hook kind sees fds 0, 1 and 2 only: not the runtime's sync
    socket, fifos or /dev/null, not an fd the caller left open, not the
    fds --preserve-fds hands to the container process."""
    b = bundle(sh("ls /proc/self/fd > /out/process.fds"), out=True)
    fd_hooks(ctx, b)
    lifecycle_with_extra_fd(ctx, b, preserve)
    fds = hook_fds(b, kind)
    assert set(fds) == {0, 1, 2}, fds
    if preserve:
        # The container process itself does get the preserved fd.
        assert "3" in (b.out / "process.fds").read_text().split()
