/* Shared between the files of the container's filesystem view (rootfs*.c). */
#pragma once
#include <stdbool.h>

/* --no-pivot: detach (or cover) every procfs and sysfs of the host outside
 * the rootfs (rootfd), before the chroot (rootfs-nopivot.c). */
int rootfs_hide_host_kernfs(int rootfd);
