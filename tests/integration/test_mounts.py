"""mounts[]: bind and rbind, tmpfs with options, the special filesystems,
per-mount flags and propagation as /proc/self/mountinfo reports them, and
symlinks in the rootfs that point out of it."""

import os
import subprocess

import pytest

from helpers import add_mount, bind, find_mount, is_private, is_shared, is_slave, \
    is_unbindable, parse_mountinfo, sh


def host_mount(ctx, *args):
    subprocess.run(["mount", *map(str, args)], check=True)


def host_dir_with_submount(ctx, name, shared=False):
    """A host dir with a file and a tmpfs submount 'sub' holding another file;
    unmounted at teardown. shared=True makes it a shared mount (own peer group)."""
    d = ctx.hostdir(name, 0o755)
    if shared:
        host_mount(ctx, "--bind", d, d)
        ctx.cleanups.append(lambda: subprocess.run(["umount", "-R", "-l", str(d)]))
        host_mount(ctx, "--make-shared", d)
    (d / "top.txt").write_text("top\n")
    (d / "sub").mkdir()
    host_mount(ctx, "-t", "tmpfs", "-o", "size=1m", "isola-it-sub", d / "sub")
    if not shared:
        ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", str(d / "sub")]))
    (d / "sub" / "inner.txt").write_text("inner\n")
    return d


@pytest.mark.parametrize("form", ["type-bind", "no-type"])
def test_bind_mount_dir(ctx, run_container, form):
    src = ctx.hostdir("src", 0o755)
    (src / "hello.txt").write_text("from the host\n")
    config = sh("cat /mnt/src/hello.txt; echo back > /mnt/src/written.txt")
    config["root"]["readonly"] = False
    m = bind(config, src, "/mnt/src")
    if form == "no-type":
        del m["type"]
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out == "from the host\n"
    assert (src / "written.txt").read_text() == "back\n"


def test_bind_mount_file(ctx, run_container):
    src = ctx.dir / "file.txt"
    src.write_text("single file\n")
    config = sh("cat /etc/injected.txt; ls -l /etc/injected.txt")
    bind(config, src, "/etc/injected.txt")
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.startswith("single file\n-")


def test_bind_mount_readonly(ctx, run_container):
    src = ctx.hostdir("src", 0o755)
    config = sh("cat /proc/self/mountinfo; touch /mnt/src/x")
    bind(config, src, "/mnt/src", "bind", "ro")
    rc, out, err = run_container(config)
    assert rc != 0
    assert "Read-only file system" in err
    assert not (src / "x").exists()
    assert "ro" in find_mount(parse_mountinfo(out), "/mnt/src")["mount_opts"]


@pytest.mark.parametrize("kind", ["bind", "rbind"])
def test_bind_versus_rbind_submounts(ctx, run_container, kind):
    src = host_dir_with_submount(ctx, "tree")
    config = sh("cat /mnt/tree/top.txt; cat /mnt/tree/sub/inner.txt 2>/dev/null || echo absent")
    bind(config, src, "/mnt/tree", kind)
    rc, out, err = run_container(config)
    assert rc == 0, err
    expected = "inner" if kind == "rbind" else "absent"
    assert out.splitlines() == ["top", expected]


def test_tmpfs_mode_and_size(run_container):
    config = sh("stat -c %a /mnt/t; df -k /mnt/t | tail -n 1")
    add_mount(config, "/mnt/t", "tmpfs", "tmpfs", ["mode=1770", "size=1m"])
    rc, out, err = run_container(config)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "1770"
    assert lines[1].split()[1] == "1024", lines[1]


@pytest.mark.parametrize("dest,fstype", [
    ("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs"),
    ("/dev/mqueue", "mqueue"), ("/sys", "sysfs"),
])
def test_default_mount_types(run_container, dest, fstype):
    rc, out, err = run_container(sh("cat /proc/self/mountinfo"))
    assert rc == 0, err
    m = find_mount(parse_mountinfo(out), dest)
    assert m is not None, f"nothing mounted at {dest}:\n{out}"
    assert m["fstype"] == fstype


