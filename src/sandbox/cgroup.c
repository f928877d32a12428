/* cgroup manager: host layout from /proc/self/mountinfo, the container's
 * directory in every hierarchy, lifecycle (create, enter, kill, freeze,
 * destroy) and dispatch of linux.resources to the v1/v2 backends. */
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define RMDIR_TRIES 12 /* ~1s in total: processes may still be exiting */

/* v1 controllers this code looks up by name. */
enum cg_ctrl {
	C_CPU, C_CPUACCT, C_CPUSET, C_MEMORY, C_DEVICES, C_FREEZER, C_BLKIO, C_PIDS,
	C_HUGETLB, C_NET_CLS, C_NET_PRIO, C_RDMA, C__MAX
};
static const char *const ctrl_names[C__MAX] = {
	"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
	"hugetlb", "net_cls", "net_prio", "rdma",
};
/* cgroup v1 mount options that are not controllers (see cgroup1_show_options). */
static const char *const v1_flag_opts[] = {
	"rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode",
	"favordynmods", "nofavordynmods", "none", "all",
};

static struct {
	enum cgroup_mode mode;
	struct cg_hier *h;
	size_t n;
	int err;
} layout;
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;

struct cg_dir {
	const struct cg_hier *h;
	char *rel;        /* below the mount point, "/a/b" */
	char *path;       /* mount point + rel */
	unsigned created; /* trailing components of rel this container created */
};

struct cgroup {
	struct cg_dir *d;
	size_t n;
	int v1[C__MAX]; /* index in d of the hierarchy holding a v1 controller, -1 none */
	int v2;         /* index in d of the cgroup2 hierarchy, -1 none */
	char *saved;
	bool v2ctl_read;
	char v2ctl[512]; /* the v2 directory's cgroup.controllers */
};

/* ---- layout detection ---- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else
			*o++ = *s++;
	}
	*o = '\0';
	return out;
}

/* Controllers (and name=) of a v1 mount from its super options, in the
 * order the kernel prints them in /proc/self/cgroup. */
static char *v1_key(char *super, unsigned *ctrls)
{
	char key[512] = "", *name = NULL, *tok;
	size_t kl = 0;
	while ((tok = strsep(&super, ","))) {
		bool flag = !*tok || !strncmp(tok, "release_agent=", 14);
		for (size_t i = 0; !flag && i < ARRAY_SIZE(v1_flag_opts); i++)
			flag = !strcmp(tok, v1_flag_opts[i]);
		if (flag)
			continue;
		if (!strncmp(tok, "name=", 5)) {
			name = tok;
			continue;
		}
		for (int c = 0; c < C__MAX; c++)
			if (!strcmp(tok, ctrl_names[c]))
				*ctrls |= 1u << c;
		kl += (size_t)snprintf(key + kl, sizeof key - kl, "%s%s", kl ? "," : "", tok);
		if (kl >= sizeof key)
			return NULL;
	}
	if (name)
		snprintf(key + kl, sizeof key - kl, "%s%s", kl ? "," : "", name);
	return key[0] ? strdup(key) : NULL;
}

static void hier_free(struct cg_hier *h)
{
	free(h->mnt);
	free(h->root);
	free(h->key);
}

/* Parse one mountinfo line; 1 = a cgroup mount in *h, 0 = not one. */
static int parse_mount(char *line, struct cg_hier *h)
{
	char *sep = strstr(line, " - "), *f[5], *p = line;
	if (!sep)
		return 0;
	char *fs = sep + 3;
	bool v2 = !strncmp(fs, "cgroup2 ", 8);
	if (!v2 && strncmp(fs, "cgroup ", 7))
		return 0;
	*sep = '\0';
	for (int i = 0; i < 5; i++)
		if (!(f[i] = strsep(&p, " ")))
			return 0;
	char *super = strchr(fs + (v2 ? 8 : 7), ' ');
	*h = (struct cg_hier){ .v2 = v2 };
	h->key = v2 ? strdup("") : v1_key(super ? super + 1 : (char[]){ "" }, &h->ctrls);
	h->mnt = unescape(f[4]);
	h->root = unescape(f[3]);
	if (!h->key || !h->mnt || !h->root) {
		hier_free(h);
		return 0;
	}
	h->score = (!strcmp(h->root, "/") ? 4 : 0) +
		   (!strncmp(h->mnt, CGROUP_ROOT, strlen(CGROUP_ROOT)) ? 2 : 0) +
		   (!strcmp(h->mnt, CGROUP_ROOT) ? 1 : 0);
	return 1;
}

