#!/usr/bin/python3
"""Summarises one `make bench` run: medians per runtime and case (and the
p90 of the interleaved and paced `run` cases), and the ratios isola-oci/crun
and isola-oci/runc (below 1: isola-oci is faster or smaller). Reads
hyperfine's --export-json files and the latency/rss/many results from RAW;
prints a Markdown table and writes it to OUT.md, the figures to OUT.json.
Usage: summary.py RAW OUT RT...
"""
import glob
import json
import os
import statistics
import sys

TIMED = [
    ("run", "run /bin/true", "ms"),
    ("run-seccomp", "run /bin/true + seccomp", "ms"),
    ("create", "create", "ms"),
    ("start", "start", "ms"),
    ("delete", "delete (stopped)", "ms"),
    ("delete-force", "delete -f (running)", "ms"),
]


# latency.py results: (case, label); the paced label gets the gap.
LATENCY = [
    ("latency", "run /bin/true, interleaved"),
    ("latency-paced", "run /bin/true, interleaved, %g ms idle before each"),
]

FAILED = "failed"


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def hyperfine_medians(raw, case):
    """Pools the run times of every round (and per-runtime rerun) of CASE."""
    times = {}
    for path in sorted(glob.glob(os.path.join(raw, case + ".r*.json"))):
        data = load(path)
        for r in (data or {}).get("results", []):
            rt = r.get("parameters", {}).get("rt", r["command"])
            times.setdefault(rt, []).extend(r.get("times", []))
    medians = {}
    for rt, t in times.items():
        if not t:
            continue
        medians[rt] = {"median": statistics.median(t) * 1000.0, "mean": statistics.mean(t) * 1000.0,
                       "stddev": (statistics.stdev(t) if len(t) > 1 else 0.0) * 1000.0,
                       "min": min(t) * 1000.0, "max": max(t) * 1000.0, "runs": len(t)}
    return medians


def latency_rows(raw, runtimes, rows, figures):
    """Median and p90 rows of the interleaved and paced cases."""
    for case, label in LATENCY:
        data = load(os.path.join(raw, case + ".json"))
        failed = [rt for rt in runtimes if os.path.exists(os.path.join(raw, "%s.%s.failed" % (case, rt)))]
        if not data and not failed:
            continue
        res = (data or {}).get("results", {})
        if "%" in label:
            label = label % (data or {}).get("gap_ms", 0)
        figures[case] = data or {}
        for key, name in (("median", label + ": median"), ("p90", "  p90")):
            values = {}
            for rt in runtimes:
                r = res.get(rt)
                if rt in failed or (r and "failed" in r):
                    values[rt] = FAILED
                elif r:
                    values[rt] = r[key]
            rows.append((name, "ms", values))


def fmt(v):
    if abs(v) < 10:
        return "%.2f" % v
    return "%.1f" % v if abs(v) < 100 else "%.0f" % v


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: summary.py RAW OUT RT...")
    raw, out, runtimes = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []  # (label, unit, {rt: value})
    figures = {}
    for case, label, unit in TIMED:
        m = hyperfine_medians(raw, case)
        values = {rt: v["median"] for rt, v in m.items()}
        for rt in runtimes:  # a trial or a timed run failed: no figure
            if os.path.exists(os.path.join(raw, "%s.%s.failed" % (case, rt))):
                m.pop(rt, None)
                m[rt] = {"failed": True}
                values[rt] = FAILED
        figures[case] = m
        rows.append((label, unit, values))
        if case == "run":
            latency_rows(raw, runtimes, rows, figures)

    rss = load(os.path.join(raw, "rss.json"))
    if rss:
        figures["rss"] = rss
        rows.append(("peak RSS of run", "KiB", {rt: v.get("median_kib", FAILED)
                                               for rt, v in rss["runtimes"].items()}))
    many = load(os.path.join(raw, "many.json"))
    if many:
        figures["many"] = many
        count = max(v["count"] for v in many.values())

        def row(label, unit, key):
            # Figures of a runtime that did not start them all would not compare.
            rows.append((label, unit, {rt: v[key] if v["started"] == v["count"] and "error" not in v
                                       else FAILED for rt, v in many.items()}))
        row("%d containers: start all" % count, "s", "start_all_s")
        row("  per container", "ms", "per_container_ms")
        row("  PSS per container", "KiB", "pss_per_container_kib")
        row("  MemAvailable drop per container", "KiB", "memavailable_drop_per_container_kib")
        row("  kernel memory per container", "KiB", "kernel_growth_per_container_kib")
        row("%d containers: delete -f all" % count, "s", "delete_all_s")

    me = "isola-oci"
    others = [rt for rt in ("crun", "runc") if rt in runtimes]
    head = ["case", "unit"] + runtimes
    if me in runtimes:
        head += ["%s/%s" % (me, o) for o in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table = []
    for label, unit, values in rows:
        if not values:
            continue
        cells = [label, unit]
        for rt in runtimes:
            v = values.get(rt)
            cells.append("-" if v is None else "FAILED" if v is FAILED else fmt(v))
        ratios = {}
        if me in runtimes:
            for o in others:
                a, b = values.get(me), values.get(o)
                r = a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
                ratios[o] = r
                cells.append("-" if r is None else "%.2f" % r)
        table.append({"case": label.strip(), "unit": unit, "ratios": ratios,
                      "values": {rt: (None if v is FAILED else v) for rt, v in values.items()}})
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    note = ("Medians of the timed cases over all hyperfine runs of all rounds; interleaved and paced run: median and p90 "
            "(nearest rank) of one run per runtime per round; peak RSS: median of the largest single process "
            "of the runtime's tree; many: one sequential pass. Ratios below 1: isola-oci is faster or smaller.\n")
    print("\n=== summary\n")
    print(text + "\n" + note)
    with open(out + ".md", "w") as f:
        f.write("# isola benchmark results\n\n" + text + "\n" + note)
    with open(out + ".json", "w") as f:
        json.dump({"runtimes": runtimes, "table": table, "details": figures}, f, indent=1)
    print("written: %s.md, %s.json (raw: %s)" % (out, out, raw))


if __name__ == "__main__":
    main()
