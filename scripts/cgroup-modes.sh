#!/bin/sh
# Run the cgroup unit test on the host's own cgroup layout and, in private
# mount namespaces, on the other layouts this host can show: "legacy" (the
# cgroup2 mount hidden) and "unified" (cgroup2 mounted on /sys/fs/cgroup).
# The host's own mounts are never touched. Usage: scripts/cgroup-modes.sh [test binary]
set -u
T=$(realpath "${1:-build/unit/test-cgroup}")
[ "$(id -u)" = 0 ] || { echo "cgroup-modes: SKIP: needs root"; exit 0; }
fail=0

echo "== host layout"
"$T" || fail=1

if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && [ -d /sys/fs/cgroup/unified ] &&
   [ "$(stat -fc %T /sys/fs/cgroup/unified)" = cgroup2fs ]; then
	echo "== legacy: hybrid host with the cgroup2 mount hidden"
	unshare -m --propagation private sh -c '
		umount -l /sys/fs/cgroup/unified &&
		ISOLA_EXPECT_CGROUP_MODE=legacy exec "$0"' "$T" || fail=1
	# This host binds every controller to v1: the cgroup2 hierarchy has
	# (almost) none, so only the basic paths run with real files there.
	echo "== unified: cgroup2 mounted on /sys/fs/cgroup"
	unshare -m --propagation private sh -c '
		for d in /sys/fs/cgroup/*; do umount -l "$d" 2>/dev/null; done
		umount -l /sys/fs/cgroup &&
		mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
		ISOLA_EXPECT_CGROUP_MODE=unified exec "$0"' "$T" || fail=1
else
	echo "cgroup-modes: host is not hybrid; only its own layout was tested"
fi
[ $fail -eq 0 ] && echo "cgroup-modes: all layouts passed" || echo "cgroup-modes: FAILED"
exit $fail