def test_extra_proc_and_sysfs_mounts(run_container):
    config = sh("cat /proc/self/mountinfo; cat /mnt/proc/self/comm; ls /mnt/sys/kernel >/dev/null")
    add_mount(config, "/mnt/proc", "proc", "proc")
    add_mount(config, "/mnt/sys", "sysfs", "sysfs", ["ro", "nosuid", "nodev", "noexec"])
    rc, out, err = run_container(config)
    assert rc == 0, err
    mounts = parse_mountinfo(out)
    assert find_mount(mounts, "/mnt/proc")["fstype"] == "proc"
    assert find_mount(mounts, "/mnt/sys")["fstype"] == "sysfs"
    assert out.splitlines()[-1] == "cat"


def test_mqueue_usable(run_container):
    rc, out, err = run_container(sh("ls -a /dev/mqueue; cat /proc/self/mountinfo"))
    assert rc == 0, err
    m = find_mount(parse_mountinfo(out), "/dev/mqueue")
    assert {"nosuid", "nodev", "noexec"} <= m["mount_opts"]


def test_devpts_options(run_container):
    rc, out, err = run_container(sh("cat /proc/self/mountinfo; ls -l /dev/pts/ptmx"))
    assert rc == 0, err
    m = find_mount(parse_mountinfo(out), "/dev/pts")
    assert {"nosuid", "noexec"} <= m["mount_opts"]
    assert "gid=5" in m["super_opts"] and "mode=620" in m["super_opts"]
    assert "ptmxmode=666" in m["super_opts"]


def test_cgroup_mount_shows_hierarchies(run_container):
    rc, out, err = run_container(sh("ls /sys/fs/cgroup; cat /proc/self/mountinfo"))
    assert rc == 0, err
    names = {line.strip() for line in out.splitlines() if " - " not in line}
    host = set(os.listdir("/sys/fs/cgroup"))
    if "cgroup.controllers" in host:  # pure v2 host
        assert "cgroup.controllers" in names
    else:
        v1 = {n for n in host if n in ("cpu", "memory", "pids", "devices", "freezer")}
        assert v1 and v1 <= names, names
    cg = [m for m in parse_mountinfo(out) if m["mountpoint"].startswith("/sys/fs/cgroup")]
    assert cg, "no cgroup filesystem mounted inside"
    for m in cg:
        if m["fstype"] in ("cgroup", "cgroup2"):
            assert "ro" in m["mount_opts"], m


@pytest.mark.parametrize("option,check", [
    ("ro", lambda o: "ro" in o),
    ("rw", lambda o: "rw" in o),
    ("nosuid", lambda o: "nosuid" in o),
    ("nodev", lambda o: "nodev" in o),
    ("noexec", lambda o: "noexec" in o),
    ("relatime", lambda o: "relatime" in o),
    ("noatime", lambda o: "noatime" in o),
    ("strictatime", lambda o: not ({"relatime", "noatime"} & o)),
])
def test_mount_flags(run_container, option, check):
    config = sh("cat /proc/self/mountinfo")
    add_mount(config, "/mnt/t", "tmpfs", "tmpfs", [option, "size=1m"])
    rc, out, err = run_container(config)
    assert rc == 0, err
    m = find_mount(parse_mountinfo(out), "/mnt/t")
    assert check(m["mount_opts"]), f"{option}: {sorted(m['mount_opts'])}"


@pytest.mark.parametrize("option,check", [
    ("nosuid", "nosuid"), ("nodev", "nodev"), ("noexec", "noexec"), ("ro", "ro"),
])
def test_bind_mount_flags(ctx, run_container, option, check):
    src = ctx.hostdir("src", 0o755)
    config = sh("cat /proc/self/mountinfo")
    bind(config, src, "/mnt/src", "bind", option)
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert check in find_mount(parse_mountinfo(out), "/mnt/src")["mount_opts"]


