#!/bin/bash
# `make demo`: launches one limited instance from the built-in busybox image
# with the isola manager, shows that it sees only what it was given (memory,
# CPUs, processes, its own uptime, its own users), execs into it, then stops
# and deletes it. Uses a temporary state directory, removed at the end, so
# the host keeps nothing. (`make demo-oci` shows the bare runtime.)
# Usage: scripts/demo.sh BUILD
set -euo pipefail

if (($# != 1)); then
	echo "usage: $0 BUILD" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
isola=$build/isola
[[ -x "$isola" ]] || { echo "demo: $isola not found: run make first" >&2; exit 1; }

state=$(mktemp -d /tmp/isola-demo.XXXXXX)
chmod 711 "$state"
export ISOLA_STATE_DIR=$state
# its own LXCFS daemon too, stopped at the end (the host's, if any, stays)
export ISOLA_LXCFS_DIR=$state/lxcfs
name=demo
cleanup() {
	"$isola" delete --force "$name" >/dev/null 2>&1 || true
	if [[ -f $ISOLA_LXCFS_DIR.pid ]]; then kill "$(cat "$ISOLA_LXCFS_DIR.pid")" 2>/dev/null || true; fi
	umount -l "$ISOLA_LXCFS_DIR" 2>/dev/null || true
	rm -rf --one-file-system "$state"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
inside() { printf '\n\033[1m[inside] $ %s\033[0m\n' "$*"; "$isola" exec "$name" -- /bin/sh -c "$*"; }

echo "=== isola demo (state directory $state)"
step "$isola" image list
step "$isola" launch busybox "$name" --limit memory=256MiB --limit cpu=1 --limit processes=100
step "$isola" list
inside 'free -m'
inside 'nproc; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online'
inside 'cat /proc/uptime'
inside 'ps -o pid,user,args'
inside 'id; cat /proc/self/uid_map'
inside 'echo hello > /root/hello; ls -ln /root/hello'
base=$("$isola" info "$name" --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["idmap_base"])')
printf '\n\033[1m[host] the same file on the host belongs to uid %s, not root:\033[0m\n' "$base"
ls -ln "$state/instances/$name/upper/root/hello"
printf '\n\033[1m[host] free -m on the host, for comparison:\033[0m\n'
free -m
step "$isola" info "$name"
step "$isola" stop "$name"
step "$isola" logs "$name"
step "$isola" delete "$name"
step "$isola" list
echo
echo "=== done: the instance, its cgroup, its monitor and its files are gone"
