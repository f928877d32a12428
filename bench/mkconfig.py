#!/usr/bin/python3
"""Derives one benchmark config.json from the `runc spec` template.

Every runtime runs the very same file: only process.args, process.terminal
(off: the benchmark has no tty) and, optionally, linux.seccomp change.
Usage: mkconfig.py TEMPLATE OUT [--seccomp PROFILE.json] -- ARG...
"""
import json
import sys


def main():
    argv = sys.argv[1:]
    if "--" not in argv or len(argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    sep = argv.index("--")
    opts, args = argv[:sep], argv[sep + 1:]
    template, out, opts = opts[0], opts[1], opts[2:]
    seccomp = None
    while opts:
        if opts[0] == "--seccomp" and len(opts) > 1:
            seccomp = opts[1]
            opts = opts[2:]
        else:
            sys.exit("mkconfig: unknown option %r" % opts[0])
    if not args:
        sys.exit("mkconfig: no process args")
    with open(template) as f:
        config = json.load(f)
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    if seccomp:
        with open(seccomp) as f:
            config.setdefault("linux", {})["seccomp"] = json.load(f)
    with open(out, "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
