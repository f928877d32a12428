/* Instance storage: an overlay file system with the image's rootfs as the
 * read-only lower layer and the instance's own upper layer, so a launch
 * copies nothing whatever the image's size. For an unprivileged instance the
 * lower layer is an idmapped mount (MOUNT_ATTR_IDMAP) of the image: files
 * owned by 0 on disk show as the instance's root; the upper layer holds real
 * host ids of the instance's range, so what the instance writes belongs to
 * an unprivileged host id. Layout under <state>/instances/<name>/:
 * upper/ work/ (overlay), lower/ and rootfs/ (mount points, used only in the
 * monitor's private mount namespace: the host never sees these mounts).
 *
 * The disk limit (limits.disk) takes one of two forms, chosen when it is
 * first set:
 *  - a project quota: upper/ and work/ (and everything in them) belong to
 *    one quota project with a hard limit, where the store's file system
 *    enforces project quotas (ext4 or xfs mounted with prjquota);
 *  - a disk image: instances/<name>/disk.img, a sparse ext4 file system of
 *    that size holding upper/ and work/, loop-mounted on disk/ in the
 *    monitor's mount namespace only. The loop device clears itself when the
 *    last mount goes, so a killed monitor leaves no device behind.
 * Neither possible: limits.disk is refused, naming why. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IDMAP_RANGE 65536u

struct stat;

/* Make upper/, work/, lower/, rootfs/ under inst_dir (which exists). The
 * upper layer's root takes the image root's mode and, when idmap_base >= 0,
 * is owned by it. */
int storage_create(const char *inst_dir, const char *image_rootfs, int64_t idmap_base);
/* Mount the overlay on inst_dir/rootfs in the caller's mount namespace
 * (which must be private). Replaces an earlier mount there; a disk image
 * already mounted in this namespace is kept. */
int storage_mount(const char *inst_dir, const char *image_rootfs, int64_t idmap_base);
/* Bytes used by the instance's own layer. mnt_pid: a process whose mount
 * namespace has the instance's storage mounted (its monitor), or 0. */
int storage_usage(const char *inst_dir, pid_t mnt_pid, uint64_t *ret);
/* The whole-disk block device that holds inst_dir (for disk rate limits);
 * -ENODEV when it is not on a block device. */
int storage_block_device(const char *inst_dir, unsigned *ret_major, unsigned *ret_minor);
/* A user namespace fd whose uid and gid maps are "0 base count". */
int storage_userns_fd(int64_t base, uint32_t count);

/* ---- the disk limit (storage-disk.c) ----------------------------------------- */

enum storage_disk { STORAGE_DISK_NONE, STORAGE_DISK_QUOTA, STORAGE_DISK_IMAGE };
enum storage_disk storage_disk_kind(const char *inst_dir);
/* Limit a new instance's layer (after storage_create, before any start) to
 * `bytes`: a project quota where the file system enforces them, else a disk
 * image; -EOPNOTSUPP with a message naming limits.disk when neither works. */
int storage_disk_create(const char *inst_dir, uint64_t bytes);
/* Change the limit (bytes > 0) or remove it (bytes == 0) on an existing
 * instance; mnt_pid as for storage_usage (0: stopped). Refused with a
 * message naming limits.disk: less than what is in use, a disk image that
 * cannot shrink or grow in its current state, no way to add a limit. */
int storage_disk_resize(const char *inst_dir, uint64_t bytes, pid_t mnt_pid);
/* Give back the quota of an instance directory about to be removed
 * (dirfd/name, possibly renamed). Best effort. */
void storage_disk_release(int dirfd, const char *name);
/* Mount inst_dir/disk.img on inst_dir/disk (private mount namespace). */
int storage_disk_mount(const char *inst_dir);

/* ---- trees (storage-tree.c) ----------------------------------------------------- */

/* Remove dirfd/name, whatever it is and however deep, without following
 * symlinks or crossing into another file system; immutable and append-only
 * attributes and closed permissions do not stop it. `what` names it in
 * messages. A missing name is not an error. */
int storage_tree_remove(int dirfd, const char *name, const char *what);
/* Bytes allocated under the directory dirfd (st_blocks of every entry, the
 * directory itself not counted), at any depth. */
int storage_tree_usage(int dirfd, const char *what, uint64_t *ret);
/* Call fn for every entry under the directory dirfd (any depth, no
 * symlinks followed, one file system), with the entry's directory and name;
 * a negative return stops the walk. */
typedef int storage_tree_fn(int dirfd, const char *name, const struct stat *st, void *userdata);
int storage_tree_walk(int dirfd, const char *what, storage_tree_fn *fn, void *userdata);

/* The fd on which a running instance's monitor holds the root of its
 * limits.disk image mount: the mount lives on in the instance's and the
 * monitor's namespaces only, and the host reads its usage (and grows it)
 * through /proc/<monitor>/fd/<this>. */
#define STORAGE_DISK_HOLD_FD 200
/* Put a handle on the mounted disk image of inst_dir (as mounted in the
 * caller's mount namespace) on STORAGE_DISK_HOLD_FD, inherited across exec.
 * Nothing to do without a disk image. */
int storage_disk_hold(const char *inst_dir);
