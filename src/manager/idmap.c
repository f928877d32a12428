/* The host-wide id range registry: /etc/subuid and /etc/subgid lines of the
 * owner `isola`, and IDMAP_REGISTRY ("BASE COUNT NAME STORE" per line)
 * saying whose each range is. */
#include "idmap.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <limits.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int64_t idmap_first_free(const struct idmap_range *taken, size_t n, int64_t start, int64_t end, int64_t count)
{
	int64_t cand = start;
	/* Move past every range that overlaps the candidate until none does:
	 * at most n moves, each past one range for good. */
	for (bool moved = true; moved;) {
		moved = false;
		for (size_t i = 0; i < n; i++)
			if (taken[i].count > 0 && taken[i].base < cand + count && cand < taken[i].base + taken[i].count) {
				cand = taken[i].base + taken[i].count;
				moved = true;
			}
		if (cand + count > end)
			return -1;
	}
	return cand;
}

/* ---- the files ------------------------------------------------------------------ */

struct subid_file {
	const char *path;
	char *text; /* NUL-terminated; "" when the file does not exist */
	struct stat st;
	bool exists, changed;
};

struct entry {
	int64_t base, count;
	char *name, *store;
};

struct state {
	struct subid_file f[2];
	struct entry *e;
	size_t n;
	bool reg_changed;
};

static void state_clear(struct state *s)
{
	for (size_t i = 0; i < 2; i++)
		free(s->f[i].text);
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].name);
		free(s->e[i].store);
	}
	free(s->e);
	memset(s, 0, sizeof *s);
}

static int read_subid(struct subid_file *f, const char *path)
{
	f->path = path;
	f->changed = false;
	int r = read_file_at(AT_FDCWD, path, &f->text, NULL);
	if (r == -ENOENT) {
		err_clear();
		f->exists = false;
		f->st.st_mode = S_IFREG | 0644;
		f->st.st_uid = 0;
		f->st.st_gid = 0;
		return (f->text = strdup("")) ? 0 : err_set(ENOMEM, "%s", path);
	}
	if (r < 0)
		return err_wrap(r, "read '%s'", path);
	f->exists = true;
	if (stat(path, &f->st) < 0)
		return err_set(errno, "stat '%s'", path);
	return 0;
}

/* "owner:start:count" -> fields; false for comments and anything else. */
static bool parse_subid_line(const char *line, size_t len, char *owner, size_t osize, int64_t *start, int64_t *count)
{
	char buf[512];
	if (len == 0 || len >= sizeof buf || line[0] == '#')
		return false;
	memcpy(buf, line, len);
	buf[len] = 0;
	char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
	if (!c2 || c1 == buf)
		return false;
	*c1 = *c2 = 0;
	errno = 0;
	long long s = strtoll(c1 + 1, &end, 10);
	if (errno || *end || end == c1 + 1 || s < 0)
		return false;
	long long n = strtoll(c2 + 1, &end, 10);
	if (errno || *end || end == c2 + 1 || n <= 0)
		return false;
	if (strlen(buf) >= osize)
		return false;
	memcpy(owner, buf, strlen(buf) + 1);
	*start = s;
	*count = n;
	return true;
}

/* Call fn for every range line; stops when fn returns true (the line's
 * offset and length go to *ret_off, *ret_len). */
typedef bool (*subid_fn)(void *ctx, const char *owner, int64_t start, int64_t count);
static bool subid_each(const struct subid_file *f, subid_fn fn, void *ctx, size_t *ret_off, size_t *ret_len)
{
	for (const char *p = f->text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char owner[256];
		int64_t s, n;
		if (parse_subid_line(p, len, owner, sizeof owner, &s, &n) && fn(ctx, owner, s, n)) {
			if (ret_off)
				*ret_off = (size_t)(p - f->text);
			if (ret_len)
				*ret_len = len + (nl ? 1 : 0);
			return true;
		}
		p += len + (nl ? 1 : 0);
	}
	return false;
}

struct range_match { int64_t base, count; };
static bool is_our_line(void *ctx, const char *owner, int64_t start, int64_t count)
{
	const struct range_match *m = ctx;
	return !strcmp(owner, IDMAP_OWNER) && start == m->base && count == m->count;
}

/* Drop one `isola:base:count` line. */
static void subid_remove(struct subid_file *f, int64_t base, int64_t count)
{
	struct range_match m = { base, count };
	size_t off, len;
	if (subid_each(f, is_our_line, &m, &off, &len)) {
		memmove(f->text + off, f->text + off + len, strlen(f->text + off + len) + 1);
		f->changed = true;
	}
}

