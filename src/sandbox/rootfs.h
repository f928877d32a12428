/* The container's filesystem view: rootfs, OCI mounts, devices, pivot_root,
 * masked and read-only paths. Runs in the container init, inside its mount
 * namespace. Every path inside the rootfs is resolved with
 * openat2(RESOLVE_IN_ROOT), so symlinks never lead out of it. */
#pragma once
#include <stdbool.h>
#include "spec/spec.h"

/* Make the mount tree private/slave so nothing propagates to the host, and
 * bind the rootfs onto itself. Returns an O_PATH fd on the rootfs. Without a
 * mount namespace (mountns false) the host's mounts are left as they are. */
int rootfs_prepare(const oci_spec *s, bool mountns, int *ret_rootfd);
/* Per entry of s->mounts, from rootfs_mount_all to rootfs_finalize (-1:
 * none).
 * source: a bind source opened (O_PATH) by the runtime, which may reach
 * what the container's root in its user namespace may not (a volume under
 * a 0700 directory); source_err: the errno of that open instead. Without
 * either, rootfs_mount_all opens the source path itself.
 * late_ro: a read-only /dev or tmpfs, mounted writable so that what goes
 * beneath it (devices, devpts, a secret's bind mount) can be made, and made
 * read-only by rootfs_finalize. */
typedef struct {
	size_t n;
	int *source, *source_err, *late_ro;
} rootfs_mounts;
int rootfs_mounts_init(rootfs_mounts *mm, size_t n);
/* A bind mount (an "rbind"/"bind" option or type "bind"), and the host path
 * of its source (relative sources are the bundle's). */
bool rootfs_mount_is_bind(const spec_mount *m);
void rootfs_bind_source(const oci_spec *s, const spec_mount *m, char *buf, size_t size);
void rootfs_mounts_clear(rootfs_mounts *mm);
/* Mount every entry of s->mounts beneath rootfd. */
int rootfs_mount_all(const oci_spec *s, int rootfd, bool userns, bool cgroupns, rootfs_mounts *mm);
/* Default devices, linux.devices and the /dev symlinks. console_slave is the
 * pty slave path to bind on /dev/console, or NULL. */
int rootfs_devices(const oci_spec *s, int rootfd, bool userns, const char *console_slave);
/* pivot_root into the rootfs (or MS_MOVE + chroot with no_pivot). */
int rootfs_pivot(const oci_spec *s, int rootfd, bool no_pivot, bool mountns);
/* After pivot_root: maskedPaths, readonlyPaths, the mounts left writable
 * to be filled (mm->late_ro), root.readonly, rootfsPropagation. */
int rootfs_finalize(const oci_spec *s, rootfs_mounts *mm);
