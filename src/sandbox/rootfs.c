/* The container's filesystem view: rootfs, mounts, devices, pivot_root,
 * masked and read-only paths (see rootfs.h). */
#include "rootfs.h"
#include "rootfs-internal.h"
#include "cgroup.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/mount.h>

#define FDPATH_MAX 32
static const char *fdpath(char buf[FDPATH_MAX], int fd)
{
	snprintf(buf, FDPATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

static int mount_setattr_fd(int fd, const char *path, unsigned flags, struct mount_attr *attr)
{
	return (int)syscall(SYS_mount_setattr, fd, path, flags, attr, sizeof *attr);
}

/* Attach a detached mount tree onto the object target_fd names; no path
 * lookup, so it works after pivot_root whether /proc is mounted or not. */
static int attach_fd(int tree, int target_fd)
{
	return (int)syscall(SYS_move_mount, tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* Bind (a clone of) src_dirfd/src_path onto target_fd, applying attr to the
 * clone before it becomes visible. */
static int bind_fd(int src_dirfd, const char *src_path, int target_fd, bool recursive, struct mount_attr *attr)
{
	unsigned fl = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) |
		      (src_path[0] ? 0 : AT_EMPTY_PATH);
	_cleanup_close_ int tree = (int)syscall(SYS_open_tree, src_dirfd, src_path, fl);
	if (tree < 0)
		return -errno;
	if (attr && (attr->attr_set || attr->attr_clr) &&
	    mount_setattr_fd(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), attr) < 0)
		return -errno;
	return attach_fd(tree, target_fd) < 0 ? -errno : 0;
}

static int open_in_root(int rootfd, const char *path, bool nosym)
{
	return nosym ? openat_in_root_nosymlinks(rootfd, path, O_PATH) : openat_in_root(rootfd, path, O_PATH, 0);
}

/* Resolve `path` beneath rootfd, creating missing components: directories,
 * and the last one as a directory (want_dir) or an empty file. Returns an
 * O_PATH fd on the result. Symlinks are followed only inside the rootfs, and
 * not at all with nosym (-ELOOP). */
static int resolve_create(int rootfd, const char *path, bool want_dir, bool nosym)
{
	int fd = open_in_root(rootfd, path, nosym);
	if (fd >= 0 || fd != -ENOENT)
		return fd;
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof buf)
		return -ENAMETOOLONG;
	strcpy(buf, path);
	char *slash = strrchr(buf, '/');
	const char *leaf;
	_cleanup_close_ int pfd = -1;
	if (slash) {
		*slash = '\0';
		leaf = slash + 1;
		pfd = resolve_create(rootfd, buf[0] ? buf : "/", true, nosym);
	} else {
		leaf = buf;
		pfd = open_in_root(rootfd, "/", nosym);
	}
	if (pfd < 0)
		return pfd;
	if (!*leaf || !strcmp(leaf, ".") || !strcmp(leaf, ".."))
		return open_in_root(rootfd, path, nosym);
	/* mkdirat/openat need a real directory fd, not O_PATH. */
	_cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (want_dir) {
		if (mkdirat(dfd, leaf, 0755) < 0 && errno != EEXIST)
			return -errno;
	} else {
		int f = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (f < 0 && errno != EEXIST)
			return -errno;
		if (f >= 0)
			close(f);
	}
	/* Looked up again, as strictly: whatever is there now is still inside
	 * the rootfs, and callers act on this fd only. */
	return open_in_root(rootfd, path, nosym);
}

/* MS_* flags that mount_setattr can change on an existing mount. */
static void attr_from_flags(unsigned long set, unsigned long clear, struct mount_attr *a)
{
	memset(a, 0, sizeof *a);
	static const struct { unsigned long ms; uint64_t attr; } map[] = {
		{ MS_RDONLY, MOUNT_ATTR_RDONLY }, { MS_NOSUID, MOUNT_ATTR_NOSUID },
		{ MS_NODEV, MOUNT_ATTR_NODEV },   { MS_NOEXEC, MOUNT_ATTR_NOEXEC },
		{ MS_NODIRATIME, MOUNT_ATTR_NODIRATIME },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (set & map[i].ms)
			a->attr_set |= map[i].attr;
		else if (clear & map[i].ms)
			a->attr_clr |= map[i].attr;
	}
	if (set & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)) {
		a->attr_clr |= MOUNT_ATTR__ATIME;
		a->attr_set |= (set & MS_NOATIME) ? MOUNT_ATTR_NOATIME
			     : (set & MS_STRICTATIME) ? MOUNT_ATTR_STRICTATIME : MOUNT_ATTR_RELATIME;
	}
}

