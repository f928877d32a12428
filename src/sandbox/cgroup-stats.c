/* cgroup statistics and OOM notifications (`events`): dispatch of the
 * counters to the v1/v2 backends, the file parsers they share, and the
 * OOM watch on memory.oom_control (v1) or memory.events (v2). */
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

/* ---- shared parsers ---- */

int cg_stat_err(int r, const char *dir, const char *file)
{
	if (r == -EINVAL)
		return err_set(EINVAL, "cgroup: %s/%s: unexpected content", dir, file);
	return err_set(-r, "cgroup: read %s/%s", dir, file);
}

static int read_at(const char *dir, const char *file, char **ret)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0) {
		path = NULL;
		return err_set(ENOMEM, "cgroup: statistics");
	}
	int r = cg_read_whole(path, ret);
	return r < 0 ? cg_stat_err(r, dir, file) : 0;
}

static int parse_u64(const char *s, char **end, uint64_t *ret)
{
	if (!strncmp(s, "max", 3)) {
		*end = (char *)s + 3;
		*ret = UINT64_MAX;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*ret = strtoull(s, end, 10);
	return errno ? -errno : 0;
}

int cg_stat_u64_list(const char *dir, const char *file, uint64_t **ret, size_t *n)
{
	_cleanup_free_ char *buf = NULL;
	int r = read_at(dir, file, &buf);
	if (r < 0)
		return r;
	size_t cap = 1;
	for (const char *p = buf; *p; p++)
		cap += *p == ' ' || *p == '\n';
	_cleanup_free_ uint64_t *v = calloc(cap, sizeof *v);
	if (!v)
		return err_set(ENOMEM, "cgroup: statistics");
	size_t k = 0;
	for (char *p = buf + strspn(buf, " \n"); *p && k < cap; p += strspn(p, " \n")) {
		if (parse_u64(p, &p, &v[k++]) < 0)
			return cg_stat_err(-EINVAL, dir, file);
	}
	*ret = TAKE_PTR(v);
	*n = k;
	return 0;
}

void cg_stat_kv_free(struct cgroup_stat_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++)
		free(kv[i].key);
	free(kv);
}

int cg_stat_kv(const char *dir, const char *file, struct cgroup_stat_kv **ret, size_t *n)
{
	_cleanup_free_ char *buf = NULL;
	int r = read_at(dir, file, &buf);
	if (r < 0)
		return r;
	size_t cap = 1, k = 0;
	for (const char *p = buf; *p; p++)
		cap += *p == '\n';
	struct cgroup_stat_kv *kv = calloc(cap, sizeof *kv);
	if (!kv)
		return err_set(ENOMEM, "cgroup: statistics");
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l && k < cap; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' '), *end;
		uint64_t v;
		if (!sp || sp == l || parse_u64(sp + 1, &end, &v) < 0)
			continue; /* not a counter line (e.g. a nested key) */
		if (!(kv[k].key = strndup(l, (size_t)(sp - l)))) {
			cg_stat_kv_free(kv, k);
			return err_set(ENOMEM, "cgroup: statistics");
		}
		kv[k++].value = v;
	}
	*ret = kv;
	*n = k;
	return 0;
}

uint64_t cg_stat_kv_get(const struct cgroup_stat_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return kv[i].value;
	return 0;
}

int cg_stat_id_list(const char *dir, const char *file, uint32_t **ret, size_t *n)
{
	_cleanup_free_ char *buf = NULL;
	int r = read_at(dir, file, &buf);
	if (r < 0)
		return r;
	_cleanup_free_ uint32_t *v = NULL;
	size_t k = 0, cap = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",\n ", &save); tok; tok = strtok_r(NULL, ",\n ", &save)) {
		char *end;
		unsigned long lo = strtoul(tok, &end, 10), hi = lo;
		if (end != tok && *end == '-')
			hi = strtoul(end + 1, &end, 10);
		if (end == tok || *end || hi < lo || hi - lo > 65536)
			return cg_stat_err(-EINVAL, dir, file);
		for (unsigned long i = lo; i <= hi; i++) {
			if (k == cap) {
				cap = cap ? cap * 2 : 16;
				uint32_t *nv = realloc(v, cap * sizeof *nv);
				if (!nv)
					return err_set(ENOMEM, "cgroup: statistics");
				v = nv;
			}
			v[k++] = (uint32_t)i;
		}
	}
	*ret = TAKE_PTR(v);
	*n = k;
	return 0;
}