/* Add `isola:base:count` unless it is there; every other byte stays. */
static int subid_ensure(struct subid_file *f, int64_t base, int64_t count)
{
	struct range_match m = { base, count };
	if (subid_each(f, is_our_line, &m, NULL, NULL))
		return 0;
	size_t len = strlen(f->text);
	bool nl = len > 0 && f->text[len - 1] != '\n';
	char *t = NULL;
	if (asprintf(&t, "%s%s%s:%lld:%lld\n", f->text, nl ? "\n" : "", IDMAP_OWNER, (long long)base,
		     (long long)count) < 0)
		return err_set(ENOMEM, "%s", f->path);
	free(f->text);
	f->text = t;
	f->changed = true;
	return 0;
}

/* Replace path atomically, keeping its owner and mode: temp, fsync, rename. */
static int replace_file(const char *path, const char *data, const struct stat *like)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	snprintf(tmp, sizeof tmp, "%.*s/.%s.isola-%d", (int)(slash - path), path, slash + 1, (int)getpid());
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(errno, "create '%s'", tmp);
	int r = 0;
	if (fchown(fd, like->st_uid, like->st_gid) < 0 || fchmod(fd, like->st_mode & 07777) < 0)
		r = -errno;
	if (r == 0)
		r = write_all(fd, data, strlen(data));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp); /* best effort */
		return err_set(-r, "write '%s'", path);
	}
	return 0;
}

static int read_registry(struct state *s)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(AT_FDCWD, IDMAP_REGISTRY, &text, NULL);
	if (r == -ENOENT) {
		err_clear();
		return 0;
	}
	if (r < 0)
		return err_wrap(r, "read the id registry");
	int lineno = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (line[0] == '#')
			continue;
		long long base, count;
		int off = 0;
		if (sscanf(line, "%lld %lld %n", &base, &count, &off) != 2 || off == 0 || base < 0 || count <= 0)
			return err_set(EINVAL, "%s:%d: expected BASE COUNT NAME STORE", IDMAP_REGISTRY, lineno);
		char *name = line + off, *sp = strchr(name, ' ');
		if (!sp || sp == name || sp[1] != '/')
			return err_set(EINVAL, "%s:%d: expected BASE COUNT NAME STORE", IDMAP_REGISTRY, lineno);
		*sp = 0;
		struct entry *nv = realloc(s->e, (s->n + 1) * sizeof *nv);
		if (!nv)
			return err_set(ENOMEM, "id registry");
		s->e = nv;
		s->e[s->n] = (struct entry){ base, count, strdup(name), strdup(sp + 1) };
		if (!s->e[s->n].name || !s->e[s->n].store) {
			free(s->e[s->n].name);
			free(s->e[s->n].store);
			return err_set(ENOMEM, "id registry");
		}
		s->n++;
	}
	return 0;
}

static int write_registry(const struct state *s)
{
	if (!s->reg_changed)
		return 0;
	if (s->n == 0) { /* the last range went: nothing of us is left on the host */
		if (unlink(IDMAP_REGISTRY) < 0 && errno != ENOENT)
			return err_set(errno, "remove '%s'", IDMAP_REGISTRY);
		return 0;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return err_set(ENOMEM, "id registry");
	fprintf(f, "# isola: the host id ranges of instances (BASE COUNT NAME STORE); also %s:BASE:COUNT in "
		   "%s and %s\n", IDMAP_OWNER, IDMAP_SUBUID, IDMAP_SUBGID);
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%lld %lld %s %s\n", (long long)s->e[i].base, (long long)s->e[i].count, s->e[i].name,
			s->e[i].store);
	if (fclose(f) != 0) {
		free(text);
		return err_set(ENOMEM, "id registry");
	}
	struct stat like = { .st_mode = 0600, .st_uid = 0, .st_gid = 0 };
	int r = replace_file(IDMAP_REGISTRY, text, &like);
	free(text);
	return r;
}

/* Entries first (a crash in between leaves a range recorded and not yet
 * reserved, which the next change completes, never the other way round). */
static int state_write(struct state *s)
{
	int r = write_registry(s);
	for (size_t i = 0; i < 2 && r == 0; i++)
		if (s->f[i].changed)
			r = replace_file(s->f[i].path, s->f[i].text, &s->f[i].st);
	return r;
}

static int state_read(struct state *s)
{
	int r;
	memset(s, 0, sizeof *s);
	if ((r = read_subid(&s->f[0], IDMAP_SUBUID)) < 0 || (r = read_subid(&s->f[1], IDMAP_SUBGID)) < 0 ||
	    (r = read_registry(s)) < 0)
		return r;
	return 0;
}