/* "/dev", however spelled ("//dev/", "/dev/."). */
static bool is_dev(const char *path)
{
	const char *p = path;
	while (*p == '/')
		p++;
	if (strncmp(p, "dev", 3) || (p[3] && p[3] != '/'))
		return false;
	for (p += 3; *p; p++)
		if (*p != '/' && !(p[0] == '.' && (p[1] == '/' || !p[1])))
			return false;
	return true;
}

/* A read-only /dev, or tmpfs, is mounted writable and made read-only last:
 * devices, /dev/pts, a secret under a read-only /run go beneath it first. */
static bool ro_later(const spec_mount *m, bool bind)
{
	return (m->opts.flags & MS_RDONLY) && !m->opts.recursive_ro &&
	       (is_dev(m->destination) || (!bind && !strcmp(m->type, "tmpfs")));
}

bool rootfs_mount_is_bind(const spec_mount *m)
{
	return m->opts.bind || (m->type && !strcmp(m->type, "bind"));
}

void rootfs_bind_source(const oci_spec *s, const spec_mount *m, char *buf, size_t size)
{
	const char *source = m->source ? m->source : "";
	if (source[0] != '/' && s->bundle)
		snprintf(buf, size, "%s/%s", s->bundle, source);
	else
		snprintf(buf, size, "%s", source);
}

/* The bind is made on a detached clone of the source (open_tree), its flags
 * set on that clone, and only then attached onto the destination fd; the
 * propagation is set through the same fd afterwards. Nothing looks the
 * destination up again, so a tenant swapping it for a symlink or another
 * directory (in a rootfs shared with a running container) cannot make the
 * flags land on another mount.
 * source_fd: the source opened by the runtime (or -1: open src here);
 * source_err: why the runtime could not open it. */
static int bind_mount(const oci_spec *s, const spec_mount *m, int rootfd, int source_fd, int source_err,
		      int *ret_late_ro)
{
	char src[PATH_MAX], fp[FDPATH_MAX];
	rootfs_bind_source(s, m, src, sizeof src);
	if (source_err)
		return err_set(source_err, "mount %s: source '%s'", m->destination, src);
	const spec_mount_opts *o = &m->opts;
	unsigned fl = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (o->rec ? AT_RECURSIVE : 0);
	_cleanup_close_ int tree = source_fd >= 0 ? (int)syscall(SYS_open_tree, source_fd, "", fl | AT_EMPTY_PATH)
						  : (int)syscall(SYS_open_tree, AT_FDCWD, src, fl);
	if (tree < 0)
		return err_set(errno, "mount %s: source '%s'", m->destination, src);
	struct stat st;
	if (fstat(tree, &st) < 0)
		return err_set(errno, "mount %s: source '%s'", m->destination, src);
	_cleanup_close_ int tfd = resolve_create(rootfd, m->destination, S_ISDIR(st.st_mode), false);
	if (tfd < 0)
		return err_set(-tfd, "mount %s: resolve destination in rootfs", m->destination);
	struct mount_attr a;
	bool late = ro_later(m, true);
	attr_from_flags(o->flags & ~(late ? MS_RDONLY : 0UL), o->clear, &a);
	if (o->recursive_ro)
		a.attr_set |= MOUNT_ATTR_RDONLY;
	if ((a.attr_set || a.attr_clr) &&
	    mount_setattr_fd(tree, "", AT_EMPTY_PATH | (o->recursive_ro ? AT_RECURSIVE : 0), &a) < 0)
		return err_set(errno, "set options of bind mount %s", m->destination);
	if (attach_fd(tree, tfd) < 0)
		return err_set(errno, "bind mount '%s' on %s", src, m->destination);
	/* tree now names the attached mount itself. */
	if (o->propagation && mount(NULL, fdpath(fp, tree), NULL, o->propagation, NULL) < 0)
		return err_set(errno, "set propagation of %s", m->destination);
	if (late)
		*ret_late_ro = TAKE_FD(tree);
	return 0;
}

