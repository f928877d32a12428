#!/usr/bin/python3
"""Start latency the way a busy host sees it: `run` of /bin/true, one run per
runtime per round, runtimes interleaved (the order rotates every round), so
that no runtime gets a warm cache, a warm RCU state or a warm CPU from its own
previous run; optionally with an idle gap before each run (`paced`), as when
containers start now and then rather than in a tight loop.

Usage: latency.py --bundle DIR --root DIR [--rounds N] [--warmup N] [--gap MS]
                  [--id ID] [--out JSON] NAME=BINARY...
Each runtime keeps its state under ROOT/NAME; the container is ID-NAME.
Prints, per runtime, the median, p90, min and max in milliseconds, and the
ratios of the first runtime to each other one (median and p90). A runtime
whose run fails is dropped from the remaining rounds (its figures are left
out, the reason is printed and recorded in the JSON); the exit status is 1
then. Run it inside the same private mount namespace as the rest of the bench.
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
        raise RuntimeError("run failed (exit %d): %s" % (p.returncode,
                                                          p.stderr.decode(errors="replace").strip()[-300:]))
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument("--gap", type=float, default=0.0, help="idle milliseconds before each run")
    ap.add_argument("--id", default="lat%d" % os.getpid())
    ap.add_argument("--out")
    ap.add_argument("runtimes", nargs="+", metavar="NAME=BINARY")
    a = ap.parse_args()
    if a.rounds < 1 or a.warmup < 0 or a.gap < 0:
        ap.error("--rounds must be at least 1, --warmup and --gap not negative")
    rts = []
    for spec in a.runtimes:
        name, _, binary = spec.partition("=")
        if not name or not binary:
            ap.error("runtime %r: expected NAME=BINARY" % spec)
        rts.append((name, binary))
        os.makedirs(os.path.join(a.root, name), exist_ok=True)
    times = {name: [] for name, _ in rts}
    failed = {}
    for rnd in range(a.warmup + a.rounds):
        k = rnd % len(rts)
        for name, binary in rts[k:] + rts[:k]:
            if name in failed:
                continue
            if a.gap:
                time.sleep(a.gap / 1000.0)
            try:
                dt = one_run(binary, os.path.join(a.root, name), a.bundle, "%s-%s" % (a.id, name))
            except RuntimeError as e:
                failed[name] = "round %d: %s" % (rnd + 1, e)
                print("  %s: FAILED, left out: %s" % (name, failed[name]))
                continue
            if rnd >= a.warmup:
                times[name].append(dt)
    mode = "paced (%g ms idle before each run)" % a.gap if a.gap else "interleaved"
    print("run /bin/true, %s, %d rounds (+%d warm-up), order rotated every round" % (mode, a.rounds, a.warmup))
    print("%-12s%9s%9s%9s%9s  (ms)" % ("runtime", "median", "p90", "min", "max"))
    res = {}
    for name, _ in rts:
        if name in failed:
            res[name] = {"failed": failed[name]}
            print("%-12s%9s" % (name, "FAILED"))
            continue
        v = times[name]
        res[name] = {"median": statistics.median(v), "p90": pct(v, 90), "min": min(v), "max": max(v),
                     "runs": v}
        r = res[name]
        print("%-12s%9.1f%9.1f%9.1f%9.1f" % (name, r["median"], r["p90"], r["min"], r["max"]))
    first = rts[0][0]
    for name, _ in rts[1:]:
        if first in failed or name in failed:
            continue
        print("%s/%s: median %.2f, p90 %.2f" % (first, name, res[first]["median"] / res[name]["median"],
                                                res[first]["p90"] / res[name]["p90"]))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"mode": mode, "gap_ms": a.gap, "rounds": a.rounds, "warmup": a.warmup,
                       "results": res}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
