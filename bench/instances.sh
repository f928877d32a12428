#!/bin/bash
# The instance manager against Debian's LXC, side by side on this machine:
#   1. launch: `isola launch busybox NAME` (returns once the init runs)
#      against `lxc-create -t busybox` + `lxc-start` + `lxc-wait -s RUNNING`;
#      and start only, on an existing instance (hyperfine medians);
#   2. 100 instances launched one after the other: total time, host memory
#      per running instance (MemTotal - MemAvailable, before and after), and
#      the resident and proportional memory of each one's monitor process
#      (isola-monitor against LXC's "[lxc monitor]").
# LXC runs with `lxc.net.0.type = empty` (a network namespace with only lo,
# as an isola instance has) and no AppArmor (none on this host), under a
# private lxcpath; isola with a temporary state directory. Both are removed
# at the end, whatever happens.
# Usage: bench/instances.sh BUILD   (INSTANCES_N=100 INSTANCES_RUNS=20)
set -euo pipefail

build=$(cd "${1:?usage: $0 BUILD}" && pwd)
isola=$build/isola
n=${INSTANCES_N:-100}
runs=${INSTANCES_RUNS:-20}
work=$(mktemp -d /tmp/isola-bench-inst.XXXXXX)
chmod 711 "$work"
state=$work/state
lxcpath=$work/lxc
mkdir -p "$lxcpath"
printf 'lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n' >"$work/lxc.conf"
export ISOLA_STATE_DIR=$state
export ISOLA_LXCFS_DIR=$work/lxcfs
have_lxc=1
command -v lxc-create >/dev/null || have_lxc=0

teardown() {
	"$isola" list --format json 2>/dev/null | /usr/bin/python3 -c \
		'import json,sys; print("\n".join(i["name"] for i in json.load(sys.stdin)))' 2>/dev/null |
		xargs -r "$isola" delete --force >/dev/null 2>&1 || true
	if ((have_lxc)); then
		for c in $(lxc-ls -P "$lxcpath" 2>/dev/null); do
			lxc-destroy -P "$lxcpath" -n "$c" -f >/dev/null 2>&1 || true
		done
	fi
	if [[ -f $ISOLA_LXCFS_DIR.pid ]]; then kill "$(cat "$ISOLA_LXCFS_DIR.pid")" 2>/dev/null || true; fi
	umount -l "$ISOLA_LXCFS_DIR" 2>/dev/null || true
	rm -rf --one-file-system "$work"
}
trap teardown EXIT

