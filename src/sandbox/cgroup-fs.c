/* cgroup filesystem access: the interface-file helpers every backend uses,
 * and the cgroup filesystem mounted inside a container. */
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

/* ---- interface files ---- */

static int path_at(char *buf, size_t size, const char *dir, const char *file)
{
	int n = snprintf(buf, size, "%s/%s", dir, file);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int cg_write(const char *field, const char *dir, const char *file, const char *val)
{
	char p[PATH_MAX];
	if (path_at(p, sizeof p, dir, file) < 0)
		return err_set(ENAMETOOLONG, "%s%swrite %s", field ? field : "", field ? ": " : "", file);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(val);
	ssize_t n = fd < 0 ? -1 : write(fd, val, len);
	if (n != (ssize_t)len) {
		int e = n >= 0 ? EIO : errno;
		if (field)
			return err_set(e, "%s: write %s", field, file);
		return err_set(e, "write %s", p);
	}
	return 0;
}

int cg_writef(const char *field, const char *dir, const char *file, const char *fmt, ...)
{
	char val[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(val, sizeof val, fmt, ap);
	va_end(ap);
	return cg_write(field, dir, file, val);
}

int cg_read(const char *dir, const char *file, char *buf, size_t size)
{
	char p[PATH_MAX];
	if (path_at(p, sizeof p, dir, file) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return (int)n;
}

int cg_read_u64(const char *dir, const char *file, uint64_t *ret)
{
	char buf[64], *end;
	int n = cg_read(dir, file, buf, sizeof buf);
	if (n < 0)
		return n;
	if (!strcmp(buf, "max")) {
		*ret = UINT64_MAX;
		return 0;
	}
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cg_read_key(const char *dir, const char *file, const char *key, int64_t *ret)
{
	char buf[1024];
	int n = cg_read(dir, file, buf, sizeof buf);
	if (n < 0)
		return n;
	size_t kl = strlen(key);
	for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, key, kl) && l[kl] == ' ') {
			*ret = strtoll(l + kl + 1, NULL, 10);
			return 0;
		}
	return -ENOENT;
}

void cg_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cg_read_whole(const char *path, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, n = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (cap - n < 1024) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		ssize_t k = read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

bool cg_word_in(const char *list, const char *w, size_t wl)
{
	for (const char *p = list; (p = strstr(p, w)); p += wl)
		if ((p == list || p[-1] == ' ' || p[-1] == '\n') && (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
			return true;
	return false;
}

/* ---- the cgroup filesystem inside a container ---- */

#define ATTR_MS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | \
		 MS_RELATIME | MS_STRICTATIME)

/* Apply a mount's MS_* flags to the mount whose root `fd` refers to (and,
 * with `recursive`, every mount below it). */
static int set_flags(int fd, unsigned long flags, bool recursive)
{
	struct mount_attr a = { 0 };
	if (flags & MS_RDONLY)
		a.attr_set |= MOUNT_ATTR_RDONLY;
	if (flags & MS_NOSUID)
		a.attr_set |= MOUNT_ATTR_NOSUID;
	if (flags & MS_NODEV)
		a.attr_set |= MOUNT_ATTR_NODEV;
	if (flags & MS_NOEXEC)
		a.attr_set |= MOUNT_ATTR_NOEXEC;
	if (flags & MS_NODIRATIME)
		a.attr_set |= MOUNT_ATTR_NODIRATIME;
	if (flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)) {
		a.attr_clr |= MOUNT_ATTR__ATIME;
		a.attr_set |= flags & MS_NOATIME ? MOUNT_ATTR_NOATIME :
			      flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME : MOUNT_ATTR_RELATIME;
	}
	if (!a.attr_set && !a.attr_clr)
		return 0;
	if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	/* Before Linux 5.12: a bind remount of this one mount (the caller walks submounts). */
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	return mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | (flags & ATTR_MS), NULL) < 0 ? -errno : 1;
}

/* Mount hierarchy h at target: with a cgroup namespace a new cgroup
 * filesystem (it shows the namespace's root), else a bind mount of this
 * process's own cgroup directory. `flags` are applied to the new mount. */
static int mount_hier(const struct cg_hier *h, const char *target, unsigned long flags, bool cgroupns,
		      char **selfcg)
{
	const char *fstype = h->v2 ? "cgroup2" : "cgroup";
	int r;
	/* No bind fallback in a cgroup namespace: /proc/self/cgroup is relative
	 * to its root there, and the bind would expose the host's hierarchy. */
	if (cgroupns && mount(fstype, target, fstype, flags & ATTR_MS, h->v2 ? NULL : h->key) < 0)
		return err_set(errno, "mount %s (%s)", fstype, h->v2 ? "unified" : h->key);
	if (cgroupns)
		return 0;
	if (!*selfcg && (r = cg_read_whole("/proc/self/cgroup", selfcg)) < 0)
		return err_set(-r, "read /proc/self/cgroup");
	_cleanup_free_ char *rel = NULL, *src = NULL;
	if ((r = cg_own_rel(*selfcg, h, &rel)) < 0)
		return r;
	if (asprintf(&src, "%s%s", h->mnt, strcmp(rel, "/") ? rel : "") < 0) {
		src = NULL;
		return err_set(ENOMEM, "cgroup mount");
	}
	_cleanup_close_ int fd = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "clone mount '%s'", src);
	if (move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS) < 0)
		return err_set(errno, "bind mount '%s'", src);
	if ((r = set_flags(fd, flags, false)) < 0)
		return err_set(-r, "set mount flags on '%s'", src);
	return 0;
}