static void layout_detect(void)
{
	_cleanup_free_ char *buf = NULL;
	bool unified_root = false, has_v1 = false, has_v2 = false;
	int r = cg_read_whole("/proc/self/mountinfo", &buf);
	if (r < 0) {
		layout.err = err_set(-r, "cgroup: read /proc/self/mountinfo");
		return;
	}
	for (char *line = buf, *next; line && *line; line = next) {
		struct cg_hier h;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (parse_mount(line, &h) <= 0)
			continue;
		unified_root |= h.v2 && !strcmp(h.mnt, CGROUP_ROOT);
		has_v1 |= !h.v2;
		has_v2 |= h.v2;
		size_t i = 0;
		while (i < layout.n && (layout.h[i].v2 != h.v2 || strcmp(layout.h[i].key, h.key)))
			i++;
		if (i < layout.n) { /* the same hierarchy mounted again */
			if (h.score > layout.h[i].score) {
				hier_free(&layout.h[i]);
				layout.h[i] = h;
			} else
				hier_free(&h);
			continue;
		}
		struct cg_hier *nh = realloc(layout.h, (layout.n + 1) * sizeof *nh);
		if (!nh) {
			hier_free(&h);
			layout.err = err_set(ENOMEM, "cgroup: detect layout");
			return;
		}
		layout.h = nh;
		layout.h[layout.n++] = h;
	}
	if (unified_root || (has_v2 && !has_v1)) {
		/* v1 hierarchies mounted elsewhere on a unified host are not ours to use. */
		size_t k = 0;
		for (size_t i = 0; i < layout.n; i++) {
			if (layout.h[i].v2)
				layout.h[k++] = layout.h[i];
			else
				hier_free(&layout.h[i]);
		}
		layout.n = k;
		layout.mode = CGROUP_UNIFIED;
	} else
		layout.mode = has_v1 && has_v2 ? CGROUP_HYBRID : CGROUP_LEGACY;
}

enum cgroup_mode cgroup_mode(void)
{
	pthread_once(&layout_once, layout_detect);
	return layout.mode;
}

static int layout_get(void)
{
	pthread_once(&layout_once, layout_detect);
	if (layout.err)
		return err_set(-layout.err, "cgroup: cannot read the mount table");
	if (!layout.n)
		return err_set(ENOENT, "cgroup: no cgroup filesystem is mounted");
	return 0;
}

int cg_layout(const struct cg_hier **ret, size_t *n)
{
	int r = layout_get();
	if (r < 0)
		return r;
	*ret = layout.h;
	*n = layout.n;
	return 0;
}

/* ---- paths ---- */

/* base + "/" + p with "", "." and ".." components resolved (never above "/"). */
static char *path_clean(const char *base, const char *p)
{
	char *out = malloc(strlen(base) + strlen(p) + 3);
	size_t o = 0;
	if (!out)
		return NULL;
	const char *parts[2] = { base, p };
	for (int part = 0; part < 2; part++) {
		const char *s = parts[part];
		while (*s) {
			while (*s == '/')
				s++;
			const char *e = strchrnul(s, '/');
			size_t len = (size_t)(e - s);
			if (len == 2 && s[0] == '.' && s[1] == '.') {
				while (o > 0 && out[--o] != '/')
					;
			} else if (len && !(len == 1 && s[0] == '.')) {
				out[o++] = '/';
				memcpy(out + o, s, len);
				o += len;
			}
			s = e;
		}
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

int cg_own_rel(const char *selfcg, const struct cg_hier *h, char **ret)
{
	const char *line = selfcg;
	for (; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *end = strchrnul(line, '\n');
		if (!c2 || c2 > end)
			continue;
		size_t kl = (size_t)(c2 - c1 - 1);
		if (kl != strlen(h->key) || strncmp(c1 + 1, h->key, kl))
			continue;
		const char *path = c2 + 1;
		size_t pl = (size_t)(end - path), rl = strlen(h->root);
		if (!strcmp(h->root, "/"))
			rl = 0;
		else if (pl < rl || strncmp(path, h->root, rl) || (pl > rl && path[rl] != '/'))
			return err_set(0, "cgroup: own cgroup %.*s is outside the mount of %s", (int)pl, path, h->mnt);
		*ret = pl > rl ? strndup(path + rl, pl - rl) : strdup("/");
		return *ret ? 0 : -ENOMEM;
	}
	return err_set(ENOENT, "cgroup: hierarchy \"%s\" (%s) not found in /proc/self/cgroup", h->key, h->mnt);
}

static cgroup *cg_new(size_t n)
{
	cgroup *cg = calloc(1, sizeof *cg);
	if (!cg || !(cg->d = calloc(n ? n : 1, sizeof *cg->d))) {
		free(cg);
		return NULL;
	}
	for (int c = 0; c < C__MAX; c++)
		cg->v1[c] = -1;
	cg->v2 = -1;
	return cg;
}

/* Append hierarchy h's directory `rel` (taken over) to cg. */
static int cg_add(cgroup *cg, const struct cg_hier *h, char *rel, unsigned created)
{
	struct cg_dir *d = &cg->d[cg->n];
	if (!rel)
		return err_set(ENOMEM, "cgroup");
	d->rel = rel;
	if (asprintf(&d->path, "%s%s", strcmp(h->mnt, "/") ? h->mnt : "", rel) < 0) {
		d->path = NULL;
		free(rel);
		d->rel = NULL;
		return err_set(ENOMEM, "cgroup");
	}
	d->h = h;
	d->created = created;
	if (h->v2)
		cg->v2 = (int)cg->n;
	for (int c = 0; c < C__MAX; c++)
		if ((h->ctrls & (1u << c)) && cg->v1[c] < 0)
			cg->v1[c] = (int)cg->n;
	cg->n++;
	return 0;
}

void cgroup_free(cgroup *cg)
{
	if (!cg)
		return;
	for (size_t i = 0; i < cg->n; i++) {
		free(cg->d[i].rel);
		free(cg->d[i].path);
	}
	free(cg->d);
	free(cg->saved);
	free(cg);
}

static void cgroup_freep(cgroup **cg) { cgroup_free(*cg); }

const char *cgroup_path(const cgroup *cg) { return cg->saved; }

/* ---- the saved form: "<created>:<path>" when every hierarchy has the same
 * directory, else "<controllers>=<created>:<path>;..." per hierarchy (cgroup2:
 * empty controllers). '%' and ';' in paths are written %25 and %3B. ---- */

static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '%')
			fputs("%25", f);
		else if (*s == ';')
			fputs("%3B", f);
		else
			fputc(*s, f);
	}
}