mem_used_kb() { awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {print t-a}' /proc/meminfo; }
# average VmRSS and Pss (kB) of the processes whose command line matches $1
avg_mem() {
	local pattern=$1 rss=0 pss=0 count=0 p
	for p in $(pgrep -f -- "$pattern"); do
		rss=$((rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
		pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
		count=$((count + 1))
	done
	((count)) || { echo "0 0 0"; return; }
	echo "$count $((rss / count)) $((pss / count))"
}
median_ms() { /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join("%.1f" % (x["median"]*1000) for x in r))' "$1"; }

echo
echo "instances: isola $("$isola" --version | awk '{print $3}') against LXC $(lxc-start --version 2>/dev/null || echo '-'), $n instances, $runs runs per case"
"$isola" image info busybox >/dev/null   # make the built-in image outside the timings

# ---- 1. launch and start -----------------------------------------------------
# hyperfine's notes (outliers) go to a file, shown only when it fails
hf() { hyperfine --style none --runs "$runs" --warmup 2 "$@" >/dev/null 2>"$work/hyperfine.err" || { cat "$work/hyperfine.err" >&2; return 1; }; }
hf --export-json "$work/launch-isola.json" \
	--prepare "$isola delete --force b1 >/dev/null 2>&1 || true" \
	-n "isola launch" "$isola launch busybox b1"
"$isola" delete --force b1 >/dev/null 2>&1 || true
hf --export-json "$work/start-isola.json" \
	--setup "$isola create busybox b2" \
	--prepare "$isola stop --force b2 >/dev/null 2>&1 || true" \
	-n "isola start" "$isola start b2"
"$isola" delete --force b2 >/dev/null 2>&1 || true
launch_isola=$(median_ms "$work/launch-isola.json")
start_isola=$(median_ms "$work/start-isola.json")
launch_lxc=- start_lxc=-
lxc="-P $lxcpath"
if ((have_lxc)); then
	if hf --export-json "$work/launch-lxc.json" \
		--prepare "lxc-destroy $lxc -n b1 -f >/dev/null 2>&1 || true" \
		-n "lxc-create + lxc-start" \
		"lxc-create $lxc -n b1 -f $work/lxc.conf -t busybox >/dev/null 2>&1 && lxc-start $lxc -n b1 && lxc-wait $lxc -n b1 -s RUNNING -t 10" &&
		hf --export-json "$work/start-lxc.json" \
			--setup "lxc-destroy $lxc -n b1 -f >/dev/null 2>&1; lxc-create $lxc -n b1 -f $work/lxc.conf -t busybox >/dev/null 2>&1" \
			--prepare "lxc-stop $lxc -n b1 -k >/dev/null 2>&1 || true" \
			-n "lxc-start" "lxc-start $lxc -n b1 && lxc-wait $lxc -n b1 -s RUNNING -t 10"; then
		launch_lxc=$(median_ms "$work/launch-lxc.json")
		start_lxc=$(median_ms "$work/start-lxc.json")
	else
		echo "  LXC: skipped: lxc-create/lxc-start failed on this host"
		have_lxc=0
	fi
	lxc-destroy $lxc -n b1 -f >/dev/null 2>&1 || true
fi

# ---- 2. many instances ----------------------------------------------------------
many() { # many launch-command-prefix... (the name is appended)
	local before after t0 t1 i
	sync
	before=$(mem_used_kb)
	t0=$(date +%s.%N)
	for ((i = 0; i < n; i++)); do "$@" "m$i" >/dev/null; done
	t1=$(date +%s.%N)
	sleep 2 # let the inits settle
	after=$(mem_used_kb)
	echo "$(/usr/bin/python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1") $(((after - before) / n))"
}
lxc_launch() { lxc-create $lxc -n "$1" -f "$work/lxc.conf" -t busybox >/dev/null 2>&1 && lxc-start $lxc -n "$1" && lxc-wait $lxc -n "$1" -s RUNNING -t 10; }
read -r total_isola per_isola < <(many "$isola" launch busybox)
read -r mons_isola rss_isola pss_isola < <(avg_mem "isola-monitor --name m[0-9]+ .*$state")
"$isola" list --format json | /usr/bin/python3 -c \
	'import json,sys; print("\n".join(i["name"] for i in json.load(sys.stdin)))' | xargs -r "$isola" delete --force
total_lxc=- per_lxc=- mons_lxc=0 rss_lxc=- pss_lxc=-
if ((have_lxc)); then
	read -r total_lxc per_lxc < <(many lxc_launch)
	read -r mons_lxc rss_lxc pss_lxc < <(avg_mem "lxc monitor\\] $lxcpath")
	for c in $(lxc-ls -P "$lxcpath"); do lxc-destroy $lxc -n "$c" -f >/dev/null 2>&1 || true; done
fi

ratio() { /usr/bin/python3 -c 'import sys
try: print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print("-")' "$1" "$2"; }
printf '\n  %-44s %12s %12s %10s\n' "case (median or total)" "isola" "LXC" "isola/LXC"
printf '  %-44s %12s %12s %10s\n' "launch to a running init (ms)" "$launch_isola" "$launch_lxc" "$(ratio "$launch_isola" "$launch_lxc")"
printf '  %-44s %12s %12s %10s\n' "start an existing instance (ms)" "$start_isola" "$start_lxc" "$(ratio "$start_isola" "$start_lxc")"
printf '  %-44s %12s %12s %10s\n' "$n instances launched in sequence (s)" "$total_isola" "$total_lxc" "$(ratio "$total_isola" "$total_lxc")"
printf '  %-44s %12s %12s %10s\n' "host memory per running instance (KiB)" "$per_isola" "$per_lxc" "$(ratio "$per_isola" "$per_lxc")"
printf '  %-44s %12s %12s %10s\n' "monitor RSS, average of $mons_isola / $mons_lxc (KiB)" "$rss_isola" "$rss_lxc" "$(ratio "$rss_isola" "$rss_lxc")"
printf '  %-44s %12s %12s %10s\n' "monitor PSS, average (KiB)" "$pss_isola" "$pss_lxc" "$(ratio "$pss_isola" "$pss_lxc")"
echo "  (isola instances are unprivileged, each in its own user namespace; LXC's busybox template makes privileged containers)"

left=$(pgrep -c -f "isola-monitor .*$state" || true)
[[ "$left" == 0 ]] || { echo "instances: $left isola monitors left behind" >&2; exit 1; }
