"""Instance storage of the `isola` manager: the disk limit (limits.disk) on a
store with project quotas (a loop-mounted ext4 made here with -O
quota,project and mounted with prjquota) and on one without (the root file
system: a per-instance loop-mounted ext4 image), deep and hostile trees made
by the tenant that delete must remove and info must count, a delete killed
half-way whose trash a later command collects, and lock files that exist only
for existing instances. A static helper (storage_helper.c) runs inside the
instances as the tenant."""

import ctypes
import fcntl
import os
import resource
import signal
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from test_isola_instance import (  # noqa: F401  (fixtures used by name)
    ASAN, BUILD, ISOLA, Host, assert_gone, host, lxcfs_dir, mounts_mentioning, processes_mentioning,
    wait_for)

HERE = Path(__file__).resolve().parent
MiB = 1 << 20


# ---- the tenant's helper and an image that carries it ---------------------------

@pytest.fixture(scope="module")
def tools_tar():
    """The busybox rootfs plus /usr/bin/storage_helper, as a tarball."""
    d = Path(tempfile.mkdtemp(prefix="isola-stor-tools.", dir="/tmp"))
    helper = d / "storage_helper"
    subprocess.run(["cc", "-static", "-O2", "-o", str(helper), str(HERE / "storage_helper.c")], check=True)
    tar = d / "tools.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(str(BUILD / "rootfs"), arcname=".")
        tf.add(str(helper), arcname="usr/bin/storage_helper")
    yield tar
    subprocess.run(["rm", "-rf", str(d)])


def import_tools(h, tools_tar):
    h.ok("image", "import", tools_tar, "--alias", "tools")


# ---- a store on ext4 with project quotas ---------------------------------------------

class QuotaStore(Host):
    """A Host whose state directory is on its own ext4 (loop device) with
    project quotas enforced."""

    def __init__(self, base):
        self.base = Path(base)
        os.chmod(self.base, 0o711)
        self.image = self.base / "fs.img"
        self.mnt = self.base / "mnt"
        self.mnt.mkdir()
        with open(self.image, "wb") as f:
            f.truncate(2048 * MiB)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "quota,project", "-E", "nodiscard",
                        str(self.image)], check=True, capture_output=True)
        p = subprocess.run(["mount", "-o", "loop,prjquota", str(self.image), str(self.mnt)],
                           capture_output=True, text=True)
        self.mounted = p.returncode == 0
        self.mount_error = p.stderr.strip()
        if not self.mounted:
            return
        os.chmod(self.mnt, 0o711)
        self.device = next(line.split()[0] for line in Path("/proc/self/mounts").read_text().splitlines()
                           if line.split()[1] == str(self.mnt))
        self.state = self.mnt / "state"
        self.env = dict(os.environ, ISOLA_STATE_DIR=str(self.state))


# struct if_dqblk and the quotactl commands (linux/quota.h)
Q_GETQUOTA, Q_GETNEXTQUOTA, PRJQUOTA = 0x800007, 0x800009, 2
libc = ctypes.CDLL(None, use_errno=True)


class IfDqblk(ctypes.Structure):
    _fields_ = [("bhardlimit", ctypes.c_uint64), ("bsoftlimit", ctypes.c_uint64),
                ("curspace", ctypes.c_uint64), ("ihardlimit", ctypes.c_uint64),
                ("isoftlimit", ctypes.c_uint64), ("curinodes", ctypes.c_uint64),
                ("btime", ctypes.c_uint64), ("itime", ctypes.c_uint64), ("valid", ctypes.c_uint32)]


class IfNextDqblk(ctypes.Structure):
    _fields_ = IfDqblk._fields_ + [("id", ctypes.c_uint32)]


def project_quota(device, projid):
    """(hard limit in bytes, bytes used, inodes used) of a project."""
    q = IfDqblk()
    if libc.quotactl((Q_GETQUOTA & ~0xff) | PRJQUOTA, device.encode(), projid, ctypes.byref(q)) < 0:
        raise OSError(ctypes.get_errno(), f"Q_GETQUOTA {projid}")
    return q.bhardlimit * 1024, q.curspace, q.curinodes


