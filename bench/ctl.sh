#!/bin/sh
# Puts one benchmark container in a given state; hyperfine's --prepare and
# --cleanup call it between timed runs, the pre-checks call it too.
# Usage: ctl.sh RT STATE ID [BUNDLE]
#   RT     runtime name: $BENCH_WORK/bin/RT, state under $BENCH_WORK/root/RT
#   STATE  absent  - deleted (delete -f, errors ignored)
#          created - absent, then `create`
#          stopped - created, `start`, then wait until `state` says stopped
#          running - created, then `start` (BUNDLE must run something long)
# BUNDLE defaults to $BENCH_WORK/bundle-true.
set -u
rt=$1 want=$2 id=$3 bundle=${4:-$BENCH_WORK/bundle-true}
bin=$BENCH_WORK/bin/$rt
root=$BENCH_WORK/root/$rt

die() {
	echo "ctl.sh: $rt: $*" >&2
	exit 1
}

"$bin" --root "$root" delete -f "$id" >/dev/null 2>&1
[ "$want" = absent ] && exit 0

"$bin" --root "$root" create --bundle "$bundle" "$id" </dev/null >/dev/null ||
	die "create $id failed"
[ "$want" = created ] && exit 0

"$bin" --root "$root" start "$id" || die "start $id failed"
[ "$want" = running ] && exit 0

# stopped: the container runs /bin/true; give it up to ~10 s to exit.
i=0
while [ $i -lt 200 ]; do
	case $("$bin" --root "$root" state "$id" 2>/dev/null | tr -d ' \n\t') in
	*'"status":"stopped"'*) exit 0 ;;
	esac
	i=$((i + 1))
	sleep 0.05
done
die "$id did not stop within 10 s"