static void entry_drop(struct state *s, size_t i)
{
	for (size_t k = 0; k < 2; k++)
		subid_remove(&s->f[k], s->e[i].base, s->e[i].count);
	free(s->e[i].name);
	free(s->e[i].store);
	s->e[i] = s->e[--s->n];
	s->reg_changed = true;
}

static int entry_add(struct state *s, const char *store, const char *name, int64_t base, int64_t count)
{
	struct entry *nv = realloc(s->e, (s->n + 1) * sizeof *nv);
	if (!nv)
		return err_set(ENOMEM, "id registry");
	s->e = nv;
	s->e[s->n] = (struct entry){ base, count, strdup(name), strdup(store) };
	if (!s->e[s->n].name || !s->e[s->n].store) {
		free(s->e[s->n].name);
		free(s->e[s->n].store);
		return err_set(ENOMEM, "id registry");
	}
	s->n++;
	s->reg_changed = true;
	return 0;
}

/* Every recorded range has its lines (a crash between the two writes). */
static int ensure_lines(struct state *s)
{
	int r = 0;
	for (size_t i = 0; i < s->n && r == 0; i++)
		for (size_t k = 0; k < 2 && r == 0; k++)
			r = subid_ensure(&s->f[k], s->e[i].base, s->e[i].count);
	return r;
}

/* lckpwdf(3): the lock shadow's tools hold while they edit these files. */
static int lock_host(void)
{
	if (lckpwdf() < 0)
		return err_set(errno ? errno : EAGAIN, "lock the host's user and id files (lckpwdf, /etc/.pwd.lock)");
	return 0;
}

static int check_store(const char *store, const char *name)
{
	if (store[0] != '/' || strchr(store, '\n'))
		return err_set(EINVAL, "state directory '%s': must be an absolute path without newlines", store);
	if (!*name || strpbrk(name, " \n/"))
		return err_set(EINVAL, "instance name '%s'", name);
	return 0;
}

static bool store_gone(const char *store)
{
	struct stat st;
	/* An existing directory without a database may be a file system not
	 * mounted right now: only a missing directory is gone. */
	return stat(store, &st) < 0 && errno == ENOENT;
}

/* ---- reserve, release, check ---------------------------------------------------------- */

struct collect { struct idmap_range *v; size_t n, cap; bool oom; };
static bool collect_range(void *ctx, const char *owner, int64_t start, int64_t count)
{
	struct collect *c = ctx;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct idmap_range *nv = realloc(c->v, cap * sizeof *nv);
		if (!nv) {
			c->oom = true; /* a range left out could be handed out twice: fail */
			return false;
		}
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = (struct idmap_range){ start, count };
	return false;
}

int idmap_reserve(const char *store, const char *name, int64_t count, const struct idmap_range *also_taken,
		  size_t n_taken, idmap_in_use_fn in_use, void *ctx, int64_t *ret_base)
{
	int r = check_store(store, name);
	if (r < 0 || (r = lock_host()) < 0)
		return r;
	struct state s;
	struct collect c = { 0 };
	if ((r = state_read(&s)) < 0)
		goto out;
	/* Take back what nobody uses: entries of store directories that are
	 * gone, and of this store those its database no longer has. */
	for (size_t i = 0; i < s.n;) {
		bool mine = !strcmp(s.e[i].store, store);
		bool stale = mine ? !strcmp(s.e[i].name, name) || !in_use(ctx, s.e[i].name, s.e[i].base)
				  : store_gone(s.e[i].store);
		if (stale)
			entry_drop(&s, i);
		else
			i++;
	}
	if ((r = ensure_lines(&s)) < 0)
		goto out;
	/* Taken: every line of both files (any owner), every entry, and what
	 * this store's database says. */
	for (size_t k = 0; k < 2; k++)
		(void)subid_each(&s.f[k], collect_range, &c, NULL, NULL);
	for (size_t i = 0; i < s.n; i++)
		collect_range(&c, IDMAP_OWNER, s.e[i].base, s.e[i].count);
	for (size_t i = 0; i < n_taken; i++)
		collect_range(&c, IDMAP_OWNER, also_taken[i].base, also_taken[i].count);
	if (c.oom) {
		r = err_set(ENOMEM, "reserve host ids");
		goto out;
	}
	int64_t base = idmap_first_free(c.v, c.n, IDMAP_POOL_START, IDMAP_POOL_END, count);
	if (base < 0) {
		r = err_refuse(ENOSPC, "no free range of %lld host ids left for a new instance (%s, %s)", (long long)count,
			       IDMAP_SUBUID, IDMAP_SUBGID);
		goto out;
	}
	if ((r = entry_add(&s, store, name, base, count)) < 0 || (r = ensure_lines(&s)) < 0 ||
	    (r = state_write(&s)) < 0)
		goto out;
	*ret_base = base;
out:
	free(c.v);
	state_clear(&s);
	ulckpwdf();
	return r;
}

