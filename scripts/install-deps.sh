#!/bin/bash
# Installs the Debian packages that building, the demo, the tests and the
# benchmarks need. Idempotent: when everything is present it only asks dpkg
# and exits quietly. Run as root (`make deps` calls it); as another user it
# lists what is missing and exits 1.
set -euo pipefail

# One entry per package, with the reason it is here. Add new ones the same way.
PACKAGES=(
	build-essential  # cc, make, ar: building libisola.a, isola-oci, unit tests
	pkg-config       # locating library flags
	libjansson-dev   # JSON parsing/writing of config.json and state.json
	libseccomp-dev   # compiling linux.seccomp filters
	libsqlite3-dev   # the manager's state database (<state>/isola.db, src/manager/db.c)
	libarchive-dev   # image import/export: tar, gzip, zstd, xz (src/manager/image-*.c)
	libssl-dev       # libcrypto's sha256: image fingerprints and OCI blob digests
	zstd             # tests/integration/test_isola_image.py compresses .tar.zst test images
	busybox-static   # scripts/mkrootfs.sh builds the built-in busybox image from /bin/busybox
	python3          # /usr/bin/python3 runs the demo's JSON edit and the integration tests
	python3-pytest   # integration test runner (tests/integration)
	iproute2         # `ip` for network namespace tests and the demo
	util-linux       # unshare, nsenter, mount: namespace tests
	procps           # ps, pgrep: checking that no process is left behind
	hyperfine        # benchmarks (bench/run.sh)
	time             # /usr/bin/time: peak RSS of the runtimes in make bench
	runc             # benchmark baseline, and reference runtime for the integration tests
	crun             # benchmark baseline
	criu             # checkpoint / restore (isola-oci checkpoint, restore)
	iptables         # iptables-restore: CRIU locks the network of a container it dumps
	podman           # tests/integration/test_podman.py, test_rootless.py: podman --runtime isola-oci
	conmon           # podman's container monitor (runs isola-oci create/start for podman)
	containernetworking-plugins # CNI bridge + host-local: podman's default network in the tests
	buildah          # tests/integration/test_buildah.py: RUN steps of a build under isola-oci
	containerd       # tests/integration/test_containerd.py: ctr and the runc v2 shim driving isola-oci
	uidmap           # newuidmap/newgidmap: rootless isola-oci and rootless podman with subuid ranges
	slirp4netns      # rootless podman's default network (used when /dev/net/tun is usable)
	lxcfs            # resource views of isola instances: /proc/meminfo, cpuinfo, uptime, ... (src/manager/lxcfs.c)
	fuse3            # fusermount3: unmounting the LXCFS directory
	e2fsprogs        # mke2fs, e2fsck, resize2fs: the per-instance ext4 disk image of limits.disk on a store without project quotas
	lxc              # make bench: Debian's LXC (lxc-create -t busybox) as the instance-manager baseline
	qemu-system-x86  # virtual machines (src/vm): qemu-system-x86_64, microvm and q35 machines, TCG or KVM
	qemu-utils       # qemu-img: the VM image's base disk, per-VM qcow2 overlays, disk checks (src/vm/disk.c)
	lz4              # scripts/mkvmimage.sh: the cloud kernel's bzImage payload is LZ4 (vmlinux for PVH boot)
	xz-utils         # scripts/mkvmimage.sh: the generic kernel's bzImage payload is XZ (ISOLA_VM_KERNEL_PKG)
)

missing=()
# dpkg-query prints one line per known package; unknown ones only go to stderr.
declare -A state=()
while read -r name abbrev; do
	state[$name]=$abbrev
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
	[[ "${state[$p]:-}" == ii* ]] || missing+=("$p")
done

((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
	echo "install-deps: missing Debian packages: ${missing[*]}" >&2
	echo "install-deps: run as root: scripts/install-deps.sh (or make deps)" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y --no-install-recommends "${missing[@]}"
}

# Refresh the package lists first only when they are absent or older than a day;
# otherwise try with what we have and refresh once if that fails.
lists_fresh() {
	local newest
	newest=$(find /var/lib/apt/lists -maxdepth 1 -type f -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)
	[[ -n "$newest" ]]
}
if lists_fresh; then
	apt_install || { apt-get update && apt_install; }
else
	apt-get update
	apt_install
fi
