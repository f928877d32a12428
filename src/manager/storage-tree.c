/* Removing and measuring directory trees that a tenant made: no recursion and
 * a bounded number of open directories whatever the depth (a chain of 10000
 * directories is nothing special), never following a symlink, never leaving
 * the file system the tree starts on, and removing what the tenant made hard
 * to remove (mode 000 directories, immutable and append-only attributes).
 *
 * The walk keeps a stack of levels: the name of each directory in its parent
 * and its device and inode. Only the deepest OPEN_LEVELS levels keep their
 * directory stream; a shallower one is closed and remembers its position, and
 * is reopened through ".." of its child when the walk comes back, after
 * checking that ".." is still the directory it left (a tenant renaming
 * directories while `info` measures cannot lead the walk elsewhere). */
#include "storage.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A refusal: the message says it all, no strerror appended. */
#define OPEN_LEVELS 16
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct level {
	DIR *d;          /* NULL while closed */
	long pos;        /* telldir() of a closed stream */
	dev_t dev;
	ino_t ino;
	char *name;      /* name in the parent directory */
	bool full;       /* this pass read the directory from its start */
	size_t removed;  /* entries removed in this pass */
};

struct walk {
	const char *top; /* the tree's path, for messages */
	struct level *v;
	size_t n, cap, open;
};

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->v[i].d)
			closedir(w->v[i].d);
		free(w->v[i].name);
	}
	free(w->v);
	*w = (struct walk){ 0 };
}

/* "<top>/a/b/name", shortened in the middle for deep trees. */
static const char *walk_path(const struct walk *w, const char *name, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "%s", w->top);
	size_t first = w->n > 8 ? w->n - 4 : 1;
	if (first > 1 && off < len)
		off += (size_t)snprintf(buf + off, len - off, "/... (%zu levels)", first - 1);
	for (size_t i = first; i < w->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "/%s", w->v[i].name);
	if (name && off < len)
		snprintf(buf + off, len - off, "/%s", name);
	return buf;
}

/* Push the directory open as fd (taken) named name. */
static int walk_push(struct walk *w, int fd, const char *name, const struct stat *st)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct level *v = realloc(w->v, cap * sizeof *v);
		if (!v) {
			close(fd);
			return err_set(ENOMEM, "'%s'", w->top);
		}
		w->v = v;
		w->cap = cap;
	}
	DIR *d = fdopendir(fd);
	char *copy = strdup(name);
	if (!d || !copy) {
		if (d)
			closedir(d);
		else
			close(fd);
		free(copy);
		return err_set(ENOMEM, "'%s'", w->top);
	}
	w->v[w->n++] = (struct level){ .d = d, .dev = st->st_dev, .ino = st->st_ino, .name = copy, .full = true };
	/* Too many streams open: close the shallowest one (not the top's). */
	if (++w->open > OPEN_LEVELS) {
		for (size_t i = 1; i < w->n; i++) {
			struct level *l = &w->v[i];
			if (!l->d)
				continue;
			l->pos = telldir(l->d);
			closedir(l->d);
			l->d = NULL;
			w->open--;
			break;
		}
	}
	return 0;
}

/* Make sure the parent of the deepest level has its stream, reopening it
 * through ".." of the deepest one. -EAGAIN when ".." is not that directory
 * any more (the tree was moved around under the walk). */
static int walk_parent_open(struct walk *w)
{
	struct level *child = &w->v[w->n - 1], *p = &w->v[w->n - 2];
	if (p->d)
		return 0;
	int fd = openat(dirfd(child->d), "..", DIR_FLAGS);
	if (fd < 0)
		return err_set(errno, "'%s': reopen", w->top);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino) {
		close(fd);
		return err_refuse(EAGAIN, "'%s': the tree changed during the walk", w->top);
	}
	if (!(p->d = fdopendir(fd))) {
		close(fd);
		return err_set(ENOMEM, "'%s'", w->top);
	}
	seekdir(p->d, p->pos);
	p->full = false; /* what was before pos may have moved: look again at the end */
	w->open++;
	return 0;
}

static void walk_pop(struct walk *w)
{
	struct level *l = &w->v[--w->n];
	if (l->d) {
		closedir(l->d);
		w->open--;
	}
	free(l->name);
}

/* Clear the immutable and append-only attributes of an open file or directory. */
static bool clear_attrs(int fd)
{
	int flags = 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || !(flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)))
		return false;
	flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
	return ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
}

/* The same for parent/name, when it is a file or directory (a device node is
 * never opened: opening it could act on the device). */
static bool clear_attrs_at(int parent, const char *name)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return false;
	int fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool r = clear_attrs(fd);
	close(fd);
	return r;
}

/* unlinkat that gets past attributes on the entry or its directory. */
static int unlink_hard(int parent, const char *name, int flags)
{
	if (unlinkat(parent, name, flags) == 0)
		return 0;
	if (errno != EPERM && errno != EACCES)
		return -errno;
	bool changed = clear_attrs(parent);
	changed = clear_attrs_at(parent, name) || changed;
	if (changed && unlinkat(parent, name, flags) == 0)
		return 0;
	return -errno;
}

/* Open parent/name as a directory of the tree's file system for the walk. */
static int open_subdir(struct walk *w, int parent, const char *name, dev_t dev, struct stat *st)
{
	int fd = openat(parent, name, DIR_FLAGS);
	if (fd < 0 && errno == EACCES && fchmodat(parent, name, 0700, 0) == 0)
		fd = openat(parent, name, DIR_FLAGS);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (st->st_dev != dev) {
		close(fd);
		return -EXDEV;
	}
	return fd;
}

