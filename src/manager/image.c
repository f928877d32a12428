/* The image store: directories under <state>/images, rows in the state
 * database, and the import / export / delete orchestration. An import is
 * built in <state>/images/.tmp-XXXXXX (locked with flock while in use) and
 * renamed to <state>/images/<fingerprint> inside the database transaction
 * that records it; on any failure the temporary directory is removed. */
#include "image-internal.h"
#include "storage.h"
#include "strmap.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

/* A stale temporary directory (its importer died) is removed by the next
 * command once it is this old and nobody holds its lock. */
#define STALE_TMP_SECONDS 10

void image_info_clear(struct image_info *info)
{
	free(info->fingerprint);
	free(info->type);
	free(info->source);
	free(info->architecture);
	for (char **a = info->aliases; a && *a; a++)
		free(*a);
	free(info->aliases);
	*info = (struct image_info){ 0 };
}

void image_info_array_free(struct image_info *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		image_info_clear(&a[i]);
	free(a);
}

/* ---- temporary directories --------------------------------------------- */

struct tmpdir {
	int fd;        /* the directory, flock'ed */
	char name[32];
};

static int tmp_create(struct image_store *s, struct tmpdir *t)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/.tmp-XXXXXX", s->images_dir);
	if (!mkdtemp(path))
		return err_set(errno, "create temporary directory in '%s'", s->images_dir);
	snprintf(t->name, sizeof t->name, "%s", strrchr(path, '/') + 1);
	t->fd = openat(s->images_fd, t->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (t->fd < 0 || flock(t->fd, LOCK_EX) < 0) {
		int e = errno;
		(void)storage_tree_remove(s->images_fd, t->name, path); /* best effort */
		return err_set(e, "open '%s'", path);
	}
	return 0;
}

static void tmp_remove(struct image_store *s, struct tmpdir *t)
{
	if (t->fd < 0)
		return;
	if (t->name[0])
		(void)storage_tree_remove(s->images_fd, t->name, t->name); /* best effort: stale ones are collected later */
	close(t->fd);
	t->fd = -1;
}

/* Leftovers of commands that were killed: .tmp-* nobody holds, .del-*. */
static void collect_stale(struct image_store *s)
{
	int fd = openat(s->images_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		bool tmp = !strncmp(e->d_name, ".tmp-", 5), del = !strncmp(e->d_name, ".del-", 5);
		if (!tmp && !del)
			continue;
		_cleanup_close_ int dfd = openat(s->images_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (dfd < 0 || fstat(dfd, &st) < 0)
			continue;
		if (tmp && (now - st.st_mtime < STALE_TMP_SECONDS || flock(dfd, LOCK_EX | LOCK_NB) < 0))
			continue;
		(void)storage_tree_remove(s->images_fd, e->d_name, e->d_name); /* best effort */
	}
}

/* ---- rows ---------------------------------------------------------------- */

#define IMAGE_COLUMNS "id, fingerprint, type, source, architecture, size, created_at"

static char *col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

static int load_aliases(struct image_store *s, int64_t id, char ***ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(s->db, "SELECT name FROM image_aliases WHERE image_id = ? ORDER BY name", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	size_t n = 0;
	char **a = calloc(1, sizeof *a);
	if (!a)
		return err_set(ENOMEM, "aliases");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **na = realloc(a, (n + 2) * sizeof *a);
		if (!na || !(na[n] = col_strdup(st, 0))) {
			a = na ? na : a;
			a[n] = NULL;
			for (size_t i = 0; i < n; i++)
				free(a[i]);
			free(a);
			return err_set(ENOMEM, "aliases");
		}
		a = na;
		a[++n] = NULL;
	}
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			free(a[i]);
		free(a);
		return db_error(s->db, rc, "read aliases");
	}
	*ret = a;
	return 0;
}

