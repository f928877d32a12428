"""Rootless: an unprivileged user runs isola-oci. `spec --rootless` maps the
user; a config mapping more than the user's own id goes through
newuidmap/newgidmap and the user's /etc/subuid and /etc/subgid ranges; the
default state root is $XDG_RUNTIME_DIR/isola-oci; a cgroup the user may not
create is skipped with a warning, and a cgroup v2 subtree delegated to the
user is used and limited (shown in a private mount namespace where cgroup2
is mounted on /sys/fs/cgroup, so the host's mounts stay as they are). podman
run as the user with --runtime isola-oci works. The tests create the user
(home, subordinate ids, /run/user/UID) and remove all of it."""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import helpers
from clients import need, ok, rootfs_tar, run, tail

USER = f"isolait{os.getpid()}"[:31]
SUB_SIZE = 65536


def _subid_base():
    """A subordinate range above every range already handed out."""
    top = 1_000_000
    for f in ("/etc/subuid", "/etc/subgid"):
        try:
            for line in Path(f).read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    top = max(top, int(parts[1]) + int(parts[2]))
        except OSError:
            pass
    return (top + 0xFFFF) & ~0xFFFF


def _set_subids(base):
    for f in ("/etc/subuid", "/etc/subgid"):
        p = Path(f)
        lines = p.read_text().splitlines() if p.exists() else []
        lines = [l for l in lines if not l.startswith(USER + ":")]
        if base is not None:
            lines.append(f"{USER}:{base}:{SUB_SIZE}")
        p.write_text("".join(l + "\n" for l in lines))


def _kill_user_processes(uid):
    for _ in range(50):
        pids = []
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    if os.stat(f"/proc/{e}").st_uid == uid:
                        pids.append(int(e))
                except OSError:
                    pass
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


