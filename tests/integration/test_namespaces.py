"""linux.namespaces: each new namespace type, user namespace mappings, time
namespace offsets, and joining existing namespaces by path."""

import os
import subprocess

import pytest

from helpers import default_config, ns_id, set_namespaces, sh, wait_file

ALL_BASIC = ("pid", "network", "ipc", "uts", "mount")
PROC_NAME = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
             "user": "user", "cgroup": "cgroup", "time": "time"}
USERNS_HOST_ID = 100000


def host_has_ns(name):
    return os.path.exists(f"/proc/self/ns/{name}")


def userns_config(script):
    config = sh(script)
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": USERNS_HOST_ID, "size": 65536}]
    config["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": USERNS_HOST_ID, "size": 65536}]
    return config


needs_userns = pytest.mark.skipif(
    not host_has_ns("user") or open("/proc/sys/user/max_user_namespaces").read().strip() == "0",
    reason="user namespaces are not available on this host")


@pytest.mark.parametrize("ns", ["pid", "network", "ipc", "uts", "mount", "cgroup"])
def test_new_namespace(run_container, ns):
    """A namespace listed without a path is new: its identity differs from the host's."""
    if not host_has_ns(PROC_NAME[ns]):
        pytest.skip(f"the kernel has no {ns} namespaces")
    config = sh(f"readlink /proc/self/ns/{PROC_NAME[ns]}")
    if ns == "cgroup":
        config["linux"]["namespaces"].append({"type": "cgroup"})
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() != ns_id("self", PROC_NAME[ns])


@pytest.mark.parametrize("ns", ["ipc", "uts", "network", "cgroup"])
def test_namespace_not_listed_is_shared_with_host(run_container, ns):
    config = sh(f"readlink /proc/self/ns/{PROC_NAME[ns]}")
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != ns]
    if ns == "uts":
        del config["hostname"]
    if ns == "network":  # sysfs needs a network namespace of its own
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "sysfs"
                            and m["destination"] != "/sys/fs/cgroup"]
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() == ns_id("self", PROC_NAME[ns])


def test_pid_namespace_pid1(run_container):
    rc, out, err = run_container(sh("echo $$; ls /proc | grep '^[0-9]*$'"))
    assert rc == 0, err
    pid, *visible = out.split()
    assert pid == "1"
    assert "1" in visible
    assert all(int(p) < 10 for p in visible), visible  # no host process


def test_without_pid_namespace_pid_is_not_1(run_container):
    config = sh("echo $$")
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != "pid"]
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() != "1"


def test_network_namespace_only_lo(run_container):
    rc, out, err = run_container(sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; "
                                    "echo --; ip -o link"))
    assert rc == 0, err
    dev, links = out.split("--\n")
    assert dev.split() == ["lo"], out
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], out


def test_uts_namespace_hostname(run_container):
    config = sh("hostname; cat /proc/sys/kernel/hostname")
    config["hostname"] = "box-under-test"
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.splitlines() == ["box-under-test", "box-under-test"]
    assert os.uname().nodename != "box-under-test"