/* The directory name a hierarchy has on the host ("cpu,cpuacct"). */
static const char *subdir_name(const struct cg_hier *h)
{
	size_t n = strlen(CGROUP_ROOT "/");
	if (!strncmp(h->mnt, CGROUP_ROOT "/", n) && h->mnt[n] && !strchr(h->mnt + n, '/'))
		return h->mnt + n;
	if (h->v2)
		return "unified";
	return strncmp(h->key, "name=", 5) ? h->key : h->key + 5;
}

/* cpu -> cpu,cpuacct and the like: the host's own symlinks to hierarchies we
 * mounted, and one per controller of a combined hierarchy. */
static void add_symlinks(int root, const struct cg_hier *hs, size_t n)
{
	_cleanup_closedir_ DIR *d = opendir(CGROUP_ROOT);
	struct dirent *e;
	struct stat st;
	while (d && (e = readdir(d))) {
		char tgt[256];
		ssize_t k;
		if (e->d_type != DT_LNK || (k = readlinkat(dirfd(d), e->d_name, tgt, sizeof tgt - 1)) <= 0)
			continue;
		tgt[k] = '\0';
		if (!strchr(tgt, '/') && fstatat(root, tgt, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			(void)symlinkat(tgt, root, e->d_name); /* best effort, like the host */
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = subdir_name(&hs[i]);
		if (!strchr(name, ','))
			continue;
		for (const char *t = name, *end; *t; t = *end ? end + 1 : end) {
			char one[64];
			end = strchrnul(t, ',');
			snprintf(one, sizeof one, "%.*s", (int)(end - t), t);
			if (strncmp(one, "name=", 5))
				(void)symlinkat(name, root, one); /* EEXIST: the host had it */
		}
	}
}

/* v1 and hybrid: a tmpfs with one directory per hierarchy. */
static int mount_tree(const struct cg_hier *hs, size_t n, const char *target, unsigned long flags,
		      bool cgroupns)
{
	_cleanup_free_ char *selfcg = NULL;
	_cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC), root = -1;
	char p[64];
	int r;
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 || (root = fsmount(fs, FSMOUNT_CLOEXEC, 0)) < 0)
		return err_set(errno, "cgroup mount: create tmpfs");
	/* Attach first: only an attached tree can take the submounts. The fd
	 * keeps naming the tmpfs root (a path through target would not). */
	if (move_mount(root, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS) < 0)
		return err_set(errno, "cgroup mount: mount tmpfs");
	for (size_t i = 0; i < n; i++) {
		const char *name = subdir_name(&hs[i]);
		if (mkdirat(root, name, 0755) < 0) {
			r = err_set(errno, "cgroup mount: mkdir %s", name);
			goto fail;
		}
		_cleanup_close_ int dfd = openat(root, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			r = err_set(errno, "cgroup mount: open %s", name);
			goto fail;
		}
		snprintf(p, sizeof p, "/proc/self/fd/%d", dfd);
		if ((r = mount_hier(&hs[i], p, 0, cgroupns, &selfcg)) < 0) {
			err_wrap(r, "cgroup mount: %s", name);
			goto fail;
		}
	}
	add_symlinks(root, hs, n);
	r = set_flags(root, flags, true);
	for (size_t i = 0; r == 1 && i < n; i++) { /* no mount_setattr(): one by one */
		_cleanup_close_ int sub = openat(root, subdir_name(&hs[i]), O_PATH | O_DIRECTORY | O_CLOEXEC);
		r = sub < 0 ? -errno : set_flags(sub, flags, false);
	}
	if (r < 0) {
		r = err_set(-r, "cgroup mount: set mount flags");
		goto fail;
	}
	return 0;
fail:
	snprintf(p, sizeof p, "/proc/self/fd/%d", root);
	(void)umount2(p, MNT_DETACH); /* best effort: leave the target as it was */
	return r;
}

int cgroup_mount_in_container(const char *target, unsigned long flags, bool cgroupns)
{
	const struct cg_hier *hs;
	size_t n;
	_cleanup_free_ char *selfcg = NULL;
	int r = cg_layout(&hs, &n);
	if (r < 0)
		return r;
	if (cgroup_mode() != CGROUP_UNIFIED)
		return mount_tree(hs, n, target, flags, cgroupns);
	r = mount_hier(&hs[0], target, flags, cgroupns, &selfcg);
	return r < 0 ? err_wrap(r, "cgroup mount") : 0;
}
