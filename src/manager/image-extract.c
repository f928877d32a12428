/* Applying a tar stream onto a rootfs directory, as an OCI layer, without
 * ever writing outside it: names are canonicalised and ".." refused, every
 * parent directory is opened one component at a time with O_NOFOLLOW from
 * the root's fd (a symlink in a parent path is an error, never followed),
 * and files are created with O_EXCL | O_NOFOLLOW. */
#include "image-internal.h"
#include "storage.h"
#include "strmap.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* ---- the hashing reader ------------------------------------------------ */

void image_hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void image_progress_report(const struct image_progress *p, const char *phase, uint64_t done, uint64_t total)
{
	if (p && p->fn)
		p->fn(p->userdata, phase, done, total);
}

int image_reader_init(struct image_reader *rd, int fd, const char *what)
{
	rd->fd = fd;
	rd->what = what;
	rd->done = rd->base = rd->total = 0;
	rd->progress = NULL;
	rd->phase = "importing";
	rd->error = 0;
	rd->budget = NULL;
	rd->expanded = 0;
	struct stat st;
	rd->in_size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	rd->md = EVP_MD_CTX_new();
	if (!rd->md || EVP_DigestInit_ex(rd->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(rd->md);
		rd->md = NULL;
		return err_set(ENOMEM, "%s: sha256", what);
	}
	return 0;
}

void image_reader_free(struct image_reader *rd)
{
	EVP_MD_CTX_free(rd->md);
	rd->md = NULL;
}

static ssize_t reader_read(struct image_reader *rd)
{
	ssize_t n;
	do
		n = read(rd->fd, rd->buf, sizeof rd->buf);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rd->error = -errno;
		return err_set(errno, "read '%s'", rd->what);
	}
	if (n > 0) {
		EVP_DigestUpdate(rd->md, rd->buf, (size_t)n);
		rd->done += (uint64_t)n;
		image_progress_report(rd->progress, rd->phase, rd->base + rd->done, rd->total);
	}
	return n;
}

static la_ssize_t archive_read_cb(struct archive *a, void *data, const void **buf)
{
	struct image_reader *rd = data;
	*buf = rd->buf;
	ssize_t n = reader_read(rd);
	if (n < 0)
		archive_set_error(a, -rd->error, "%s", err_msg());
	return n < 0 ? -1 : n;
}

int image_reader_finish(struct image_reader *rd, char hex[IMAGE_FINGERPRINT_LEN + 1])
{
	ssize_t n;
	while ((n = reader_read(rd)) > 0)
		;
	if (n < 0)
		return (int)n;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (EVP_DigestFinal_ex(rd->md, d, &len) != 1 || len != 32)
		return err_set(EIO, "%s: sha256", rd->what);
	image_hex(d, len, hex);
	return 0;
}

/* ---- layer application ------------------------------------------------- */

struct layer {
	int root_fd;
	const char *what;
	struct image_reader *rd;
	struct strmap seen;   /* paths this layer created (and their parents) */
	char *cache_path;     /* last parent directory opened, and its fd */
	int cache_fd;
	bool root;            /* may chown */
};

static void cache_drop(struct layer *L)
{
	free(L->cache_path);
	L->cache_path = NULL;
	if (L->cache_fd >= 0)
		close(L->cache_fd);
	L->cache_fd = -1;
}

static int mark_seen(struct layer *L, const char *path)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return err_set(ENOMEM, "layer");
	for (;;) {
		if (strmap_has(&L->seen, p))
			return 0;
		int r = strmap_put(&L->seen, p, NULL);
		if (r < 0)
			return r;
		char *slash = strrchr(p, '/');
		if (!slash)
			return 0;
		*slash = '\0';
	}
}

/* Open directory `dir` (canonical, "" = root) beneath the root, one
 * component at a time, never following a symlink; with create, missing
 * directories are made (0755, as tar does). Returns an O_PATH fd. `role`
 * prefixes the path in messages ("" or "hard link target 'x': "). */
