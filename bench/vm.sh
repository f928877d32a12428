#!/bin/bash
# The VM layer's benchmark (not part of `make bench` yet: a few minutes of
# TCG boots): boot to agent-ready through the library against the same QEMU
# command line by hand, QEMU's RSS for an idle guest, live-migration time and
# downtime. See bench/vm.py and bench/README.md.
# Usage: bench/vm.sh BUILD   (builds nothing: run `make vm` first)
set -euo pipefail
(($# == 1)) || { echo "usage: $0 BUILD" >&2; exit 2; }
build=$(cd "$1" && pwd)
((EUID == 0)) || { echo "bench/vm.sh: must run as root" >&2; exit 1; }
[[ -x $build/vmctl && -f $build/vm/base.qcow2 ]] || { echo "bench/vm.sh: no vmctl or VM image in $build: make vm" >&2; exit 1; }
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$(dirname "$0")/vm.py" "$build"