/* Copy the tree under directory src into directory dst, keeping modes,
 * owners and times: the "tmpcopyup" tmpfs starts with what the image had
 * at its destination. Hard links become copies; sockets are skipped. */
static int copy_tree(int src, int dst, const char *where, unsigned depth)
{
	if (depth > 64)
		return err_set(ELOOP, "tmpcopyup: %s: directories nested too deeply", where);
	int dup_src = fcntl(src, F_DUPFD_CLOEXEC, 3);
	if (dup_src < 0)
		return err_set(errno, "tmpcopyup: %s", where);
	_cleanup_closedir_ DIR *d = fdopendir(dup_src);
	if (!d) {
		close(dup_src);
		return err_set(errno, "tmpcopyup: read %s", where);
	}
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		struct stat st;
		if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return err_set(errno, "tmpcopyup: %s/%s", where, n);
		mode_t perm = st.st_mode & 07777;
		_cleanup_close_ int sfd = -1, dfd = -1;
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dst, n, 0700) < 0 ||
			    (sfd = openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
			    (dfd = openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
				return err_set(errno, "tmpcopyup: %s/%s", where, n);
			char sub[PATH_MAX];
			snprintf(sub, sizeof sub, "%s/%s", where, n);
			int r = copy_tree(sfd, dfd, sub, depth + 1);
			if (r < 0)
				return r;
		} else if (S_ISREG(st.st_mode)) {
			/* The image may change under us (a rootfs shared with a
			 * running container): take the entry with O_PATH, which
			 * opens nothing, and read it only if it is still a
			 * regular file; opening a FIFO or a device put in its
			 * place would block us or act on the device. */
			char pp[FDPATH_MAX];
			_cleanup_close_ int pfd = openat(src, n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (pfd < 0 || fstat(pfd, &st) < 0)
				return err_set(errno, "tmpcopyup: %s/%s", where, n);
			if (!S_ISREG(st.st_mode))
				return err_set(EAGAIN, "tmpcopyup: %s/%s: changed while being copied", where, n);
			if ((sfd = open(fdpath(pp, pfd), O_RDONLY | O_CLOEXEC)) < 0)
				return err_set(errno, "tmpcopyup: %s/%s", where, n);
			if ((dfd = openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
				return err_set(errno, "tmpcopyup: %s/%s", where, n);
			for (off_t left = st.st_size; left > 0;) {
				ssize_t k = sendfile(dfd, sfd, NULL, (size_t)left);
				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0)
					return err_set(k < 0 ? errno : EIO, "tmpcopyup: copy %s/%s", where, n);
				left -= k;
			}
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t k = readlinkat(src, n, target, sizeof target - 1);
			if (k < 0)
				return err_set(errno, "tmpcopyup: readlink %s/%s", where, n);
			target[k] = '\0';
			if (symlinkat(target, dst, n) < 0)
				return err_set(errno, "tmpcopyup: symlink %s/%s", where, n);
			/* Owner only: symlinks have no mode, and their times do not matter. */
			(void)fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW); /* best effort, as below */
			continue;
		} else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			if (mknodat(dst, n, st.st_mode & (S_IFMT | 07777), st.st_rdev) < 0)
				return err_set(errno, "tmpcopyup: mknod %s/%s", where, n);
			if ((dfd = openat(dst, n, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
				return err_set(errno, "tmpcopyup: %s/%s", where, n);
		} else {
			continue;
		}
		char fp[FDPATH_MAX];
		/* Owners the namespace does not map cannot be kept: best effort. */
		(void)fchownat(dfd, "", st.st_uid, st.st_gid, AT_EMPTY_PATH);
		if (fchmodat(AT_FDCWD, fdpath(fp, dfd), perm, 0) < 0)
			return err_set(errno, "tmpcopyup: chmod %s/%s", where, n);
		struct timespec t[2] = { st.st_atim, st.st_mtim };
		(void)utimensat(AT_FDCWD, fdpath(fp, dfd), t, 0); /* best effort: times are cosmetic */
	}
	if (errno)
		return err_set(errno, "tmpcopyup: read %s", where);
	return 0;
}

/* tmpcopyup: the new tmpfs (mfd) gets the content, mode and owner of the
 * directory it now hides (under). */
static int tmpfs_copy_up(int under, int mfd, const char *dest)
{
	struct stat st;
	if (fstat(under, &st) < 0)
		return err_set(errno, "tmpcopyup: %s", dest);
	int r = copy_tree(under, mfd, dest, 0);
	if (r < 0)
		return r;
	(void)fchown(mfd, st.st_uid, st.st_gid); /* best effort, as in copy_tree */
	if (fchmod(mfd, st.st_mode & 07777) < 0)
		return err_set(errno, "tmpcopyup: chmod %s", dest);
	return 0;
}

/* Superblock flags, which fsconfig takes by name. */
static const struct { unsigned long ms; const char *name; } sb_flags[] = {
	{ MS_RDONLY, "ro" }, { MS_SYNCHRONOUS, "sync" }, { MS_DIRSYNC, "dirsync" },
	{ MS_LAZYTIME, "lazytime" }, { MS_MANDLOCK, "mand" },
};

/* Per-mount flags of a new mount, as fsmount takes them. */
static unsigned mount_attrs(unsigned long f)
{
	struct mount_attr a;
	attr_from_flags(f, 0, &a);
	if (f & MS_NOSYMFOLLOW)
		a.attr_set |= MOUNT_ATTR_NOSYMFOLLOW;
	return (unsigned)a.attr_set;
}

/* The kernel's own words for the last failed fsconfig step ("tmpfs: Bad
 * value for 'size'"), if it logged any. */
static void fs_log(int fs, char *buf, size_t size)
{
	char line[256];
	ssize_t n;
	buf[0] = '\0';
	while ((n = read(fs, line, sizeof line - 1)) > 0) {
		line[n] = '\0';
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'e' && line[1] == ' ')
			snprintf(buf, size, " [%s]", line + 2);
	}
}

/* One fsconfig call per filesystem option of the comma-separated data
 * string: "key=value" as a string, "key" as a flag. A comma inside double
 * quotes (SELinux contexts) does not separate options. */
static int fs_config_data(int fs, const char *data)
{
	char opt[PATH_MAX];
	for (const char *p = data; p && *p;) {
		size_t n = 0;
		bool quoted = false;
		for (; p[n] && (quoted || p[n] != ','); n++)
			if (p[n] == '"')
				quoted = !quoted;
		if (n >= sizeof opt)
			return -ENAMETOOLONG;
		memcpy(opt, p, n);
		opt[n] = '\0';
		p += n + (p[n] == ',');
		if (!n)
			continue;
		char *eq = strchr(opt, '=');
		if (eq)
			*eq = '\0';
		if (syscall(SYS_fsconfig, fs, eq ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opt, eq ? eq + 1 : NULL, 0) < 0)
			return -errno;
	}
	return 0;
}

/* A new mount of m's filesystem, detached (fsopen, fsconfig, fsmount): it is
 * filled (tmpcopyup) and attached by the caller through the returned fd,
 * never by a path. keep_rw: leave it writable (made read-only afterwards). */
static int fs_new_mount(const spec_mount *m, bool keep_rw, int *ret_mnt)
{
	const spec_mount_opts *o = &m->opts;
	unsigned long flags = o->flags & ~(keep_rw ? MS_RDONLY : 0UL);
	char log[300] = "";
	_cleanup_close_ int fs = (int)syscall(SYS_fsopen, m->type, FSOPEN_CLOEXEC);
	if (fs < 0)
		return err_set(errno, "mount %s: filesystem type %s", m->destination, m->type);
	int r = 0;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", m->source ? m->source : m->type, 0) < 0)
		r = -errno;
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(sb_flags); i++)
		if ((flags & sb_flags[i].ms) &&
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, sb_flags[i].name, NULL, 0) < 0)
			r = -errno;
	if (r == 0)
		r = fs_config_data(fs, o->data);
	if (r == 0 && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = -errno;
	int mnt = -1;
	if (r == 0 && (mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, mount_attrs(flags))) < 0)
		r = -errno;
	if (r < 0) {
		fs_log(fs, log, sizeof log);
		return err_set(-r, "mount %s on %s (type %s, options '%s')%s", m->source ? m->source : m->type,
			       m->destination, m->type, o->data ? o->data : "", log);
	}
	*ret_mnt = mnt;
	return 0;
}