static int open_parent(struct layer *L, const char *member, const char *role, const char *dir, bool create)
{
	if (L->cache_path && !strcmp(L->cache_path, dir)) {
		int dfd = fcntl(L->cache_fd, F_DUPFD_CLOEXEC, 3);
		return dfd < 0 ? err_set(errno, "%s: member '%s'", L->what, member) : dfd;
	}
	_cleanup_close_ int fd = openat(L->root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "%s: open image root", L->what);
	for (const char *p = dir; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		char comp[NAME_MAX + 1];
		if (n > NAME_MAX)
			return err_set(ENAMETOOLONG, "%s: member '%s'", L->what, member);
		memcpy(comp, p, n);
		comp[n] = '\0';
		int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
				return err_set(errno, "%s: member '%s': %smkdir '%.*s'", L->what, member, role,
					       (int)(p - dir + n), dir);
			nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			int e = errno;
			struct stat st;
			if ((e == ENOTDIR || e == ELOOP) && fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				return err_refuse(ELOOP, "%s: member '%s': %s'%.*s' is a symbolic link (files are never "
					       "written through links)", L->what, member, role, (int)(p - dir + n), dir);
			return err_set(e, "%s: member '%s': %s'%.*s'", L->what, member, role, (int)(p - dir + n), dir);
		}
		close(fd);
		fd = nfd;
		p += n;
		while (*p == '/')
			p++;
	}
	cache_drop(L);
	L->cache_path = strdup(dir);
	if (L->cache_path)
		L->cache_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return TAKE_FD(fd);
}

/* Remove whatever is at parent/name (anything: a tree is removed whole). */
static int remove_at(struct layer *L, int parent, const char *name, const char *member)
{
	cache_drop(L);
	int r = storage_tree_remove(parent, name, name);
	if (r < 0)
		return err_wrap(r, "%s: member '%s'", L->what, member);
	return 0;
}

/* Opaque directory: drop everything under dir_fd that this layer did not
 * put there itself (the marker may come after some of its siblings). */
static int prune_opaque(struct layer *L, int dir_fd, const char *rel, const char *member)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "%s: member '%s': open '%s'", L->what, member, rel);
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set(errno, "%s: member '%s'", L->what, member);
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		_cleanup_free_ char *child = NULL;
		if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", e->d_name) < 0)
			return err_set(ENOMEM, "%s", L->what);
		int r;
		if (!strmap_has(&L->seen, child)) {
			if ((r = remove_at(L, fd, e->d_name, member)) < 0)
				return r;
			continue;
		}
		_cleanup_close_ int cfd = openat(fd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd >= 0 && (r = prune_opaque(L, cfd, child, member)) < 0)
			return r;
	}
	return 0;
}

static int set_owner_mode(struct layer *L, int fd, const char *member, struct archive_entry *e, bool is_dir)
{
	if (L->root && fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return err_set(errno, "%s: member '%s': chown", L->what, member);
	/* After chown, which clears set-id bits; those are kept. */
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return err_set(errno, "%s: member '%s': chmod", L->what, member);
	if (!is_dir) {
		struct timespec ts[2] = {
			{ .tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e),
			  .tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e) },
			{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
		};
		(void)futimens(fd, ts); /* best effort: times are not worth failing an import */
	}
	return 0;
}

/* File capabilities and user attributes; the rest (trusted.*, overlay
 * markers, SELinux labels of the build host) does not belong in an image. */
static int set_xattrs(struct layer *L, int fd, const char *member, struct archive_entry *e)
{
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (strcmp(name, "security.capability") && strncmp(name, "user.", 5))
			continue;
		if (fsetxattr(fd, name, value, size, 0) < 0 && errno != EOPNOTSUPP)
			return err_set(errno, "%s: member '%s': set attribute %s", L->what, member, name);
	}
	return 0;
}

static int write_data(struct layer *L, struct archive *a, int fd, const char *member, la_int64_t size_total)
{
	const void *buf;
	size_t size;
	la_int64_t off, end = 0;
	int rc;
	while ((rc = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		if (off != end && lseek(fd, off, SEEK_SET) < 0)
			return err_set(errno, "%s: member '%s': seek", L->what, member);
		int r = write_all(fd, buf, size);
		if (r < 0)
			return err_set(-r, "%s: member '%s': write", L->what, member);
		end = off + (la_int64_t)size;
	}
	if (rc != ARCHIVE_EOF)
		return err_refuse(EIO, "%s: member '%s': corrupt archive: %s", L->what, member, archive_msg(a));
	/* A sparse file that ends in a hole. */
	if (size_total > end && ftruncate(fd, size_total) < 0)
		return err_set(errno, "%s: member '%s': truncate", L->what, member);
	return 0;
}

static const char *type_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR: return "character device";
	case AE_IFBLK: return "block device";
	case AE_IFSOCK: return "socket";
	default: return "unknown type";
	}
}