def test_ipc_namespace_isolated(ctx, run_container):
    """A SysV shared memory segment made on the host is not visible inside."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x15014 + os.getpid() % 1000
    shmid = libc.shmget(key, 4096, 0o600 | 0o1000)  # IPC_CREAT
    assert shmid >= 0
    ctx.cleanups.append(lambda: libc.shmctl(shmid, 0, None))  # IPC_RMID
    config = sh("cat /proc/sysvipc/shm")
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert len(out.strip().splitlines()) == 1, out  # only the header
    with open("/proc/sysvipc/shm") as f:
        assert len(f.read().strip().splitlines()) > 1


def test_cgroup_namespace_root(run_container):
    config = sh("cat /proc/self/cgroup")
    config["linux"]["namespaces"].append({"type": "cgroup"})
    rc, out, err = run_container(config)
    assert rc == 0, err
    for line in out.splitlines():
        assert line.split(":", 2)[2] == "/", out


@needs_userns
def test_user_namespace_mappings(ctx, run_container):
    config = userns_config("cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                           "echo x > /out/created")
    rc, out, err = run_container(config, out=True, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["0", str(USERNS_HOST_ID), "65536"]
    assert lines[1] == ["0", str(USERNS_HOST_ID), "65536"]
    assert lines[2] == ["0"]
    st = os.stat(ctx.last_bundle.out / "created")
    assert (st.st_uid, st.st_gid) == (USERNS_HOST_ID, USERNS_HOST_ID)


@needs_userns
def test_user_namespace_unprivileged_on_host(ctx, run_container):
    """Root inside cannot write a host file owned by host root through a bind mount."""
    src = ctx.hostdir("hostonly", 0o755)
    (src / "file").write_text("host\n")
    os.chmod(src / "file", 0o644)
    config = userns_config("echo changed > /mnt/h/file; cat /mnt/h/file")
    from helpers import bind
    bind(config, src, "/mnt/h", "bind")
    rc, out, err = run_container(config, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert (src / "file").read_text() == "host\n"
    assert "Permission denied" in err or "Read-only" in err or rc != 0


@needs_userns
def test_user_namespace_nonzero_user(ctx, run_container):
    config = userns_config("id -u; id -g; echo y > /out/user-file")
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    rc, out, err = run_container(config, out=True, owner=(USERNS_HOST_ID, USERNS_HOST_ID))
    assert rc == 0, err
    assert out.split() == ["1000", "1000"]
    st = os.stat(ctx.last_bundle.out / "user-file")
    assert (st.st_uid, st.st_gid) == (USERNS_HOST_ID + 1000, USERNS_HOST_ID + 1000)


@pytest.mark.skipif(not host_has_ns("time"), reason="the kernel has no time namespaces")
@pytest.mark.xfail_runtime("runc", reason="runc 1.1 has no time namespace support")
def test_time_namespace_offsets(run_container):
    year = 365 * 86400
    config = sh("cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime")
    config["linux"]["namespaces"].append({"type": "time"})
    config["linux"]["timeOffsets"] = {"boottime": {"secs": year, "nanosecs": 0},
                                      "monotonic": {"secs": 86400, "nanosecs": 0}}
    rc, out, err = run_container(config)
    assert rc == 0, err
    lines = out.splitlines()
    offsets = {line.split()[0]: line.split()[1:] for line in lines[:2]}
    assert offsets == {"monotonic": ["86400", "0"], "boottime": [str(year), "0"]}
    assert float(lines[2]) >= year
    with open("/proc/uptime") as f:
        assert float(f.read().split()[0]) < year


def _unshare_sleeper(ctx, hostname):
    p = ctx.spawn(["unshare", "--net", "--uts", "--ipc", "sh", "-c",
                   f"hostname {hostname} && echo ready && exec sleep 1000"],
                  stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    return p.pid


def _container_sleeper(ctx, bundle, hostname):
    config = default_config(["sleep", "1000"])
    config["hostname"] = hostname
    b = bundle(config)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    return ctx.state(b.id)["pid"]


@pytest.mark.parametrize("owner", ["unshare", "container"])
def test_join_namespaces_by_path(ctx, bundle, owner):
    hostname = f"joined-{ctx.token}"[:60]
    if owner == "unshare":
        pid = _unshare_sleeper(ctx, hostname)
    else:
        pid = _container_sleeper(ctx, bundle, hostname)
    config = sh("hostname; for n in net uts ipc; do readlink /proc/self/ns/$n; done")
    del config["hostname"]
    set_namespaces(config, "pid", "mount", network=f"/proc/{pid}/ns/net",
                   uts=f"/proc/{pid}/ns/uts", ipc=f"/proc/{pid}/ns/ipc")
    b = bundle(config)
    rc, out, err = ctx.run("run", "--bundle", b.path, b.id)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == hostname
    assert lines[1:] == [ns_id(pid, "net"), ns_id(pid, "uts"), ns_id(pid, "ipc")]
    assert lines[1] != ns_id("self", "net")


def test_join_namespace_bad_path_fails(ctx, bundle):
    config = sh("true")
    set_namespaces(config, "pid", "mount", "uts", "ipc",
                   network=str(ctx.dir / "no-such-ns"))
    b = bundle(config)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0
    assert r.err.strip() != ""


def test_join_non_namespace_file_fails(ctx, bundle):
    notns = ctx.dir / "plain-file"
    notns.write_text("")
    config = sh("true")
    set_namespaces(config, "pid", "mount", "uts", "ipc", network=str(notns))
    b = bundle(config)
    assert ctx.run("run", "--bundle", b.path, b.id).rc != 0
