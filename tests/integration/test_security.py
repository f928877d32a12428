"""What a container must not reach: the runtime binary (CVE-2019-5736 class),
file descriptors of the runtime, and directories outside its rootfs."""

import errno
import os

import pytest

from conftest import RUNTIME
from helpers import default_config, sh, wait_for


def test_runtime_binary_not_writable_through_init(ctx, bundle):
    """Before start, the container's init is the runtime (or a copy of it). A
    reference to its /proc/PID/exe taken then (as a process in the container
    could) must not allow writing the runtime binary once the runtime is gone.
    A read-only bind mount of the binary (same inode) and a sealed memfd copy
    both pass. The probe rewrites the first byte with its own value: harmless
    if it works."""
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    pid = ctx.state(b.id)["pid"]
    ref = os.open(f"/proc/{pid}/exe", os.O_PATH)
    try:
        ctx.run("start", b.id).ok()
        ctx.wait_status(b.id, "running")
        wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("sleep"), 10,
                 "the init to exec the container process")
        with open(f"/proc/self/fd/{ref}", "rb") as f:
            first = f.read(1)
        with pytest.raises(OSError) as e:
            fd = os.open(f"/proc/self/fd/{ref}", os.O_WRONLY)
            try:
                os.pwrite(fd, first, 0)
            finally:
                os.close(fd)
        assert e.value.errno in (errno.EROFS, errno.EPERM, errno.EACCES, errno.ETXTBSY), e.value
    finally:
        os.close(ref)


def test_runtime_binary_unchanged_after_run(ctx, run_container):
    before = open(RUNTIME, "rb").read()
    rc, out, err = run_container(sh("echo overwritten > /proc/self/exe; "
                                    "echo overwritten > /proc/1/exe; true"))
    assert open(RUNTIME, "rb").read() == before


def test_no_leaked_fds(ctx, bundle):
    """Only stdin, stdout, stderr and the fd ls opens itself, even when the
    runtime was started with more open fds (and no --preserve-fds)."""
    b = bundle(sh("ls /proc/self/fd"))
    extra = os.open(ctx.dir, os.O_RDONLY)
    try:
        r = ctx.run("run", "--bundle", b.path, b.id, pass_fds=(extra,))
    finally:
        os.close(extra)
    assert r.rc == 0, str(r)
    fds = sorted(int(x) for x in r.out.split())
    assert fds == [0, 1, 2, 3], r.out


def test_no_leaked_fds_in_created_container(ctx, bundle):
    b = bundle(sh("ls -l /proc/self/fd > /out/fds"), out=True)
    extra = os.open(ctx.dir, os.O_RDONLY)
    try:
        ctx.run("create", "--bundle", b.path, b.id, pass_fds=(extra,)).ok()
    finally:
        os.close(extra)
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "stopped")
    lines = [line for line in (b.out / "fds").read_text().splitlines() if "->" in line]
    fds = {int(line.split("->")[0].split()[-1]) for line in lines}
    assert {0, 1, 2} <= fds <= {0, 1, 2, 3}, lines


def test_cwd_inside_container(ctx, run_container):
    rc, out, err = run_container(sh("readlink /proc/self/cwd; readlink /proc/self/root; "
                                    "cd ..; cd ..; cd ..; pwd; ls", cwd="/home/user"))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "/home/user"
    assert lines[1] == "/"
    assert lines[2] == "/"
    assert set(lines[3:]) == set(os.listdir(ctx.last_bundle.rootfs))


def test_host_root_not_reachable(ctx, run_container):
    """Nothing of the host's / (e.g. the scratch dir of this test) is visible."""
    marker = f"host-only-{ctx.token}"
    (ctx.dir / marker).write_text("")
    rc, out, err = run_container(sh(f"find / -xdev -name '{marker}' 2>/dev/null; "
                                    "ls /proc/1/root/ | wc -l"))
    assert rc == 0, err
    assert marker not in out


def test_proc_sys_kernel_not_writable(run_container):
    rc, out, err = run_container(sh("echo 1 > /proc/sys/kernel/sysrq && echo wrote"))
    assert rc != 0
    assert "wrote" not in out


def test_sysfs_readonly(run_container):
    rc, out, err = run_container(sh("touch /sys/kernel/x && echo wrote"))
    assert rc != 0
    assert "wrote" not in out
