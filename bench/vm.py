#!/usr/bin/python3
"""The VM layer's figures (bench/vm.sh runs this; see bench/README.md):

1. boot to agent-ready, for microvm and q35: through the library (`vmctl
   start`: a fresh qcow2 overlay, the disk checks, the monitor, QEMU, the
   agent's answer) against the same QEMU command line run by hand (`vmctl
   argv` prints it; this script makes the sockets, starts QEMU on an
   existing overlay and waits for the agent's PONG). Runs alternate between
   the two; medians and the library's overhead in percent.
2. QEMU's RSS for an idle 256 MiB guest (after the boot settled).
3. live migration of a 256 MiB guest over a pipe: total time and downtime.

Usage: bench/vm.py BUILD   (BUILD holds vmctl and vm/)
Knobs: VM_BENCH_RUNS=5 (per machine and side), VM_BENCH_MEMORY=256MiB."""

import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BUILD = Path(sys.argv[1]).resolve()
VMCTL = str(BUILD / "vmctl")
IMAGE = BUILD / "vm"
RUNS = int(os.environ.get("VM_BENCH_RUNS", "5"))
MEMORY = os.environ.get("VM_BENCH_MEMORY", "256MiB")
MAGIC = 0x31475349


def vmctl(*args, **kw):
    r = subprocess.run([VMCTL, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)
    if r.returncode != 0:
        raise SystemExit(f"vmctl {' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout


def by_library(d, machine):
    t0 = time.monotonic()
    vmctl("start", d, "--image", IMAGE, "--machine", machine, "--memory", MEMORY)
    t = time.monotonic() - t0
    vmctl("kill", d)
    return t


def by_hand(d, machine, overlay):
    """QEMU started directly with the library's command line (fds 3, 4, 5)."""
    argv = vmctl("argv", d, "--image", IMAGE, "--machine", machine, "--memory", MEMORY,
                 "--disk", overlay).splitlines()
    qmp, agent = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
    qmp.bind(str(d / "h-qmp.sock"))
    agent.bind(str(d / "h-agent.sock"))
    qmp.listen(4)
    agent.listen(4)
    con, con_q = socket.socketpair()
    fds = {3: qmp.fileno(), 4: agent.fileno(), 5: con_q.fileno()}

    def place():
        import fcntl
        high = {to: fcntl.fcntl(fr, fcntl.F_DUPFD, 100) for to, fr in fds.items()}
        for to, fr in high.items():
            os.dup2(fr, to, inheritable=True)

    t0 = time.monotonic()
    p = subprocess.Popen(argv, pass_fds=(3, 4, 5), preexec_fn=place, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    def drain():  # QEMU stalls the guest when its console is not read
        try:
            while con.recv(65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(d / "h-agent.sock"))
    c.sendall(struct.pack("<IHHII", MAGIC, 1, 0, 1, 8) + struct.pack("<Q", 77))
    buf = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            raise SystemExit("by hand: the agent's channel closed")
        buf += chunk
        i = buf.find(struct.pack("<I", MAGIC))
        if i >= 0 and len(buf) >= i + 28 and struct.unpack("<H", buf[i + 4:i + 6])[0] == 64:
            break
    t = time.monotonic() - t0
    p.send_signal(signal.SIGKILL)
    p.wait()
    for s in (c, qmp, agent, con, con_q):
        s.close()
    for n in ("h-qmp.sock", "h-agent.sock"):
        (d / n).unlink()
    return t


def fixed_costs(base):
    """What the library does before QEMU runs: the overlay and the disk checks."""
    create, check = [], []
    img = (IMAGE / "base.qcow2").resolve()
    for i in range(10):
        p = base / f"fixed-{i}.qcow2"
        t0 = time.monotonic()
        vmctl("overlay", img, p)
        t1 = time.monotonic()
        vmctl("check-disk", p, "--backing", img)
        t2 = time.monotonic()
        create.append(t1 - t0)
        check.append(t2 - t1)
        p.unlink()
    return statistics.median(create), statistics.median(check)


def rss_idle(base):
    d = base / "rss"
    d.mkdir()
    vmctl("start", d, "--image", IMAGE, "--memory", "256MiB")
    time.sleep(3)
    u = json.loads(vmctl("usage", d))
    vmctl("kill", d)
    return u["rss_bytes"]


def migration(base):
    src, dst = base / "msrc", base / "mdst"
    src.mkdir()
    dst.mkdir()
    vmctl("start", src, "--image", IMAGE, "--memory", "256MiB")
    vmctl("start", dst, "--image", IMAGE, "--memory", "256MiB", "--incoming", "--disk", src / "root.qcow2")
    send = subprocess.Popen([VMCTL, "migrate-send", str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    recv = subprocess.run([VMCTL, "migrate-receive", str(dst)], stdin=send.stdout, capture_output=True, text=True)
    send.stdout.close()
    _, err = send.communicate()
    if send.returncode or recv.returncode:
        raise SystemExit(f"migration failed: {err.decode()} {recv.stderr}")
    vmctl("kill", dst)
    return json.loads(err.decode())


def main():
    base = Path(tempfile.mkdtemp(prefix="isola-vm-bench."))
    results = {}
    try:
        for machine in ("microvm", "q35"):
            lib, hand = [], []
            overlay = base / f"hand-{machine}.qcow2"
            vmctl("overlay", (IMAGE / "base.qcow2").resolve(), overlay)
            for i in range(RUNS):
                for side in (("lib", "hand") if i % 2 == 0 else ("hand", "lib")):
                    d = base / f"{machine}-{side}-{i}"
                    d.mkdir()
                    if side == "lib":
                        lib.append(by_library(d, machine))
                    else:
                        hand.append(by_hand(d, machine, overlay))
            ml, mh = statistics.median(lib), statistics.median(hand)
            results[machine] = {"library_s": ml, "by_hand_s": mh, "overhead_pct": 100 * (ml - mh) / mh,
                                "library_runs": lib, "by_hand_runs": hand}
            print(f"{machine:8} boot to agent: library {ml:.2f} s, by hand {mh:.2f} s, "
                  f"overhead {100 * (ml - mh) / mh:+.1f} % (medians of {RUNS})", flush=True)
        fc, fk = fixed_costs(base)
        results["overlay_create_s"], results["disk_check_s"] = fc, fk
        print(f"the library's own work before QEMU starts: overlay {fc * 1000:.0f} ms, disk checks {fk * 1000:.0f} ms "
              f"(qemu-img, medians of 10)", flush=True)
        rss = rss_idle(base)
        results["rss_idle_256MiB_bytes"] = rss
        print(f"QEMU RSS, idle 256 MiB microvm guest: {rss / 2**20:.0f} MiB", flush=True)
        m = migration(base)
        results["migration"] = m
        print(f"live migration, 256 MiB guest over a pipe: total {m['total_ms']} ms, downtime {m['downtime_ms']} ms, "
              f"{m['transferred_bytes'] / 2**20:.0f} MiB sent", flush=True)
        (BUILD / "bench-vm.json").write_text(json.dumps(results, indent=2))
    finally:
        for d in base.iterdir():
            if d.is_dir() and (d / "vm.json").exists() and not (d / "exit.json").exists():
                subprocess.run([VMCTL, "kill", str(d)], capture_output=True)
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