static int build_saved(cgroup *cg)
{
	bool uniform = true;
	size_t len;
	for (size_t i = 1; i < cg->n; i++)
		uniform &= !strcmp(cg->d[i].rel, cg->d[0].rel) && cg->d[i].created == cg->d[0].created;
	FILE *f = open_memstream(&cg->saved, &len);
	if (!f)
		return err_set(errno, "cgroup");
	for (size_t i = 0; i < cg->n; i++) {
		if (!uniform)
			fprintf(f, "%s%s=", i ? ";" : "", cg->d[i].h->key);
		fprintf(f, "%u:", cg->d[i].created);
		put_escaped(f, cg->d[i].rel);
		if (uniform)
			break;
	}
	if (fclose(f) != 0)
		return err_set(ENOMEM, "cgroup");
	return 0;
}

/* "<digits>:<escaped path>" -> created, unescaped normalized path. */
static int bad_saved(const char *saved)
{
	return err_set(0, "cgroup: invalid saved cgroup path \"%s\"", saved);
}

static int parse_entry(const char *s, const char *saved, unsigned *created, char **rel)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return bad_saved(saved);
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end != ':' || v > 4096 || end[1] != '/')
		return bad_saved(saved);
	_cleanup_free_ char *p = strdup(end + 1);
	if (!p)
		return -ENOMEM;
	char *o = p;
	for (const char *q = end + 1; *q; q++) {
		if (!strncmp(q, "%25", 3) || !strncmp(q, "%3B", 3)) {
			*o++ = q[1] == '2' ? '%' : ';';
			q += 2;
		} else
			*o++ = *q;
	}
	*o = '\0';
	_cleanup_free_ char *clean = path_clean("/", p);
	if (!clean)
		return -ENOMEM;
	if (strcmp(clean, p) || !strcmp(p, "/"))
		return bad_saved(saved);
	*created = (unsigned)v;
	*rel = TAKE_PTR(p);
	return 0;
}

int cgroup_open(const char *saved, cgroup **ret)
{
	int r = layout_get();
	if (r < 0)
		return r;
	if (!saved || !*saved)
		return err_set(0, "cgroup: empty saved cgroup path");
	_cleanup_(cgroup_freep) cgroup *cg = cg_new(layout.n);
	_cleanup_free_ char *copy = strdup(saved);
	if (!cg || !copy)
		return err_set(ENOMEM, "cgroup");
	unsigned created;
	char *rel, *ent, *p = copy;
	if (isdigit((unsigned char)saved[0])) {
		if ((r = parse_entry(saved, saved, &created, &rel)) < 0)
			return r;
		for (size_t i = 0; i < layout.n && r >= 0; i++)
			r = cg_add(cg, &layout.h[i], i ? strdup(rel) : rel, created);
		if (r < 0)
			return r;
	} else {
		while ((ent = strsep(&p, ";"))) {
			char *colon = strchr(ent, ':'), *eq;
			if (colon)
				*colon = '\0';
			if (!colon || !(eq = strrchr(ent, '=')))
				return bad_saved(saved);
			*eq = '\0';
			*colon = ':';
			if ((r = parse_entry(eq + 1, saved, &created, &rel)) < 0)
				return r;
			size_t i = 0;
			while (i < layout.n && (layout.h[i].v2 != !*ent || strcmp(layout.h[i].key, ent)))
				i++;
			bool dup = false;
			for (size_t k = 0; k < cg->n; k++)
				dup |= cg->d[k].h == &layout.h[i];
			if (i == layout.n || dup) { /* no longer mounted: nothing to manage there */
				free(rel);
				continue;
			}
			if ((r = cg_add(cg, &layout.h[i], rel, created)) < 0)
				return r;
		}
		if (!cg->n)
			return err_set(ENOENT, "cgroup: no hierarchy of \"%s\" is mounted", saved);
	}
	if (!(cg->saved = strdup(saved)))
		return err_set(ENOMEM, "cgroup");
	*ret = TAKE_PTR(cg);
	return 0;
}

/* ---- create / destroy ---- */

static void unsplit(char *path, size_t len)
{
	size_t l;
	while ((l = strlen(path)) < len)
		path[l] = '/';
}

static int rmdir_retry(const char *path, int tries)
{
	for (unsigned ms = 1;; ms = ms < 200 ? ms * 2 : ms) {
		if (rmdir(path) == 0)
			return 0;
		if (errno != EBUSY || tries-- <= 0)
			return -errno;
		cg_sleep_ms(ms);
	}
}

/* rmdir up to n parents of path (directories this container made); a busy
 * one holds other cgroups (a shared parent): stop there quietly. */
