#!/usr/bin/python3
"""Where a runtime's wall time goes off the CPU, from scheduler events.

Record the events with kernel stacks, system-wide, around a few runs, then
feed `perf script` to this script with the basename of the runtime binary:

    perf record -a -g -e sched:sched_switch -e sched:sched_wakeup \\
        -e sched:sched_process_fork -e sched:sched_process_exec \\
        -e sched:sched_process_exit -o off.data -- CMD...
    perf script -i off.data | bench/offcpu.py - isola-oci

Every exec of a file with that basename starts a run (a runtime exec'd by
another process of a run, such as crun re-executing itself, belongs to that
run); every process it forks belongs to the run. Per run, the script prints
the mean wall time, the time on a CPU per command, the time blocked (asleep
until woken) summed by the kernel stack the process blocked in, and the time
spent runnable but waiting for a CPU (after a wake-up, or preempted).
Usage: offcpu.py PERF_SCRIPT_OUTPUT|- BASENAME [TOP]
"""
import collections
import re
import sys

EVENT = re.compile(r"^(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+([\w:]+):\s*(.*)$")
# Frames that say nothing about why a task slept.
NOISE = ("__schedule", "schedule", "schedule_timeout", "schedule_preempt_disabled", "__cond_resched",
         "preempt_schedule", "io_schedule", "entry_SYSCALL_64", "do_syscall_64", "x64_sys_call",
         "schedule_hrtimeout", "do_nanosleep", "hrtimer_nanosleep", "irqentry_exit", "asm_sysvec",
         "exit_to_user_mode", "syscall_exit_to_user_mode", "wait_for_completion")


def parse(text):
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        m = EVENT.match(lines[0]) if lines and lines[0] else None
        if not m:
            continue
        comm, tid, _cpu, ts, name, args = m.groups()
        stack = [l.split()[1].split("+")[0] for l in lines[1:] if len(l.split()) >= 2]
        yield float(ts), int(tid), name.split(":", 1)[-1], args, stack, comm


def where(stack):
    """The syscall and the first kernel frames that explain a sleep."""
    frames = [f for f in stack if not f.startswith(NOISE) and not f.startswith("[")]
    syscall = [f for f in frames if f.startswith("__x64_sys_") or f.startswith("__do_sys_")][:1]
    kernel = [f for f in frames if f not in syscall][:4]
    return " < ".join(syscall + kernel) or "(user space)"


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: offcpu.py PERF_SCRIPT_OUTPUT|- BASENAME [TOP]")
    text = sys.stdin.read() if sys.argv[1] == "-" else open(sys.argv[1]).read()
    root, top = sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 12
    ours, starts, runs = set(), {}, []
    off, woken, since = {}, {}, {}
    oncpu, blocked, waiting, count = (collections.Counter() for _ in range(4))
    for ts, tid, name, args, stack, comm in parse(text):
        if name == "sched_process_exec":
            m = re.search(r"filename=(\S+)", args)
            if m and m.group(1).rsplit("/", 1)[-1] == root and tid not in ours:
                ours.add(tid)
                starts[tid] = ts
        elif name == "sched_process_fork":
            m = re.search(r" pid=(\d+) child_comm=.* child_pid=(\d+)", args)
            if m and int(m.group(1)) in ours:
                ours.add(int(m.group(2)))
        elif name == "sched_process_exit":
            if tid in starts:
                runs.append(ts - starts.pop(tid))
        elif name == "sched_switch":
            m = re.search(r"prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+)", args)
            if not m:
                continue
            prev, state, nxt = int(m.group(1)), m.group(2), int(m.group(3))
            if prev in ours:
                off[prev] = (ts, state, where(stack))
                if prev in since:
                    oncpu[comm] += ts - since.pop(prev)
            if nxt in ours:
                since[nxt] = ts
                if nxt in off:
                    t0, state, why = off.pop(nxt)
                    tw = woken.pop(nxt, None)
                    if state.startswith("R"):
                        waiting["preempted in " + why] += ts - t0
                        count["preempted in " + why] += 1
                    else:
                        tw = tw if tw is not None and tw >= t0 else ts
                        blocked[why] += tw - t0
                        count[why] += 1
                        waiting["after a wake-up"] += ts - tw
                        count["after a wake-up"] += 1
        elif name == "sched_wakeup":
            m = re.search(r" pid=(\d+)", args)
            if m and int(m.group(1)) in off:
                woken[int(m.group(1))] = ts
    if not runs:
        sys.exit("offcpu.py: no complete run of %s in the events" % root)
    n = len(runs)
    print("%d runs of %s, mean wall time %.2f ms" % (n, root, sum(runs) / n * 1000))
    print("on a CPU (ms per run): " + ", ".join("%s %.2f" % (c, v / n * 1000) for c, v in oncpu.most_common()))
    print("blocked (ms per run, times per run, where):")
    for why, v in blocked.most_common(top):
        print("  %7.3f  x%-4.1f %s" % (v / n * 1000, count[why] / n, why))
    print("runnable, waiting for a CPU (ms per run):")
    for why, v in waiting.most_common(max(3, top // 2)):
        print("  %7.3f  x%-4.1f %s" % (v / n * 1000, count[why] / n, why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