int cg_stat_blkio_add(struct cgroup_stats *st, int kind, uint64_t major, uint64_t minor, const char *op,
		      uint64_t value)
{
	size_t n = st->blkio.n[kind];
	struct cgroup_blkio_entry *v = realloc(st->blkio.v[kind], (n + 1) * sizeof *v);
	if (!v)
		return err_set(ENOMEM, "cgroup: statistics");
	st->blkio.v[kind] = v;
	v[n] = (struct cgroup_blkio_entry){ .major = major, .minor = minor, .value = value };
	snprintf(v[n].op, sizeof v[n].op, "%s", op);
	st->blkio.n[kind] = n + 1;
	return 0;
}

/* /sys/kernel/mm/hugepages/hugepages-2048kB -> "2MB" (the kernel's names
 * for the hugetlb.<size>.* files). */
int cg_hugepage_sizes(char (**ret)[16], size_t *n)
{
	_cleanup_closedir_ DIR *d = opendir("/sys/kernel/mm/hugepages");
	char(*v)[16] = NULL;
	size_t k = 0;
	struct dirent *e;
	*ret = NULL;
	*n = 0;
	if (!d)
		return 0; /* no huge pages on this machine */
	while ((e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, "hugepages-", 10))
			continue;
		unsigned long kb = strtoul(e->d_name + 10, &end, 10);
		if (strcmp(end, "kB") || !kb || kb > UINT32_MAX)
			continue;
		char(*nv)[16] = realloc(v, (k + 1) * sizeof *v);
		if (!nv) {
			free(v);
			return err_set(ENOMEM, "cgroup: statistics");
		}
		v = nv;
		unsigned u = (unsigned)kb;
		if (u % (1024 * 1024) == 0)
			snprintf(v[k], sizeof v[k], "%uGB", u / (1024 * 1024));
		else if (u % 1024 == 0)
			snprintf(v[k], sizeof v[k], "%uMB", u / 1024);
		else
			snprintf(v[k], sizeof v[k], "%uKB", u);
		k++;
	}
	*ret = v;
	*n = k;
	return 0;
}

/* ---- statistics ---- */

static const struct {
	enum cg_stat stat;
	const char *v1, *v2; /* controller names; v2 NULL: core files */
} stat_groups[] = {
	{ CG_STAT_CPUACCT, "cpuacct", NULL },
	{ CG_STAT_CPU, "cpu", "cpu" },
	{ CG_STAT_CPUSET, "cpuset", "cpuset" },
	{ CG_STAT_MEMORY, "memory", "memory" },
	{ CG_STAT_PIDS, "pids", "pids" },
	{ CG_STAT_BLKIO, "blkio", "io" },
	{ CG_STAT_HUGETLB, "hugetlb", "hugetlb" },
};

void cgroup_stats_clear(struct cgroup_stats *st)
{
	if (!st)
		return;
	free(st->cpu.percpu);
	free(st->cpu.percpu_kernel);
	free(st->cpu.percpu_user);
	free(st->cpuset.cpus);
	free(st->cpuset.mems);
	cg_stat_kv_free(st->memory.raw, st->memory.n_raw);
	for (int i = 0; i < CG_BLKIO__MAX; i++)
		free(st->blkio.v[i]);
	free(st->hugetlb);
	memset(st, 0, sizeof *st);
}

int cgroup_stats(cgroup *cg, struct cgroup_stats *ret)
{
	struct cgroup_stats st = { 0 };
	for (size_t i = 0; i < ARRAY_SIZE(stat_groups); i++) {
		bool v2 = false;
		const char *dir = cg_ctrl_dir(cg, stat_groups[i].v1, stat_groups[i].v2, &v2);
		cg_stat_fn *fn = dir ? (v2 ? cgroup_v2_ops : cgroup_v1_ops).stats[stat_groups[i].stat] : NULL;
		int r = fn ? fn(dir, &st) : 0;
		if (r < 0) {
			cgroup_stats_clear(&st);
			return r;
		}
	}
	*ret = st;
	return 0;
}

