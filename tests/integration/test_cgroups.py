"""linux.cgroupsPath: where the container's processes are placed, and that the
cgroups are removed on delete. Works on v1, hybrid and v2 hosts."""

import os

import pytest

from helpers import default_config, sh, wait_for

CG = "/sys/fs/cgroup"


def cgroup_lines(pid):
    """[(hierarchy-id, controllers, path)] from /proc/PID/cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        return [tuple(line.rstrip("\n").split(":", 2)) for line in f]


def controller_lines(pid):
    """Lines of real v1 controllers (not named hierarchies, not cgroup2)."""
    return [(h, c, p) for h, c, p in cgroup_lines(pid) if c and not c.startswith("name=")]


def is_pure_v2():
    return os.path.exists(f"{CG}/cgroup.controllers")


def host_dirs_of(pid):
    """Host directories of every cgroup the process is in."""
    dirs = []
    for h, c, p in cgroup_lines(pid):
        if h == "0" and not c:
            base = CG if is_pure_v2() else f"{CG}/unified"
        else:
            name = c.replace("name=", "")
            base = f"{CG}/{name}" if os.path.isdir(f"{CG}/{name}") else None
            if base is None:  # co-mounted controllers, e.g. cpu,cpuacct
                base = next((f"{CG}/{d}" for d in os.listdir(CG)
                             if set(d.split(",")) == set(c.split(","))), None)
        if base and os.path.isdir(base + p):
            dirs.append(base + p)
    return dirs


def hierarchy_mounted(h, c):
    """Is the hierarchy of a /proc/PID/cgroup line mounted under /sys/fs/cgroup?"""
    if h == "0" and not c:
        return is_pure_v2() or os.path.exists(f"{CG}/unified/cgroup.procs")
    name = c.replace("name=", "")
    return os.path.isdir(f"{CG}/{name}") or any(set(d.split(",")) == set(c.split(","))
                                               for d in os.listdir(CG))


@pytest.mark.parametrize("joined", [False, True], ids=["new-namespaces", "netns-joined-by-path"])
def test_init_and_its_children_are_in_every_hierarchy(ctx, bundle, joined):
    """The init joins its cgroup in every mounted hierarchy (v1 controllers,
    named ones such as name=systemd, and cgroup2), whether clone3 made every
    namespace or one is joined by path; its children follow it."""
    config = default_config(["sh", "-c", "sleep 1000 & exec sleep 1000"])
    if joined:
        peer = ctx.spawn(["unshare", "--net", "sleep", "1000"])
        wait_for(lambda: os.readlink(f"/proc/{peer.pid}/ns/net") != os.readlink("/proc/self/ns/net"),
                 5, "the peer's network namespace")
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
        config["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{peer.pid}/ns/net"})
    b = bundle(config)
    path = config["linux"]["cgroupsPath"]
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    pid = ctx.state(b.id)["pid"]
    child = wait_for(lambda: next((int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()),
                                  None), 5, "the init's child")
    for p in (pid, child):
        lines = [(h, c, q) for h, c, q in cgroup_lines(p) if hierarchy_mounted(h, c)]
        assert lines and all(q == path for h, c, q in lines), (p, lines)
    if joined:
        assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/proc/{peer.pid}/ns/net")


def test_process_in_cgroups_path(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    path = b.config["linux"]["cgroupsPath"]
    ctx.create(b).ok()
    pid = ctx.state(b.id)["pid"]
    if is_pure_v2():
        assert [p for h, c, p in cgroup_lines(pid) if h == "0"] == [path]
    else:
        lines = controller_lines(pid)
        assert lines, "no v1 controllers on this host"
        for h, c, p in lines:
            assert p == path, f"{c}: {p}"
    dirs = host_dirs_of(pid)
    assert dirs
    ctx.run("delete", "--force", b.id).ok()
    for d in dirs:
        if d.rstrip("/").endswith(path):
            assert not os.path.exists(d), f"{d} left after delete"
    assert ctx.cgroup_dirs() == []


def test_nested_cgroups_path(ctx, bundle):
    config = default_config(["sleep", "1000"])
    parent = f"/isola-it-parent-{ctx.token}"
    config["linux"]["cgroupsPath"] = f"{parent}/{ctx.token}-child"
    ctx.cgroup_paths.add(parent)
    b = bundle(config)
    ctx.create(b).ok()
    pid = ctx.state(b.id)["pid"]
    for h, c, p in (cgroup_lines(pid) if is_pure_v2() else controller_lines(pid)):
        assert p == config["linux"]["cgroupsPath"], f"{c}: {p}"
    ctx.run("delete", "--force", b.id).ok()

    def remove_parents():  # the runtime need not remove parents it created
        for d in ctx.cgroup_dirs():
            if d.name.startswith("isola-it-parent-"):
                try:
                    os.rmdir(d)
                except OSError:
                    pass  # still holds the child: reported as a leftover
    ctx.cleanups.append(remove_parents)


def test_container_sees_own_cgroup(run_container):
    config = sh("cat /proc/self/cgroup")
    rc, out, err = run_container(config)
    assert rc == 0, err
    path = config["linux"]["cgroupsPath"]
    lines = [line.split(":", 2) for line in out.splitlines()]
    controllers = [p for h, c, p in lines if c and not c.startswith("name=")] or \
        [p for h, c, p in lines if h == "0"]
    assert controllers and all(p == path for p in controllers), out


def test_default_cgroup_without_path(ctx, bundle):
    """Without linux.cgroupsPath the runtime still gives the container its own
    cgroup (not the caller's) and removes it on delete."""
    config = default_config(["sleep", "1000"])
    b = bundle(config)
    del config["linux"]["cgroupsPath"]
    b.write()
    ctx.create(b).ok()
    pid = ctx.state(b.id)["pid"]
    mine = dict((c, p) for h, c, p in cgroup_lines(os.getpid()))
    theirs = dict((c, p) for h, c, p in cgroup_lines(pid))
    key = "" if is_pure_v2() else "pids"
    assert theirs[key] != mine[key]
    dirs = [d for d in host_dirs_of(pid) if not d.endswith("/")]
    ctx.run("delete", "--force", b.id).ok()
    own = [d for d in dirs if b.id in d]
    assert own, f"no cgroup named after the container: {dirs}"
    for d in own:
        assert not os.path.exists(d), f"{d} left after delete"


def _cgroup_file(pid, controller, name):
    for d in host_dirs_of(pid):
        f = os.path.join(d, name)
        if os.path.exists(f) and (is_pure_v2() or f"/{controller}" in d):
            with open(f) as fh:
                return fh.read().strip()
    raise AssertionError(f"no {name} for {pid}")


def test_pids_limit(ctx, bundle):
    config = default_config(["sleep", "1000"])
    config["linux"]["resources"]["pids"] = {"limit": 42}
    b = bundle(config)
    ctx.create(b).ok()
    assert _cgroup_file(ctx.state(b.id)["pid"], "pids", "pids.max") == "42"


def test_memory_limit(ctx, bundle):
    config = default_config(["sleep", "1000"])
    config["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
    b = bundle(config)
    ctx.create(b).ok()
    name = "memory.max" if is_pure_v2() else "memory.limit_in_bytes"
    assert _cgroup_file(ctx.state(b.id)["pid"], "memory", name) == str(64 * 1024 * 1024)