static void rm_parents(char *path, unsigned n)
{
	size_t len = strlen(path);
	for (unsigned i = 0; i < n; i++) {
		char *slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = '\0';
		if (rmdir(path) < 0 && errno != ENOENT)
			break;
	}
	unsplit(path, len);
}

/* mkdir path and its missing parents (not above the first root_len bytes);
 * *created = how many trailing components this call made. */
static int cg_mkdir_p(char *path, size_t root_len, unsigned *created)
{
	size_t len = strlen(path);
	unsigned missing = 0, made = 0;
	int r;
	while ((r = mkdir(path, 0755)) < 0 && errno == ENOENT) {
		char *slash = strrchr(path, '/');
		if (!slash || (size_t)(slash - path) <= root_len) {
			r = err_set(ENOENT, "cgroup: mkdir '%s'", path);
			unsplit(path, len);
			return r;
		}
		*slash = '\0';
		missing++;
	}
	if (r < 0 && errno != EEXIST) {
		r = err_set(errno, "cgroup: mkdir '%s'", path);
		unsplit(path, len);
		return r;
	}
	made = r == 0;
	if (r < 0 && !missing) { /* reuse an existing (shared) cgroup */
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			return err_set(ENOTDIR, "cgroup: '%s'", path);
	}
	while (missing--) {
		path[strlen(path)] = '/';
		if (mkdir(path, 0755) == 0) {
			made++;
			continue;
		}
		if (errno == EEXIST) { /* raced with another creator: not ours */
			made = 0;
			continue;
		}
		r = err_set(errno, "cgroup: mkdir '%s'", path);
		*strrchr(path, '/') = '\0';
		if (made && rmdir(path) == 0)
			rm_parents(path, made - 1);
		unsplit(path, len);
		return r;
	}
	*created = made;
	return 0;
}

/* A new v1 cpuset cgroup starts with empty cpuset.cpus/mems and takes no
 * process until they are set: copy them down from the nearest ancestor. */
static int cpuset_inherit(char *path, size_t root_len, const char *file, char *buf, size_t size)
{
	int n = cg_read(path, file, buf, size);
	if (n < 0)
		return err_set(-n, "cgroup: read %s/%s", path, file);
	if (n > 0)
		return 0;
	char *slash = strrchr(path, '/');
	if (!slash || (size_t)(slash - path) < root_len)
		return err_set(0, "cgroup: %s/%s is empty", path, file);
	*slash = '\0';
	int r = cpuset_inherit(path, root_len, file, buf, size);
	*slash = '/';
	return r < 0 ? r : cg_write(NULL, path, file, buf);
}

/* Best effort: enable in every ancestor's cgroup.subtree_control the
 * controllers the hierarchy offers, so the new cgroup can use them. A
 * resource that needs a missing one fails later, naming its field. */
static void v2_enable_controllers(char *path, size_t root_len)
{
	char avail[512], on[512], req[600];
	size_t len = strlen(path);
	char *p = path + root_len;
	path[root_len] = '\0';
	if (cg_read(path, "cgroup.controllers", avail, sizeof avail) <= 0)
		goto out;
	for (;;) {
		size_t rl = 0;
		if (cg_read(path, "cgroup.subtree_control", on, sizeof on) < 0)
			break;
		for (char *w = avail, *e; *w; w = *e ? e + 1 : e) {
			e = strchrnul(w, ' ');
			if (!cg_word_in(on, w, (size_t)(e - w)))
				rl += (size_t)snprintf(req + rl, sizeof req - rl, "%s+%.*s", rl ? " " : "", (int)(e - w), w);
		}
		if (rl && rl < sizeof req && cg_write(NULL, path, "cgroup.subtree_control", req) < 0) {
			/* one refused controller fails the whole write: try each alone */
			for (char *w = req, *e; *w; w = *e ? e + 1 : e) {
				e = strchrnul(w, ' ');
				char one[64];
				snprintf(one, sizeof one, "%.*s", (int)(e - w), w);
				(void)cg_write(NULL, path, "cgroup.subtree_control", one);
			}
		}
		if (rl && cg_read(path, "cgroup.subtree_control", on, sizeof on) < 0)
			break;
		memcpy(avail, on, sizeof avail);
		char *next = strchr(p + 1, '/');
		*p = '/';
		if (!next || !*avail)
			break;
		p = next;
		*p = '\0';
	}
out:
	unsplit(path, len);
	err_clear();
}

/* Remove cgroups the container made below its own, deepest first. */
static int rm_children(const char *path)
{
	_cleanup_closedir_ DIR *dir = opendir(path);
	struct dirent *e;
	int r = 0;
	if (!dir)
		return errno == ENOENT ? 0 : err_set(errno, "cgroup: open '%s'", path);
	while ((e = readdir(dir))) {
		_cleanup_free_ char *sub = NULL;
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&sub, "%s/%s", path, e->d_name) < 0) {
			sub = NULL;
			return err_set(ENOMEM, "cgroup");
		}
		int k = rm_children(sub);
		if (k == 0 && (k = rmdir_retry(sub, RMDIR_TRIES)) < 0 && k != -ENOENT)
			k = err_set(-k, "cgroup: rmdir '%s'", sub);
		if (k < 0 && k != -ENOENT && !r)
			r = k;
	}
	return r;
}