/* ---- OOM notifications ---- */

struct cgroup_oom_watch {
	bool v2;
	int fd;      /* v1: eventfd; v2: inotify */
	int ctl_fd;  /* v1: memory.oom_control, open while registered */
	char *dir;
	int64_t oom_kills; /* v2: the last oom_kill count seen */
};

void cgroup_oom_watch_free(cgroup_oom_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	free(w->dir);
	free(w);
}

static void oom_watch_freep(cgroup_oom_watch **w) { cgroup_oom_watch_free(*w); }

int cgroup_oom_watch_open(cgroup *cg, cgroup_oom_watch **ret)
{
	bool v2 = false;
	const char *dir = cg_ctrl_dir(cg, "memory", "memory", &v2);
	if (!dir)
		return err_set(EOPNOTSUPP, "cgroup: no memory controller for OOM notifications");
	_cleanup_(oom_watch_freep) cgroup_oom_watch *w = calloc(1, sizeof *w);
	if (!w || !(w->dir = strdup(dir))) {
		free(w);
		w = NULL;
		return err_set(ENOMEM, "cgroup: OOM notifications");
	}
	w->v2 = v2;
	w->fd = w->ctl_fd = -1;
	if (!v2) {
		char path[4096];
		snprintf(path, sizeof path, "%s/memory.oom_control", dir);
		if ((w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return err_set(errno, "cgroup: eventfd for %s", path);
		if ((w->ctl_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return err_set(errno, "cgroup: open %s", path);
		int r = cg_writef(NULL, dir, "cgroup.event_control", "%d %d", w->fd, w->ctl_fd);
		if (r < 0)
			return err_wrap(r, "cgroup: register for OOM notifications");
	} else {
		char path[4096];
		snprintf(path, sizeof path, "%s/memory.events", dir);
		if ((w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
			return err_set(errno, "cgroup: inotify for %s", path);
		if (inotify_add_watch(w->fd, path, IN_MODIFY) < 0)
			return err_set(errno, "cgroup: watch %s", path);
		int r = cg_read_key(dir, "memory.events", "oom_kill", &w->oom_kills);
		if (r < 0)
			return err_set(-r, "cgroup: read %s", path);
	}
	*ret = TAKE_PTR(w);
	return 0;
}

int cgroup_oom_watch_fd(const cgroup_oom_watch *w) { return w->fd; }

int cgroup_oom_watch_read(cgroup_oom_watch *w, bool *ret_oom)
{
	*ret_oom = false;
	if (!w->v2) {
		uint64_t count;
		ssize_t n = read(w->fd, &count, sizeof count);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return err_set(errno, "cgroup: read OOM notification of %s", w->dir);
		/* The eventfd also fires when the cgroup goes away. */
		char path[4096];
		snprintf(path, sizeof path, "%s/cgroup.event_control", w->dir);
		if (access(path, F_OK) < 0)
			return errno == ENOENT ? -ENOENT : err_set(errno, "cgroup: %s", path);
		*ret_oom = n == (ssize_t)sizeof count && count > 0;
		return 0;
	}
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool gone = false;
	ssize_t n;
	while ((n = read(w->fd, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len)
			gone |= (((struct inotify_event *)p)->mask & (IN_IGNORED | IN_DELETE_SELF)) != 0;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return err_set(errno, "cgroup: read OOM notification of %s", w->dir);
	int64_t kills = 0;
	int r = cg_read_key(w->dir, "memory.events", "oom_kill", &kills);
	if (r == -ENOENT || (r == 0 && gone && access(w->dir, F_OK) < 0))
		return -ENOENT;
	if (r < 0)
		return err_set(-r, "cgroup: read %s/memory.events", w->dir);
	*ret_oom = kills > w->oom_kills;
	w->oom_kills = kills;
	return 0;
}
