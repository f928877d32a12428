#!/bin/bash
# shellcheck disable=SC2317 # functions run through attempt, traps and hyperfine
# The instance manager `isola` against Debian's LXC (5.0.2), side by side on
# this machine, in one run (`make bench` runs it last; see bench/README.md):
#   1. launch to a running init (hyperfine median, a deleted instance before
#      each run): `isola launch busybox NAME`, which returns once the init
#      runs, against `lxc-create -t busybox` + `lxc-start` + `lxc-wait -s
#      RUNNING`; and start only, on an existing stopped instance: `isola
#      start` (after `stop --force`) against `lxc-start` + `lxc-wait` (after
#      `lxc-stop -k`);
#   2. INSTANCES_N instances launched one after the other: total time, host
#      memory per running instance ((MemTotal - MemAvailable) after minus
#      before, divided by N), the average RSS and PSS of the per-instance
#      monitors (isola-monitor against LXC's "[lxc monitor]"), then
#      everything deleted (timed) and checked gone.
# LXC gets a config file with `lxc.net.0.type = empty` (a network namespace
# with only lo, as an isola instance has) and `lxc.apparmor.profile =
# unconfined` (no AppArmor here), and a private lxcpath (-P); isola a
# temporary state directory and its own LXCFS mount. All of it is removed on
# any exit. LXC 5 starts containers on a hybrid cgroup host as it is; should
# it not, or with INSTANCES_LXC_UNSHARE=1, every lxc-* command runs in a
# private mount namespace without /sys/fs/cgroup/unified (the host's mounts
# are not touched), and the output says so. When LXC fails, the output says
# "LXC: skipped: <reason>" and the isola figures are still reported.
# Usage: bench/instances.sh BUILD   (BUILD holds isola, isola-monitor, isola-oci)
# Knobs: INSTANCES_N=100 INSTANCES_RUNS=20 (hyperfine runs per case)
#        INSTANCES_WARMUP=2 INSTANCES_LXC=1 (0: isola only)
# Exit status: 0, or 1 when the isola side fails or something is left behind
# (an LXC failure alone is reported, not fatal).
set -euo pipefail