int cgroup_destroy(cgroup *cg)
{
	int r = 0;
	for (size_t i = 0; i < cg->n; i++) {
		struct cg_dir *d = &cg->d[i];
		if (!d->created)
			continue;
		int k = rmdir(d->path) < 0 ? -errno : 0;
		if (k == -EBUSY) { /* cgroups the container made inside, or tasks still exiting */
			if ((k = rm_children(d->path)) < 0) {
				r = r ? r : k;
				continue;
			}
			k = rmdir_retry(d->path, RMDIR_TRIES);
		}
		if (k < 0 && k != -ENOENT) {
			k = err_set(-k, "cgroup: rmdir '%s'", d->path);
			r = r ? r : k;
			continue;
		}
		rm_parents(d->path, d->created - 1);
		d->created = 0;
	}
	return r;
}

/* A process put in a frozen cgroup freezes at once: the container's init
 * would never answer and create would hang (a paused container's cgroup left
 * behind, a frozen slice). Every hierarchy with a freezer is asked: the v1
 * freezer and cgroup2 (whose cgroup.freeze also exists on hybrid hosts). */
static int refuse_frozen(cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		struct cg_dir *d = &cg->d[i];
		const struct cgroup_ops *ops = d->h->v2 ? &cgroup_v2_ops :
					       (d->h->ctrls & (1u << C_FREEZER)) ? &cgroup_v1_ops : NULL;
		char why[PATH_MAX + 64];
		int r = ops ? ops->frozen_by(d->path, strlen(d->path) - strlen(d->rel), why, sizeof why) : 0;
		if (r < 0)
			return r;
		if (r > 0)
			return err_set(EBUSY, "cgroup '%s' is frozen (%s): its processes would never run; "
				       "thaw it or choose another cgroup", d->path, why);
	}
	return 0;
}

