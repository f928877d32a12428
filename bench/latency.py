#!/usr/bin/python3
"""Start latency the way a busy host sees it: `run` of /bin/true, one run per
runtime per round, runtimes interleaved (the order rotates every round), so
that no runtime gets a warm cache, a warm RCU state or a warm CPU from its own
previous run; optionally with an idle gap before each run (`paced`), as when
containers start now and then rather than in a tight loop.

Usage: latency.py --bundle DIR --root DIR --rounds N [--gap MS] [--out JSON]
                  NAME=BINARY...
Prints, per runtime, the median, p90, min and max in milliseconds, and the
ratios of the first runtime to each other one (median and p90). Runs must be
started inside the same private mount namespace as the rest of the bench.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def pct(values, p):
    """The p-th percentile, nearest rank on the sorted values."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def one_run(binary, root, bundle, cid):
    t0 = time.perf_counter()
    p = subprocess.run([binary, "--root", root, "run", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000.0
    if p.returncode != 0:
        # leave nothing behind, and say why
        subprocess.run([binary, "--root", root, "delete", "-f", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raise RuntimeError(f"{binary} run failed ({p.returncode}): {p.stderr.decode(errors='replace')[-300:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.0, help="idle milliseconds before each run")
    ap.add_argument("--id", default=f"lat{os.getpid()}")
    ap.add_argument("--out")
    ap.add_argument("runtimes", nargs="+")
    a = ap.parse_args()
    rts = []
    for spec in a.runtimes:
        name, _, binary = spec.partition("=")
        rts.append((name, binary))
        os.makedirs(os.path.join(a.root, name), exist_ok=True)
    times = {name: [] for name, _ in rts}
    for rnd in range(a.warmup + a.rounds):
        k = rnd % len(rts)
        order = rts[k:] + rts[:k]
        for name, binary in order:
            if a.gap:
                time.sleep(a.gap / 1000.0)
            dt = one_run(binary, os.path.join(a.root, name), a.bundle, f"{a.id}-{name}")
            if rnd >= a.warmup:
                times[name].append(dt)
    mode = f"paced ({a.gap:g} ms idle before each run)" if a.gap else "interleaved"
    print(f"run /bin/true, {mode}, {a.rounds} rounds, order rotated every round")
    print(f"{'runtime':<12}{'median':>9}{'p90':>9}{'min':>9}{'max':>9}  (ms)")
    res = {}
    for name, _ in rts:
        v = times[name]
        res[name] = {"median": statistics.median(v), "p90": pct(v, 90), "min": min(v), "max": max(v),
                     "runs": v}
        r = res[name]
        print(f"{name:<12}{r['median']:9.1f}{r['p90']:9.1f}{r['min']:9.1f}{r['max']:9.1f}")
    first = rts[0][0]
    for name, _ in rts[1:]:
        print(f"{first}/{name}: median {res[first]['median'] / res[name]['median']:.2f}, "
              f"p90 {res[first]['p90'] / res[name]['p90']:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"mode": mode, "gap_ms": a.gap, "rounds": a.rounds, "results": res}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
