"""hostname, domainname, linux.sysctl, maskedPaths, readonlyPaths, the default
devices and linux.devices."""

import os

import pytest

from helpers import sh


def test_hostname(run_container):
    config = sh("hostname")
    config["hostname"] = "isola-host-test"
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() == "isola-host-test"


@pytest.mark.xfail_runtime("runc", reason="runc 1.1 ignores domainname")
def test_domainname(run_container):
    config = sh("cat /proc/sys/kernel/domainname")
    config["domainname"] = "example.org"
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() == "example.org"
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "example.org"


@pytest.mark.parametrize("key,value,path", [
    ("net.ipv4.ip_forward", "1", "/proc/sys/net/ipv4/ip_forward"),
    ("net.ipv4.ip_local_port_range", "20000 30000", "/proc/sys/net/ipv4/ip_local_port_range"),
    ("kernel.shmmax", "65536", "/proc/sys/kernel/shmmax"),
    ("kernel.msgmax", "4096", "/proc/sys/kernel/msgmax"),
])
def test_sysctl(run_container, key, value, path):
    config = sh(f"cat {path}")
    config["linux"]["sysctl"] = {key: value}
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.split() == value.split()
    with open(path) as f:
        assert f.read().split() != value.split() or key == "net.ipv4.ip_forward"


def test_sysctl_does_not_change_host(run_container):
    with open("/proc/sys/kernel/shmmax") as f:
        before = f.read()
    config = sh("cat /proc/sys/kernel/shmmax")
    config["linux"]["sysctl"] = {"kernel.shmmax": "12345"}
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() == "12345"
    with open("/proc/sys/kernel/shmmax") as f:
        assert f.read() == before


def test_sysctl_unknown_key_fails(ctx, bundle):
    config = sh("true")
    config["linux"]["sysctl"] = {"kernel.no_such_sysctl_isola": "1"}
    b = bundle(config)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0
    assert not (ctx.root / b.id).exists()


def _masked_proc_file():
    """A file of the default maskedPaths that this kernel has and that has content."""
    for path in ("/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/sched_debug"):
        try:
            with open(path, "rb") as f:
                if f.read(16):
                    return path
        except OSError:
            continue
    pytest.skip("none of /proc/kcore, /proc/timer_list, /proc/keys, /proc/sched_debug "
                "is readable on this host")


def test_masked_paths(ctx, bundle):
    procfile = _masked_proc_file()
    config = sh(f"wc -c < {procfile}; ls -A /etc/secretdir | wc -l; cat /etc/secret; "
                "echo end")
    config["linux"]["maskedPaths"] += ["/etc/secretdir", "/etc/secret", "/no/such/path"]
    b = bundle(config)
    (b.rootfs / "etc" / "secretdir").mkdir()
    (b.rootfs / "etc" / "secretdir" / "file").write_text("hidden\n")
    (b.rootfs / "etc" / "secret").write_text("hidden\n")
    rc, out, err = ctx.run("run", "--bundle", b.path, b.id)
    assert rc == 0, err
    lines = out.split()
    assert lines[0] == "0"       # the masked /proc file reads as empty
    assert lines[1] == "0"       # the masked directory is empty
    assert lines[2] == "end"     # the masked file reads as empty
    assert "hidden" not in out


def test_masked_path_stays_empty_after_write(run_container):
    path = _masked_proc_file()
    config = sh(f"echo x > {path}; wc -c < {path}")
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() == "0"


@pytest.mark.parametrize("readonly", [True, False])
def test_readonly_paths(run_container, readonly):
    config = sh("echo 1 > /proc/sys/net/ipv4/ip_forward && echo wrote")
    for caps in config["process"]["capabilities"].values():
        caps.append("CAP_NET_ADMIN")  # needed to write a net sysctl at all
    if not readonly:
        config["linux"]["readonlyPaths"].remove("/proc/sys")
    rc, out, err = run_container(config)
    if readonly:
        assert rc != 0
        assert "Read-only file system" in err
    else:
        assert rc == 0, err
        assert out == "wrote\n"


def test_readonly_path_in_rootfs(run_container):
    config = sh("touch /mnt/ro/x && echo wrote")
    config["root"]["readonly"] = False
    config["linux"]["readonlyPaths"].append("/mnt/ro")
    config["mounts"].append({"destination": "/mnt/ro", "type": "tmpfs", "source": "tmpfs"})
    rc, out, err = run_container(config)
    assert rc != 0
    assert "Read-only file system" in err