int cgroup_create(const char *path, const char *id, cgroup **ret)
{
	_cleanup_free_ char *def = NULL, *selfcg = NULL;
	int r;
	if (!path || !*path) {
		if (!id || !*id || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
			return err_set(0, "cgroup: invalid container id \"%s\"", id ? id : "");
		if (asprintf(&def, "/%s", id) < 0)
			return err_set(ENOMEM, "cgroup");
		path = def;
	} else if (path[0] != '/' && strchr(path, ':'))
		return err_set(0, "linux.cgroupsPath: \"%s\": systemd cgroup paths need the systemd driver, "
			       "which isola-oci does not have", path);
	if ((r = layout_get()) < 0)
		return r;
	if (path[0] != '/' && (r = cg_read_whole("/proc/self/cgroup", &selfcg)) < 0)
		return err_set(-r, "cgroup: read /proc/self/cgroup");

	_cleanup_(cgroup_freep) cgroup *cg = cg_new(layout.n);
	if (!cg)
		return err_set(ENOMEM, "cgroup");
	for (size_t i = 0; i < layout.n; i++) {
		const struct cg_hier *h = &layout.h[i];
		_cleanup_free_ char *base = NULL;
		if (selfcg && (r = cg_own_rel(selfcg, h, &base)) < 0)
			goto fail;
		char *rel = path_clean(base ? base : "/", path);
		if (rel && !strcmp(rel, "/")) {
			free(rel);
			r = err_set(0, "linux.cgroupsPath: \"%s\" is the root cgroup of %s", path, h->mnt);
			goto fail;
		}
		if ((r = cg_add(cg, h, rel, 0)) < 0)
			goto fail;
		struct cg_dir *d = &cg->d[cg->n - 1];
		size_t root_len = strlen(d->path) - strlen(d->rel);
		if ((r = cg_mkdir_p(d->path, root_len, &d->created)) < 0)
			goto fail;
		if (h->ctrls & (1u << C_CPUSET)) {
			char buf[4096];
			if ((r = cpuset_inherit(d->path, root_len, "cpuset.cpus", buf, sizeof buf)) < 0 ||
			    (r = cpuset_inherit(d->path, root_len, "cpuset.mems", buf, sizeof buf)) < 0)
				goto fail;
		}
		if (h->v2)
			v2_enable_controllers(d->path, root_len);
	}
	if ((r = refuse_frozen(cg)) < 0 || (r = build_saved(cg)) < 0)
		goto fail;
	*ret = TAKE_PTR(cg);
	return 0;
fail:;
	err_saved saved = err_save();
	(void)cgroup_destroy(cg); /* undo: removes only what this call made */
	return err_restore(&saved, r);
}

/* ---- processes ---- */

int cgroup_enter(cgroup *cg, pid_t pid)
{
	char buf[24];
	snprintf(buf, sizeof buf, "%d", (int)pid);
	for (size_t i = 0; i < cg->n; i++) {
		int r = cg_write(NULL, cg->d[i].path, "cgroup.procs", buf);
		if (r < 0)
			return err_wrap(r, "cgroup: move pid %d", (int)pid);
	}
	return 0;
}

int cgroup_join_open(const cgroup *cg, cgroup_join *ret)
{
	cgroup_join j = { .cg = cg, .v2_fd = -1, .tasks = malloc((cg->n ? cg->n : 1) * sizeof(int)) };
	if (!j.tasks)
		return err_set(ENOMEM, "cgroup");
	for (size_t i = 0; i < cg->n; i++)
		j.tasks[i] = -1;
	for (size_t i = 0; i < cg->n; i++) {
		const struct cg_dir *d = &cg->d[i];
		_cleanup_free_ char *tasks = NULL;
		if (!d->h->v2 && asprintf(&tasks, "%s/tasks", d->path) < 0) {
			tasks = NULL;
			cgroup_join_close(&j);
			return err_set(ENOMEM, "cgroup");
		}
		const char *p = tasks ? tasks : d->path;
		int fd = open(p, tasks ? O_WRONLY | O_CLOEXEC : O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			cgroup_join_close(&j);
			return err_set(e, "cgroup: open '%s'", p);
		}
		if (tasks)
			j.tasks[i] = fd;
		else
			j.v2_fd = fd;
	}
	*ret = j;
	return 0;
}

int cgroup_join_self(const cgroup_join *j)
{
	for (size_t i = 0; i < j->cg->n; i++)
		if (j->tasks[i] >= 0 && write(j->tasks[i], "0", 1) != 1)
			return err_set(errno, "cgroup: join '%s'", j->cg->d[i].path);
	return 0;
}

void cgroup_join_close(cgroup_join *j)
{
	if (j->v2_fd >= 0)
		close(j->v2_fd);
	for (size_t i = 0; j->tasks && i < j->cg->n; i++)
		if (j->tasks[i] >= 0)
			close(j->tasks[i]);
	free(j->tasks);
	*j = (cgroup_join)CGROUP_JOIN_INIT;
}

struct pidv { pid_t *v; size_t n, cap; };

static int collect_pids(const char *dir, struct pidv *pv)
{
	_cleanup_free_ char *procs = NULL, *buf = NULL;
	if (asprintf(&procs, "%s/cgroup.procs", dir) < 0) {
		procs = NULL;
		return -ENOMEM;
	}
	int r = cg_read_whole(procs, &buf);
	if (r < 0)
		return r;
	for (char *p = buf, *end; *p; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pv->n == pv->cap) {
			size_t cap = pv->cap ? pv->cap * 2 : 16;
			pid_t *nv = realloc(pv->v, cap * sizeof *nv);
			if (!nv)
				return -ENOMEM;
			pv->v = nv;
			pv->cap = cap;
		}
		pv->v[pv->n++] = (pid_t)v;
	}
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0) {
			sub = NULL;
			return -ENOMEM;
		}
		if ((r = collect_pids(sub, pv)) < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

/* All pids, recursively, from the cgroup2 directory if there is one, else
 * from the first v1 hierarchy that answers. */
static int pids_get(cgroup *cg, struct pidv *pv)
{
	int r = -ENOENT;
	for (size_t k = 0; k <= cg->n && r == -ENOENT; k++) {
		size_t i = k == 0 ? (size_t)cg->v2 : k - 1;
		if ((k == 0 && cg->v2 < 0) || (k > 0 && (int)i == cg->v2))
			continue;
		pv->n = 0;
		r = collect_pids(cg->d[i].path, pv);
	}
	return r;
}

int cgroup_pids(cgroup *cg, pid_t **ret, size_t *n)
{
	struct pidv pv = { 0 };
	int r = pids_get(cg, &pv);
	if (r < 0) {
		free(pv.v);
		return err_set(-r, "cgroup: read cgroup.procs of %s", cg->saved);
	}
	*ret = pv.v;
	*n = pv.n;
	return 0;
}

bool cgroup_is_empty(cgroup *cg)
{
	int64_t populated;
	if (cg->v2 >= 0) {
		int r = cg_read_key(cg->d[cg->v2].path, "cgroup.events", "populated", &populated);
		if (r == 0)
			return populated == 0;
	}
	struct pidv pv = { 0 };
	int r = pids_get(cg, &pv);
	free(pv.v);
	return r == -ENOENT || (r == 0 && pv.n == 0);
}

/* The freezer: v1 freezer controller if mounted (hybrid too), else cgroup2. */
static const struct cgroup_ops *freezer(cgroup *cg, const char **dir)
{
	if (cg->v1[C_FREEZER] >= 0) {
		*dir = cg->d[cg->v1[C_FREEZER]].path;
		return &cgroup_v1_ops;
	}
	if (cg->v2 >= 0) {
		*dir = cg->d[cg->v2].path;
		return &cgroup_v2_ops;
	}
	return NULL;
}

int cgroup_freeze(cgroup *cg, bool frozen)
{
	const char *dir;
	const struct cgroup_ops *ops = freezer(cg, &dir);
	if (!ops)
		return err_set(EOPNOTSUPP, "cgroup: no freezer controller is mounted");
	return ops->freeze(dir, frozen);
}

bool cgroup_is_frozen(cgroup *cg)
{
	const char *dir;
	const struct cgroup_ops *ops = freezer(cg, &dir);
	return ops && ops->freeze_state(dir) == 1;
}

int cgroup_kill_all(cgroup *cg, int sig)
{
	const char *fdir = cg->v1[C_FREEZER] >= 0 ? cg->d[cg->v1[C_FREEZER]].path : NULL;
	bool thaw = false;
	int r = -ENOENT;
	/* Tasks frozen by the v1 freezer act on SIGKILL only once thawed. */
	if (sig == SIGKILL && fdir)
		thaw = cgroup_v1_ops.freeze_state(fdir) == 1;
	if (sig == SIGKILL && cg->v2 >= 0) /* cgroup.kill: Linux 5.14+, recursive */
		r = cg_write(NULL, cg->d[cg->v2].path, "cgroup.kill", "1");
	if (r == -ENOENT) {
		/* v1: freeze first so that nothing forks behind our back */
		if (sig == SIGKILL && fdir && !thaw)
			thaw = cgroup_v1_ops.freeze(fdir, true) == 0;
		struct pidv pv = { 0 };
		r = pids_get(cg, &pv);
		if (r < 0)
			r = err_set(-r, "cgroup: read cgroup.procs of %s", cg->saved);
		for (size_t i = 0; r >= 0 && i < pv.n; i++)
			if (kill(pv.v[i], sig) < 0 && errno != ESRCH)
				r = err_set(errno, "cgroup: kill pid %d", (int)pv.v[i]);
		free(pv.v);
	} else if (r < 0)
		r = err_wrap(r, "cgroup: kill");
	if (thaw)
		(void)cgroup_v1_ops.freeze(fdir, false);
	return r < 0 ? r : 0;
}

/* ---- linux.resources ---- */

#define FIELD(x) "linux.resources." x
#define FIRST(cond, name) do { if (cond) return FIELD(name); } while (0)

static const char *f_devices(const spec_resources *r)
{
	FIRST(r->n_devices, "devices");
	return NULL;
}
static const char *f_memory(const spec_resources *r)
{
	FIRST(r->memory.limit.has, "memory.limit");
	FIRST(r->memory.reservation.has, "memory.reservation");
	FIRST(r->memory.swap.has, "memory.swap");
	FIRST(r->memory.kernel.has, "memory.kernel");
	FIRST(r->memory.kernel_tcp.has, "memory.kernelTCP");
	FIRST(r->memory.swappiness.has, "memory.swappiness");
	FIRST(r->memory.disable_oom_killer.has, "memory.disableOOMKiller");
	FIRST(r->memory.use_hierarchy.has, "memory.useHierarchy");
	return NULL;
}
static const char *f_cpu(const spec_resources *r)
{
	FIRST(r->cpu.shares.has, "cpu.shares");
	FIRST(r->cpu.quota.has, "cpu.quota");
	FIRST(r->cpu.period.has, "cpu.period");
	FIRST(r->cpu.burst.has, "cpu.burst");
	FIRST(r->cpu.realtime_runtime.has, "cpu.realtimeRuntime");
	FIRST(r->cpu.realtime_period.has, "cpu.realtimePeriod");
	FIRST(r->cpu.idle.has, "cpu.idle");
	return NULL;
}
static const char *f_cpuset(const spec_resources *r)
{
	FIRST(r->cpu.cpus && *r->cpu.cpus, "cpu.cpus");
	FIRST(r->cpu.mems && *r->cpu.mems, "cpu.mems");
	return NULL;
}
static const char *f_pids(const spec_resources *r)
{
	FIRST(r->pids.limit.has, "pids.limit");
	return NULL;
}
static const char *f_blkio(const spec_resources *r)
{
	FIRST(r->blkio.weight.has, "blockIO.weight");
	FIRST(r->blkio.leaf_weight.has, "blockIO.leafWeight");
	FIRST(r->blkio.n_weight_device, "blockIO.weightDevice");
	FIRST(r->blkio.n_throttle[THROTTLE_READ_BPS], "blockIO.throttleReadBpsDevice");
	FIRST(r->blkio.n_throttle[THROTTLE_WRITE_BPS], "blockIO.throttleWriteBpsDevice");
	FIRST(r->blkio.n_throttle[THROTTLE_READ_IOPS], "blockIO.throttleReadIOPSDevice");
	FIRST(r->blkio.n_throttle[THROTTLE_WRITE_IOPS], "blockIO.throttleWriteIOPSDevice");
	return NULL;
}
static const char *f_hugetlb(const spec_resources *r)
{
	FIRST(r->n_hugepages, "hugepageLimits");
	return NULL;
}
static const char *f_net_cls(const spec_resources *r)
{
	FIRST(r->network.class_id.has, "network.classID");
	return NULL;
}
static const char *f_net_prio(const spec_resources *r)
{
	FIRST(r->network.n_priorities, "network.priorities");
	return NULL;
}
static const char *f_rdma(const spec_resources *r)
{
	FIRST(r->n_rdma, "rdma");
	return NULL;
}

static const struct res_group {
	enum cg_res res;
	int v1;          /* enum cg_ctrl */
	const char *v2;  /* cgroup2 controller; NULL: core, always there */
	const char *(*field)(const spec_resources *r);
} res_groups[] = {
	{ CG_RES_DEVICES, C_DEVICES, NULL, f_devices },
	{ CG_RES_MEMORY, C_MEMORY, "memory", f_memory },
	{ CG_RES_CPU, C_CPU, "cpu", f_cpu },
	{ CG_RES_CPUSET, C_CPUSET, "cpuset", f_cpuset },
	{ CG_RES_PIDS, C_PIDS, "pids", f_pids },
	{ CG_RES_BLKIO, C_BLKIO, "io", f_blkio },
	{ CG_RES_HUGETLB, C_HUGETLB, "hugetlb", f_hugetlb },
	{ CG_RES_NET_CLS, C_NET_CLS, NULL, f_net_cls },
	{ CG_RES_NET_PRIO, C_NET_PRIO, NULL, f_net_prio },
	{ CG_RES_RDMA, C_RDMA, "rdma", f_rdma },
};

static bool v2_has(cgroup *cg, const char *ctrl)
{
	if (cg->v2 < 0)
		return false;
	if (!cg->v2ctl_read) {
		if (cg_read(cg->d[cg->v2].path, "cgroup.controllers", cg->v2ctl, sizeof cg->v2ctl) < 0)
			cg->v2ctl[0] = '\0';
		cg->v2ctl_read = true;
	}
	return cg_word_in(cg->v2ctl, ctrl, strlen(ctrl));
}

const char *cg_ctrl_dir(cgroup *cg, const char *v1, const char *v2, bool *is_v2)
{
	for (int c = 0; v1 && c < C__MAX; c++)
		if (!strcmp(ctrl_names[c], v1) && cg->v1[c] >= 0) {
			*is_v2 = false;
			return cg->d[cg->v1[c]].path;
		}
	if (cg->v2 >= 0 && (!v2 || v2_has(cg, v2))) {
		*is_v2 = true;
		return cg->d[cg->v2].path;
	}
	return NULL;
}

static int apply_group(cgroup *cg, const struct res_group *g, const spec_resources *r)
{
	const char *field = g->field(r), *name = ctrl_names[g->v1];
	if (!field)
		return 0;
	if (cg->v1[g->v1] >= 0)
		return cgroup_v1_ops.apply[g->res](cg->d[cg->v1[g->v1]].path, r);
	if (cg->v2 >= 0 && cgroup_v2_ops.apply[g->res]) {
		if (!g->v2 || v2_has(cg, g->v2))
			return cgroup_v2_ops.apply[g->res](cg->d[cg->v2].path, r);
		if (layout.mode == CGROUP_UNIFIED)
			name = g->v2;
	}
	err_set(0, "%s: cgroup controller '%s' is not %s", field, name,
		!cgroup_v2_ops.apply[g->res] || cg->v2 < 0 ? "mounted on this host" :
		layout.mode == CGROUP_UNIFIED ? "available in this cgroup v2 hierarchy" :
		"mounted as cgroup v1 nor available in cgroup v2");
	return -EOPNOTSUPP;
}

static int apply_unified(cgroup *cg, const spec_resources *r)
{
	for (size_t i = 0; i < r->n_unified; i++) {
		const char *key = r->unified[i].key, *dot = strchr(key, '.');
		char field[300], ctrl[64];
		snprintf(field, sizeof field, FIELD("unified: %s"), key);
		if (!dot || dot == key || key[0] == '.' || strchr(key, '/') || (size_t)(dot - key) >= sizeof ctrl)
			return err_set(0, "%s: not a cgroup v2 interface file name", field);
		snprintf(ctrl, sizeof ctrl, "%.*s", (int)(dot - key), key);
		if (cg->v2 < 0 || (strcmp(ctrl, "cgroup") && !v2_has(cg, ctrl))) {
			if (layout.mode != CGROUP_UNIFIED)
				err_set(0, "%s: no cgroup v2 controller on this host", field);
			else
				err_set(0, "%s: cgroup v2 controller '%s' is not available", field, ctrl);
			return -EOPNOTSUPP;
		}
		int k = cg_write(field, cg->d[cg->v2].path, key, r->unified[i].value);
		if (k < 0)
			return k;
	}
	return 0;
}

int cgroup_apply(cgroup *cg, const spec_resources *r)
{
	if (!r || !r->present)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(res_groups); i++) {
		int k = apply_group(cg, &res_groups[i], r);
		if (k < 0)
			return k;
	}
	return apply_unified(cg, r);
}