static int row_to_info(struct image_store *s, sqlite3_stmt *st, struct image_info *ret)
{
	struct image_info info = {
		.fingerprint = col_strdup(st, 1), .type = col_strdup(st, 2), .source = col_strdup(st, 3),
		.architecture = col_strdup(st, 4), .size = (uint64_t)sqlite3_column_int64(st, 5),
		.created = sqlite3_column_int64(st, 6),
	};
	int r = 0;
	if (!info.fingerprint || !info.type || !info.source || !info.architecture)
		r = err_set(ENOMEM, "image row");
	if (r == 0)
		r = load_aliases(s, sqlite3_column_int64(st, 0), &info.aliases);
	if (r < 0) {
		image_info_clear(&info);
		return r;
	}
	*ret = info;
	return 0;
}

static bool is_hex(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* Find an image by alias, else by fingerprint prefix; *ret_id optional. */
static int resolve(struct image_store *s, const char *ref, struct image_info *ret, int64_t *ret_id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(s->db, "SELECT " IMAGE_COLUMNS " FROM images WHERE id = "
			   "(SELECT image_id FROM image_aliases WHERE name = ?1)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s->db, rc, "find image");
	if (rc == SQLITE_DONE && is_hex(ref) && strlen(ref) <= IMAGE_FINGERPRINT_LEN) {
		sqlite3_finalize(st);
		st = NULL;
		if ((r = db_prepare(s->db, "SELECT " IMAGE_COLUMNS " FROM images WHERE "
				    "substr(fingerprint, 1, length(?1)) = ?1 LIMIT 2", &st)) < 0)
			return r;
		sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return db_error(s->db, rc, "find image");
		if (rc == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			if ((r = row_to_info(s, st, ret)) < 0)
				return r;
			if (sqlite3_step(st) == SQLITE_ROW) {
				image_info_clear(ret);
				return err_refuse(EINVAL, "image '%s': fingerprint prefix matches several images", ref);
			}
			if (ret_id)
				*ret_id = id;
			return 0;
		}
	}
	if (rc == SQLITE_DONE)
		return err_refuse(ENOENT, "image '%s' not found", ref);
	if (ret_id)
		*ret_id = sqlite3_column_int64(st, 0);
	return row_to_info(s, st, ret);
}

int image_get(struct image_store *s, const char *ref, struct image_info *ret)
{
	return resolve(s, ref, ret, NULL);
}

int image_list(struct image_store *s, struct image_info **ret, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(s->db, "SELECT " IMAGE_COLUMNS ", (SELECT min(name) FROM image_aliases "
			   "WHERE image_id = images.id) AS first FROM images "
			   "ORDER BY first IS NULL, first, fingerprint", &st);
	if (r < 0)
		return r;
	struct image_info *a = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct image_info *na = realloc(a, (n + 1) * sizeof *a);
		if (!na) {
			image_info_array_free(a, n);
			return err_set(ENOMEM, "list images");
		}
		a = na;
		if ((r = row_to_info(s, st, &a[n])) < 0) {
			image_info_array_free(a, n);
			return r;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		image_info_array_free(a, n);
		return db_error(s->db, rc, "list images");
	}
	*ret = a;
	*ret_n = n;
	return 0;
}

/* ---- tree helpers --------------------------------------------------------- */

static int tree_size(int dir_fd, struct strmap *inodes, uint64_t *sum)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (S_ISREG(st.st_mode)) {
			if (st.st_nlink > 1) {
				char key[64];
				snprintf(key, sizeof key, "%llu:%llu", (unsigned long long)st.st_dev,
					 (unsigned long long)st.st_ino);
				if (strmap_has(inodes, key))
					continue;
				int r = strmap_put(inodes, key, NULL);
				if (r < 0)
					return r;
			}
			*sum += (uint64_t)st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(fd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				return -errno;
			int r = tree_size(sub, inodes, sum);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int image_tree_size(int root_fd, uint64_t *ret)
{
	struct strmap inodes = { 0 };
	uint64_t sum = 0;
	int r = tree_size(root_fd, &inodes, &sum);
	strmap_clear(&inodes);
	if (r < 0)
		return err_set(-r, "measure image size");
	*ret = sum;
	return 0;
}

char *image_detect_arch(int root_fd)
{
	static const char *const probes[] = { "bin/sh", "bin/busybox", "usr/bin/env" };
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		_cleanup_close_ int fd = openat_in_root(root_fd, probes[i], O_RDONLY, 0);
		unsigned char h[20];
		if (fd < 0 || pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, "\177ELF", 4))
			continue;
		unsigned machine = h[5] == 2 ? (unsigned)(h[18] << 8 | h[19]) : (unsigned)(h[18] | h[19] << 8);
		const char *a = image_arch_from_elf(machine);
		if (a)
			return strdup(a);
	}
	struct utsname u;
	return strdup(uname(&u) == 0 ? u.machine : "unknown");
}

/* ---- publishing ------------------------------------------------------------ */

struct new_image {
	const char *fingerprint, *type, *source, *architecture, *alias;
};

static int check_alias_free(struct image_store *s, const char *alias)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(s->db, "SELECT i.fingerprint FROM image_aliases a JOIN images i ON i.id = a.image_id "
			   "WHERE a.name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return err_refuse(EEXIST, "alias '%s' already exists (image %.12s)", alias,
			       (const char *)sqlite3_column_text(st, 0));
	return rc == SQLITE_DONE ? 0 : db_error(s->db, rc, "find alias");
}

/* Record the image and move its directory into place, in one transaction. */
static int publish(struct image_store *s, struct tmpdir *t, const struct new_image *ni)
{
	uint64_t size;
	{
		_cleanup_close_ int root = openat(t->fd, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (root < 0)
			return err_set(errno, "open new rootfs");
		int r = image_tree_size(root, &size);
		if (r < 0)
			return r;
	}
	int r = db_begin(s->db);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if ((r = db_prepare(s->db, "SELECT 1 FROM images WHERE fingerprint = ?", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, ni->fingerprint, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = err_refuse(EEXIST, "image %s already exists", ni->fingerprint);
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s->db, rc, "find image");
		goto fail;
	}
	if (ni->alias && (r = check_alias_free(s, ni->alias)) < 0)
		goto fail;
	/* A directory without a row is what a crash between rename and commit
	 * leaves; we hold the write lock, so nobody else is publishing it. */
	(void)storage_tree_remove(s->images_fd, ni->fingerprint, ni->fingerprint); /* best effort */
	sqlite3_finalize(st);
	st = NULL;
	if ((r = db_prepare(s->db, "INSERT INTO images (fingerprint, type, source, architecture, size, created_at) "
			    "VALUES (?, ?, ?, ?, ?, ?)", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, ni->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ni->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ni->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ni->architecture, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = db_error(s->db, rc, "insert image");
		goto fail;
	}
	int64_t id = sqlite3_last_insert_rowid(s->db->h);
	if (ni->alias) {
		sqlite3_finalize(st);
		st = NULL;
		if ((r = db_prepare(s->db, "INSERT INTO image_aliases (name, image_id) VALUES (?, ?)", &st)) < 0)
			goto fail;
		sqlite3_bind_text(st, 1, ni->alias, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, id);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
			r = db_error(s->db, rc, "insert alias");
			goto fail;
		}
	}
	if (renameat(s->images_fd, t->name, s->images_fd, ni->fingerprint) < 0) {
		r = err_set(errno, "rename '%s/%s' to '%s'", s->images_dir, t->name, ni->fingerprint);
		goto fail;
	}
	if ((r = db_commit(s->db)) < 0) {
		(void)renameat(s->images_fd, ni->fingerprint, s->images_fd, t->name); /* back: removed below */
		return r;
	}
	t->name[0] = '\0'; /* no longer ours to remove */
	return 0;
fail:
	db_rollback(s->db);
	return r;
}

static int ensure_builtin(struct image_store *s)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(s->db, "SELECT 1 FROM images WHERE type = 'builtin'", &st);
	if (r < 0)
		return r;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return db_error(s->db, rc, "find built-in image");
	struct tmpdir t = { .fd = -1 };
	if ((r = tmp_create(s, &t)) < 0)
		return r;
	char fp[IMAGE_FINGERPRINT_LEN + 1];
	_cleanup_free_ char *source = NULL, *arch = NULL;
	_cleanup_close_ int root = -1;
	if (mkdirat(t.fd, "rootfs", 0755) < 0 ||
	    (root = openat(t.fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		r = err_set(errno, "built-in image: create rootfs");
	if (r == 0)
		r = image_builtin_build(root, fp, &source);
	if (r == 0 && !(arch = image_detect_arch(root)))
		r = err_set(ENOMEM, "built-in image");
	if (r == 0) {
		struct new_image ni = { .fingerprint = fp, .type = "builtin", .source = source,
					.architecture = arch, .alias = IMAGE_BUILTIN_ALIAS };
		r = publish(s, &t, &ni);
		/* Another command made it meanwhile: theirs is as good. */
		if (r == -EEXIST)
			r = 0;
	}
	tmp_remove(s, &t);
	return r;
}

int image_store_open(const char *state_dir, struct image_store **ret)
{
	struct image_store *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ENOMEM, "open image store");
	s->images_fd = -1;
	s->max_bytes = IMAGE_MAX_BYTES_DEFAULT;
	s->max_ratio = IMAGE_MAX_RATIO_DEFAULT;
	int r = 0;
	if (!(s->state_dir = strdup(state_dir)) || asprintf(&s->images_dir, "%s/images", state_dir) < 0) {
		s->images_dir = NULL;
		r = err_set(ENOMEM, "open image store");
		goto fail;
	}
	if ((r = db_open(state_dir, &s->db)) < 0)
		goto fail;
	if (mkdir(s->images_dir, 0700) < 0 && errno != EEXIST) {
		r = err_set(errno, "mkdir '%s'", s->images_dir);
		goto fail;
	}
	s->images_fd = open(s->images_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->images_fd < 0) {
		r = err_set(errno, "open '%s'", s->images_dir);
		goto fail;
	}
	collect_stale(s);
	if ((r = ensure_builtin(s)) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	image_store_close(s);
	return r;
}

void image_store_set_import_limits(struct image_store *s, uint64_t max_bytes, uint64_t max_ratio)
{
	s->max_bytes = max_bytes;
	s->max_ratio = max_ratio;
}

void image_store_close(struct image_store *s)
{
	if (!s)
		return;
	db_close(s->db);
	if (s->images_fd >= 0)
		close(s->images_fd);
	free(s->state_dir);
	free(s->images_dir);
	free(s);
}

/* ---- import ------------------------------------------------------------------ */

static int import_into(struct image_store *s, struct tmpdir *t, const char *path, const char *alias,
		       const struct image_progress *p, char fp[IMAGE_FINGERPRINT_LEN + 1])
{
	/* A FIFO or /dev/zero would be read forever: only files and directories. */
	struct stat st;
	_cleanup_close_ int in = -1;
	{
		_cleanup_close_ int pfd = open(path, O_PATH | O_CLOEXEC);
		if (pfd < 0)
			return err_set(errno, "open '%s'", path);
		if (fstat(pfd, &st) < 0)
			return err_set(errno, "stat '%s'", path);
		if (S_ISDIR(st.st_mode)) {
			if ((in = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
				return err_set(errno, "open '%s'", path);
		} else if ((in = image_open_regular(AT_FDCWD, path, false, path)) < 0) {
			return err_wrap(in, "image import reads a tarball or an OCI layout directory");
		}
	}
	struct image_budget budget = { .max_bytes = s->max_bytes, .max_ratio = s->max_ratio };
	if (mkdirat(t->fd, "rootfs", 0755) < 0)
		return err_set(errno, "create rootfs in '%s/%s'", s->images_dir, t->name);
	_cleanup_close_ int root = openat(t->fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return err_set(errno, "open rootfs in '%s/%s'", s->images_dir, t->name);
	_cleanup_free_ char *arch = NULL;
	const char *type;
	int r;
	if (S_ISDIR(st.st_mode)) {
		if (!image_oci_is_layout(in))
			return err_refuse(EINVAL, "'%s': a directory must be an OCI image layout (oci-layout and "
				       "index.json)", path);
		type = "oci";
		if ((r = image_oci_apply(in, path, root, p, &budget, fp, &arch)) < 0)
			return r;
	} else {
		struct image_reader *rd = malloc(sizeof *rd);
		if (!rd)
			return err_set(ENOMEM, "import");
		if ((r = image_reader_init(rd, in, path)) < 0) {
			free(rd);
			return r;
		}
		rd->progress = p;
		rd->total = (uint64_t)st.st_size;
		rd->budget = &budget;
		r = image_apply_layer(root, rd);
		if (r == 0)
			r = image_reader_finish(rd, fp);
		image_reader_free(rd);
		free(rd);
		if (r < 0)
			return r;
		type = "rootfs";
		if (image_oci_is_layout(root)) {
			/* An OCI layout packed in a tarball: what we unpacked is the
			 * layout; apply its layers into a fresh rootfs. */
			close(root);
			root = -1;
			if (renameat(t->fd, "rootfs", t->fd, "layout") < 0 || mkdirat(t->fd, "rootfs", 0755) < 0)
				return err_set(errno, "prepare rootfs in '%s/%s'", s->images_dir, t->name);
			_cleanup_close_ int layout = openat(t->fd, "layout", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			root = openat(t->fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (layout < 0 || root < 0)
				return err_set(errno, "open rootfs in '%s/%s'", s->images_dir, t->name);
			type = "oci";
			if ((r = image_oci_apply(layout, path, root, p, &budget, fp, &arch)) < 0)
				return r;
			(void)storage_tree_remove(t->fd, "layout", "layout"); /* best effort: removed with the image otherwise */
		} else if (!(arch = image_detect_arch(root))) {
			return err_set(ENOMEM, "import");
		}
	}
	if (fchmod(root, 0755) < 0)
		return err_set(errno, "chmod rootfs");
	char *abs = realpath(path, NULL);
	struct new_image ni = { .fingerprint = fp, .type = type, .source = abs ? abs : path,
				.architecture = arch, .alias = alias };
	r = publish(s, t, &ni);
	free(abs);
	return r;
}

int image_import(struct image_store *s, const char *path, const char *alias,
		 const struct image_progress *p, char **ret_fingerprint)
{
	int r;
	if (alias && ((r = image_alias_check(alias)) < 0 || (r = check_alias_free(s, alias)) < 0))
		return r;
	struct tmpdir t = { .fd = -1 };
	if ((r = tmp_create(s, &t)) < 0)
		return r;
	char fp[IMAGE_FINGERPRINT_LEN + 1];
	r = import_into(s, &t, path, alias, p, fp);
	tmp_remove(s, &t);
	if (r < 0)
		return r;
	if (ret_fingerprint && !(*ret_fingerprint = strdup(fp)))
		return err_set(ENOMEM, "import");
	return 0;
}

/* ---- export, delete -------------------------------------------------------- */

int image_rootfs_path(struct image_store *s, const char *ref, char **ret)
{
	struct image_info info;
	int r = resolve(s, ref, &info, NULL);
	if (r < 0)
		return r;
	r = asprintf(ret, "%s/%s/rootfs", s->images_dir, info.fingerprint) < 0 ? err_set(ENOMEM, "image path") : 0;
	image_info_clear(&info);
	return r;
}

int image_export(struct image_store *s, const char *ref, const char *path, const struct image_progress *p)
{
	int c = image_compression_for(path);
	if (c < 0)
		return c;
	struct image_info info;
	int r = resolve(s, ref, &info, NULL);
	if (r < 0)
		return r;
	char rel[IMAGE_FINGERPRINT_LEN + 16];
	snprintf(rel, sizeof rel, "%s/rootfs", info.fingerprint);
	_cleanup_close_ int root = openat(s->images_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0) {
		r = err_set(errno, "image '%s': open '%s/%s'", ref, s->images_dir, rel);
		image_info_clear(&info);
		return r;
	}
	/* Written next to the target and renamed over it when complete. */
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		image_info_clear(&info);
		return err_set(ENOMEM, "export");
	}
	_cleanup_close_ int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0) {
		r = err_set(errno, "create '%s'", tmp);
		image_info_clear(&info);
		return r;
	}
	mode_t um = umask(0);
	umask(um);
	r = image_export_tree(root, out, (enum image_compression)c, path, info.size, p);
	if (r == 0 && fchmod(out, 0666 & ~um) < 0)
		r = err_set(errno, "chmod '%s'", tmp);
	if (r == 0 && fsync(out) < 0)
		r = err_set(errno, "write '%s'", path);
	if (r == 0 && rename(tmp, path) < 0)
		r = err_set(errno, "rename '%s' to '%s'", tmp, path);
	if (r < 0)
		(void)unlink(tmp); /* best effort */
	image_info_clear(&info);
	return r;
}

/* An image that instances are made from stays: their lower layer. */
static int refuse_if_used(struct image_store *s, const char *ref, int64_t id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(s->db, "SELECT group_concat(name, ', ') FROM "
			   "(SELECT name FROM instances WHERE image_id = ? ORDER BY name)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		return err_refuse(EBUSY, "image '%s' is used by instance(s) %s: delete them first", ref,
				  (const char *)sqlite3_column_text(st, 0));
	return 0;
}

int image_resolve_id(struct image_store *s, const char *ref, struct image_info *ret, int64_t *ret_id)
{
	return resolve(s, ref, ret, ret_id);
}

struct db *image_store_db(struct image_store *s)
{
	return s->db;
}

int image_delete(struct image_store *s, const char *ref)
{
	struct image_info info;
	int64_t id;
	int r = db_begin(s->db);
	if (r < 0)
		return r;
	if ((r = resolve(s, ref, &info, &id)) < 0) {
		db_rollback(s->db);
		return r;
	}
	char del[IMAGE_FINGERPRINT_LEN + 32];
	snprintf(del, sizeof del, ".del-%d-%s", (int)getpid(), info.fingerprint);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (!strcmp(info.type, "builtin")) {
		r = err_refuse(EPERM, "image '%s' is the built-in busybox image and cannot be deleted", ref);
		goto fail;
	}
	if ((r = refuse_if_used(s, ref, id)) < 0)
		goto fail;
	if ((r = db_prepare(s->db, "DELETE FROM images WHERE id = ?", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		r = db_error(s->db, rc, "delete image");
		goto fail;
	}
	if (renameat(s->images_fd, info.fingerprint, s->images_fd, del) < 0 && errno != ENOENT) {
		r = err_set(errno, "rename '%s/%s'", s->images_dir, info.fingerprint);
		goto fail;
	}
	if ((r = db_commit(s->db)) < 0) {
		(void)renameat(s->images_fd, del, s->images_fd, info.fingerprint); /* put it back */
		image_info_clear(&info);
		return r;
	}
	(void)storage_tree_remove(s->images_fd, del, del); /* best effort: collected by the next command otherwise */
	image_info_clear(&info);
	return 0;
fail:
	db_rollback(s->db);
	image_info_clear(&info);
	return r;
}