class User:
    def __init__(self, rootfs):
        self.dir = Path(tempfile.mkdtemp(prefix="isola-rootless.", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.rootfs_src = rootfs
        self.created = False
        self.uid = None

    def setup(self, runtime):
        home = self.dir / "home"
        ok(run(["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh",
                "--user-group", USER]))
        self.created = True
        pw = pwd.getpwnam(USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.base = _subid_base()
        _set_subids(self.base)  # replaces what useradd may have allotted
        self.xdg = Path(f"/run/user/{self.uid}")
        self.xdg_made = not self.xdg.exists()
        self.xdg.mkdir(parents=True, exist_ok=True)
        os.chown(self.xdg, self.uid, self.gid)
        os.chmod(self.xdg, 0o700)
        # The user's own copy of the runtime: the build directory may not be
        # reachable for it.
        self.runtime = self.dir / "isola-oci"
        shutil.copy2(runtime, self.runtime)
        os.chmod(self.runtime, 0o755)
        self.work = self.dir / "work"
        self.work.mkdir()
        os.chown(self.work, self.uid, self.gid)
        self.env = {
            "HOME": str(home), "USER": USER, "LOGNAME": USER,
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "XDG_RUNTIME_DIR": str(self.xdg),
        }
        return self

    def run(self, *argv, env=None, timeout=60, cwd=None):
        e = dict(self.env)
        e.update(env or {})
        return run(argv, env=e, timeout=timeout, user=(self.uid, self.gid), cwd=cwd)

    def isola(self, *args, **kw):
        return self.run(self.runtime, *args, **kw)

    def bundle(self, name, args, mappings=None, caps=()):
        """A bundle owned by the user from `spec --rootless`, with args and
        (optionally) other id mappings and extra capabilities."""
        b = self.work / name
        b.mkdir()
        os.chown(b, self.uid, self.gid)
        ok(self.isola("spec", "--rootless", "--bundle", b))
        subprocess.run(["cp", "-a", str(self.rootfs_src), str(b / "rootfs")], check=True)
        subprocess.run(["chown", "-R", "-h", f"{self.uid}:{self.gid}", str(b / "rootfs")], check=True)
        c = json.loads((b / "config.json").read_text())
        c["process"]["terminal"] = False
        c["process"]["args"] = args
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k] += list(caps)
        if mappings:
            c["linux"]["uidMappings"], c["linux"]["gidMappings"] = mappings
        helpers.write_json(b / "config.json", c)
        return b

    def close(self):
        problems = []
        if self.uid is not None:
            left = [f"{e} ({_cmdline(e)})" for e in os.listdir("/proc")
                    if e.isdigit() and _owned(e, self.uid)]
            if left:
                problems.append(f"processes of {USER}: {left}")
            _kill_user_processes(self.uid)
        for m in _mounts_under(self.dir):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        if self.created:
            run(["userdel", "--remove", USER])
        _set_subids(None)
        if self.uid is not None and self.xdg_made:
            shutil.rmtree(self.xdg, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def _owned(pid, uid):
    """pid is a live (not zombie) process of uid; zombies wait for whoever
    reaps orphans here, which is not ours to judge."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return False
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def _mounts_under(path):
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(prefix)]


@pytest.fixture(scope="module")
def user(runtime_bin, rootfs):
    need("useradd", "passwd")
    need("newuidmap", "uidmap")
    u = User(rootfs)
    try:
        yield u.setup(runtime_bin)
    finally:
        problems = u.close()
    assert not problems, "left behind: " + "; ".join(problems)


_n = [0]


@pytest.fixture
def cid(user):
    _n[0] += 1
    name = f"rl{os.getpid()}-{_n[0]}"
    yield name
    user.isola("delete", "--force", name)
    assert not (user.xdg / "isola-oci" / name).exists(), "state left behind"


# ---- isola-oci as the user ----------------------------------------------------

def test_spec_rootless_maps_the_user(user):
    b = user.work / "spec"
    b.mkdir()
    os.chown(b, user.uid, user.gid)
    ok(user.isola("spec", "--rootless", "--bundle", b))
    c = json.loads((b / "config.json").read_text())
    types = [n["type"] for n in c["linux"]["namespaces"]]
    assert "user" in types and "network" not in types, types
    assert c["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert c["linux"]["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert "resources" not in c["linux"] or not c["linux"]["resources"].get("devices")


def test_run_with_the_users_own_id(user, cid):
    b = user.bundle(cid, ["sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map; "
                                      "cat /proc/self/setgroups"])
    r = ok(user.isola("run", "--bundle", b, cid))
    lines = r.out.splitlines()
    assert lines[0] == "0", str(r)
    assert lines[1].split() == ["0", str(user.uid), "1"], str(r)
    assert lines[2].split() == ["0", str(user.gid), "1"], str(r)
    assert lines[3] == "deny", str(r)  # required for an unprivileged gid_map
    # The host's cgroup tree is not the user's: skipped, with a warning.
    assert "warning: rootless" in r.err and "cgroup" in r.err, str(r)


def test_lifecycle_state_under_xdg_runtime_dir(user, cid):
    b = user.bundle(cid, ["sleep", "100"])
    ok(user.isola("create", "--bundle", b, cid))
    state_dir = user.xdg / "isola-oci" / cid
    assert state_dir.is_dir() and state_dir.stat().st_uid == user.uid
    ok(user.isola("start", cid))
    st = json.loads(ok(user.isola("state", cid)).out)
    assert st["status"] == "running" and st["pid"] > 0, st
    assert cid in ok(user.isola("list", "-q")).out.split()
    r = ok(user.isola("exec", cid, "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '"))
    assert r.out.splitlines() == ["0", "sleep 100 "], str(r)
    ok(user.isola("kill", cid, "KILL"))
    deadline = time.monotonic() + 10
    while json.loads(ok(user.isola("state", cid)).out)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ok(user.isola("delete", cid))
    assert not state_dir.exists()


def test_subordinate_ids_through_newuidmap(user, cid):
    uid_maps = [{"containerID": 0, "hostID": user.uid, "size": 1},
                {"containerID": 1, "hostID": user.base, "size": SUB_SIZE}]
    gid_maps = [{"containerID": 0, "hostID": user.gid, "size": 1},
                {"containerID": 1, "hostID": user.base, "size": SUB_SIZE}]
    b = user.bundle(cid, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; "
                                      "touch /dev/shm/f && chown 1000:1000 /dev/shm/f && "
                                      "stat -c '%u:%g' /dev/shm/f"],
                    mappings=(uid_maps, gid_maps), caps=["CAP_CHOWN"])
    r = ok(user.isola("run", "--bundle", b, cid))
    lines = [l.split() for l in r.out.splitlines()]
    assert lines[0] == ["0", str(user.uid), "1"] and lines[1] == ["1", str(user.base), str(SUB_SIZE)], str(r)
    assert lines[2] == ["0", str(user.gid), "1"] and lines[3] == ["1", str(user.base), str(SUB_SIZE)], str(r)
    assert lines[4] == ["1000:1000"], str(r)


def test_ids_outside_the_users_ranges_are_refused(user, cid):
    outside = user.base + SUB_SIZE + 65536
    maps = ([{"containerID": 0, "hostID": user.uid, "size": 1},
             {"containerID": 1, "hostID": outside, "size": 1000}],
            [{"containerID": 0, "hostID": user.gid, "size": 1}])
    b = user.bundle(cid, ["true"], mappings=maps)
    r = user.isola("run", "--bundle", b, cid)
    assert r.rc != 0, str(r)
    assert "linux.uidMappings" in r.err and "newuidmap" in r.err and "not allowed" in r.err, str(r)
    assert not (user.xdg / "isola-oci" / cid).exists()


DELEGATE = r"""
set -eu
mount -t cgroup2 none /sys/fs/cgroup
D=/sys/fs/cgroup/$NAME
mkdir -p $D/login
chown $USERID:$GROUPID $D $D/cgroup.procs $D/cgroup.subtree_control $D/cgroup.threads \
      $D/login $D/login/cgroup.procs
echo $$ > $D/login/cgroup.procs
rc=0
setpriv --reuid=$USERID --regid=$GROUPID --clear-groups \
    env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR=$XDG $RUNTIME run --bundle $BUNDLE $CID || rc=$?
echo $$ > /sys/fs/cgroup/cgroup.procs
find $D -mindepth 1 -maxdepth 1 -type d -printf "%f\n"
rmdir $D/login $D
exit $rc
"""


def test_delegated_cgroup_v2_is_used_and_limited(user, cid):
    need("setpriv", "util-linux")
    if "cgroup2" not in Path("/proc/filesystems").read_text():
        pytest.skip("the kernel has no cgroup2 filesystem")
    name = f"isola-it-deleg-{os.getpid()}"
    b = user.bundle(cid, ["sh", "-c", f"cat /proc/self/cgroup; "
                                      f"cat /sys/fs/cgroup/{name}/ctr/cgroup.max.descendants"])
    c = json.loads((b / "config.json").read_text())
    c["linux"]["cgroupsPath"] = f"/{name}/ctr"
    c["linux"]["resources"] = {"unified": {"cgroup.max.descendants": "3"}}
    helpers.write_json(b / "config.json", c)
    env = dict(os.environ, NAME=name, USERID=str(user.uid), GROUPID=str(user.gid), XDG=str(user.xdg),
               RUNTIME=str(user.runtime), BUNDLE=str(b), CID=cid)
    r = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", DELEGATE], env=env)
    assert r.rc == 0, str(r)
    lines = r.out.splitlines()
    assert "0::/" in lines, str(r)  # the init sits at the root of its cgroup namespace: ctr
    assert lines[lines.index("0::/") + 1] == "3", str(r)  # the limit was written
    assert "warning" not in r.err, str(r)
    assert lines[-1] == "login", str(r)  # the container's cgroup is gone again


# ---- podman as the user ---------------------------------------------------------

@pytest.fixture(scope="module")
def rootless_podman(user, rootfs):
    need("podman", "podman")
    d = user.work / "podman"
    d.mkdir()
    (d / "containers.conf").write_text(f"""\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
runtime = "isola"
[engine.runtimes]
isola = ["{user.runtime}"]
""")
    # Rootless storage ignores graphroot: rootless_storage_path is the one.
    (d / "storage.conf").write_text(f'[storage]\ndriver = "vfs"\nrootless_storage_path = "{d}/storage"\n')
    rootfs_tar(rootfs, d / "rootfs.tar")
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(d)], check=True)
    env = {"CONTAINERS_CONF": str(d / "containers.conf"),
           "CONTAINERS_STORAGE_CONF": str(d / "storage.conf")}
    log = d / "isola-oci.log"

    def podman(*args, timeout=90):
        r = user.run("podman", "--runtime", user.runtime, "--runtime-flag", f"log={log}", *args,
                     env=env, timeout=timeout)
        if r.rc:
            r.extra = f"--- isola-oci log\n{tail(log)}"
        return r
    ok(podman("import", d / "rootfs.tar", "isola-busybox"))
    yield podman
    podman("rm", "-af", "-t", "0")
    podman("rmi", "-af")
    user.run("podman", "system", "reset", "--force", env=env)  # storage owned by the user's namespace


def test_podman_rootless_run(user, rootless_podman):
    r = ok(rootless_podman("run", "--rm", "--network", "none", "isola-busybox", "sh", "-c",
                           "id -u; cat /proc/self/uid_map; echo ok > /tmp/f && cat /tmp/f"))
    lines = r.out.splitlines()
    assert lines[0] == "0", str(r)
    assert lines[1].split() == ["0", str(user.uid), "1"], str(r)
    assert lines[2].split() == ["1", str(user.base), str(SUB_SIZE)], str(r)
    assert lines[3] == "ok", str(r)


def test_podman_rootless_detached_exec_stop(user, rootless_podman):
    name = f"rlp{os.getpid()}"
    cid = ok(rootless_podman("run", "-d", "--network", "none", "--name", name, "isola-busybox",
                             "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done")).out.split()[-1]
    # The runtime's state is under the user's XDG_RUNTIME_DIR.
    assert (user.xdg / "isola-oci" / cid).is_dir()
    r = ok(rootless_podman("exec", name, "sh", "-c", "echo in-exec; id -u"))
    assert r.out.split() == ["in-exec", "0"], str(r)
    ok(rootless_podman("stop", "-t", "10", name))
    r = ok(rootless_podman("inspect", "--format", "{{.State.ExitCode}}", name))
    assert r.out.strip() == "3", str(r)
    ok(rootless_podman("rm", name))
    assert not (user.xdg / "isola-oci" / cid).exists()


def test_podman_rootless_default_network(user, rootless_podman):
    need("slirp4netns", "slirp4netns")
    if user.run("sh", "-c", "test -r /dev/net/tun && test -w /dev/net/tun").rc != 0:
        pytest.skip("/dev/net/tun is not usable by an unprivileged user here (slirp4netns needs it)")
    r = ok(rootless_podman("run", "--rm", "isola-busybox", "ip", "-o", "link"))
    assert "tap0" in r.out or "eth0" in r.out, str(r)
