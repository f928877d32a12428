/* Writing an image's rootfs as a tarball (pax; hard links kept, file
 * capabilities kept), directories in sorted order so the same tree gives
 * the same member order. */
#include "image-internal.h"
#include "strmap.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

struct exporter {
	struct archive *a;
	const char *what;
	struct strmap links; /* "dev:ino" -> first path, for files with st_nlink > 1 */
	uint64_t done, total;
	const struct image_progress *progress;
	char buf[1 << 16];
};

static void archive_entry_freep(struct archive_entry **e) { if (*e) archive_entry_free(*e); }

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Sorted entry names of a directory. */
static int list_dir(int dir_fd, const char *what, const char *rel, char ***ret, size_t *ret_n)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "%s: open '%s'", what, *rel ? rel : ".");
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set(errno, "%s: open '%s'", what, rel);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof *names);
			if (!nn) {
				free_names(names, n);
				return err_set(ENOMEM, "%s", what);
			}
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name))) {
			free_names(names, n);
			return err_set(ENOMEM, "%s", what);
		}
		n++;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	*ret = names;
	*ret_n = n;
	return 0;
}

static int write_file_data(struct exporter *x, int dir_fd, const char *name, const char *path)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "%s: open '%s'", x->what, path);
	for (;;) {
		ssize_t n = read(fd, x->buf, sizeof x->buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(errno, "%s: read '%s'", x->what, path);
		if (n == 0)
			return 0;
		if (archive_write_data(x->a, x->buf, (size_t)n) != n)
			return err_set(EIO, "%s: write '%s': %s", x->what, path, archive_msg(x->a));
		x->done += (uint64_t)n;
		image_progress_report(x->progress, "exporting", x->done, x->total);
	}
}

static int export_dir(struct exporter *x, int dir_fd, const char *rel)
{
	char **names = NULL;
	size_t n = 0;
	int r = list_dir(dir_fd, x->what, rel, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *name = names[i];
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", name) >= (int)sizeof path) {
			r = err_set(ENAMETOOLONG, "%s: '%s/%s'", x->what, rel, name);
			break;
		}
		struct stat st;
		if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = err_set(errno, "%s: stat '%s'", x->what, path);
			break;
		}
		if (S_ISSOCK(st.st_mode))
			continue; /* cannot be archived; nothing in an image needs one */
		_cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
		if (!e) {
			r = err_set(ENOMEM, "%s", x->what);
			break;
		}
		archive_entry_copy_stat(e, &st);
		archive_entry_set_pathname(e, path);
		bool data = S_ISREG(st.st_mode);
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(dir_fd, name, target, sizeof target - 1);
			if (len < 0) {
				r = err_set(errno, "%s: readlink '%s'", x->what, path);
				break;
			}
			target[len] = '\0';
			archive_entry_set_symlink(e, target);
		} else if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
			char key[64];
			snprintf(key, sizeof key, "%llu:%llu", (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
			const char *first = strmap_get(&x->links, key);
			if (first) {
				archive_entry_set_hardlink(e, first);
				archive_entry_set_size(e, 0);
				data = false;
			} else if ((r = strmap_put(&x->links, key, path)) < 0) {
				break;
			}
		}
		if (data) {
			char cap[256];
			_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			ssize_t len = fd >= 0 ? fgetxattr(fd, "security.capability", cap, sizeof cap) : -1;
			if (len > 0)
				archive_entry_xattr_add_entry(e, "security.capability", cap, (size_t)len);
		}
		if (archive_write_header(x->a, e) < ARCHIVE_WARN) {
			r = err_set(EIO, "%s: write '%s': %s", x->what, path, archive_msg(x->a));
			break;
		}
		if (data && (r = write_file_data(x, dir_fd, name, path)) < 0)
			break;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = err_set(errno, "%s: open '%s'", x->what, path);
				break;
			}
			r = export_dir(x, sub, path);
		}
	}
	free_names(names, n);
	return r;
}

int image_export_tree(int root_fd, int out_fd, enum image_compression c, const char *what,
		      uint64_t total, const struct image_progress *p)
{
	struct exporter *x = calloc(1, sizeof *x);
	if (!x || !(x->a = archive_write_new())) {
		free(x);
		return err_set(ENOMEM, "%s", what);
	}
	x->what = what;
	x->total = total;
	x->progress = p;
	int r = 0;
	archive_write_set_format_pax_restricted(x->a);
	int rc = ARCHIVE_OK;
	switch (c) {
	case COMPRESS_NONE: break;
	case COMPRESS_GZIP: rc = archive_write_add_filter_gzip(x->a); break;
	case COMPRESS_ZSTD: rc = archive_write_add_filter_zstd(x->a); break;
	case COMPRESS_XZ: rc = archive_write_add_filter_xz(x->a); break;
	}
	/* Pad the last block only to the tar record, as GNU tar does. */
	archive_write_set_bytes_in_last_block(x->a, 1);
	if (rc != ARCHIVE_OK || archive_write_open_fd(x->a, out_fd) != ARCHIVE_OK) {
		r = err_set(EIO, "%s: %s", what, archive_msg(x->a));
		goto out;
	}
	if ((r = export_dir(x, root_fd, "")) < 0)
		goto out;
	if (archive_write_close(x->a) != ARCHIVE_OK)
		r = err_set(EIO, "%s: %s", what, archive_msg(x->a));
out:
	archive_write_free(x->a);
	strmap_clear(&x->links);
	free(x);
	return r;
}