def project_entries(device):
    """Project ids other than 0 that have a quota entry."""
    ids, nxt = [], 1
    while True:
        q = IfNextDqblk()
        if libc.quotactl((Q_GETNEXTQUOTA & ~0xff) | PRJQUOTA, device.encode(), nxt, ctypes.byref(q)) < 0:
            return ids
        ids.append(q.id)
        nxt = q.id + 1


FS_IOC_FSGETXATTR = 0x801C581F


def project_id(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(28))
    finally:
        os.close(fd)
    return struct.unpack("IIIII8x", buf)[3]


@pytest.fixture
def qhost(lxcfs_dir):
    base = tempfile.mkdtemp(prefix="isola-quota.", dir="/tmp")
    try:
        h = QuotaStore(base)
    except BaseException:
        subprocess.run(["rm", "-rf", base])
        raise
    if not h.mounted:
        subprocess.run(["rm", "-rf", base])
        pytest.skip("this kernel cannot mount ext4 with project quotas (it needs CONFIG_QUOTA and "
                    f"CONFIG_QFMT_V2): {h.mount_error}")
    yield h
    h.cleanup()
    left = mounts_mentioning(str(h.mnt) + "/")
    procs = processes_mentioning(str(h.state))
    entries = project_entries(h.device)
    subprocess.run(["rm", "-rf", str(h.state)])
    subprocess.run(["umount", str(h.mnt)])
    subprocess.run(["rm", "-rf", base])
    assert not procs, f"processes left after delete: {procs}"
    assert not left, f"mounts left on the host: {left}"
    assert not entries, f"project quota entries left: {entries}"


def loops_backed_by(path):
    """Loop devices whose backing file lies under path."""
    found = []
    for b in Path("/sys/block").glob("loop*"):
        try:
            if (b / "loop" / "backing_file").read_text().startswith(str(path)):
                found.append(b.name)
        except OSError:
            pass
    return found


def can_resize_mounted_ext4():
    """EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE, which some hosts keep from everyone."""
    bnd = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("CapBnd:")).split()[1], 16)
    return bool(bnd & (1 << 24))


def fill(h, name, path="/fill"):
    out = h.ok("exec", name, "--", "storage_helper", "fill", path).split()
    return int(out[0]), " ".join(out[1:])


def df_total_kib(h, name):
    return int(h.sh(name, "df -k / | tail -n 1").split()[1])


# ---- limits.disk with project quotas -------------------------------------------------

def test_disk_limit_with_project_quotas(qhost, tools_tar):
    h = qhost
    import_tools(h, tools_tar)
    h.ok("launch", "tools", "q1", "--limit", "disk=64MiB")
    upper = h.inst_dir("q1") / "upper"
    projid = project_id(upper)
    assert projid != 0
    assert project_quota(h.device, projid)[0] == 64 * MiB
    # the tenant sees the limit and cannot write past it
    assert 60 * 1024 <= df_total_kib(h, "q1") <= 64 * 1024
    written, err = fill(h, "q1")
    assert err == "EDQUOT" and 56 * MiB <= written <= 64 * MiB, (written, err)
    assert project_quota(h.device, projid)[1] <= 64 * MiB
    assert h.info("q1")["usage"]["disk_bytes"] >= 56 * MiB
    # a tenant root in its user namespace cannot move a file out of the project
    assert h.ok("exec", "q1", "--", "storage_helper", "setproj", "/fill", "0").startswith("refused")
    assert project_quota(h.device, projid)[1] >= 56 * MiB
    # grow: more room at once
    h.ok("config", "set", "q1", "limits.disk", "128MiB")
    assert 120 * 1024 <= df_total_kib(h, "q1") <= 128 * 1024
    written2, err = fill(h, "q1", "/fill2")
    assert err == "EDQUOT" and written2 >= 56 * MiB, (written2, err)
    # shrinking below what is in use is refused, with the numbers
    msg = h.fails("config", "set", "q1", "limits.disk", "32MiB", match="limits.disk")
    assert "in use" in msg, msg
    assert h.ok("config", "get", "q1", "limits.disk").strip() == "128MiB"
    assert project_quota(h.device, projid)[0] == 128 * MiB
    h.sh("q1", "rm /fill /fill2")
    wait_for(lambda: project_quota(h.device, projid)[1] < 8 * MiB, what="the space to be given back")
    h.ok("config", "set", "q1", "limits.disk", "32MiB")
    assert project_quota(h.device, projid)[0] == 32 * MiB
    # delete leaves no quota entry for the project
    h.ok("delete", "--force", "q1")
    assert_gone(h, "q1")
    wait_for(lambda: project_quota(h.device, projid) == (0, 0, 0), what="the project's quota to go")
    wait_for(lambda: projid not in project_entries(h.device), what="the project's quota entry to go")


