#!/usr/bin/python3
"""Case 5: COUNT containers running `sleep` at once, per runtime.

Starts them one after the other (create, then start; no parallelism, so the
figure is the sum of COUNT cold starts on a busy host, not a throughput
limit), then measures what they cost while all are running:
  - PSS of every process below the benchmark's subreaper (the container
    processes plus any per-container runtime process left running: monitors,
    shims), summed and divided by COUNT; broken down by command name;
  - the host's MemAvailable drop and the growth of kernel memory (Slab,
    KernelStack, PageTables, Percpu) from /proc/meminfo, divided by COUNT:
    namespaces, mount tables, cgroups and page tables count there, but so
    does anything else the host allocated in the meantime.
Then `delete -f`s them all (timed), and checks that nothing is left.
Usage: many.py OUT.json COUNT RT...
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import leftovers

MEMINFO_KEYS = ("MemAvailable", "MemFree", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu")


def meminfo():
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, rest = line.split(":", 1)
            values[key] = int(rest.split()[0])
    return values


def kernel_kib(m):
    return m["Slab"] + m["KernelStack"] + m["PageTables"] + m.get("Percpu", 0)


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_runtime(rt, count, work, prefix):
    binary = "%s/bin/%s" % (work, rt)
    root = "%s/root/%s" % (work, rt)
    bundle = "%s/bundle-sleep" % work
    ids = ["%s-%s-%03d" % (prefix, rt, i) for i in range(count)]
    errlog = tempfile.TemporaryFile("w+", dir=work)

    def runtime(*args):
        # The container inherits these descriptors: never a pipe we would wait on.
        return subprocess.run([binary, "--root", root] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=errlog).returncode

    result = {"count": count}
    time.sleep(1)
    before = meminfo()
    started, error = 0, None
    t0 = time.monotonic()
    for cid in ids:
        if runtime("create", "--bundle", bundle, cid) != 0:
            error = "create %s failed" % cid
            break
        if runtime("start", cid) != 0:
            error = "start %s failed" % cid
            break
        started += 1
    elapsed = time.monotonic() - t0
    time.sleep(1)
    after = meminfo()
    procs = leftovers.benchmark_processes()
    by_comm = {}
    for pid, comm in procs:
        entry = by_comm.setdefault(comm, {"processes": 0, "pss_kib": 0})
        entry["processes"] += 1
        entry["pss_kib"] += pss_kib(pid)
    total_pss = sum(e["pss_kib"] for e in by_comm.values())
    n = max(started, 1)
    result.update({
        "started": started,
        "start_all_s": elapsed,
        "per_container_ms": 1000.0 * elapsed / n,
        "processes": by_comm,
        "pss_per_container_kib": total_pss / n,
        "memavailable_drop_per_container_kib": (before["MemAvailable"] - after["MemAvailable"]) / n,
        "kernel_growth_per_container_kib": (kernel_kib(after) - kernel_kib(before)) / n,
        "meminfo_delta_kib": {k: after.get(k, 0) - before.get(k, 0) for k in MEMINFO_KEYS},
    })

    t0 = time.monotonic()
    failed_delete = 0
    for cid in ids[:started + (1 if error else 0)]:
        if runtime("delete", "-f", cid) != 0:
            failed_delete += 1
    result["delete_all_s"] = time.monotonic() - t0
    result["failed_deletes"] = failed_delete

    # The killed sleeps are reaped by the subreaper; give it a moment.
    for _ in range(50):
        if not leftovers.benchmark_processes():
            break
        time.sleep(0.1)
    result["crun_stubs_removed"] = leftovers.remove_crun_stubs(prefix + "-" + rt + "-")
    result["leftovers"] = leftovers.check(prefix + "-" + rt + "-", [root])
    if error:
        errlog.seek(0)
        result["error"] = error + ": " + errlog.read().strip()[-500:]
    return result


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: many.py OUT.json COUNT RT...")
    out, count, runtimes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work = os.environ["BENCH_WORK"]
    prefix = os.environ.get("BENCH_ID", "bench") + "-m"
    results = {}
    for rt in runtimes:
        r = one_runtime(rt, count, work, prefix)
        results[rt] = r
        procs = ", ".join("%d %s (%.0f KiB PSS)" % (e["processes"], c, e["pss_kib"])
                          for c, e in sorted(r["processes"].items()))
        print("  %-10s %d/%d started in %.2f s (%.1f ms each); deleted in %.2f s"
              % (rt, r["started"], count, r["start_all_s"], r["per_container_ms"], r["delete_all_s"]))
        print("  %-10s per container: %.0f KiB PSS of processes, %.0f KiB MemAvailable, %.0f KiB kernel"
              % ("", r["pss_per_container_kib"], r["memavailable_drop_per_container_kib"],
                 r["kernel_growth_per_container_kib"]))
        print("  %-10s processes while running: %s" % ("", procs or "none"))
        if r["crun_stubs_removed"]:
            print("  %-10s removed %d cgroup.procs stubs crun left under the unmounted cgroup2 mount point"
                  % ("", r["crun_stubs_removed"]))
        for p in r["leftovers"]:
            print("  %-10s LEFTOVER: %s" % ("", p))
        if not r["leftovers"]:
            print("  %-10s all deleted, nothing left" % "")
        if "error" in r:
            print("  %-10s ERROR: %s" % ("", r["error"]))
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
