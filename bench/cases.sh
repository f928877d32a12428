#!/bin/bash
# The benchmark cases. run.sh starts this inside a private mount namespace
# (cgroup2 mount point of a hybrid host unmounted, so crun accepts the host)
# under reaper.py. All runtimes run the same bundles, one after the other.
# Environment (set by run.sh): BENCH_WORK BENCH_ID BENCH_RAW BENCH_RUNTIMES
#   BENCH_RUNS BENCH_ROUNDS BENCH_WARMUP BENCH_RSS_RUNS BENCH_MANY BENCH_CASES
#   BENCH_LATENCY_ROUNDS BENCH_LATENCY_GAP
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
W=$BENCH_WORK
ID=$BENCH_ID
RAW=$BENCH_RAW
read -r -a runtimes <<<"$BENCH_RUNTIMES"
ctl=$W/ctl.sh # a copy: hyperfine -N splits its commands on blanks

section() { printf '\n=== %s\n' "$*"; }
wanted() { [[ " $BENCH_CASES " == *" $1 "* ]]; }

# Deletes every container of this session, whatever state it is in, then
# looks for anything left (and removes crun's stubs, see leftovers.py).
finish() {
	local rt c roots=()
	for rt in "${runtimes[@]}"; do
		roots+=("$W/root/$rt")
		[[ -d $W/root/$rt ]] || continue
		for c in "$W/root/$rt/$ID"*; do
			[[ -e $c ]] && "$W/bin/$rt" --root "$W/root/$rt" delete -f "${c##*/}" >/dev/null 2>&1
		done
	done
	/usr/bin/python3 "$here/leftovers.py" "$ID" "${roots[@]}"
}
trap finish EXIT
trap 'exit 130' INT TERM