int idmap_release(const char *store, const char *name)
{
	int r = check_store(store, name);
	if (r < 0 || (r = lock_host()) < 0)
		return r;
	struct state s;
	if ((r = state_read(&s)) == 0) {
		for (size_t i = 0; i < s.n;) {
			if (!strcmp(s.e[i].store, store) && !strcmp(s.e[i].name, name))
				entry_drop(&s, i);
			else
				i++;
		}
		/* lines first: a crash in between leaves a recorded range (taken
		 * back later), never an unrecorded reservation */
		for (size_t k = 0; k < 2 && r == 0; k++)
			if (s.f[k].changed)
				r = replace_file(s.f[k].path, s.f[k].text, &s.f[k].st);
		if (r == 0)
			r = write_registry(&s);
	}
	state_clear(&s);
	ulckpwdf();
	return r;
}

struct conflict {
	int64_t base, count;
	char owner[256];
	int64_t start, n;
};
static bool user_overlap(void *ctx, const char *owner, int64_t start, int64_t count)
{
	struct conflict *c = ctx;
	if (!strcmp(owner, IDMAP_OWNER) || !(start < c->base + c->count && c->base < start + count))
		return false;
	snprintf(c->owner, sizeof c->owner, "%s", owner);
	c->start = start;
	c->n = count;
	return true;
}

/* A conflict of (store, name, base, count) with a user's line or another
 * instance's entry; *ret_recorded: the instance's own entry is there. */
static int find_conflict(const struct state *s, const char *store, const char *name, int64_t base, int64_t count,
			 bool *ret_recorded)
{
	struct conflict c = { .base = base, .count = count };
	for (size_t k = 0; k < 2; k++)
		if (subid_each(&s->f[k], user_overlap, &c, NULL, NULL))
			return err_refuse(EBUSY, "instance '%s': its host ids %lld-%lld overlap the range %lld-%lld that %s "
					  "gives to '%s': give that user another range, or delete the instance",
					  name, (long long)base, (long long)(base + count - 1), (long long)c.start,
					  (long long)(c.start + c.n - 1), s->f[k].path, c.owner);
	*ret_recorded = false;
	for (size_t i = 0; i < s->n; i++) {
		const struct entry *e = &s->e[i];
		bool own = !strcmp(e->store, store) && !strcmp(e->name, name);
		if (own && e->base == base && e->count == count) {
			*ret_recorded = true;
			continue;
		}
		if (e->base < base + count && base < e->base + e->count)
			return err_refuse(EBUSY, "instance '%s': its host ids %lld-%lld overlap those of instance '%s' of "
					  "the state directory '%s' (%s)", name, (long long)base,
					  (long long)(base + count - 1), e->name, e->store, IDMAP_REGISTRY);
	}
	return 0;
}

int idmap_check(const char *store, const char *name, int64_t base, int64_t count)
{
	int r = check_store(store, name);
	if (r < 0)
		return r;
	bool recorded = false;
	struct state s;
	/* The usual case reads three small files and takes no lock. */
	if ((r = state_read(&s)) == 0 && (r = find_conflict(&s, store, name, base, count, &recorded)) == 0 &&
	    recorded) {
		struct range_match m = { base, count };
		bool lines = subid_each(&s.f[0], is_our_line, &m, NULL, NULL) &&
			     subid_each(&s.f[1], is_our_line, &m, NULL, NULL);
		state_clear(&s);
		if (lines)
			return 0;
	} else
		state_clear(&s);
	if (r < 0)
		return r;
	/* Not recorded (an instance from before the registry), or its lines
	 * are missing: record it under the lock, if it is still free. */
	if ((r = lock_host()) < 0)
		return r;
	if ((r = state_read(&s)) == 0 && (r = find_conflict(&s, store, name, base, count, &recorded)) == 0) {
		if (!recorded)
			r = entry_add(&s, store, name, base, count);
		if (r == 0 && (r = ensure_lines(&s)) == 0)
			r = state_write(&s);
	}
	state_clear(&s);
	ulckpwdf();
	return r;
}
