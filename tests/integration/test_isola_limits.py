"""Limits and configuration of `isola` instances that the tenant can turn
against the host or the admin: a disk throttle that would hold `stop`, a
--privileged instance that would change the host's kernel settings or its
own limits, and configuration commands that must say what is wrong."""

import os
import re
from pathlib import Path

import pytest

from test_isola_instance import (  # noqa: F401  (fixtures used by name)
    Host, assert_gone, host, lxcfs_dir, wait_for)

V2 = not Path("/sys/fs/cgroup/memory").is_dir()


# ---- a disk throttle does not hold stop ----------------------------------------------------

def writer_stuck_in_throttle(h, name):
    """A process inside whose fsync waits on the 1 B/s throttle (state D)."""
    h.sh(name, "dd if=/dev/zero of=/f bs=64k count=16 conv=fsync >/dev/null 2>&1 &")
    wait_for(lambda: " D " in h.sh(name, "ps -o pid,stat,args | grep [d]d || true") + " ",
             what="the writer to block in the throttle")


@pytest.mark.parametrize("force", [False, True])
def test_stop_ends_an_instance_held_by_a_disk_throttle(host, force):
    host.ok("launch", "busybox", "thr", "--limit", "disk.write=1B")
    pid = host.info("thr")["pid"]
    writer_stuck_in_throttle(host, "thr")
    args = ["stop", "--force", "thr"] if force else ["stop", "--timeout", "5", "thr"]
    p = host.run(*args, timeout=50)
    assert p.returncode == 0, p.stderr
    assert host.info("thr")["status"] == "stopped"
    assert not Path(f"/proc/{pid}").exists()
    # the limit is still configured for the next start
    assert host.ok("config", "get", "thr", "limits.disk.write").strip() == "1B"
    host.ok("delete", "thr")
    assert_gone(host, "thr", pid)


def test_delete_force_ends_an_instance_held_by_a_disk_throttle(host):
    host.ok("launch", "busybox", "thd", "--limit", "disk.write=1B")
    pid = host.info("thd")["pid"]
    writer_stuck_in_throttle(host, "thd")
    p = host.run("delete", "--force", "thd", timeout=50)
    assert p.returncode == 0, p.stderr
    assert_gone(host, "thd", pid)


# ---- --privileged keeps the kernel's files read-only ------------------------------------

def test_privileged_cannot_change_kernel_settings_or_its_own_limits(host):
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    host.ok("launch", "busybox", "pv", "--privileged", "--limit", "memory=64MiB")
    sh = lambda s: host.run("exec", "pv", "--", "/bin/sh", "-c", s)  # noqa: E731
    # /proc/sys is read-only, and stays so: no umount, remount or new proc mount
    assert sh("echo '|/tmp/evil' > /proc/sys/kernel/core_pattern").returncode != 0
    assert sh("umount /proc/sys").returncode != 0
    assert sh("umount -l /proc/sys").returncode != 0
    assert sh("mount -o remount,rw /proc/sys").returncode != 0
    assert sh("mount -o remount,bind,rw /proc/sys").returncode != 0
    assert sh("mkdir -p /mnt/p && mount -t proc proc /mnt/p").returncode != 0
    assert sh("echo '|/tmp/evil' > /proc/sys/kernel/core_pattern").returncode != 0
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern
    # /sys and the cgroup files too: the memory limit stays where the host put it
    limit = "memory.max" if V2 else "memory/memory.limit_in_bytes"
    assert sh(f"echo 1073741824 > /sys/fs/cgroup/{limit}").returncode != 0
    assert sh("mount -o remount,rw /sys/fs/cgroup").returncode != 0
    assert sh("mkdir -p /mnt/c && mount -t cgroup -o memory none /mnt/c").returncode != 0
    assert sh("mkdir -p /mnt/c2 && mount -t cgroup2 none /mnt/c2").returncode != 0
    assert sh("mount -o remount,rw /sys").returncode != 0
    assert sh("echo 1 > /sys/kernel/mm/ksm/run").returncode != 0
    assert host.ok("config", "get", "pv", "limits.memory").strip() == "64MiB"
    assert "MemTotal:          65536 kB" in host.sh("pv", "cat /proc/meminfo")
    cg = [d for d in Path("/sys/fs/cgroup").glob(f"**/{host.cgroup_parent()}/pv")
          if (d / "memory.limit_in_bytes").exists() or (d / "memory.max").exists()]
    assert cg, "the instance's memory cgroup"
    f = cg[0] / ("memory.max" if (cg[0] / "memory.max").exists() else "memory.limit_in_bytes")
    assert f.read_text().strip() == str(64 << 20)


def test_privileged_opt_out_keeps_mounts_writable(host):
    host.fails("launch", "busybox", "np", "--config", "security.protect_host=false",
               match="security.protect_host")  # only for --privileged
    host.fails("launch", "busybox", "pw", "--privileged", "--config", "security.protect_host=maybe",
               match="security.protect_host")
    host.ok("launch", "busybox", "pw", "--privileged", "--config", "security.protect_host=false")
    # mounting is allowed again (nothing on the host is touched here)
    host.sh("pw", "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && touch /mnt/t/x && umount /mnt/t")
    assert " /proc/sys " not in host.sh("pw", "grep ' ro,' /proc/self/mountinfo || true")


def test_help_says_what_privileged_means():
    import subprocess
    from test_isola_instance import ISOLA
    out = subprocess.run([str(ISOLA), "--help"], capture_output=True, text=True).stdout
    assert "--privileged" in out and "host root" in out, out
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "host root" in readme


# ---- configuration commands say what is wrong -------------------------------------------

def test_environment_path_replaces_the_default(host):
    host.ok("launch", "busybox", "envp", "--env", "PATH=/bin:/sbin", "--env", "EXTRA=1")
    pid = host.info("envp")["pid"]
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert [e for e in env if e.startswith(b"PATH=")] == [b"PATH=/bin:/sbin"], env
    assert b"EXTRA=1" in env and b"HOME=/root" in env


def test_config_get_and_unset_refuse_unknown_keys(host):
    host.ok("create", "busybox", "cfg", "--limit", "memory=64MiB")
    host.fails("config", "get", "cfg", "nosuchkey", match="nosuchkey")
    host.fails("config", "unset", "cfg", "limits.zzz", match="limits.zzz")
    host.fails("config", "unset", "cfg", "bogus.key", match="bogus.key")
    # a known key that is not set: nothing to print, not an error
    assert host.ok("config", "get", "cfg", "limits.cpu") == ""
    assert host.ok("config", "get", "cfg", "environment.FOO") == ""
    host.ok("config", "unset", "cfg", "limits.cpu")
    assert host.ok("config", "get", "cfg", "limits.memory").strip() == "64MiB"


def test_lowering_memory_below_usage_says_why(host):
    host.ok("launch", "busybox", "mem", "--limit", "memory=256MiB")
    # shared memory is not reclaimable without swap
    host.sh("mem", "dd if=/dev/zero of=/dev/shm/hold bs=1M count=48 2>/dev/null")
    msg = host.fails("config", "set", "mem", "limits.memory", "16MiB", match="limits.memory")
    assert "Device or resource busy" not in msg, msg
    assert re.search(r"uses \d+(\.\d+)? MiB", msg) and "16MiB" in msg, msg
    assert host.ok("config", "get", "mem", "limits.memory").strip() == "256MiB"
    host.ok("config", "set", "mem", "limits.memory", "128MiB")