int cg_apply_pids(const char *dir, const spec_resources *r)
{
	if (r->pids.limit.v > 0)
		return cg_writef(FIELD("pids.limit"), dir, "pids.max", "%lld", (long long)r->pids.limit.v);
	return cg_write(FIELD("pids.limit"), dir, "pids.max", "max");
}

int cg_apply_rdma(const char *dir, const spec_resources *r)
{
	for (size_t i = 0; i < r->n_rdma; i++) {
		const spec_rdma *d = &r->rdma[i];
		char field[256], val[256];
		snprintf(field, sizeof field, FIELD("rdma.%s"), d->device);
		if (strlen(d->device) > 64 || strpbrk(d->device, " \n"))
			return err_set(0, "%s: invalid device name", field);
		int n = snprintf(val, sizeof val, "%s", d->device);
		if (d->hca_handles.has)
			n += snprintf(val + n, sizeof val - (size_t)n, " hca_handle=%llu", (unsigned long long)d->hca_handles.v);
		if (d->hca_objects.has)
			snprintf(val + n, sizeof val - (size_t)n, " hca_object=%llu", (unsigned long long)d->hca_objects.v);
		int k = d->hca_handles.has || d->hca_objects.has ? cg_write(field, dir, "rdma.max", val) : 0;
		if (k < 0)
			return k;
	}
	return 0;
}
