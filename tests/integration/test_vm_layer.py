"""The virtual-machine layer (src/vm) with real QEMU under TCG, driven through
its test driver `vmctl` (tests/vm), which uses the library the way the
manager will: a monitor process is QEMU's parent and relays its console,
other commands reach the VM through its QMP and agent sockets.

Boots are kept few and small (128-256 MiB, one vCPU but for the q35 test)
and run one after another: each takes a core for a few seconds. Every test
checks what the guest and the host observe, and that nothing is left: no
QEMU process, no socket, no overlay once the VM's directory is deleted.
KVM is not exercised (see test_accel_probe)."""

import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ISOLA_BUILD") or REPO / "build").resolve()
VMCTL = BUILD / "vmctl"
IMAGE = BUILD / "vm"
TIMEOUT = float(os.environ.get("ISOLA_IT_VM_TIMEOUT", "120"))

pytestmark = pytest.mark.skipif(
    not (IMAGE / "base.qcow2").exists() or not VMCTL.exists(),
    reason=f"no VM image or vmctl in {BUILD} (make vm)")


def wait_for(pred, timeout=30.0, what="condition", interval=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def vmctl(*args, check=True, input=None, timeout=TIMEOUT):
    r = subprocess.run([str(VMCTL), *map(str, args)], capture_output=True, text=True,
                       input=input, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"vmctl {' '.join(map(str, args))}: rc={r.returncode}\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def qemu_pids(marker):
    """QEMU processes whose command line mentions marker."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmd and marker in cmd:
            out.append(int(p.name))
    return out


class VM:
    """One VM's runtime directory and the vmctl commands on it."""

    def __init__(self, base, name):
        self.name = f"{name}-{os.getpid()}"  # QEMU's -name guest=NAME: unique on the host
        self.dir = base / self.name
        self.dir.mkdir()

    def start(self, *opts, check=True):
        r = vmctl("start", self.dir, "--image", IMAGE, "--timeout-ms", int(TIMEOUT * 1000), *opts,
                  check=check)
        return json.loads(r.stdout) if r.returncode == 0 else r

    def sh(self, script, check=True, **kw):
        r = vmctl("exec", self.dir, "--", "sh", "-c", script, check=check, **kw)
        return r.stdout if check else r

    def json(self, *cmd):
        return json.loads(vmctl(cmd[0], self.dir, *cmd[1:]).stdout)

    def exit_record(self, timeout=30):
        return json.loads(vmctl("wait-exit", self.dir, "--timeout-ms", int(timeout * 1000)).stdout)

    def assert_gone(self):
        """No QEMU, no socket; the directory itself goes with the test."""
        assert qemu_pids(f"guest={self.name}") == []
        socks = [p.name for p in self.dir.iterdir() if p.is_socket()]
        assert socks == [], f"sockets left in {self.dir}: {socks}"


@pytest.fixture
def vmbase():
    base = Path(tempfile.mkdtemp(prefix="isola-vm-it."))
    yield base
    # What a failed test left running goes (a passing test stopped its VMs
    # and checked that nothing was left); each monitor records the exit
    # before the directory is removed.
    for d in base.iterdir():
        pids = set(qemu_pids(f"guest={d.name}"))
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if pids and (d / "vm.json").exists():
            wait_for(lambda: (d / "exit.json").exists(), timeout=10, what=f"{d}/exit.json")
    shutil.rmtree(base)
    assert not base.exists()


def meminfo_total_kib(vm):
    return vm.json("meminfo")["total_kib"]


def test_microvm_exec_console_limits_poweroff(vmbase):
    vm = VM(vmbase, "m1")
    info = vm.start("--memory", "256MiB", "--cpus", "1")
    assert info["machine"] == "microvm" and info["accel"] == "tcg"
    # the guest sees its allocation: 256 MiB minus what its kernel keeps
    total = meminfo_total_kib(vm)
    assert 160 * 1024 < total <= 256 * 1024, total
    assert vm.sh("nproc").strip() == "1"
    assert vm.sh("grep -c ^processor /proc/cpuinfo").strip() == "1"
    assert vm.sh("uname -r").strip() == (IMAGE / "kernel.release").read_text().strip()
    # the root disk is the overlay, on virtio (mmio)
    assert "/dev/vda on / type ext4" in vm.sh("mount")
    # exit code, stdout and stderr apart
    r = vm.sh("echo out; echo err >&2; exit 3", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    # killed by a signal: 128 + n, like a shell
    assert vm.sh("kill -9 $$", check=False).returncode == 137
    # a missing command: the guest's reason
    r = vmctl("exec", vm.dir, "--", "/no/such", check=False)
    assert r.returncode == 127 and 'exec "/no/such": No such file or directory' in r.stderr
    # stdin reaches the command
    assert vmctl("exec", vm.dir, "--", "tr", "a-z", "A-Z", input="hello vm\n").stdout == "HELLO VM\n"
    # a terminal with the size asked for
    r = vmctl("exec", vm.dir, "-t", "--size", "33x101", "--", "sh", "-c", "tty; stty size")
    lines = r.stdout.replace("\r", "").split("\n")
    assert re.fullmatch(r"/dev/pts/\d+", lines[0]) and lines[1] == "33 101", r.stdout
    # the serial console, relayed by the monitor: a shell answers there
    token = f"console-{os.getpid()}"
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(vm.dir / "console.sock"))
        c.sendall(f"\necho {token}-$((6*7))\n".encode())
        wait_for(lambda: f"{token}-42" in (vm.dir / "console.log").read_text(errors="replace"),
                 what="the console's answer")
    # clean power-off (microvm: the agent's request)
    rec = vm.json("stop", "--timeout-ms", 30000)
    assert rec["kind"] == "poweroff" and rec["code"] == 0, rec
    assert "Power down" in (vm.dir / "console.log").read_text(errors="replace")
    vm.assert_gone()


def test_q35_two_vcpus_acpi_poweroff(vmbase):
    vm = VM(vmbase, "q1")
    vm.start("--machine", "q35", "--memory", "192MiB", "--cpus", "2")
    assert vm.sh("nproc").strip() == "2"
    total = meminfo_total_kib(vm)
    assert 100 * 1024 < total <= 192 * 1024, total
    # a PC: virtio devices on PCI (vendor 0x1af4), ACPI
    vendors = vm.sh("cat /sys/bus/pci/devices/*/vendor").split()
    assert "0x1af4" in vendors and "0x8086" in vendors, vendors
    assert vm.sh("ls /sys/firmware/acpi/tables").strip() != ""
    # stop: ACPI system_powerdown, the guest's acpid powers off
    rec = vm.json("stop", "--timeout-ms", 30000)
    assert rec["kind"] == "poweroff" and rec["code"] == 0, rec
    assert "Power down" in (vm.dir / "console.log").read_text(errors="replace")
    vm.assert_gone()


COUNTER = ("i=0; while true; do i=$((i+1)); echo $i > /run/counter; usleep 100000; done "
           ">/dev/null 2>&1 </dev/null &")


def counter(vm):
    return int(vm.sh("cat /run/counter"))


def test_pause_resume_balloon_throttle_usage_kill(vmbase):
    vm = VM(vmbase, "p1")
    vm.start("--memory", "256MiB", "--throttle", "1048576,2097152,100,200")
    # throttling given at start reaches QEMU's block layer (query-block)
    assert vm.json("throttle-get") == {"bps_rd": 1048576, "bps_wr": 2097152, "iops_rd": 100, "iops_wr": 200}
    vmctl("throttle", vm.dir, "10485760,0,0,50")
    assert vm.json("throttle-get") == {"bps_rd": 10485760, "bps_wr": 0, "iops_rd": 0, "iops_wr": 50}

    # pause: the guest stops (a counter ticking 10 times a second inside
    # does not advance while the host waits 3 s), resume: it goes on
    vm.sh(COUNTER)
    wait_for(lambda: counter(vm) > 3, what="the counter")
    before = counter(vm)
    vmctl("pause", vm.dir)
    assert vm.json("status")["status"] == "paused"
    t0 = time.monotonic()
    time.sleep(3)
    vmctl("resume", vm.dir)
    assert vm.json("status")["status"] == "running"
    after = counter(vm)
    assert after - before < 15, (before, after, time.monotonic() - t0)
    wait_for(lambda: counter(vm) > after + 5, what="the counter after resume")

    # balloon: the guest's memory shrinks, then grows back
    full = meminfo_total_kib(vm)
    vmctl("balloon", vm.dir, "128MiB")
    wait_for(lambda: vm.json("usage")["balloon_bytes"] == 128 << 20, what="the balloon inflating")
    assert meminfo_total_kib(vm) < full - 100 * 1024
    r = vmctl("balloon", vm.dir, "1MiB", check=False)
    assert r.returncode == 1 and "memory 1 MiB is below the minimum of 64 MiB" in r.stderr, r.stderr
    r = vmctl("balloon", vm.dir, "512MiB", check=False)
    assert r.returncode == 1 and "more than the 256 MiB it was started with" in r.stderr, r.stderr
    vmctl("balloon", vm.dir, "256MiB")
    wait_for(lambda: meminfo_total_kib(vm) > full - 8 * 1024, what="the balloon deflating")

    # disk usage: what the guest writes lands in its overlay
    used = vm.json("usage")["disk_bytes"]
    vm.sh("dd if=/dev/urandom of=/data bs=1M count=8 2>/dev/null; sync")
    assert vm.json("usage")["disk_bytes"] >= used + 8 * 1024 * 1024
    assert vm.json("usage")["rss_bytes"] > 64 << 20

    # force kill
    rec = vm.json("kill")
    assert rec["kind"] == "killed" and rec["signal"] == 9, rec
    vm.assert_gone()


def base_digest():
    return hashlib.sha256((IMAGE / "base.qcow2").read_bytes()).hexdigest()


def test_overlays_copy_on_write(vmbase):
    digest = base_digest()
    a, b = VM(vmbase, "cowa"), VM(vmbase, "cowb")
    # both boot at once from the same base
    procs = [subprocess.Popen([str(VMCTL), "start", str(v.dir), "--image", str(IMAGE), "--memory", "128MiB",
                               "--timeout-ms", str(int(TIMEOUT * 1000))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (a, b)]
    for p in procs:
        out, err = p.communicate(timeout=TIMEOUT + 10)
        assert p.returncode == 0, err
    a.sh("echo from-a > /marker; sync")
    b.sh("echo from-b > /marker; sync")
    assert a.sh("cat /marker") == "from-a\n"
    assert b.sh("cat /marker") == "from-b\n"
    assert b.sh("ls /marker*") == "/marker\n"
    for v in (a, b):
        assert v.json("stop", "--timeout-ms", 30000)["kind"] == "poweroff"
        v.assert_gone()
    # the overlay is the VM's disk: a restart finds what it wrote
    a.start("--memory", "128MiB")
    assert a.sh("cat /marker") == "from-a\n"
    assert a.json("stop", "--timeout-ms", 30000)["kind"] == "poweroff"
    a.assert_gone()
    # the base never changed; each overlay points at it
    assert base_digest() == digest
    for v in (a, b):
        vmctl("check-disk", v.dir / "root.qcow2", "--backing", IMAGE.resolve() / "base.qcow2")


def test_guest_crash_is_an_exit_of_its_own(vmbase):
    vm = VM(vmbase, "crash1")
    vm.start("--memory", "128MiB")
    vm.sh("echo c > /proc/sysrq-trigger", check=False)
    rec = vm.exit_record()
    # pvpanic + -action panic=exit-failure: QEMU exits 1, not 0 as on power-off
    assert rec["kind"] == "crash" and rec["code"] == 1, rec
    assert "Kernel panic" in (vm.dir / "console.log").read_text(errors="replace")
    vm.assert_gone()


def test_live_migration_over_a_pipe(vmbase):
    src, dst = VM(vmbase, "mig-src"), VM(vmbase, "mig-dst")
    src.start("--memory", "256MiB")
    src.sh(COUNTER)
    wait_for(lambda: counter(src) > 3, what="the counter")
    boot_id = src.sh("cat /proc/sys/kernel/random/boot_id")
    # the destination waits for a stream; on one host both use the same disk
    dst.start("--memory", "256MiB", "--incoming", "--disk", src.dir / "root.qcow2")
    assert dst.json("status")["status"] == "inmigrate"
    before = counter(src)
    send = subprocess.Popen([str(VMCTL), "migrate-send", str(src.dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    recv = subprocess.run([str(VMCTL), "migrate-receive", str(dst.dir)], stdin=send.stdout,
                          capture_output=True, text=True, timeout=TIMEOUT)
    send.stdout.close()
    _, serr = send.communicate(timeout=TIMEOUT)
    assert send.returncode == 0, serr
    assert recv.returncode == 0, recv.stderr
    stats = json.loads(serr.decode())
    print(f"\nmigration: total {stats['total_ms']} ms, downtime {stats['downtime_ms']} ms, "
          f"{stats['transferred_bytes'] >> 20} MiB sent")
    assert stats["total_ms"] > 0 and stats["transferred_bytes"] > 0
    # the guest went on where it was: same boot, the counter continues
    assert dst.json("status")["status"] == "running"
    assert dst.sh("cat /proc/sys/kernel/random/boot_id") == boot_id
    now = counter(dst)
    assert now >= before
    wait_for(lambda: counter(dst) > now + 5, what="the counter on the destination")
    # the source quit (status 0) once its part was done
    assert src.exit_record()["kind"] == "poweroff"
    src.assert_gone()
    assert dst.json("stop", "--timeout-ms", 30000)["kind"] == "poweroff"
    dst.assert_gone()


def qcow2_header(path):
    with open(path, "rb") as f:
        h = f.read(104)
    return {"l1": struct.unpack(">Q", h[40:48])[0], "refcount_table": struct.unpack(">Q", h[48:56])[0]}


def refused(vm, *opts):
    r = vm.start(*opts, check=False)
    assert r.returncode == 1
    # nothing was started or left
    assert not (vm.dir / "vm.json").exists()
    vm.assert_gone()
    return r.stderr


def test_refusals_leave_nothing(vmbase):
    vm = VM(vmbase, "bad1")
    assert 'machine "pdp11": unknown (microvm or q35)' in refused(vm, "--machine", "pdp11")
    assert "memory 1 KiB is below the minimum of 64 MiB" in refused(vm, "--memory", "1KiB")
    empty = vmbase / "empty-image"
    empty.mkdir()
    err = vmctl("start", vm.dir, "--image", empty, check=False).stderr
    assert "VM image: kernel" in err and "No such file or directory" in err, err

    base = IMAGE.resolve() / "base.qcow2"
    # not qcow2 at all
    junk = vmbase / "junk.qcow2"
    junk.write_bytes(b"\0" * 65536)
    err = refused(vm, "--disk", junk, "--backing", base)
    assert f"disk {junk}: not a usable qcow2 file" in err, err
    # marked corrupt (incompatible feature bit 1)
    marked = vmbase / "marked.qcow2"
    vmctl("overlay", base, marked)
    with open(marked, "r+b") as f:
        f.seek(72)
        f.write(struct.pack(">Q", 2))
    err = refused(vm, "--disk", marked, "--backing", base)
    assert "corrupt qcow2: the image is marked corrupt" in err, err
    # refcounts destroyed: qemu-img check finds it
    broken = vmbase / "broken.qcow2"
    vmctl("overlay", base, broken)
    with open(broken, "r+b") as f:
        f.seek(qcow2_header(broken)["refcount_table"])
        f.write(b"\0" * 8)
    err = refused(vm, "--disk", broken, "--backing", base)
    assert re.search(r"corrupt qcow2: qemu-img check found \d+ corruptions", err), err
    # an overlay whose backing file is a host file: never handed to a guest
    forged = vmbase / "forged.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(forged),
                    "64M"], check=True)
    err = refused(vm, "--disk", forged, "--backing", base)
    assert f"backing file /etc/hostname, expected {base}" in err, err
    # an overlay is never written over an existing file
    r = vmctl("overlay", base, marked, check=False)
    assert r.returncode == 1 and "File exists" in r.stderr


def test_accel_probe(vmbase):
    """KVM only when a probe boot works; TCG otherwise; the answer kept.

    On this development machine /dev/kvm exists but guests hang or QEMU
    aborts under it: the probe must say tcg, within its deadline. Where KVM
    works the probe says kvm; either way the choice is remembered."""
    state = vmbase / "state"
    state.mkdir()
    t0 = time.monotonic()
    first = json.loads(vmctl("probe", state, "--image", IMAGE, "--timeout-ms", 8000).stdout)
    assert first["accel"] in ("kvm", "tcg")
    assert time.monotonic() - t0 < 60
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert first["accel"] == "tcg" and "/dev/kvm" in first["why"]
        return
    assert "probe boot under KVM" in first["why"], first
    cached = json.loads((state / "vm-accel.json").read_text())
    assert cached["accel"] == first["accel"] and "qemu=" in cached["key"]
    second = json.loads(vmctl("probe", state, "--image", IMAGE).stdout)
    assert second["accel"] == first["accel"] and "remembered in" in second["why"]
    # a different host (here: another key) probes again
    cached["key"] = "another host"
    cached["accel"] = "kvm" if first["accel"] == "tcg" else "tcg"
    (state / "vm-accel.json").write_text(json.dumps(cached))
    third = json.loads(vmctl("probe", state, "--image", IMAGE, "--timeout-ms", 8000).stdout)
    assert third["accel"] == first["accel"] and "remembered" not in third["why"]
    assert qemu_pids("isola.probe") == []
