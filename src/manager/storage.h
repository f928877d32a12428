/* Instance storage: an overlay file system with the image's rootfs as the
 * read-only lower layer and the instance's own upper layer, so a launch
 * copies nothing whatever the image's size. For an unprivileged instance the
 * lower layer is an idmapped mount (MOUNT_ATTR_IDMAP) of the image: files
 * owned by 0 on disk show as the instance's root; the upper layer holds real
 * host ids of the instance's range, so what the instance writes belongs to
 * an unprivileged host id. Layout under <state>/instances/<name>/:
 * upper/ work/ (overlay), lower/ and rootfs/ (mount points, used only in the
 * monitor's private mount namespace: the host never sees these mounts). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IDMAP_RANGE 65536u

/* Make upper/, work/, lower/, rootfs/ under inst_dir (which exists). The
 * upper layer's root takes the image root's mode and, when idmap_base >= 0,
 * is owned by it. */
int storage_create(const char *inst_dir, const char *image_rootfs, int64_t idmap_base);
/* Mount the overlay on inst_dir/rootfs in the caller's mount namespace
 * (which must be private). Replaces an earlier mount there. */
int storage_mount(const char *inst_dir, const char *image_rootfs, int64_t idmap_base);
/* Bytes used by the instance's own layer (du of upper/). */
int storage_usage(const char *inst_dir, uint64_t *ret);
/* The whole-disk block device that holds inst_dir (for disk rate limits);
 * -ENODEV when it is not on a block device. */
int storage_block_device(const char *inst_dir, unsigned *ret_major, unsigned *ret_minor);
/* A user namespace fd whose uid and gid maps are "0 base count". */
int storage_userns_fd(int64_t base, uint32_t count);