int storage_tree_remove(int at, const char *name, const char *what)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_set(errno, "remove '%s'", what);
	if (!S_ISDIR(st.st_mode)) {
		int r = unlink_hard(at, name, 0);
		return r == 0 || r == -ENOENT ? 0 : err_set(-r, "remove '%s'", what);
	}
	struct walk w = { .top = what };
	char path[1024];
	int r, fd = open_subdir(&w, at, name, st.st_dev, &st);
	if (fd < 0)
		return fd == -ENOENT ? 0 : err_set(-fd, "remove '%s'", what);
	dev_t dev = st.st_dev;
	if ((r = walk_push(&w, fd, name, &st)) < 0)
		goto out;
	while (w.n > 0) {
		struct level *l = &w.v[w.n - 1];
		errno = 0;
		struct dirent *e = readdir(l->d);
		if (e) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			int cur = dirfd(l->d);
			r = unlink_hard(cur, e->d_name, 0);
			if (r == 0 || r == -ENOENT) {
				l->removed++;
				continue;
			}
			if (r != -EISDIR) {
				r = err_set(-r, "remove '%s'", walk_path(&w, e->d_name, path, sizeof path));
				goto out;
			}
			fd = open_subdir(&w, cur, e->d_name, dev, &st);
			if (fd == -ENOENT)
				continue;
			if (fd < 0) {
				r = fd == -EXDEV ? err_refuse(EXDEV, "remove '%s': another file system is mounted there",
								  walk_path(&w, e->d_name, path, sizeof path))
						 : err_set(-fd, "remove '%s'", walk_path(&w, e->d_name, path, sizeof path));
				goto out;
			}
			if ((r = walk_push(&w, fd, e->d_name, &st)) < 0)
				goto out;
			continue;
		}
		if (errno) {
			r = err_set(errno, "read directory '%s'", walk_path(&w, NULL, path, sizeof path));
			goto out;
		}
		/* The end of this directory: remove it from its parent. */
		int parent = at;
		if (w.n > 1) {
			if ((r = walk_parent_open(&w)) < 0)
				goto out;
			parent = dirfd(w.v[w.n - 2].d);
		}
		r = unlink_hard(parent, l->name, AT_REMOVEDIR);
		if (r == -ENOTEMPTY || r == -EEXIST) {
			/* Entries the last pass did not see (it started mid-way, or
			 * they moved): read the directory again from its start. */
			if (l->full && l->removed == 0) {
				r = err_refuse(ENOTEMPTY, "remove '%s': still not empty after a full pass",
						     walk_path(&w, NULL, path, sizeof path));
				goto out;
			}
			rewinddir(l->d);
			l->full = true;
			l->removed = 0;
			continue;
		}
		if (r < 0 && r != -ENOENT) {
			r = err_set(-r, "remove '%s'", walk_path(&w, NULL, path, sizeof path));
			goto out;
		}
		walk_pop(&w);
		if (w.n > 0)
			w.v[w.n - 1].removed++;
	}
	r = 0;
out:
	walk_free(&w);
	return r;
}

/* One pass of a walk; -EAGAIN when the tree moved under it. */
static int walk_pass(int at, const char *what, storage_tree_fn *fn, void *userdata)
{
	struct stat st;
	if (fstat(at, &st) < 0)
		return err_set(errno, "'%s'", what);
	int fd = openat(at, ".", DIR_FLAGS);
	if (fd < 0)
		return err_set(errno, "open '%s'", what);
	struct walk w = { .top = what };
	dev_t dev = st.st_dev;
	int r = walk_push(&w, fd, ".", &st);
	while (r == 0 && w.n > 0) {
		struct level *l = &w.v[w.n - 1];
		errno = 0;
		struct dirent *e = readdir(l->d);
		if (!e) {
			if (errno) {
				r = err_set(errno, "read directory '%s'", what);
				break;
			}
			if (w.n > 1 && (r = walk_parent_open(&w)) < 0)
				break;
			walk_pop(&w);
			continue;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(l->d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* removed meanwhile */
		if ((r = fn(dirfd(l->d), e->d_name, &st, userdata)) < 0)
			break;
		if (!S_ISDIR(st.st_mode) || st.st_dev != dev)
			continue;
		fd = open_subdir(&w, dirfd(l->d), e->d_name, dev, &st);
		if (fd >= 0)
			r = walk_push(&w, fd, e->d_name, &st);
	}
	walk_free(&w);
	return r;
}

int storage_tree_walk(int at, const char *what, storage_tree_fn *fn, void *userdata)
{
	int r = -EAGAIN;
	for (int i = 0; i < 3 && r == -EAGAIN; i++)
		r = walk_pass(at, what, fn, userdata);
	return r;
}

static int add_blocks(int at, const char *name, const struct stat *st, void *userdata)
{
	*(uint64_t *)userdata += (uint64_t)st->st_blocks * 512;
	return 0;
}

int storage_tree_usage(int at, const char *what, uint64_t *ret)
{
	int r = -EAGAIN;
	for (int i = 0; i < 3 && r == -EAGAIN; i++) {
		uint64_t total = 0;
		if ((r = walk_pass(at, what, add_blocks, &total)) == 0)
			*ret = total;
	}
	return r;
}
