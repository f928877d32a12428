#!/usr/bin/python3
"""Finds what benchmark containers left behind, and removes crun's stubs.

Looks, for every container id starting with PREFIX, for: entries in each
runtime's state directory, cgroup directories in every mounted cgroup
hierarchy, and processes still running below the benchmark's subreaper
(BENCH_REAPER_PID). Prints one line per finding; exits 1 if any.

Inside the benchmark's mount namespace /sys/fs/cgroup/unified is unmounted,
and crun 1.8.1 then writes <id>/cgroup.procs into the bare tmpfs directory
underneath; those stubs are ours, so they are counted and removed (only
there, and only while that path is not a mount point).
Usage: leftovers.py PREFIX [ROOTDIR...]
"""
import os
import sys

CGROUP = "/sys/fs/cgroup"


def mountpoints():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def cgroup_hierarchies():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] in ("cgroup", "cgroup2"):
                yield fields[4]


def cgroup_dirs(prefix, max_depth=4):
    found = []
    for top in cgroup_hierarchies():
        base = top.count("/")
        for path, dirs, _ in os.walk(top):
            if path.count("/") - base >= max_depth:
                dirs[:] = []
            for d in list(dirs):
                if d.startswith(prefix):
                    found.append(os.path.join(path, d))
                    dirs.remove(d)
    return found


def remove_crun_stubs(prefix):
    """Removes <unified>/<id>/cgroup.procs stubs from the tmpfs; returns how many."""
    unified = os.path.join(CGROUP, "unified")
    if not os.path.isdir(unified) or unified in mountpoints():
        return 0
    removed = 0
    for d in os.listdir(unified):
        path = os.path.join(unified, d)
        if not d.startswith(prefix) or not os.path.isdir(path):
            continue
        for name in os.listdir(path):
            if name == "cgroup.procs":
                os.unlink(os.path.join(path, name))
        try:
            os.rmdir(path)
            removed += 1
        except OSError as e:
            print("leftovers: cannot remove %s: %s" % (path, e.strerror), file=sys.stderr)
    return removed


def ancestry(pid):
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            with open("/proc/%d/status" % pid) as f:
                pid = next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
        except (OSError, StopIteration):
            break
    return chain


def benchmark_processes():
    """Processes below the benchmark's subreaper, except this script's own chain."""
    reaper = int(os.environ.get("BENCH_REAPER_PID", "0"))
    if not reaper:
        return []
    mine = set(ancestry(os.getpid()))
    procs = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in mine:
            continue
        chain = ancestry(pid)
        if reaper in chain[1:]:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            state = stat[stat.rindex(")") + 2]
            if state != "Z":
                procs.append((pid, comm))
    return procs


def check(prefix, roots):
    problems = []
    for root in roots:
        if os.path.isdir(root):
            problems += ["state entry %s/%s" % (root, e) for e in os.listdir(root) if prefix in e]
    problems += ["cgroup %s" % d for d in cgroup_dirs(prefix)]
    problems += ["process %d (%s)" % p for p in benchmark_processes()]
    return problems


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: leftovers.py PREFIX [ROOTDIR...]")
    prefix, roots = sys.argv[1], sys.argv[2:]
    stubs = remove_crun_stubs(prefix)
    if stubs:
        print("  removed %d cgroup.procs stub(s) that crun wrote under the unmounted %s/unified" % (stubs, CGROUP))
    problems = check(prefix, roots)
    for p in problems:
        print("  LEFTOVER: %s" % p)
    if not problems:
        print("  no leftovers: no state entries, cgroups or processes of %s*" % prefix)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