static int fs_mount(const spec_mount *m, size_t idx, int rootfd, bool userns, bool cgroupns, int *ret_late_ro)
{
	char fp[FDPATH_MAX];
	const spec_mount_opts *o = &m->opts;
	const char *type = m->type;
	/* procfs or sysfs through a symlink would show up wherever the image
	 * points it (on /etc, say): no symlink anywhere on their way. */
	bool strict = !strcmp(type, "proc") || !strcmp(type, "sysfs");
	_cleanup_close_ int tfd = resolve_create(rootfd, m->destination, true, strict);
	if (tfd == -ELOOP && strict)
		return err_set(ELOOP, "mounts[%zu].destination: %s is a symlink in the rootfs, or under one: %s "
			       "is mounted on a plain directory only", idx, m->destination, type);
	if (tfd < 0)
		return err_set(-tfd, "mount %s: resolve destination in rootfs", m->destination);
	struct stat st;
	if (fstat(tfd, &st) < 0)
		return err_set(errno, "mount %s", m->destination);
	if (!S_ISDIR(st.st_mode))
		return err_set(ENOTDIR, "mounts[%zu].destination: %s", idx, m->destination);
	if (!strcmp(type, "cgroup") || !strcmp(type, "cgroup2")) {
		int r = cgroup_mount_in_container(fdpath(fp, tfd), o->flags, cgroupns);
		return r < 0 ? err_wrap(r, "mount %s", m->destination) : 0;
	}
	bool copyup = o->tmpcopyup && !strcmp(type, "tmpfs");
	bool late = ro_later(m, false);
	_cleanup_close_ int mnt = -1;
	int r = fs_new_mount(m, late, &mnt);
	if (r < 0) {
		if (!strcmp(type, "sysfs") && (r == -EPERM || r == -EACCES) && userns) {
			/* sysfs needs a network namespace owned by our user
			 * namespace; fall back to the host's, read-only. */
			struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
			r = bind_fd(AT_FDCWD, "/sys", tfd, true, &a);
			return r < 0 ? err_set(-r, "bind /sys read-only on %s", m->destination) : 0;
		}
		return r;
	}
	if (copyup) {
		/* Filled while still detached: nobody sees it half copied. */
		_cleanup_close_ int under = openat(tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_close_ int top = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (under < 0 || top < 0)
			return err_set(errno, "mount %s: open it for tmpcopyup", m->destination);
		if ((r = tmpfs_copy_up(under, top, m->destination)) < 0)
			return r;
	}
	if (attach_fd(mnt, tfd) < 0)
		return err_set(errno, "mount %s on %s", type, m->destination);
	/* mnt now names the attached mount itself. */
	if (o->propagation && mount(NULL, fdpath(fp, mnt), NULL, o->propagation, NULL) < 0)
		return err_set(errno, "set propagation of %s", m->destination);
	if (late)
		*ret_late_ro = TAKE_FD(mnt);
	return 0;
}

int rootfs_mounts_init(rootfs_mounts *mm, size_t n)
{
	int *source = calloc(n ? n : 1, sizeof *source), *source_err = calloc(n ? n : 1, sizeof *source_err),
	    *late_ro = calloc(n ? n : 1, sizeof *late_ro);
	if (!source || !source_err || !late_ro) {
		free(source);
		free(source_err);
		free(late_ro);
		return err_set(ENOMEM, "mounts");
	}
	for (size_t i = 0; i < n; i++)
		source[i] = late_ro[i] = -1;
	*mm = (rootfs_mounts){ .n = n, .source = source, .source_err = source_err, .late_ro = late_ro };
	return 0;
}

static void close_all(int *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		if (v[i] >= 0) {
			close(v[i]);
			v[i] = -1;
		}
}

void rootfs_mounts_clear(rootfs_mounts *mm)
{
	close_all(mm->source, mm->n);
	close_all(mm->late_ro, mm->n);
	free(mm->source);
	free(mm->source_err);
	free(mm->late_ro);
	mm->source = mm->source_err = mm->late_ro = NULL;
	mm->n = 0;
}

/* The mount (an fd on it, attached) made read-only now that it is filled:
 * the mount, and for a filesystem of its own (not a bind) the superblock
 * too, as a mount made "ro" at once would be. */
static int make_late_ro(const spec_mount *m, int mnt)
{
	if (!rootfs_mount_is_bind(m)) {
		_cleanup_close_ int fs = (int)syscall(SYS_fspick, mnt, "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
		if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0)
			return err_set(errno, "mount %s: make it read-only", m->destination);
	}
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
	if (mount_setattr_fd(mnt, "", AT_EMPTY_PATH, &a) < 0)
		return err_set(errno, "mount %s: make it read-only", m->destination);
	return 0;
}

int rootfs_mount_all(const oci_spec *s, int rootfd, bool userns, bool cgroupns, rootfs_mounts *mm)
{
	if (mm->n != s->n_mounts)
		return err_set(EINVAL, "mounts: %zu entries, %zu slots", s->n_mounts, mm->n);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const spec_mount *m = &s->mounts[i];
		bool bind = rootfs_mount_is_bind(m);
		if (!bind && !m->type)
			return err_set(0, "mounts[%zu]: no type and not a bind mount", i);
		if (m->n_uid_mappings || m->n_gid_mappings || m->opts.idmap || m->opts.ridmap)
			return err_set(EOPNOTSUPP, "mounts[%zu] (%s): idmapped mounts", i, m->destination);
		int r = bind ? bind_mount(s, m, rootfd, mm->source[i], mm->source_err[i], &mm->late_ro[i])
			     : fs_mount(m, i, rootfd, userns, cgroupns, &mm->late_ro[i]);
		if (mm->source[i] >= 0) {
			close(mm->source[i]);
			mm->source[i] = -1;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int rootfs_prepare(const oci_spec *s, bool mountns, int *ret_rootfd)
{
	if (!mountns)
		goto open_root;
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return err_set(errno, "make / a slave mount");
	if (mount(s->root_path, s->root_path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return err_set(errno, "bind rootfs '%s'", s->root_path);
	/* pivot_root refuses a shared parent: make the rootfs mount private. */
	if (mount(NULL, s->root_path, NULL, MS_PRIVATE, NULL) < 0)
		return err_set(errno, "make rootfs '%s' private", s->root_path);
open_root:;
	int fd = open(s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "open rootfs '%s'", s->root_path);
	*ret_rootfd = fd;
	return 0;
}

struct defdev { const char *path; unsigned maj, min; };
static const struct defdev default_devices[] = {
	{ "/dev/null", 1, 3 }, { "/dev/zero", 1, 5 }, { "/dev/full", 1, 7 },
	{ "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};

/* Device nodes are made in a /dev reached without any symlink, and changed
 * (mode, owner) through an fd on the node made, never by name: the name may
 * be a symlink by then (a rootfs shared with a running container), and
 * before pivot_root following it would reach the host. */
static int make_device(int rootfd, const char *path, char type, unsigned maj, unsigned min,
		       mode_t perm, uid_t uid, gid_t gid, bool userns)
{
	char fp[FDPATH_MAX], parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", path);
	char *slash = strrchr(parent, '/');
	const char *leaf = slash ? slash + 1 : parent;
	if (slash)
		*slash = '\0';
	_cleanup_close_ int pfd = resolve_create(rootfd, parent[0] ? parent : "/", true, true);
	if (pfd == -ELOOP)
		return err_set(ELOOP, "device %s: a symlink in the rootfs on the way to it", path);
	if (pfd < 0)
		return err_set(-pfd, "create parent of device %s", path);
	_cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open parent of device %s", path);
	(void)unlinkat(dfd, leaf, 0); /* replace whatever the image had */
	if (type == 'p' || !userns) {
		mode_t fmt = type == 'p' ? S_IFIFO : type == 'b' ? S_IFBLK : S_IFCHR;
		int r = type == 'p' ? mkfifoat(dfd, leaf, perm) : mknodat(dfd, leaf, perm | fmt, makedev(maj, min));
		if (r < 0)
			return err_set(errno, "%s %s", type == 'p' ? "mkfifo" : "mknod", path);
		_cleanup_close_ int nfd = openat(dfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (nfd < 0 || fstat(nfd, &st) < 0)
			return err_set(errno, "open %s", path);
		if ((st.st_mode & S_IFMT) != fmt || (type != 'p' && st.st_rdev != makedev(maj, min)))
			return err_set(EEXIST, "%s: replaced while it was being made", path);
		/* The umask must not narrow the configured mode. */
		if (fchmodat(AT_FDCWD, fdpath(fp, nfd), perm, 0) < 0)
			return err_set(errno, "chmod %s", path);
		if (fchownat(nfd, "", uid, gid, AT_EMPTY_PATH) < 0)
			return err_set(errno, "chown %s", path);
		return 0;
	}
	/* No mknod in a user namespace: bind the host's node. */
	char host[PATH_MAX];
	struct stat hst;
	snprintf(host, sizeof host, "%s", path);
	if (stat(host, &hst) < 0 || hst.st_rdev != makedev(maj, min) || !!S_ISBLK(hst.st_mode) != (type == 'b'))
		snprintf(host, sizeof host, "/dev/%s/%u:%u", type == 'b' ? "block" : "char", maj, min);
	int f = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (f < 0)
		return err_set(errno, "create %s", path);
	close(f);
	_cleanup_close_ int tfd = openat(dfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0)
		return err_set(errno, "create %s", path);
	int r = bind_fd(AT_FDCWD, host, tfd, false, NULL);
	return r < 0 ? err_set(-r, "bind %s on %s", host, path) : 0;
}

static int make_symlink(int rootfd, const char *target, const char *path)
{
	_cleanup_close_ int dev = resolve_create(rootfd, "/dev", true, true);
	if (dev < 0)
		return err_set(-dev, "resolve /dev");
	_cleanup_close_ int dfd = openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open /dev");
	if (symlinkat(target, dfd, path) < 0 && errno != EEXIST)
		return err_set(errno, "symlink /dev/%s", path);
	return 0;
}

int rootfs_devices(const oci_spec *s, int rootfd, bool userns, const char *console_slave)
{
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
		const struct defdev *d = &default_devices[i];
		bool overridden = false;
		for (size_t j = 0; j < s->linux.n_devices; j++)
			if (!strcmp(s->linux.devices[j].path, d->path))
				overridden = true;
		if (!overridden && (r = make_device(rootfd, d->path, 'c', d->maj, d->min, 0666, 0, 0, userns)) < 0)
			return r;
	}
	for (size_t i = 0; i < s->linux.n_devices; i++) {
		const spec_device *d = &s->linux.devices[i];
		mode_t perm = d->file_mode.has ? (mode_t)(d->file_mode.v & 07777) : 0666;
		char type = d->type == 'u' ? 'c' : d->type;
		r = make_device(rootfd, d->path, type, (unsigned)d->major, (unsigned)d->minor, perm,
				d->uid.has ? (uid_t)d->uid.v : 0, d->gid.has ? (gid_t)d->gid.v : 0, userns);
		if (r < 0)
			return err_wrap(r, "linux.devices[%zu]", i);
	}
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
		{ "/proc/self/fd/2", "stderr" }, { "/proc/kcore", "core" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if ((r = make_symlink(rootfd, links[i][0], links[i][1])) < 0)
			return r;
	/* /dev/ptmx must be the container's devpts instance. */
	_cleanup_close_ int ptmx = openat_in_root(rootfd, "/dev/ptmx", O_PATH | O_NOFOLLOW, 0);
	struct stat st;
	bool pts = false;
	_cleanup_close_ int ptsfd = openat_in_root(rootfd, "/dev/pts/ptmx", O_PATH | O_NOFOLLOW, 0);
	pts = ptsfd >= 0;
	if (pts && (ptmx < 0 || (fstat(ptmx, &st) == 0 && !S_ISLNK(st.st_mode)))) {
		_cleanup_close_ int dev = openat_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0);
		if (dev >= 0) {
			(void)unlinkat(dev, "ptmx", 0);
			if (symlinkat("pts/ptmx", dev, "ptmx") < 0)
				return err_set(errno, "symlink /dev/ptmx");
		}
	}
	if (console_slave) {
		char fp[FDPATH_MAX];
		_cleanup_close_ int cfd = resolve_create(rootfd, "/dev/console", false, true);
		if (cfd < 0)
			return err_set(-cfd, "create /dev/console");
		if (mount(console_slave, fdpath(fp, cfd), NULL, MS_BIND, NULL) < 0)
			return err_set(errno, "bind %s on /dev/console", console_slave);
	}
	return 0;
}

int rootfs_pivot(const oci_spec *s, int rootfd, bool no_pivot, bool mountns)
{
	if (fchdir(rootfd) < 0)
		return err_set(errno, "chdir to rootfs");
	if (!mountns) {
		/* The host's mount namespace: neither move nor pivot it. */
		if (chroot(".") < 0)
			return err_set(errno, "chroot into rootfs");
	} else if (no_pivot) {
		int r = rootfs_hide_host_kernfs(rootfd);
		if (r < 0)
			return r;
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			return err_set(errno, "move rootfs to /");
		if (chroot(".") < 0)
			return err_set(errno, "chroot into rootfs");
	} else {
		/* pivot_root(".", "."): the old root ends up under the new one
		 * and is detached right away, with no directory needed. */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			return err_set(errno, "pivot_root into '%s'", s->root_path);
		if (umount2(".", MNT_DETACH) < 0)
			return err_set(errno, "detach the old root");
	}
	if (chdir("/") < 0)
		return err_set(errno, "chdir /");
	return 0;
}

static int mask_path(int root, const char *path)
{
	_cleanup_close_ int fd = openat_in_root(root, path, O_PATH | O_NOFOLLOW, 0);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return err_set(-fd, "linux.maskedPaths: %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_set(errno, "linux.maskedPaths: %s", path);
	if (!S_ISDIR(st.st_mode)) {
		/* Files get /dev/null on top (the container's own, made earlier). */
		_cleanup_close_ int null = openat_in_root(root, "/dev/null", O_PATH | O_NOFOLLOW, 0);
		int r = null < 0 ? null : bind_fd(null, "", fd, false, NULL);
		return r < 0 ? err_set(-r, "linux.maskedPaths: mask %s", path) : 0;
	}
	_cleanup_close_ int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "555", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return err_set(errno, "linux.maskedPaths: create tmpfs for %s", path);
	_cleanup_close_ int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
					       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0 || attach_fd(mnt, fd) < 0)
		return err_set(errno, "linux.maskedPaths: mask %s", path);
	return 0;
}

static int readonly_path(int root, const char *path)
{
	_cleanup_close_ int fd = openat_in_root(root, path, O_PATH | O_NOFOLLOW, 0);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return err_set(-fd, "linux.readonlyPaths: %s", path);
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
	int r = bind_fd(fd, "", fd, true, &a);
	return r < 0 ? err_set(-r, "linux.readonlyPaths: make %s read-only", path) : 0;
}

int rootfs_finalize(const oci_spec *s, rootfs_mounts *mm)
{
	_cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return err_set(errno, "open /");
	int r;
	for (size_t i = 0; i < s->linux.n_masked_paths; i++)
		if ((r = mask_path(root, s->linux.masked_paths[i])) < 0)
			return r;
	for (size_t i = 0; i < s->linux.n_readonly_paths; i++)
		if ((r = readonly_path(root, s->linux.readonly_paths[i])) < 0)
			return r;
	for (size_t i = 0; i < mm->n && i < s->n_mounts; i++) {
		if (mm->late_ro[i] < 0)
			continue;
		if ((r = make_late_ro(&s->mounts[i], mm->late_ro[i])) < 0)
			return r;
		close(mm->late_ro[i]);
		mm->late_ro[i] = -1;
	}
	if (s->root_readonly) {
		struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
		if (mount_setattr_fd(AT_FDCWD, "/", 0, &a) < 0)
			return err_set(errno, "root.readonly: remount / read-only");
	}
	if (s->linux.rootfs_propagation && mount(NULL, "/", NULL, s->linux.rootfs_propagation, NULL) < 0)
		return err_set(errno, "linux.rootfsPropagation: set propagation of /");
	return 0;
}
