/* Small file helpers: whole-file reads, atomic writes, /proc and sysfs writes. */
#pragma once
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>

/* Read a whole file (dirfd may be AT_FDCWD); *ret is NUL-terminated. */
int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len);
/* Write data to dirfd/name atomically: temp file, fsync, rename. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* A --pid-file: the pid in decimal, written atomically in path's directory
 * (a reader such as containerd never sees it empty or half-written). */
int write_pid_file(const char *path, pid_t pid);
/* open(O_WRONLY|O_TRUNC) + one write, for /proc and cgroup files. */
int write_file_at(int dirfd, const char *path, const char *data, size_t len);
int write_str(const char *path, const char *s);
/* write(2) / read(2) loops. */
int write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len);
int mkdir_p(const char *path, mode_t mode);
/* Remove a directory tree that has no mounts (best effort, no symlink following). */
int rm_rf_at(int dirfd, const char *name);
/* Resolve `path` beneath root_fd (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS); -errno. */
int openat_in_root(int root_fd, const char *path, int flags, mode_t mode);
/* The same, but any symlink on the way (or at the end) fails with -ELOOP. */
int openat_in_root_nosymlinks(int root_fd, const char *path, int flags);
