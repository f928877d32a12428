#!/usr/bin/python3
"""Case 4: peak RSS of a runtime running a container (`run` of /bin/true).

What is measured, per run: the largest ru_maxrss of any single process of the
runtime's process tree - the runtime itself, every helper it forks (re-exec'd
init, intermediate clone children) and the container process, which starts
life as a runtime process and keeps that peak across execve. Not a sum.

How: GNU time forks and execs the runtime and reports, via wait4(), the
runtime process's maxrss, which already folds in every descendant that a
process of the tree reaped. A process that escapes by double-forking is
reparented to this script (it is a child subreaper) and collected here with
wait4() too; the run's figure is the max of both. GNU time is the launcher
because it forks from a tiny process: a process forked from Python would
start with Python's own page-table footprint and inflate the floor.

Usage: rss.py OUT.json RUNS RT...   (commands from $BENCH_WORK, see run.sh)
"""
import ctypes
import json
import os
import statistics
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
TIME = "/usr/bin/time"


def spawn(argv):
    null = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
    return os.posix_spawn(argv[0], argv, os.environ, file_actions=null)


def measure(argv, timeout=30.0):
    """Returns (maxrss of the tree in KiB, orphans reaped, exit status)."""
    with tempfile.NamedTemporaryFile("r", prefix="rss.", dir=os.environ.get("BENCH_WORK")) as out:
        pid = spawn([TIME, "-f", "%M %x", "-o", out.name, "--"] + argv)
        peak, orphans, status = 0, 0, None
        deadline = time.monotonic() + timeout
        while True:
            flags = os.WNOHANG if status is not None else 0
            try:
                got, wstatus, ru = os.wait4(-1, flags)
            except ChildProcessError:
                break
            if got == 0:  # children left after the runtime exited: let them finish
                if time.monotonic() > deadline:
                    raise RuntimeError("processes left running after %s" % argv[0])
                time.sleep(0.01)
                continue
            if got == pid:
                text = out.read().split()
                if len(text) < 2:
                    raise RuntimeError("no result from %s for %s" % (TIME, " ".join(argv)))
                peak = max(peak, int(text[-2]))
                status = int(text[-1])
            else:
                orphans += 1
                peak = max(peak, ru.ru_maxrss)
        return peak, orphans, status


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: rss.py OUT.json RUNS RT...")
    out, runs, runtimes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work = os.environ["BENCH_WORK"]
    cid = os.environ.get("BENCH_ID", "bench") + "-rss"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("rss: prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))

    results = {}
    floor, _, _ = measure(["/bin/true"])
    print("  for scale: the same measurement of host /bin/true: %d KiB" % floor)
    for rt in runtimes:
        argv = ["%s/bin/%s" % (work, rt), "--root", "%s/root/%s" % (work, rt),
                "run", "--bundle", "%s/bundle-true" % work, cid]
        samples, orphans = [], 0
        for _ in range(runs):
            peak, n, status = measure(argv)
            if status != 0:
                print("  %s: run exited with %d; dropping this runtime" % (rt, status))
                samples = []
                break
            samples.append(peak)
            orphans += n
        if not samples:
            results[rt] = {"error": "run failed"}
            continue
        results[rt] = {
            "samples_kib": samples,
            "median_kib": statistics.median(samples),
            "min_kib": min(samples),
            "max_kib": max(samples),
            "orphans_reaped": orphans,
        }
        print("  %-10s peak RSS median %6.0f KiB  (min %d, max %d, %d runs, %d orphaned processes reaped)"
              % (rt, results[rt]["median_kib"], min(samples), max(samples), len(samples), orphans))
    with open(out, "w") as f:
        json.dump({"floor_true_kib": floor, "runtimes": results}, f, indent=1)


if __name__ == "__main__":
    main()
