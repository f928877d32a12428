#!/bin/sh
# Run the cgroup unit tests on the host's own cgroup layout and, in private
# mount namespaces, on the other layouts this host can show: "legacy" (the
# cgroup2 mount hidden) and "unified" (cgroup2 mounted on /sys/fs/cgroup). In
# every layout a container run by build/isola-oci also checks the device
# rules end to end (v1 devices controller, or the eBPF filter on v2).
# The host's own mounts are never touched.
# Usage: scripts/cgroup-modes.sh [test binary...]
#        (default: build/unit/test-cgroup build/unit/test-cgroup-bpf)
set -u

# Device rules seen from inside a container: a node the rules do not allow
# cannot be opened (mknod itself is allowed by the default "c *:* m"), and
# allowing it in linux.resources.devices makes it usable. $1 = "allow"/"deny".
devices_e2e() {
	oci=$(realpath "${ISOLA_BUILD:-build}/isola-oci") rootfs=$(realpath "${ISOLA_BUILD:-build}/rootfs")
	d=$(mktemp -d /tmp/isola-cgroup-modes-XXXXXX) || return 1
	mkdir "$d/bundle" "$d/state"
	(cd "$d/bundle" && "$oci" spec) || { rm -rf "$d"; return 1; }
	/usr/bin/python3 - "$d/bundle/config.json" "$rootfs" "$1" <<'EOF' || { rm -rf "$d"; return 1; }
import json, sys
path, rootfs, mode = sys.argv[1:]
c = json.load(open(path))
c["root"]["path"] = rootfs
c["process"]["args"] = ["/bin/sh", "-c",
    "mknod /dev/xtun c 10 200 && echo mknod-ok; ( : </dev/xtun ) 2>&1; "
    "echo x > /dev/null && echo null-ok; echo end"]
for k in ("bounding", "effective", "permitted"):
    c["process"]["capabilities"][k].append("CAP_MKNOD")
if mode == "allow":
    c["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"})
json.dump(c, open(path, "w"))
EOF
	out=$("$oci" --root "$d/state" run -b "$d/bundle" "cgroup-modes-$$" 2>&1)
	rc=$?
	rm -rf "$d"
	ok=1
	case "$out" in *mknod-ok*null-ok*end*) ;; *) ok=0 ;; esac
	case "$1:$out" in allow:*"not permitted"*) ok=0 ;; deny:*"not permitted"*) ;; deny:*) ok=0 ;; esac
	if [ $rc -ne 0 ] || [ $ok -ne 1 ]; then
		echo "devices end to end ($1): FAILED (rc $rc):"
		echo "$out" | sed 's/^/  /'
		return 1
	fi
	echo "devices end to end ($1): ok"
}

# Every test binary, then the end-to-end check; $1 = expected mode or "".
run_all() {
	mode=$1 rc=0
	shift
	for t in "$@"; do
		ISOLA_EXPECT_CGROUP_MODE=$mode "$t" || rc=1
	done
	if [ -x "${ISOLA_BUILD:-build}/isola-oci" ] && [ -d "${ISOLA_BUILD:-build}/rootfs" ]; then
		devices_e2e deny || rc=1
		devices_e2e allow || rc=1
	else
		echo "devices end to end: SKIP: ${ISOLA_BUILD:-build}/isola-oci or rootfs not built"
	fi
	return $rc
}

if [ "${1:-}" = --in-namespace ]; then # re-run of this script inside unshare
	shift
	run_all "$@"
	exit
fi

[ $# -gt 0 ] || set -- build/unit/test-cgroup build/unit/test-cgroup-bpf
n=$#
for t in "$@"; do
	set -- "$@" "$(realpath "$t")"
done
shift $n
[ "$(id -u)" = 0 ] || { echo "cgroup-modes: SKIP: needs root"; exit 0; }
self=$(realpath "$0")
fail=0

echo "== host layout"
run_all "" "$@" || fail=1

if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && [ -d /sys/fs/cgroup/unified ] &&
   [ "$(stat -fc %T /sys/fs/cgroup/unified)" = cgroup2fs ]; then
	echo "== legacy: hybrid host with the cgroup2 mount hidden"
	unshare -m --propagation private sh -c '
		umount -l /sys/fs/cgroup/unified &&
		exec "$0" --in-namespace legacy "$@"' "$self" "$@" || fail=1
	# This host binds every controller to v1: the cgroup2 hierarchy has
	# (almost) none, so only the basic paths run with real files there.
	echo "== unified: cgroup2 mounted on /sys/fs/cgroup"
	unshare -m --propagation private sh -c '
		for d in /sys/fs/cgroup/*; do umount -l "$d" 2>/dev/null; done
		umount -l /sys/fs/cgroup &&
		mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
		exec "$0" --in-namespace unified "$@"' "$self" "$@" || fail=1
else
	echo "cgroup-modes: host is not hybrid; only its own layout was tested"
fi
[ $fail -eq 0 ] && echo "cgroup-modes: all layouts passed" || echo "cgroup-modes: FAILED"
exit $fail
