#!/bin/bash
# Builds the built-in VM image from Debian packages only (no download beyond
# apt): a kernel from Debian's linux-image package, uncompressed for PVH boot;
# a small initramfs that loads the virtio modules and mounts the root disk; a
# root disk (ext4 made with mke2fs -d, converted to qcow2) holding
# busybox-static, an init script, the guest agent and a shell on the serial
# console. Each VM's root disk is later a qcow2 overlay on base.qcow2.
#
# Usage: scripts/mkvmimage.sh OUTDIR AGENT [CACHEDIR]
#   OUTDIR    gets vmlinux, initrd.img, base.qcow2, kernel.release (replaced atomically)
#   AGENT     the static isola-agent binary
#   CACHEDIR  the downloaded .deb and the extracted kernel and modules, kept
#             across rebuilds (default: OUTDIR/../vm-cache)
# Environment: ISOLA_VM_KERNEL_PKG   exact package name (default: what
#              linux-image-cloud-amd64 depends on; the cloud flavour has
#              fewer drivers to probe and boots faster)
set -euo pipefail

die() {
	echo "mkvmimage: $*" >&2
	exit 1
}
(($# >= 2)) || die "usage: $0 OUTDIR AGENT [CACHEDIR]"
out=$(realpath -m "$1")
agent=$(realpath "$2")
cache=$(realpath -m "${3:-$out/../vm-cache}")
busybox=${BUSYBOX:-/bin/busybox}
[[ -x "$agent" ]] || die "$agent: not an executable (build it first: make build/isola-agent)"
[[ -x "$busybox" ]] || die "$busybox not found: install busybox-static (make deps)"
for t in mke2fs qemu-img dpkg-deb readelf; do
	command -v "$t" >/dev/null || die "$t not found: install the VM dependencies (make deps)"
done
mkdir -p "$cache"

# The exact kernel package: one name, never a glob (a glob downloads every version).
pkg=${ISOLA_VM_KERNEL_PKG:-}
if [[ -z "$pkg" ]]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1) || true
fi
if [[ -z "$pkg" ]]; then
	# No package lists (offline): keep using the kernel cached before.
	pkg=$(find "$cache" -maxdepth 1 -name 'linux-image-*.deb' -printf '%f\n' | sort -V | tail -n 1 | cut -d_ -f1)
	[[ -n "$pkg" ]] || die "cannot find the kernel package: apt-cache depends linux-image-cloud-amd64 gave nothing (apt-get update?)"
fi
[[ "$pkg" =~ ^linux-image-[0-9][A-Za-z0-9.+-]*$ ]] || die "$pkg: not a kernel package name"

deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" -printf '%p\n' | sort -V | tail -n 1)
if [[ -z "$deb" ]]; then
	echo "mkvmimage: downloading $pkg (apt-get download)"
	(cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' >&2) || true
	deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" -printf '%p\n' | sort -V | tail -n 1)
	[[ -n "$deb" ]] || die "apt-get download $pkg failed"
fi

# Extract the kernel once per package version: vmlinux (the ELF inside the
# compressed bzImage, for PVH boot) and the modules the guest needs.
kdir="$cache/$(basename "$deb" .deb)"
if [[ ! -f "$kdir/done" ]]; then
	# A private temporary directory, renamed into place at the end: a build
	# killed half-way, or one running beside this one, leaves no half cache.
	rm -rf "$kdir"
	ktmp=$(mktemp -d "$kdir.tmp.XXXXXX")
	trap 'rm -rf "$ktmp"' EXIT
	mkdir -p "$ktmp/x"
	dpkg-deb -x "$deb" "$ktmp/x"
	vmlinuz=$(find "$ktmp/x/boot" -name 'vmlinuz-*' | head -n 1)
	[[ -n "$vmlinuz" ]] || die "$deb: no /boot/vmlinuz-*"
	release=${vmlinuz##*/vmlinuz-}
	# The bzImage's payload: find each compressor's magic and keep the first
	# offset that decompresses to an ELF file.
	found=
	for sig in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'lz4:\x02\x21\x4c\x18' 'gzip:\x1f\x8b\x08'; do
		name=${sig%%:*}
		command -v "$name" >/dev/null || continue
		for pos in $(LC_ALL=C grep -aboP "${sig#*:}" "$vmlinuz" | cut -d: -f1 | head -n 5); do
			case $name in
			xz) dec=(xz -dc) ;; zstd) dec=(zstd -dc) ;; lz4) dec=(lz4 -dc) ;; gzip) dec=(gzip -dc) ;;
			esac
			tail -c +$((pos + 1)) "$vmlinuz" | "${dec[@]}" >"$ktmp/vmlinux" 2>/dev/null || true
			if [[ "$(head -c 4 "$ktmp/vmlinux" | od -An -t x1 | tr -d ' ')" == 7f454c46 ]]; then
				found=$name
				break 2
			fi
		done
	done
	[[ -n "$found" ]] || die "$vmlinuz: no xz, zstd, lz4 or gzip payload decompresses to an ELF vmlinux"
	# PVH entry point: the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18).
	readelf -n "$ktmp/vmlinux" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)' ||
		die "$vmlinuz: the kernel has no PVH entry point (CONFIG_PVH)"
	mdir="$ktmp/x/lib/modules/$release"
	mkdir -p "$ktmp/modules"
	# Modules to load, in this order, each after its dependencies. The package
	# ships no modules.dep (depmod makes it at install time): read each
	# module's "depends=" from its .modinfo section instead.
	want=(virtio_mmio virtio_pci virtio_blk virtio_console virtio_balloon virtio_net pvpanic_mmio button evdev crc32c_generic ext4)
	declare -A path_of=() seen=()
	while IFS= read -r p; do
		n=${p##*/}
		n=${n%%.ko*}
		path_of[${n//-/_}]=$p
	done < <(cd "$mdir" && find kernel -name '*.ko*')
	order=()
	add() {
		local m=$1 path d
		[[ -z "${seen[$m]:-}" ]] || return 0
		seen[$m]=1
		path=${path_of[$m]:-}
		[[ -n "$path" ]] || return 0 # built into the kernel
		for d in $(LC_ALL=C grep -ao 'depends=[^[:cntrl:]]*' "$mdir/$path" | head -n 1 | cut -d= -f2 | tr ',' ' '); do
			add "${d//-/_}"
		done
		order+=("$path")
	}
	for m in "${want[@]}"; do add "$m"; done
	for p in "${order[@]}"; do
		[[ "$p" == *.ko ]] || die "$p: compressed modules are not supported by busybox insmod here"
		cp "$mdir/$p" "$ktmp/modules/"
		echo "${p##*/}" >>"$ktmp/modules/load-order"
	done
	echo "$release" >"$ktmp/kernel.release"
	echo "$found" >"$ktmp/payload"
	rm -rf "$ktmp/x"
	touch "$ktmp/done"
	mv -T "$ktmp" "$kdir" 2>/dev/null || rm -rf "$ktmp" # another build was first
	trap - EXIT
fi
release=$(cat "$kdir/kernel.release")

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.vm.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT

# --- initramfs: load the modules, mount the root disk, switch to it ---
ird="$tmp/initramfs"
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" "$ird/bin/busybox"
cp "$kdir"/modules/*.ko "$kdir/modules/load-order" "$ird/lib/modules/"
cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
# isola VM initramfs: virtio modules, then the root disk /dev/vda.
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The accelerator probe (src/vm/accel.c) only needs to see userspace.
case " $(cat /proc/cmdline) " in *" isola.probe "*)
	echo ISOLA-PROBE-OK >/dev/ttyS0
	poweroff -f ;;
esac
while read -r m; do insmod "/lib/modules/$m"; done </lib/modules/load-order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do usleep 10000; i=$((i + 1)); done
if ! mount -t ext4 /dev/vda /newroot; then
	echo "isola-initramfs: cannot mount the root disk /dev/vda" >/dev/console
	echo c >/proc/sysrq-trigger
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
EOF
chmod 0755 "$ird/init"
(cd "$ird" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) >"$tmp/initrd.img"

# --- root disk: busybox, init, the agent, a shell on the serial console ---
root="$tmp/root"
mkdir -p "$root"/{bin,sbin,etc/init.d,root,proc,sys,dev,run,tmp,var/log}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
	[[ "$a" == busybox ]] || ln -s busybox "$root/bin/$a"
done
ln -s ../bin/busybox "$root/sbin/init"
install -m 0755 "$agent" "$root/sbin/isola-agent"
cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
::respawn:/sbin/isola-agent
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/bin/reboot
::shutdown:/etc/init.d/rcK
EOF
# At shutdown: everything stopped, the root file system read-only (clean,
# no journal replay at the next boot).
cat >"$root/etc/init.d/rcK" <<'EOF'
#!/bin/sh
kill -TERM -1 2>/dev/null
usleep 100000
kill -KILL -1 2>/dev/null
sync
mount -o remount,ro / 2>/dev/null
EOF
chmod 0755 "$root/etc/init.d/rcK"
cat >"$root/etc/init.d/rcS" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -o remount,rw /
hostname -F /etc/hostname
# ACPI power button (system_powerdown): busybox acpid runs
# /etc/acpi/PWRF/00000080, a clean poweroff.
acpid
EOF
chmod 0755 "$root/etc/init.d/rcS"
mkdir -p "$root/etc/acpi/PWRF"
printf '#!/bin/sh\nexec poweroff\n' >"$root/etc/acpi/PWRF/00000080"
chmod 0755 "$root/etc/acpi/PWRF/00000080"
echo isola >"$root/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$root/etc/group"
printf 'export PATH=/bin:/sbin\nexport PS1="\\h:\\w# "\n' >"$root/etc/profile"
truncate -s 64M "$tmp/root.img"
mke2fs -q -t ext4 -L isola-root -E root_owner=0:0 -d "$root" "$tmp/root.img"
qemu-img convert -q -f raw -O qcow2 "$tmp/root.img" "$tmp/base.qcow2"
rm -f "$tmp/root.img"
rm -rf "$root" "$ird"

ln "$kdir/vmlinux" "$tmp/vmlinux" 2>/dev/null || cp "$kdir/vmlinux" "$tmp/vmlinux"
echo "$release" >"$tmp/kernel.release"
chmod 0755 "$tmp"
rm -rf "$out.old"
[[ ! -e "$out" ]] || mv "$out" "$out.old"
mv "$tmp" "$out"
rm -rf "$out.old"
trap - EXIT
echo "mkvmimage: $out (kernel $release)"
