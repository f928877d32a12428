#!/usr/bin/python3
"""Runs a command as a child subreaper and reaps every orphan under it.

Detached runtimes (`create`, `start`) leave the container's init without its
parent; as subreaper we adopt it and collect it when it exits, so no zombie
piles up behind the benchmark whatever the host's PID 1 does. Exits with the
command's status.
Usage: reaper.py CMD [ARG...]
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: reaper.py CMD [ARG...]")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("reaper: prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))
    # leftovers.py tells benchmark processes from the host's by this ancestor.
    os.environ["BENCH_REAPER_PID"] = str(os.getpid())
    # Ctrl-C goes to the whole foreground group; let the command decide.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            sys.exit(125)
        except InterruptedError:
            continue
        if got == pid:
            if os.WIFEXITED(status):
                sys.exit(os.WEXITSTATUS(status))
            sys.exit(128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main()
