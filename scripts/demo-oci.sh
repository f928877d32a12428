#!/bin/bash
# `make demo-oci`: runs one container from the built-in busybox image with
# isola-oci and shows what it sees: its own hostname, PID 1, mounts, only a
# loopback interface, and its identity.
# Usage: scripts/demo.sh BUILD   (ISOLA_RUNTIME=/path overrides BUILD/isola-oci)
set -euo pipefail

if (($# != 1)); then
	echo "usage: $0 BUILD" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
runtime=${ISOLA_RUNTIME:-$build/isola-oci}
rootfs=$build/rootfs
id=demo-$$

[[ -x "$runtime" ]] || { echo "demo: $runtime not found: run make first" >&2; exit 1; }
[[ -x "$rootfs/bin/busybox" ]] || { echo "demo: $rootfs not found: run make first" >&2; exit 1; }

tmp=$(mktemp -d /tmp/isola-demo.XXXXXX)
cleanup() {
	"$runtime" delete --force "$id" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

bundle=$tmp/bundle
mkdir "$bundle"
cp -a "$rootfs" "$bundle/rootfs"
(cd "$bundle" && "$runtime" spec)

# What the container runs (as /demo.sh in its copy of the image): each section
# prints a header, then what the container sees.
cat >"$bundle/rootfs/demo.sh" <<'EOS'
echo "--- hostname"
hostname
echo
echo "--- processes: the shell is PID 1, no host process is visible"
ps
echo
echo "--- first mounts, from /proc/self/mountinfo"
head -n 10 /proc/self/mountinfo
echo
echo "--- network interfaces: a fresh network namespace has only lo"
ip link
cat /proc/net/dev
echo
echo "--- identity"
id
EOS

/usr/bin/python3 - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f:
    config = json.load(f)
config["root"]["path"] = "rootfs"
config["hostname"] = "isola-demo"
config["process"]["terminal"] = False
config["process"]["args"] = ["/bin/sh", "/demo.sh"]
with open(path, "w") as f:
    json.dump(config, f, indent=2)
EOF

echo "=== isola demo"
echo "runtime:   $runtime"
echo "bundle:    $bundle (rootfs copied from $rootfs)"
echo "container: $id"
echo "=== output of the container"
rc=0
"$runtime" run --bundle "$bundle" "$id" </dev/null || rc=$?
echo "=== container exited with status $rc"
exit "$rc"