def test_disk_limit_added_later_counts_existing_files(qhost, tools_tar):
    h = qhost
    import_tools(h, tools_tar)
    h.ok("launch", "tools", "q2")
    assert project_id(h.inst_dir("q2") / "upper") == 0
    h.sh("q2", "mkdir -p /data/a/b && dd if=/dev/zero of=/data/a/b/f bs=1M count=8 2>/dev/null; sync")
    h.ok("config", "set", "q2", "limits.disk", "16MiB")
    projid = project_id(h.inst_dir("q2") / "upper")
    assert projid != 0
    assert project_quota(h.device, projid)[1] >= 8 * MiB  # the files written before count
    written, err = fill(h, "q2")
    assert err == "EDQUOT" and written <= 8 * MiB, (written, err)
    h.sh("q2", "rm /fill")
    h.ok("config", "unset", "q2", "limits.disk")
    assert project_quota(h.device, projid)[0] == 0
    h.ok("delete", "--force", "q2")
    wait_for(lambda: projid not in project_entries(h.device), what="the project's quota entry to go")


def test_disk_limit_below_minimum_and_bad_values(host):
    host.fails("launch", "busybox", "q3", "--limit", "disk=1MiB", match="at least 16MiB")
    host.fails("launch", "busybox", "q3", "--limit", "disk=lots", match='limits.disk: "lots"')
    host.fails("launch", "busybox", "q3", "--limit", "disk=50%", match='limits.disk: "50%"')
    assert "q3" not in host.list() and not host.inst_dir("q3").exists()


# ---- limits.disk without project quotas: a loop-mounted image ---------------------------

def test_disk_limit_falls_back_to_a_disk_image(host, tools_tar):
    h = host
    import_tools(h, tools_tar)
    h.ok("launch", "tools", "l1", "--limit", "disk=64MiB")
    img = h.inst_dir("l1") / "disk.img"
    assert img.exists() and img.stat().st_size == 64 * MiB
    assert img.stat().st_blocks * 512 < 32 * MiB  # sparse
    # the mount exists only in the monitor's and the instance's namespaces
    assert not mounts_mentioning(str(h.inst_dir("l1")))
    assert 48 * 1024 <= df_total_kib(h, "l1") <= 64 * 1024
    written, err = fill(h, "l1")
    assert err == "ENOSPC" and 40 * MiB <= written <= 64 * MiB, (written, err)
    assert h.info("l1")["usage"]["disk_bytes"] >= 40 * MiB
    # grow while running: ext4 allows that only with CAP_SYS_RESOURCE
    if can_resize_mounted_ext4():
        h.ok("config", "set", "l1", "limits.disk", "128MiB")
        assert img.stat().st_size == 128 * MiB
        assert df_total_kib(h, "l1") >= 110 * 1024
    else:
        h.fails("config", "set", "l1", "limits.disk", "128MiB", match="CAP_SYS_RESOURCE")
        assert img.stat().st_size == 64 * MiB  # as it was
        assert h.ok("config", "get", "l1", "limits.disk").strip() == "64MiB"
        h.ok("stop", "--force", "l1")
        h.ok("config", "set", "l1", "limits.disk", "128MiB")
        assert img.stat().st_size == 128 * MiB
        h.ok("start", "l1")
        assert df_total_kib(h, "l1") >= 110 * 1024
    written2, err = fill(h, "l1", "/fill2")
    assert err == "ENOSPC" and written2 >= 40 * MiB, (written2, err)
    # a running instance's image does not shrink; a stopped one does, not below its use
    h.fails("config", "set", "l1", "limits.disk", "100MiB", match="stop")
    h.ok("stop", "--force", "l1")
    assert h.info("l1")["usage"]["disk_bytes"] >= 80 * MiB
    msg = h.fails("config", "set", "l1", "limits.disk", "64MiB", match="limits.disk")
    assert "in use" in msg, msg
    h.ok("start", "l1")
    h.sh("l1", "rm /fill2")
    h.ok("stop", "--force", "l1")
    h.ok("config", "set", "l1", "limits.disk", "96MiB")
    assert img.stat().st_size == 96 * MiB
    h.ok("start", "l1")
    assert h.sh("l1", "ls -l /fill | awk '{print $5}'").strip() == str(written)
    assert 80 * 1024 <= df_total_kib(h, "l1") <= 96 * 1024
    # the limit cannot be removed: the files live in the image
    h.fails("config", "unset", "l1", "limits.disk", match="limits.disk")
    assert loops_backed_by(h.inst_dir("l1"))
    h.ok("delete", "--force", "l1")
    assert_gone(h, "l1")
    wait_for(lambda: not loops_backed_by(h.base), what="the loop device to go")