static int apply_hardlink(struct layer *L, int parent, const char *base, const char *member, const char *raw_target)
{
	_cleanup_free_ char *target = NULL;
	int r = image_member_path(raw_target, "hard link target", &target);
	if (r < 0)
		return err_wrap(r, "%s: member '%s'", L->what, member);
	if (!*target)
		return err_refuse(EINVAL, "%s: member '%s': hard link to the image root refused", L->what, member);
	if (!strcmp(target, member))
		return 0;
	char *slash = strrchr(target, '/');
	const char *tbase = slash ? slash + 1 : target;
	if (slash)
		*slash = '\0';
	char role[PATH_MAX + 32];
	snprintf(role, sizeof role, "hard link target '%s': ", raw_target);
	_cleanup_close_ int tparent = open_parent(L, member, role, slash ? target : "", false);
	if (tparent < 0)
		return tparent;
	struct stat st;
	if (fstatat(tparent, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set(errno, "%s: member '%s': hard link target '%s'", L->what, member, raw_target);
	if (S_ISDIR(st.st_mode))
		return err_refuse(EPERM, "%s: member '%s': hard link to directory '%s' refused", L->what, member, raw_target);
	if ((r = remove_at(L, parent, base, member)) < 0)
		return r;
	if (linkat(tparent, tbase, parent, base, 0) < 0)
		return err_set(errno, "%s: member '%s': link to '%s'", L->what, member, raw_target);
	return 0;
}

/* Count a member against the import's limits before anything of it is
 * written: its declared size (all of a sparse file) and a header's worth. */
static int charge(struct layer *L, const char *member, struct archive_entry *e)
{
	struct image_reader *rd = L->rd;
	struct image_budget *b = rd->budget;
	if (!b)
		return 0;
	la_int64_t size = archive_entry_size_is_set(e) && archive_entry_filetype(e) == AE_IFREG &&
			  !archive_entry_hardlink(e) ? archive_entry_size(e) : 0;
	uint64_t bytes = 512 + (size > 0 ? (uint64_t)size : 0);
	char a[32], c[32];
	rd->expanded += bytes;
	b->used += bytes;
	if (b->used > b->max_bytes)
		return err_refuse(EFBIG, "%s: member '%s': the image would be larger than %s (--max-size raises the "
			       "limit)", L->what, member, image_format_size(b->max_bytes, a, sizeof a));
	uint64_t allowed = image_expand_allowance(rd->in_size, b->max_ratio);
	if (rd->in_size && rd->expanded > allowed)
		return err_refuse(EFBIG, "%s: member '%s': the archive expands to more than %s, over %llu times its "
			       "%s (--max-ratio raises the limit)", L->what, member,
			       image_format_size(allowed, a, sizeof a), (unsigned long long)b->max_ratio,
			       image_format_size(rd->in_size, c, sizeof c));
	return 0;
}

static int apply_entry(struct layer *L, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	_cleanup_free_ char *path = NULL;
	int r = image_member_path(raw, "member", &path);
	if (r < 0)
		return err_wrap(r, "%s", L->what);
	if ((r = charge(L, raw, e)) < 0)
		return r;
	mode_t type = archive_entry_filetype(e);
	if (!*path) {
		/* "./": the root itself; its metadata stays the store's. */
		if (type != AE_IFDIR && !archive_entry_hardlink(e))
			return err_refuse(EINVAL, "%s: member '%s': the image root must be a directory", L->what, raw);
		return 0;
	}
	char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	_cleanup_free_ char *dir = strndup(path, slash ? (size_t)(slash - path) : 0);
	if (!dir)
		return err_set(ENOMEM, "%s", L->what);

	const char *wh_target = NULL;
	enum image_whiteout wh = image_whiteout_kind(base, &wh_target);
	if (wh == WHITEOUT_META)
		return 0;
	_cleanup_close_ int parent = open_parent(L, raw, "", dir, true);
	if (parent < 0)
		return parent;
	if (wh == WHITEOUT_OPAQUE) {
		if ((r = prune_opaque(L, parent, dir, raw)) < 0)
			return r;
		return *dir ? mark_seen(L, dir) : 0;
	}
	if (wh == WHITEOUT_FILE) {
		if (!*wh_target || !strcmp(wh_target, ".") || !strcmp(wh_target, ".."))
			return err_refuse(EINVAL, "%s: member '%s': invalid whiteout", L->what, raw);
		if ((r = remove_at(L, parent, wh_target, raw)) < 0)
			return r;
		return *dir ? mark_seen(L, dir) : 0;
	}

	const char *hardlink = archive_entry_hardlink(e);
	if (hardlink) {
		if ((r = apply_hardlink(L, parent, base, path, hardlink)) < 0)
			return r;
		return mark_seen(L, path);
	}

	struct stat st;
	bool exists = fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	switch (type) {
	case AE_IFDIR: {
		if (exists && !S_ISDIR(st.st_mode)) {
			if ((r = remove_at(L, parent, base, raw)) < 0)
				return r;
			exists = false;
		}
		if (!exists && mkdirat(parent, base, 0700) < 0)
			return err_set(errno, "%s: member '%s': mkdir", L->what, raw);
		_cleanup_close_ int fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return err_set(errno, "%s: member '%s': open", L->what, raw);
		if ((r = set_owner_mode(L, fd, raw, e, true)) < 0 || (r = set_xattrs(L, fd, raw, e)) < 0)
			return r;
		break;
	}
	case AE_IFREG: {
		if (exists && (r = remove_at(L, parent, base, raw)) < 0)
			return r;
		_cleanup_close_ int fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_set(errno, "%s: member '%s': create", L->what, raw);
		if ((r = write_data(L, a, fd, raw, archive_entry_size(e))) < 0 ||
		    (r = set_xattrs(L, fd, raw, e)) < 0 || (r = set_owner_mode(L, fd, raw, e, false)) < 0)
			return r;
		break;
	}
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target)
			return err_refuse(EINVAL, "%s: member '%s': symbolic link without a target", L->what, raw);
		if (image_symlink_escapes(path, target))
			return err_refuse(EPERM, "%s: member '%s': symbolic link to '%s' leads outside the image",
				       L->what, raw, target);
		if (exists && (r = remove_at(L, parent, base, raw)) < 0)
			return r;
		if (symlinkat(target, parent, base) < 0)
			return err_set(errno, "%s: member '%s': symlink", L->what, raw);
		if (L->root && fchownat(parent, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
					AT_SYMLINK_NOFOLLOW) < 0)
			return err_set(errno, "%s: member '%s': chown", L->what, raw);
		struct timespec ts[2] = {
			{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
			{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
		};
		(void)utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW); /* best effort */
		break;
	}
	case AE_IFIFO: {
		if (exists && (r = remove_at(L, parent, base, raw)) < 0)
			return r;
		if (mkfifoat(parent, base, 0600) < 0)
			return err_set(errno, "%s: member '%s': mkfifo", L->what, raw);
		_cleanup_close_ int fd = openat(parent, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return err_set(errno, "%s: member '%s': open", L->what, raw);
		/* fchown/fchmod do not take O_PATH fds; go through /proc. */
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if (L->root && chown(proc, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
			return err_set(errno, "%s: member '%s': chown", L->what, raw);
		if (chmod(proc, archive_entry_perm(e) & 07777) < 0)
			return err_set(errno, "%s: member '%s': chmod", L->what, raw);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
		return err_refuse(EPERM, "%s: member '%s': %s refused (images may not carry device nodes)",
			       L->what, raw, type_name(type));
	default:
		return err_refuse(EINVAL, "%s: member '%s': %s refused", L->what, raw, type_name(type));
	}
	return mark_seen(L, path);
}

int image_apply_layer(int root_fd, struct image_reader *rd)
{
	struct layer L = { .root_fd = root_fd, .what = rd->what, .rd = rd, .cache_fd = -1, .root = geteuid() == 0 };
	struct archive *a = archive_read_new();
	if (!a)
		return err_set(ENOMEM, "%s", rd->what);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int r = 0;
	if (archive_read_open(a, rd, NULL, archive_read_cb, NULL) != ARCHIVE_OK) {
		r = rd->error ? rd->error : err_refuse(EINVAL, "%s: not a tar archive: %s", rd->what,
						       archive_error_string(a) ? archive_error_string(a) : "empty or truncated input");
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int rc = archive_read_next_header(a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc == ARCHIVE_RETRY)
			continue;
		if (rc < ARCHIVE_WARN) {
			r = rd->error ? rd->error : err_refuse(EINVAL, "%s: corrupt archive: %s", rd->what, archive_msg(a));
			goto out;
		}
		if ((r = apply_entry(&L, a, e)) < 0)
			goto out;
	}
out:
	archive_read_free(a);
	cache_drop(&L);
	strmap_clear(&L.seen);
	return r;
}

static const char *file_type(mode_t m)
{
	return S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device" : S_ISFIFO(m) ? "FIFO" :
	       S_ISSOCK(m) ? "socket" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symbolic link" : "special file";
}

int image_open_regular(int dir_fd, const char *path, bool in_root, const char *what)
{
	/* O_PATH opens nothing: a FIFO would block an O_RDONLY open, a device
	 * could act on it. */
	_cleanup_close_ int p = in_root ? openat_in_root(dir_fd, path, O_PATH | O_NOFOLLOW, 0)
					: openat(dir_fd, path, O_PATH | O_CLOEXEC);
	if (p < 0)
		return err_set(in_root ? -p : errno, "%s", what);
	struct stat st;
	if (fstat(p, &st) < 0)
		return err_set(errno, "%s", what);
	if (!S_ISREG(st.st_mode))
		return err_refuse(EINVAL, "%s: a %s, not a regular file", what, file_type(st.st_mode));
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", p);
	int fd = open(proc, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? err_set(errno, "%s", what) : fd;
}