def test_noexec_prevents_exec(ctx, run_container):
    src = ctx.hostdir("src", 0o755)
    (src / "prog").write_text("#!/bin/sh\necho ran\n")
    os.chmod(src / "prog", 0o755)
    config = sh("/mnt/src/prog")
    bind(config, src, "/mnt/src", "bind", "noexec")
    rc, out, err = run_container(config)
    assert rc != 0
    assert "ran" not in out


@pytest.mark.parametrize("option,check,recursive", [
    ("shared", is_shared, False),
    ("rshared", is_shared, True),
    ("slave", lambda m: is_slave(m) and not is_shared(m), False),
    ("rslave", lambda m: is_slave(m) and not is_shared(m), True),
    ("private", is_private, False),
    ("rprivate", is_private, True),
    ("unbindable", is_unbindable, False),
    ("runbindable", is_unbindable, True),
])
def test_mount_propagation_options(ctx, run_container, option, check, recursive):
    """rbind a shared host dir (with a submount) with a propagation option; the
    mount (and, for r- forms, its submount) carries it in mountinfo."""
    src = host_dir_with_submount(ctx, "prop", shared=True)
    config = sh("cat /proc/self/mountinfo")
    bind(config, src, "/mnt/prop", "rbind", option)
    rc, out, err = run_container(config)
    assert rc == 0, err
    mounts = parse_mountinfo(out)
    top = find_mount(mounts, "/mnt/prop")
    assert check(top), f"{option}: /mnt/prop has {top['optional']}"
    if recursive:
        sub = find_mount(mounts, "/mnt/prop/sub")
        assert sub is not None
        assert check(sub), f"{option}: /mnt/prop/sub has {sub['optional']}"


def test_container_mounts_do_not_reach_host(ctx, run_container):
    """Even with a shared host dir bound in, mounts made by the runtime under it
    stay in the container (nothing appears under it on the host)."""
    src = host_dir_with_submount(ctx, "prop", shared=True)
    config = sh("true")
    bind(config, src, "/mnt/prop", "rbind")
    add_mount(config, "/mnt/prop/newtmp", "tmpfs", "tmpfs", ["size=1m"])
    rc, out, err = run_container(config)
    assert rc == 0, err
    with open("/proc/self/mountinfo") as f:
        assert str(src / "newtmp") not in f.read()


@pytest.mark.parametrize("target", ["/", "../../../../../../../../../.."],
                         ids=["absolute", "relative"])
@pytest.mark.parametrize("mtype", ["tmpfs", "bind"])
def test_symlink_out_of_rootfs_is_contained(ctx, bundle, target, mtype):
    """SECURITY: rootfs/etc is a symlink pointing out of the rootfs. A mount at
    /etc/<name> must land inside the rootfs (or fail): nothing is created or
    mounted on the host."""
    name = f"isola-it-escape-{ctx.token}"
    config = sh("cat /proc/self/mountinfo")
    if mtype == "tmpfs":
        add_mount(config, f"/etc/{name}", "tmpfs", "tmpfs", ["size=1m"])
    else:
        src = ctx.hostdir("bindsrc", 0o755)
        bind(config, src, f"/etc/{name}")
    b = bundle(config)
    subprocess.run(["rm", "-rf", str(b.rootfs / "etc")], check=True)
    os.symlink(target, b.rootfs / "etc")
    r = ctx.run("run", "--bundle", b.path, b.id)
    candidates = ["/" + name] + [str(p / name) for p in b.rootfs.parents]
    for c in candidates:
        assert not os.path.lexists(c), f"created on the host: {c}"
    with open("/proc/self/mountinfo") as f:
        assert name not in f.read(), "mounted on the host"
    if r.rc == 0:
        inside = [m["mountpoint"] for m in parse_mountinfo(r.out) if name in m["mountpoint"]]
        assert inside in (["/" + name], [f"/etc/{name}"]), inside
        assert (b.rootfs / name).is_dir()


def test_mount_destination_created(run_container):
    config = sh("cat /proc/self/mountinfo")
    add_mount(config, "/new/deep/dir", "tmpfs", "tmpfs", ["size=1m"])
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert find_mount(parse_mountinfo(out), "/new/deep/dir")["fstype"] == "tmpfs"