def test_disk_image_goes_with_a_killed_monitor(host):
    h = host
    h.ok("launch", "busybox", "l2", "--limit", "disk=32MiB")
    info = h.info("l2")
    assert loops_backed_by(h.inst_dir("l2"))
    mon = int(Path(h.inst_dir("l2") / "monitor.pid").read_text().split()[0])
    os.kill(mon, signal.SIGKILL)
    os.kill(info["pid"], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{info['pid']}").exists(), what="the init to go")
    # nothing holds the image any more: its loop device detached itself
    wait_for(lambda: not loops_backed_by(h.base), what="the loop device to go")
    h.ok("start", "l2")
    assert h.info("l2")["status"] == "running"
    h.ok("delete", "--force", "l2")
    wait_for(lambda: not loops_backed_by(h.base), what="the loop device to go")


def test_disk_limit_refused_without_quotas_or_mke2fs(host):
    """Without mke2fs (hidden here in a private mount namespace) on a store
    without project quotas, limits.disk is refused and nothing is left."""
    hide = " && ".join(f"mount --bind /dev/null {p}" for p in ("/usr/sbin/mke2fs", "/sbin/mke2fs")
                       if os.path.exists(p) and not os.path.islink("/sbin"))
    hide = hide or "mount --bind /dev/null /usr/sbin/mke2fs"
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f'{hide} && exec "$0" launch busybox nolim --limit disk=64MiB', str(ISOLA)],
                       env=host.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "limits.disk" in p.stderr and "mke2fs" in p.stderr and "quota" in p.stderr, p.stderr
    assert "nolim" not in host.list() and not host.inst_dir("nolim").exists()
    assert not (host.state / "locks" / "nolim.lock").exists()
    # on a store without project quotas the limit cannot be added to an existing instance
    host.ok("create", "busybox", "later")
    host.fails("config", "set", "later", "limits.disk", "64MiB", match="limits.disk")
    assert host.ok("config", "get", "later", "limits.disk") == ""


# ---- deep and hostile trees ----------------------------------------------------------------

@pytest.mark.parametrize("depth", [3000, 10000])
def test_deep_hostile_tree_is_counted_and_deleted(host, tools_tar, depth):
    import_tools(host, tools_tar)
    host.ok("launch", "tools", "deep")
    host.ok("exec", "deep", "--", "storage_helper", "deep", "/root", str(depth), str(2 * MiB), timeout=120)
    # usage has no depth limit: the file at the bottom counts
    usage = host.info("deep")["usage"]["disk_bytes"]
    # delete, with Debian's usual limit of 1024 open files, as an admin's shell has it
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    p = subprocess.run([str(ISOLA), "delete", "--force", "deep"], env=host.env, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard)))
    assert usage >= 2 * MiB and p.returncode == 0, (usage, p.stderr)
    assert_gone(host, "deep")
    assert not [e for e in (host.state / "instances").iterdir() if e.name.startswith(".trash-")]


def test_delete_removes_immutable_and_closed_entries(host, tools_tar):
    """Immutable and append-only attributes set inside (overlayfs keeps them
    in an xattr of the upper file, enforced inside) and a root-owned mode 000
    directory; tests/unit/test-manager-storage.c sets real attributes."""
    import_tools(host, tools_tar)
    host.ok("launch", "tools", "imm", "--privileged")
    host.ok("exec", "imm", "--", "storage_helper", "protect", "/root/p")
    host.ok("exec", "imm", "--", "storage_helper", "deep", "/root", "600", "10")
    assert host.run("exec", "imm", "--", "rm", "-rf", "/root/p/immutable").returncode != 0
    p = host.run("delete", "--force", "imm", timeout=120)
    assert p.returncode == 0, p.stderr
    assert_gone(host, "imm")


