#!/bin/bash
# Builds the built-in busybox image: a minimal rootfs made from the host's
# statically linked /bin/busybox (Debian's busybox-static), one link per applet.
# Usage: scripts/mkrootfs.sh DIR   (DIR is replaced atomically)
set -euo pipefail

if (($# != 1)); then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dest=${1%/}
busybox=${BUSYBOX:-/bin/busybox}

die() {
	echo "mkrootfs: $*" >&2
	exit 1
}

[[ -x "$busybox" ]] || die "$busybox not found: install busybox-static (make deps)"

# A dynamically linked busybox would need the host's loader and libc inside the
# image. Look for a PT_INTERP program header (ELF64 little endian) with od,
# so that no ldd or file is needed.
is_static() {
	local -a h w
	read -r -a h < <(od -An -v -t u1 -N 64 "$busybox" | tr '\n' ' ')
	((${#h[@]} == 64)) || return 1
	[[ "${h[0]} ${h[1]} ${h[2]} ${h[3]}" == "127 69 76 70" ]] || return 1 # \177ELF
	[[ "${h[4]} ${h[5]}" == "2 1" ]] || return 0 # not ELF64-LE: cannot tell, trust it
	local phoff=0 i
	for ((i = 7; i >= 0; i--)); do phoff=$((phoff * 256 + h[32 + i])); done
	local phentsize=$((h[54] + 256 * h[55])) phnum=$((h[56] + 256 * h[57]))
	read -r -a w < <(od -An -v -t u4 -j "$phoff" -N $((phnum * phentsize)) "$busybox" | tr '\n' ' ')
	for ((i = 0; i < phnum; i++)); do
		((w[i * phentsize / 4] == 3)) && return 1 # PT_INTERP
	done
	return 0
}
is_static || die "$busybox is not a static ELF executable: install busybox-static"

parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.rootfs.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT

cd "$tmp"
mkdir -p bin sbin usr/bin usr/sbin etc root run var proc sys dev tmp home/user
chmod 0755 "$tmp"
chmod 1777 tmp
chmod 0700 root
cp "$busybox" bin/busybox
chmod 0755 bin/busybox

# One hard link per applet at the path busybox lists (usr/bin/env, sbin/ip, ...).
# `busybox --install` run inside the image does that in one process; where
# chroot is not allowed (not root), fall back to relative symlinks, one ln each.
if chroot "$tmp" /bin/busybox --install 2>/dev/null; then
	rm -f linuxrc # an initramfs entry point, not wanted here
else
	while IFS= read -r applet; do
		case "$applet" in
		bin/busybox | linuxrc) continue ;;
		esac
		up=${applet%/*}
		up=${up//[^\/]/}
		ln -sf "${up//\//../}../bin/busybox" "$applet"
	done < <("$busybox" --list-full)
fi

cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >etc/group <<'EOF'
root:x:0:
user:x:1000:
nogroup:x:65534:
EOF
echo isola >etc/hostname
: >etc/hosts
: >etc/resolv.conf
chown 1000:1000 home/user 2>/dev/null || true # needs root; harmless otherwise

cd /
# Two renames: a non-empty directory cannot be renamed over another one.
if [[ -e "$dest" ]]; then
	old=$(mktemp -d "$parent/.rootfs-old.XXXXXX")
	mv -T "$dest" "$old/r"
	mv -T "$tmp" "$dest"
	rm -rf --one-file-system "$old"
else
	mv -T "$tmp" "$dest"
fi
trap - EXIT
