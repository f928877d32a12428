/* LXCFS (Debian package lxcfs): the FUSE file system whose /proc and /sys
 * files show a reading process the limits of its own cgroup (meminfo,
 * cpuinfo, stat, uptime, loadavg, cpu/online). One daemon serves the whole
 * host; the manager starts it on first use and bind-mounts its files over
 * the instance's /proc and /sys entries. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* Default mount point, overridden by $ISOLA_LXCFS_DIR (tests). */
#define LXCFS_DEFAULT_DIR "/run/isola/lxcfs"

/* The directory to use: $ISOLA_LXCFS_DIR or LXCFS_DEFAULT_DIR. */
const char *lxcfs_dir(void);

/* Make sure an LXCFS daemon serves dir (created when absent). When a
 * working lxcfs FUSE mount is already there, nothing else happens.
 * Otherwise a stale mount is detached and `lxcfs --enable-loadavg
 * --enable-cfs -p <dir>.pid <dir>` is started in its own session, its
 * output in <dir>.log, and the call waits (up to 5 s) for proc/meminfo to
 * be readable. Errors name the directory and quote the log; -ENOENT with
 * "lxcfs is not installed (Debian package lxcfs)" when the binary is missing. */
int lxcfs_ensure(const char *dir);

/* <dir>.pid, where the daemon serving dir records its pid. */
int lxcfs_pid_path(const char *dir, char *buf, size_t size);

/* Unmount dir and stop the daemon recorded in <dir>.pid (tests). */
int lxcfs_stop(const char *dir);

/* A file LXCFS serves and where it goes in an instance. */
struct lxcfs_bind {
	const char *source; /* relative to the LXCFS directory: "proc/meminfo" */
	const char *target; /* in the instance: "/proc/meminfo" */
};
/* The binds whose source exists under dir, in mount order; *ret points
 * into a static table copy owned by the caller (free()). */
int lxcfs_binds(const char *dir, struct lxcfs_bind **ret, size_t *ret_n);

/* In the mount namespace of a running instance (its init's pid), put the
 * files of the daemon now serving dir over the binds whose daemon died.
 * *ret_repaired: how many were replaced. */
int lxcfs_rebind(const char *dir, pid_t init, unsigned *ret_repaired);