die() {
	echo "instances: $*" >&2
	exit 1
}
(($# == 1)) || die "usage: $0 BUILD"
build=$(cd "$1" && pwd)
n=${INSTANCES_N:-100}
runs=${INSTANCES_RUNS:-20}
warmup=${INSTANCES_WARMUP:-2}
[[ $n =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ ]] ||
	die "INSTANCES_N, INSTANCES_RUNS and INSTANCES_WARMUP must be numbers"
((EUID == 0)) || die "must run as root"
for tool in hyperfine /usr/bin/python3 pgrep awk; do
	command -v "$tool" >/dev/null || die "$tool not found: run make deps"
done
for b in isola isola-monitor isola-oci; do
	[[ -x $build/$b ]] || die "$build/$b not found: run make first"
done

id=ib$$ # instance names: $id-launch, $id-start, $id-m0...
work=$(mktemp -d /tmp/isola-bench-inst.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT # until teardown below is set
# An instance's user namespace must reach its rootfs below the state dir.
chmod 711 "$work"
state=$work/state
lxcpath=$work/lxc
mkdir "$lxcpath" "$work/raw" "$work/bin"
# A snapshot (isola runs isola-monitor and isola-oci from beside itself): a
# rebuild of BUILD during the run must not swap binaries under the benchmark.
cp "$build/isola" "$build/isola-monitor" "$build/isola-oci" "$work/bin/"
isola=$work/bin/isola
printf 'lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n' >"$work/lxc.conf"
export ISOLA_LXCFS_DIR=$work/lxcfs
raw=$build/bench-raw
mkdir -p "$raw"

iso() { "$isola" --state-dir "$state" "$@"; }
iso_names() {
	iso list --format json | /usr/bin/python3 -c \
		'import json, sys; print("\n".join(i["name"] for i in json.load(sys.stdin)))'
}
# lxc-* through "${lx[@]}": empty, or the private-mount-namespace wrapper.
lx=()
lx_str() { echo "${lx[*]:+${lx[*]} }"; }
lxc_ls() { "${lx[@]}" lxc-ls -P "$lxcpath" -1 2>/dev/null || true; }

# cgroup hierarchies, to check that nothing is left in any of them
hierarchies=()
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then hierarchies=(/sys/fs/cgroup); fi
for h in /sys/fs/cgroup/*/; do
	[[ -f $h/cgroup.procs ]] && hierarchies+=("${h%/}")
done
# LXC keeps an empty lxc.pivot cgroup per hierarchy; remove only ours.
new_pivots=()
for h in "${hierarchies[@]}"; do
	[[ -d $h/lxc.pivot ]] || new_pivots+=("$h/lxc.pivot")
done
isola_parent= # the cgroup parent of this state dir's instances, seen in /proc

# pids of processes named $1 whose command line contains $2
pids_of() {
	local p
	for p in $(pgrep -x -- "$1" || true); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "$2" && echo "$p"
	done
	return 0
}

teardown_isola() {
	local names p
	[[ -d $state ]] || return 0
	names=$(iso_names 2>/dev/null) || names=
	# shellcheck disable=SC2086 # one word per name
	[[ -z $names ]] || iso delete --force $names >/dev/null 2>&1 || true
	# a monitor whose instance is gone (it was started by this script)
	for p in $(pids_of isola-monitor "$state"); do kill -KILL "$p" 2>/dev/null || true; done
}
teardown_lxc() {
	local c p
	for c in $(lxc_ls); do
		"${lx[@]}" lxc-destroy -P "$lxcpath" -n "$c" -f >/dev/null 2>&1 || true
	done
	for p in $(pids_of lxc-start "$lxcpath"); do kill -KILL "$p" 2>/dev/null || true; done
}
stop_lxcfs() {
	local pid i
	if [[ -f $ISOLA_LXCFS_DIR.pid ]]; then
		pid=$(cat "$ISOLA_LXCFS_DIR.pid")
		if [[ $pid =~ ^[0-9]+$ ]] && kill "$pid" 2>/dev/null; then
			for ((i = 0; i < 50; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
	fi
	if mountpoint -q "$ISOLA_LXCFS_DIR" 2>/dev/null; then umount -l "$ISOLA_LXCFS_DIR" || true; fi
}
teardown() {
	set +e
	teardown_isola
	teardown_lxc
	stop_lxcfs
	for p in "${new_pivots[@]}"; do [[ -d $p ]] && rmdir "$p" 2>/dev/null; done
	rm -rf --one-file-system "$work"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What is left of a side ("isola" or "lxc"), one line per finding.
leftovers() {
	local h c p
	if [[ $1 == isola ]]; then
		c=$(iso_names 2>"$work/list.err") || echo "isola list: $(last_error "$work/list.err")"
		[[ -z $c ]] || echo "instances: ${c//$'\n'/ }"
		p=$(pids_of isola-monitor "$state")
		[[ -z $p ]] || echo "isola-monitor processes: ${p//$'\n'/ }"
		for h in "${hierarchies[@]}"; do
			[[ -z $isola_parent || ! -d $h$isola_parent ]] || echo "cgroup $h$isola_parent"
		done
	else
		c=$(lxc_ls)
		[[ -z $c ]] || echo "containers: ${c//$'\n'/ }"
		p=$(pids_of lxc-start "$lxcpath")
		[[ -z $p ]] || echo "lxc monitor processes: ${p//$'\n'/ }"
		for h in "${hierarchies[@]}"; do
			for c in "$h"/lxc.payload."$id"-* "$h"/lxc.monitor."$id"-*; do
				[[ ! -d $c ]] || echo "cgroup $c"
			done
		done
	fi
}

# The same, after up to 5 s for monitors that are still exiting.
settled_leftovers() {
	local i left
	for ((i = 0; i < 10; i++)); do
		left=$(leftovers "$1")
		[[ -n $left ]] || break
		sleep 0.5
	done
	[[ -z $left ]] || echo "$left"
}

# Runs "$@" in a subshell where errexit holds (also inside functions), its
# stderr in $work/err; sets rc. Never fails itself.
attempt() {
	set +e
	(
		# Without a trap of its own, a subshell whose child survives SIGINT
		# (lxc-create does) would go on, and so would the script.
		trap 'exit 130' INT
		trap 'exit 143' TERM
		set -e
		"$@"
	) 2>"$work/err"
	rc=$?
	set -e
}
last_error() { { grep -v '^[[:space:]]*$' "$@" 2>/dev/null || true; } | tail -n 1 | cut -c1-200; }

lxc_on=${INSTANCES_LXC:-1}
lxc_note=
lxc_skip() { # CASE: the LXC side failed in CASE; the reason is in $work/err
	local why
	why=$(last_error "$work/lxc-errors.log")
	[[ -n $why ]] || why=$(last_error "$work/err")
	echo "  LXC: skipped: $1: ${why:-failed}"
	lxc_on=0
	teardown_lxc
}
isola_failed=0
isola_on=1
isola_skip() {
	echo "  isola: skipped: $1: $(last_error "$work/err")"
	isola_on=0
	isola_failed=1
	teardown_isola
}

mem_used_kb() { awk '/^MemTotal:/ {t = $2} /^MemAvailable:/ {a = $2} END {print t - a}' /proc/meminfo; }
# "count average-RSS average-PSS" (KiB) of the processes named $1 whose
# command line contains $2
avg_mem() {
	local p r s rss=0 pss=0 count=0
	for p in $(pids_of "$1" "$2"); do
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
		s=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		[[ -n $r && -n $s ]] || continue
		rss=$((rss + r)) pss=$((pss + s)) count=$((count + 1))
	done
	((count)) || { echo "0 - -"; return 0; }
	echo "$count $((rss / count)) $((pss / count))"
}
median_ms() {
	/usr/bin/python3 -c 'import json, sys
print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$1"
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
# hyperfine, quiet; its JSON goes to $work/raw/$1.json
hf() {
	local name=$1
	shift
	hyperfine --style none --runs "$runs" --warmup "$warmup" \
		--export-json "$work/raw/$name.json" "$@" >/dev/null
}

# ---- LXC: does it work here, and how? ---------------------------------------
lxc_trial() {
	local c=$id-trial
	"${lx[@]}" lxc-create -P "$lxcpath" -n "$c" -f "$work/lxc.conf" -t busybox >/dev/null
	"${lx[@]}" lxc-start -P "$lxcpath" -n "$c"
	"${lx[@]}" lxc-wait -P "$lxcpath" -n "$c" -s RUNNING -t 10
	[[ $("${lx[@]}" lxc-info -P "$lxcpath" -n "$c" -s -H) == RUNNING ]] || {
		echo "lxc-info: $c is not RUNNING" >&2
		return 1
	}
	"${lx[@]}" lxc-stop -P "$lxcpath" -n "$c" -k
	"${lx[@]}" lxc-destroy -P "$lxcpath" -n "$c" -f
}
use_unshare() {
	cat >"$work/lxc-ns" <<-'EOF'
		#!/bin/sh
		# lxc-TOOL ARGS... in a private mount namespace without the cgroup2 mount
		exec unshare -m --propagation private sh -c '
			if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 1; fi
			exec "$@"' sh "$@"
	EOF
	chmod 755 "$work/lxc-ns"
	lx=("$work/lxc-ns")
	lxc_note="every lxc-* command ran in a private mount namespace without /sys/fs/cgroup/unified"
}
lxc_version=$(lxc-start --version 2>/dev/null) || lxc_version=-
echo
echo "instances: isola $("$isola" --version | awk '{print $NF}') against LXC $lxc_version, $n instances, $runs runs per case (+$warmup warm-up), load average $(cut -d' ' -f1-3 /proc/loadavg)"
((lxc_on)) || echo "  LXC: skipped: INSTANCES_LXC=0"
if ((lxc_on)); then
	missing=
	for tool in lxc-create lxc-start lxc-stop lxc-destroy lxc-info lxc-wait lxc-ls; do
		command -v "$tool" >/dev/null || missing+=" $tool"
	done
	if [[ -n $missing ]]; then
		echo "  LXC: skipped: not installed:$missing (Debian package lxc)"
		lxc_on=0
	elif [[ ! -x /usr/share/lxc/templates/lxc-busybox ]] || ! command -v busybox >/dev/null; then
		echo "  LXC: skipped: no busybox template or no host busybox (Debian packages lxc, busybox-static)"
		lxc_on=0
	else
		[[ ${INSTANCES_LXC_UNSHARE:-0} == 1 ]] && use_unshare
		attempt lxc_trial
		if ((rc)) && ((${#lx[@]} == 0)) && mountpoint -q /sys/fs/cgroup/unified; then
			echo "  LXC: a trial container failed on this hybrid cgroup host ($(last_error "$work/err")); trying again without the cgroup2 mount"
			teardown_lxc
			use_unshare
			attempt lxc_trial
		fi
		((rc == 0)) || lxc_skip "a trial container"
	fi
fi

[[ -z $lxc_note ]] || ((!lxc_on)) || echo "  LXC: $lxc_note"
# The built-in image is made outside the timings.
isola_image() { iso image info busybox >/dev/null; }
attempt isola_image
((rc == 0)) || isola_skip "the busybox image"

# ---- 1. launch and start ------------------------------------------------------
L=$id-launch S=$id-start
isola_launch() {
	hf isola-launch --prepare "$isola --state-dir $state delete --force $L >/dev/null 2>&1 || true" \
		-n "isola launch" "$isola --state-dir $state launch busybox $L"
	iso delete --force "$L"
}
lxc_launch() {
	local l
	l=$(lx_str)
	: >"$work/lxc-errors.log"
	hf lxc-launch --prepare "${l}lxc-destroy -P $lxcpath -n $L -f >/dev/null 2>&1 || true" \
		-n "lxc-create + lxc-start" \
		"${l}lxc-create -P $lxcpath -n $L -f $work/lxc.conf -t busybox >/dev/null 2>>$work/lxc-errors.log && ${l}lxc-start -P $lxcpath -n $L 2>>$work/lxc-errors.log && ${l}lxc-wait -P $lxcpath -n $L -s RUNNING -t 10 2>>$work/lxc-errors.log"
	"${lx[@]}" lxc-destroy -P "$lxcpath" -n "$L" -f >/dev/null
}
isola_start() {
	iso create busybox "$S" >/dev/null
	hf isola-start --prepare "$isola --state-dir $state stop --force $S >/dev/null 2>&1 || true" \
		-n "isola start" "$isola --state-dir $state start $S"
	iso delete --force "$S"
}
lxc_start() {
	local l
	l=$(lx_str)
	: >"$work/lxc-errors.log"
	"${lx[@]}" lxc-create -P "$lxcpath" -n "$S" -f "$work/lxc.conf" -t busybox >/dev/null
	hf lxc-start --prepare "${l}lxc-stop -P $lxcpath -n $S -k >/dev/null 2>&1 || true" \
		-n "lxc-start" \
		"${l}lxc-start -P $lxcpath -n $S 2>>$work/lxc-errors.log && ${l}lxc-wait -P $lxcpath -n $S -s RUNNING -t 10 2>>$work/lxc-errors.log"
	"${lx[@]}" lxc-destroy -P "$lxcpath" -n "$S" -f >/dev/null
}
for case in launch start; do
	if ((isola_on)); then
		attempt "isola_$case"
		((rc == 0)) || isola_skip "$case"
	fi
	if ((lxc_on)); then
		attempt "lxc_$case"
		((rc == 0)) || lxc_skip "$case"
	fi
done

# ---- 2. many instances ----------------------------------------------------------
# Writes "total-s per-instance-KiB monitors avg-RSS avg-PSS delete-s" to
# $work/many-$1. $1: isola or lxc.
many() {
	local side=$1 before after t0 t1 t2 t3 i mem left running
	sync
	sleep 1
	before=$(mem_used_kb)
	t0=$EPOCHREALTIME
	for ((i = 0; i < n; i++)); do
		if [[ $side == isola ]]; then
			iso launch busybox "$id-m$i" >/dev/null
		else
			"${lx[@]}" lxc-create -P "$lxcpath" -n "$id-m$i" -f "$work/lxc.conf" -t busybox >/dev/null
			"${lx[@]}" lxc-start -P "$lxcpath" -n "$id-m$i"
			"${lx[@]}" lxc-wait -P "$lxcpath" -n "$id-m$i" -s RUNNING -t 10
		fi
	done
	t1=$EPOCHREALTIME
	sleep 2 # let the inits settle
	sync
	after=$(mem_used_kb)
	if [[ $side == isola ]]; then
		mem=$(avg_mem isola-monitor "$state")
		# the cgroup parent, for the leftover check
		isola_parent=$(iso list --format json | /usr/bin/python3 -c 'import json, sys
pid = json.load(sys.stdin)[0]["pid"]
for line in open("/proc/%d/cgroup" % pid):
    h, ctl, path = line.rstrip("\n").split(":", 2)
    if ctl in ("memory", ""):
        print(path.rsplit("/", 1)[0]); break')
		echo "$isola_parent" >"$work/isola-parent"
		running=$(iso list --format json | /usr/bin/python3 -c 'import json, sys
print(sum(i["status"] == "running" for i in json.load(sys.stdin)))')
		[[ $running == "$n" ]] || { echo "$running of $n isola instances are running" >&2; return 1; }
	else
		mem=$(avg_mem lxc-start "$lxcpath")
		[[ $(lxc_ls | wc -l) == "$n" ]] || { echo "not all $n containers exist" >&2; return 1; }
	fi
	[[ ${mem%% *} == "$n" ]] || { echo "found ${mem%% *} monitors for $n running instances" >&2; return 1; }
	t2=$EPOCHREALTIME
	for ((i = 0; i < n; i++)); do
		if [[ $side == isola ]]; then
			iso delete --force "$id-m$i"
		else
			"${lx[@]}" lxc-destroy -P "$lxcpath" -n "$id-m$i" -f >/dev/null
		fi
	done
	t3=$EPOCHREALTIME
	left=$(settled_leftovers "$side")
	[[ -z $left ]] || { echo "left behind after deleting all: $left" >&2; return 1; }
	echo "$(sub "$t0" "$t1") $(((after - before) / n)) $mem $(sub "$t2" "$t3")" >"$work/many-$side"
}
many_isola=(- - 0 - - -) many_lxc=(- - 0 - - -)
if ((isola_on)); then
	attempt many isola
	isola_parent=$(cat "$work/isola-parent" 2>/dev/null || true)
	if ((rc == 0)); then read -ra many_isola <"$work/many-isola"; else isola_skip "$n instances"; fi
fi
if ((lxc_on)); then
	attempt many lxc
	: >"$work/lxc-errors.log"
	if ((rc == 0)); then read -ra many_lxc <"$work/many-lxc"; else lxc_skip "$n instances"; fi
fi

# ---- results ----------------------------------------------------------------------
fig() { # figure NAME: the median of hyperfine run NAME, or -
	if [[ -f $work/raw/$1.json ]]; then median_ms "$work/raw/$1.json"; else echo -; fi
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}
rows=(
	"launch to a running init|ms|$(fig isola-launch)|$(fig lxc-launch)"
	"start an existing instance|ms|$(fig isola-start)|$(fig lxc-start)"
	"$n instances launched in sequence|s|${many_isola[0]}|${many_lxc[0]}"
	"  host memory per running instance|KiB|${many_isola[1]}|${many_lxc[1]}"
	"  monitor RSS (average of ${many_isola[2]} / ${many_lxc[2]})|KiB|${many_isola[3]}|${many_lxc[3]}"
	"  monitor PSS (average)|KiB|${many_isola[4]}|${many_lxc[4]}"
	"  delete all, one by one (forced)|s|${many_isola[5]}|${many_lxc[5]}"
)
{
	echo "| case | unit | isola | LXC $lxc_version | isola/LXC |"
	echo "|---|---|---|---|---|"
	for r in "${rows[@]}"; do
		IFS='|' read -r name unit a b <<<"$r"
		echo "| $name | $unit | $a | $b | $(ratio "$a" "$b") |"
	done
} >"$work/table.md"
echo
sed 's/^/  /' "$work/table.md"
echo
echo "  Medians of $runs hyperfine runs; many: one sequential pass. Ratios below 1: isola is faster or smaller."
echo "  isola instances are unprivileged (own user namespace, idmapped image, LXCFS views);"
echo "  LXC's busybox template builds a rootfs per container and makes privileged containers."
cp "$work/table.md" "$build/bench-instances.md"
for f in "$work"/raw/*.json; do
	[[ -e $f ]] && cp "$f" "$raw/instances-$(basename "$f")"
done

# ---- nothing left -------------------------------------------------------------
teardown_isola
teardown_lxc
left=$(
	settled_leftovers isola | sed 's/^/isola: /'
	settled_leftovers lxc | sed 's/^/LXC: /'
)
if [[ -n $left ]]; then
	echo "instances: left behind:" >&2
	echo "  ${left//$'\n'/$'\n'  }" >&2
	exit 1
fi
echo "  leftovers: none (no instance, monitor process or cgroup of this run on either side)"
exit $isola_failed
