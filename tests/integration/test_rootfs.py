"""root.path, root.readonly, pivot_root versus --no-pivot, rootfsPropagation."""

import os

import pytest

from helpers import find_mount, is_private, is_shared, is_slave, is_unbindable, \
    parse_mountinfo, sh


def test_root_path_absolute(ctx, bundle):
    config = sh("cat /etc/marker")
    b = bundle(config)
    other = b.path / "another-root"
    os.rename(b.rootfs, other)
    (other / "etc" / "marker").write_text("absolute root\n")
    config["root"]["path"] = str(other)
    b.write()
    rc, out, err = ctx.run("run", "--bundle", b.path, b.id)
    assert rc == 0, err
    assert out == "absolute root\n"


def test_root_path_relative_to_bundle(ctx, bundle):
    config = sh("cat /etc/marker")
    b = bundle(config)
    os.rename(b.rootfs, b.path / "fs")
    (b.path / "fs" / "etc" / "marker").write_text("relative root\n")
    config["root"]["path"] = "fs"
    b.write()
    # Run from another directory: the path is relative to the bundle, not the cwd.
    rc, out, err = ctx.run("run", "--bundle", b.path, b.id)
    assert rc == 0, err
    assert out == "relative root\n"


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(run_container, readonly):
    config = sh("touch /newfile && echo wrote")
    config["root"]["readonly"] = readonly
    rc, out, err = run_container(config)
    if readonly:
        assert rc != 0
        assert "Read-only file system" in err
    else:
        assert rc == 0, err
        assert out == "wrote\n"


def test_readonly_root_keeps_mounts_writable(run_container):
    config = sh("touch /tmp/x /dev/shm/x && echo ok")
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out == "ok\n"


@pytest.mark.parametrize("pivot", [True, False], ids=["pivot_root", "no-pivot"])
def test_pivot_and_no_pivot(ctx, bundle, pivot):
    config = sh("cat /etc/marker; ls /; cd /; cd ..; cd ..; pwd")
    b = bundle(config)
    (b.rootfs / "etc" / "marker").write_text("inside\n")
    b.write()
    extra = [] if pivot else ["--no-pivot"]
    rc, out, err = ctx.run("run", *extra, "--bundle", b.path, b.id)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "inside"
    assert lines[-1] == "/"
    listed = set(lines[1:-1])
    assert listed == set(os.listdir(b.rootfs)), listed


RUNC_PROPAGATION = pytest.mark.xfail_runtime(
    "runc", reason="rootfsPropagation shared/unbindable is not applied to / "
    "(runtime-tools linux_rootfs_propagation fails too)")


@pytest.mark.parametrize("prop,check", [
    pytest.param("shared", is_shared, marks=RUNC_PROPAGATION),
    pytest.param("rshared", is_shared, marks=RUNC_PROPAGATION),
    ("private", is_private),
    ("rprivate", is_private),
    ("slave", lambda m: not is_shared(m)),
    ("rslave", lambda m: not is_shared(m)),
    pytest.param("unbindable", is_unbindable, marks=RUNC_PROPAGATION),
    pytest.param("runbindable", is_unbindable, marks=RUNC_PROPAGATION),
], ids=lambda v: v if isinstance(v, str) else "")
def test_rootfs_propagation(run_container, prop, check):
    config = sh("cat /proc/self/mountinfo")
    config["linux"]["rootfsPropagation"] = prop
    rc, out, err = run_container(config)
    assert rc == 0, err
    root = find_mount(parse_mountinfo(out), "/")
    assert root is not None, out
    assert check(root), f"{prop}: / has optional fields {root['optional']}"