# check RT PREPARE CMD CLEANUP: one untimed pass of a case; prints why it failed.
check() {
	local rt=$1 prepare=${2//\{rt\}/$1} cmd=${3//\{rt\}/$1} cleanup=${4//\{rt\}/$1} out rc
	out=$W/check.out
	: >"$out"
	if [[ -n $prepare ]] && ! $prepare >>"$out" 2>&1; then
		rc=1
	else
		$cmd </dev/null >>"$out" 2>&1
		rc=$?
	fi
	$cleanup >/dev/null 2>&1
	if ((rc != 0)); then
		echo "  $rt: SKIPPED, a trial run failed: $(tail -n 3 "$out" | tr '\n' ' ')"
		return 1
	fi
}

# bench NAME "what it measures" PREPARE CMD CLEANUP
# hyperfine over every runtime that passes the trial, side by side, in
# BENCH_ROUNDS rounds that alternate the runtimes' order, so that a change in
# background load does not always favour the same one.
bench() {
	local name=$1 what=$2 prepare=$3 cmd=$4 cleanup=$5 rt ok=() order args round i
	local runs=$(((BENCH_RUNS + BENCH_ROUNDS - 1) / BENCH_ROUNDS))
	section "$name: $what"
	for rt in "${runtimes[@]}"; do
		if check "$rt" "$prepare" "$cmd" "$cleanup"; then
			ok+=("$rt")
		else
			: >"$RAW/$name.$rt.failed"
		fi
	done
	((${#ok[@]})) || return 0
	args=(-N --warmup "$BENCH_WARMUP" --runs "$runs" --cleanup "$cleanup" -n '{rt}')
	[[ -n $prepare ]] && args+=(--prepare "$prepare")
	for ((round = 1; round <= BENCH_ROUNDS; round++)); do
		order=("${ok[@]}")
		if ((round % 2 == 0)); then
			order=()
			for ((i = ${#ok[@]} - 1; i >= 0; i--)); do order+=("${ok[i]}"); done
		fi
		((BENCH_ROUNDS > 1)) && echo "--- round $round of $BENCH_ROUNDS"
		if hyperfine "${args[@]}" -L rt "$(IFS=,; echo "${order[*]}")" \
			--export-json "$RAW/$name.r$round.json" "$cmd"; then
			continue
		fi
		# One runtime failing part-way must not cost the others their figures.
		rm -f "$RAW/$name.r$round.json"
		echo "  hyperfine failed; measuring each runtime on its own"
		for rt in "${order[@]}"; do
			hyperfine "${args[@]}" -L rt "$rt" --export-json "$RAW/$name.r$round.$rt.json" "$cmd" ||
				{ echo "  $rt: FAILED during $name"; rm -f "$RAW/$name.r$round.$rt.json"; : >"$RAW/$name.$rt.failed"; }
		done
	done
}

rt_cmd="$W/bin/{rt} --root $W/root/{rt}"

# Same work for all: the probe container (seccomp profile on) reports what it
# sees; differences to the first runtime are shown.
if wanted probe; then
	section "probe: what a container sees under each runtime (same config, seccomp on)"
	first=
	for rt in "${runtimes[@]}"; do
		if ! "$W/bin/$rt" --root "$W/root/$rt" run --bundle "$W/bundle-probe" "$ID-probe" \
			</dev/null >"$W/probe.$rt" 2>&1; then
			echo "  $rt: probe FAILED: $(tail -n 3 "$W/probe.$rt" | tr '\n' ' ')"
			continue
		fi
		if [[ -z $first ]]; then
			first=$rt
			sed 's/^/  /' "$W/probe.$rt"
		elif cmp -s "$W/probe.$first" "$W/probe.$rt"; then
			echo "  $rt: same as $first"
		else
			echo "  $rt: differs from $first:"
			diff "$W/probe.$first" "$W/probe.$rt" | grep '^[<>]' | sed 's/^/    /'
		fi
	done
fi

wanted run && bench run "\`run\` of /bin/true, default config (create + start + wait + delete)" \
	"" "$rt_cmd run --bundle $W/bundle-true $ID-run" "$ctl {rt} absent $ID-run"

# latency NAME GAP WHAT: `run` of /bin/true through latency.py, one run per
# runtime per round, the runtimes' order rotated every round, GAP ms idle
# before each run (0: none). No runtime runs twice in a row, so none finds
# the host as its own previous run left it (the back-to-back `run` case does).
latency() {
	local name=$1 gap=$2 what=$3 rt specs=()
	section "$name: $what"
	for rt in "${runtimes[@]}"; do
		if check "$rt" "" "$rt_cmd run --bundle $W/bundle-true $ID-lat-{rt}" "$ctl {rt} absent $ID-lat-{rt}"; then
			specs+=("$rt=$W/bin/$rt")
		else
			: >"$RAW/$name.$rt.failed"
		fi
	done
	((${#specs[@]})) || return 0
	/usr/bin/python3 "$here/latency.py" --bundle "$W/bundle-true" --root "$W/root" --id "$ID-lat" \
		--rounds "$BENCH_LATENCY_ROUNDS" --gap "$gap" --out "$RAW/$name.json" "${specs[@]}" |
		sed 's/^/  /' || echo "  $name: a runtime failed during the measurement"
}

wanted latency && latency latency 0 \
	"\`run\` of /bin/true, runtimes interleaved ($BENCH_LATENCY_ROUNDS rounds, order rotated every round)"

wanted latency-paced && latency latency-paced "$BENCH_LATENCY_GAP" \
	"\`run\` of /bin/true, interleaved and paced: $BENCH_LATENCY_GAP ms idle before each run ($BENCH_LATENCY_ROUNDS rounds)"

wanted run-seccomp && bench run-seccomp "\`run\` of /bin/true with a default seccomp profile ($(cat "$W/seccomp.count") allowed syscalls)" \
	"" "$rt_cmd run --bundle $W/bundle-seccomp $ID-sec" "$ctl {rt} absent $ID-sec"

wanted create && bench create "\`create\` alone (prepare: delete the previous one)" \
	"$ctl {rt} absent $ID-life" "$rt_cmd create --bundle $W/bundle-true $ID-life" "$ctl {rt} absent $ID-life"

wanted start && bench start "\`start\` alone, of /bin/true (prepare: create)" \
	"$ctl {rt} created $ID-life" "$rt_cmd start $ID-life" "$ctl {rt} absent $ID-life"

wanted delete && bench delete "\`delete\` alone, of a stopped container (prepare: create, start, wait for exit)" \
	"$ctl {rt} stopped $ID-life" "$rt_cmd delete $ID-life" "$ctl {rt} absent $ID-life"

wanted delete-force && bench delete-force "\`delete -f\` of a running sleep: kill, wait, delete (prepare: create, start)" \
	"$ctl {rt} running $ID-life $W/bundle-sleep" "$rt_cmd delete -f $ID-life" "$ctl {rt} absent $ID-life"

if wanted rss; then
	section "rss: peak RSS of \`run\` of /bin/true, largest single process of the runtime's tree ($BENCH_RSS_RUNS runs)"
	/usr/bin/python3 "$here/rss.py" "$RAW/rss.json" "$BENCH_RSS_RUNS" "${runtimes[@]}" ||
		echo "  rss measurement failed"
fi

if wanted many; then
	section "many: $BENCH_MANY containers running sleep at once (sequential create + start)"
	/usr/bin/python3 "$here/many.py" "$RAW/many.json" "$BENCH_MANY" "${runtimes[@]}" ||
		echo "  many-containers measurement failed"
fi

section "leftovers"
trap - EXIT
finish