DEFAULT_DEVICES = [
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
]


def _stat_lines(out):
    """Parse `stat -c '%n|%F|%t|%T|%a|%u|%g'` output: name -> fields."""
    res = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 7:
            res[parts[0]] = parts[1:]
    return res


def test_default_devices(run_container):
    paths = " ".join(p for p, _, _ in DEFAULT_DEVICES)
    rc, out, err = run_container(sh(f"stat -c '%n|%F|%t|%T|%a|%u|%g' {paths}; "
                                    "head -c 4 /dev/zero | od -An -tx1; "
                                    "echo x > /dev/null && echo null-ok"))
    assert rc == 0, err
    st = _stat_lines(out)
    for path, major, minor in DEFAULT_DEVICES:
        assert path in st, f"{path} missing:\n{out}"
        kind, hmaj, hmin, mode, uid, gid = st[path]
        assert kind == "character special file", path
        assert (int(hmaj, 16), int(hmin, 16)) == (major, minor), path
        assert mode == "666", (path, mode)
    assert "00 00 00 00" in out
    assert "null-ok" in out


def test_default_dev_links_and_dirs(run_container):
    rc, out, err = run_container(sh(
        "for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; "
        "stat -c '%n %F' /dev/shm /dev/pts; "
        "test -c /dev/ptmx -o -L /dev/ptmx && echo ptmx-ok; "
        "readlink /dev/ptmx || true"))
    assert rc == 0, err
    lines = out.splitlines()
    assert "fd=/proc/self/fd" in lines
    assert "stdin=/proc/self/fd/0" in lines
    assert "stdout=/proc/self/fd/1" in lines
    assert "stderr=/proc/self/fd/2" in lines
    assert "/dev/shm directory" in lines
    assert "/dev/pts directory" in lines
    assert "ptmx-ok" in lines
    if lines[-1] not in ("ptmx-ok",):
        assert lines[-1] in ("pts/ptmx", "/dev/pts/ptmx")


def test_no_console_without_terminal(run_container):
    rc, out, err = run_container(sh("test -e /dev/console && echo present || echo absent"))
    assert rc == 0, err
    # Without a terminal /dev/console may be absent; if present it must not be
    # the host's console (5:1 from the host's devtmpfs would be a leak).
    if out.strip() == "present":
        rc, out, err = run_container(sh("stat -c '%t:%T' /dev/console"))
        assert out.strip() != "5:1"


def test_linux_devices(ctx, run_container):
    config = sh("stat -c '%n|%F|%t|%T|%a|%u|%g' /dev/mynull /dev/sub/myzero; "
                "echo x > /dev/mynull && echo write-ok")
    config["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o666, "uid": 1000, "gid": 1000},
        {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600},
    ]
    config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
    rc, out, err = run_container(config)
    assert rc == 0, err
    st = _stat_lines(out)
    assert st["/dev/mynull"] == ["character special file", "1", "3", "666", "1000", "1000"]
    assert st["/dev/sub/myzero"][:4] == ["character special file", "1", "5", "600"]
    assert "write-ok" in out


def test_linux_devices_fifo_mode_not_narrowed_by_umask(ctx, run_container):
    """fileMode is the node's mode as given: 0660 stays 0660 under a 022 umask."""
    config = sh("stat -c '%n|%F|%t|%T|%a|%u|%g' /dev/myfifo /dev/myblk")
    config["linux"]["devices"] = [
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o660},
        {"path": "/dev/myblk", "type": "b", "major": 7, "minor": 42, "fileMode": 0o664},
    ]
    old = os.umask(0o022)
    try:
        rc, out, err = run_container(config)
    finally:
        os.umask(old)
    assert rc == 0, err
    st = _stat_lines(out)
    assert st["/dev/myfifo"][0] == "fifo" and st["/dev/myfifo"][3] == "660"
    assert st["/dev/myblk"][:4] == ["block special file", "7", "2a", "664"]


def test_device_cgroup_denies_unlisted(run_container):
    """The default rules deny everything but the default devices: a device node
    that is not allowed cannot be opened even if it exists."""
    config = sh("head -c 1 /dev/mymem > /dev/null && echo opened")
    config["linux"]["devices"] = [
        {"path": "/dev/mymem", "type": "c", "major": 1, "minor": 1, "fileMode": 0o600}]
    rc, out, err = run_container(config)
    assert "opened" not in out