# ---- crash leftovers: trash and locks ---------------------------------------------------

def test_trash_of_a_killed_delete_is_collected(host, tools_tar):
    import_tools(host, tools_tar)
    inst = host.state / "instances"

    def trash():
        return [e for e in inst.iterdir() if e.name.startswith(".trash-")]

    for attempt in range(10):
        host.ok("launch", "tools", "tr")
        # enough files that removing them takes a while
        host.sh("tr", "mkdir /many && cd /many && for i in $(seq 500); do mkdir d$i; "
                "for j in $(seq 40); do : > d$i/f$j; done; done", timeout=120)
        p = subprocess.Popen([str(ISOLA), "delete", "--force", "tr"], env=host.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: p.poll() is not None or trash(), what="the delete to rename the instance",
                 interval=0.001)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if trash():
            break
    assert trash(), "the delete always finished before it could be killed"
    # a later command collects the trash; delete finishes the rest
    lst = host.list()
    wait_for(lambda: not trash(), what="a later command to collect the trash")
    if "tr" in lst:
        assert lst["tr"]["status"] == "broken", lst
        host.ok("delete", "tr")
    assert_gone(host, "tr")
    assert not (host.state / "locks" / "tr.lock").exists()


def test_trash_of_a_live_delete_is_left_alone(host):
    """A .trash-* whose owner still runs is not touched (here: this test process)."""
    host.ok("list")
    start = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    mine = host.state / "instances" / f".trash-x-{os.getpid()}-{start}"
    mine.mkdir()
    (mine / "keep").write_text("x")
    host.ok("list")
    assert (mine / "keep").exists()
    gone = host.state / "instances" / ".trash-y-999999999-1"
    gone.mkdir()
    (gone / "d").mkdir()
    host.ok("list")
    assert not gone.exists()
    subprocess.run(["rm", "-rf", str(mine)])


def test_lock_files_exist_only_for_instances(host):
    locks = host.state / "locks"
    host.fails("start", "nosuch", match="instance 'nosuch' not found")
    host.fails("stop", "nosuch", match="not found")
    host.fails("delete", "nosuch", match="not found")
    host.fails("config", "set", "nosuch", "limits.memory", "64MiB", match="not found")
    assert not (locks / "nosuch.lock").exists()
    host.ok("create", "busybox", "lk")
    assert (locks / "lk.lock").exists()
    host.fails("create", "busybox", "lk", match="already exists")
    host.fails("launch", "nosuchimage", "lk2", match="not found")
    host.fails("launch", "busybox", "lk3", "--limit", "memory=1XB", match="limits.memory")
    assert sorted(p.name for p in locks.iterdir()) == ["lk.lock"]
    host.ok("delete", "lk")
    assert list(locks.iterdir()) == []


def test_lock_removal_keeps_commands_serialized(host):
    """Deletes racing with creates, starts and config changes of the same name:
    every command either works on a whole instance or finds none, and in the
    end a lock file exists exactly when the instance does."""
    locks = host.state / "locks"
    for round_ in range(4):
        procs = []
        for args in (["create", "busybox", "race"], ["delete", "--force", "race"],
                     ["config", "set", "race", "limits.processes", "77"], ["start", "race"],
                     ["delete", "--force", "race"], ["create", "busybox", "race"]):
            procs.append(subprocess.Popen([str(ISOLA), *args], env=host.env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
        for p in procs:
            p.wait(timeout=60)
            err = p.stderr.read()
            assert "database" not in err and "corrupt" not in err and "lock" not in err, err
        lst = host.list()
        assert (locks / "race.lock").exists() == ("race" in lst), (round_, lst, list(locks.iterdir()))
        if "race" in lst:
            assert lst["race"]["status"] in ("running", "stopped"), lst
            host.ok("delete", "--force", "race")
        assert list(locks.iterdir()) == []
        assert_gone(host, "race")
