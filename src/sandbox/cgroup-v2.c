/* cgroup v2 backend: linux.resources written to the unified hierarchy's
 * interface files, cgroup.freeze, and the statistics files. */
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIELD(x) "linux.resources." x

/* -1 (and any negative value) is "max" in cgroup v2 files. */
static int w_max(const char *field, const char *dir, const char *file, int64_t v)
{
	if (v < 0)
		return cg_write(field, dir, file, "max");
	return cg_writef(field, dir, file, "%lld", (long long)v);
}

static int unsupported(const char *field, const char *what)
{
	err_set(0, "%s: %s", field, what);
	return -EOPNOTSUPP;
}

static int v2_memory(const char *dir, const spec_resources *r)
{
	const __typeof__(r->memory) *m = &r->memory;
	int k;
	if (m->kernel.has)
		return unsupported(FIELD("memory.kernel"), "kernel memory limits do not exist in cgroup v2");
	if (m->kernel_tcp.has)
		return unsupported(FIELD("memory.kernelTCP"), "kernel memory limits do not exist in cgroup v2");
	if (m->swappiness.has && m->swappiness.v != UINT64_MAX)
		return unsupported(FIELD("memory.swappiness"), "not supported by cgroup v2");
	if (m->disable_oom_killer.has && m->disable_oom_killer.v)
		return unsupported(FIELD("memory.disableOOMKiller"), "not supported by cgroup v2");
	if (m->use_hierarchy.has && !m->use_hierarchy.v)
		return unsupported(FIELD("memory.useHierarchy"), "cgroup v2 is always hierarchical");
	if (m->limit.has && m->check_before_update.has && m->check_before_update.v && m->limit.v >= 0) {
		uint64_t cur;
		if ((k = cg_read_u64(dir, "memory.current", &cur)) < 0)
			return err_set(-k, FIELD("memory.checkBeforeUpdate: read memory.current"));
		if ((uint64_t)m->limit.v < cur)
			return err_set(EBUSY, FIELD("memory.limit: %lld is below the current usage %llu"),
				       (long long)m->limit.v, (unsigned long long)cur);
	}
	if (m->limit.has && (k = w_max(FIELD("memory.limit"), dir, "memory.max", m->limit.v)) < 0)
		return k;
	/* The spec's swap is memory+swap (the v1 memsw); v2 limits swap alone. */
	if (m->swap.has && m->swap.v != 0) {
		int64_t sw = -1;
		if (m->swap.v > 0) {
			if (!m->limit.has || m->limit.v <= 0)
				return err_set(0, FIELD("memory.swap: needs a memory.limit on cgroup v2 "
							"(swap is memory+swap)"));
			if (m->swap.v < m->limit.v)
				return err_set(0, FIELD("memory.swap: %lld is below memory.limit %lld"),
					       (long long)m->swap.v, (long long)m->limit.v);
			sw = m->swap.v - m->limit.v;
		}
		k = w_max(FIELD("memory.swap"), dir, "memory.swap.max", sw);
		if (k == -ENOENT)
			return err_set(ENOENT, FIELD("memory.swap: memory.swap.max does not exist "
						     "(swap accounting disabled?)"));
		if (k < 0)
			return k;
	} else if (m->limit.has && m->limit.v < 0) {
		/* unlimited memory means unlimited swap too, as on v1 */
		(void)w_max(FIELD("memory.swap"), dir, "memory.swap.max", -1);
	}
	if (m->reservation.has && (k = w_max(FIELD("memory.reservation"), dir, "memory.low", m->reservation.v)) < 0)
		return k;
	return 0;
}

static int v2_cpu(const char *dir, const spec_resources *r)
{
	const __typeof__(r->cpu) *c = &r->cpu;
	int k;
	if (c->realtime_runtime.has)
		return unsupported(FIELD("cpu.realtimeRuntime"), "realtime group scheduling is not in cgroup v2");
	if (c->realtime_period.has)
		return unsupported(FIELD("cpu.realtimePeriod"), "realtime group scheduling is not in cgroup v2");
	if (c->shares.has && c->shares.v) {
		/* shares 2..262144 onto weight 1..10000 */
		uint64_t s = c->shares.v < 2 ? 2 : c->shares.v > 262144 ? 262144 : c->shares.v;
		uint64_t weight = 1 + ((s - 2) * 9999) / 262142;
		if ((k = cg_writef(FIELD("cpu.shares"), dir, "cpu.weight", "%llu", (unsigned long long)weight)) < 0)
			return k;
	}
	if (c->quota.has || c->period.has) {
		const char *field = c->quota.has ? FIELD("cpu.quota") : FIELD("cpu.period");
		char quota[32] = "max", cur[64];
		if (c->quota.has && c->quota.v > 0)
			snprintf(quota, sizeof quota, "%lld", (long long)c->quota.v);
		else if (!c->quota.has && cg_read(dir, "cpu.max", cur, sizeof cur) > 0) /* keep the quota */
			snprintf(quota, sizeof quota, "%.*s", (int)strcspn(cur, " "), cur);
		if (c->period.has)
			k = cg_writef(field, dir, "cpu.max", "%s %llu", quota, (unsigned long long)c->period.v);
		else
			k = cg_write(field, dir, "cpu.max", quota);
		if (k < 0)
			return k;
	}
	if (c->burst.has && (k = cg_writef(FIELD("cpu.burst"), dir, "cpu.max.burst", "%llu",
					   (unsigned long long)c->burst.v)) < 0)
		return k;
	if (c->idle.has && (k = cg_writef(FIELD("cpu.idle"), dir, "cpu.idle", "%lld", (long long)c->idle.v)) < 0)
		return k;
	return 0;
}

static int v2_cpuset(const char *dir, const spec_resources *r)
{
	int k;
	if (r->cpu.cpus && *r->cpu.cpus && (k = cg_write(FIELD("cpu.cpus"), dir, "cpuset.cpus", r->cpu.cpus)) < 0)
		return k;
	if (r->cpu.mems && *r->cpu.mems && (k = cg_write(FIELD("cpu.mems"), dir, "cpuset.mems", r->cpu.mems)) < 0)
		return k;
	return 0;
}

/* BFQ's io.bfq.weight takes blkio weights as they are; io.weight (iocost)
 * has the range 1..10000. `dev` is "MAJ:MIN " or "default ". */
static int io_weight(const char *field, const char *dir, const char *dev, uint64_t w)
{
	int k = cg_writef(field, dir, "io.bfq.weight", "%s%llu", dev, (unsigned long long)w);
	if (k != -ENOENT)
		return k;
	uint64_t v = w < 10 ? 1 : w > 1000 ? 10000 : 1 + (w - 10) * 9999 / 990;
	k = cg_writef(field, dir, "io.weight", "%s%llu", dev, (unsigned long long)v);
	if (k == -ENOENT)
		return err_set(ENOENT, "%s: neither io.bfq.weight nor io.weight exists (no BFQ scheduler or "
			       "io cost controller?)", field);
	return k;
}

static const char *const io_max_keys[4] = { "rbps", "wbps", "riops", "wiops" };

static int v2_io(const char *dir, const spec_resources *r)
{
	char field[96], dev[48];
	int k;
	if (r->blkio.leaf_weight.has)
		return unsupported(FIELD("blockIO.leafWeight"), "not supported by cgroup v2");
	if (r->blkio.weight.has && (k = io_weight(FIELD("blockIO.weight"), dir, "default ", r->blkio.weight.v)) < 0)
		return k;
	for (size_t i = 0; i < r->blkio.n_weight_device; i++) {
		const spec_weight_dev *w = &r->blkio.weight_device[i];
		snprintf(field, sizeof field, FIELD("blockIO.weightDevice[%zu]"), i);
		if (w->leaf_weight.has)
			return unsupported(field, "leafWeight is not supported by cgroup v2");
		snprintf(dev, sizeof dev, "%lld:%lld ", (long long)w->major, (long long)w->minor);
		if (w->weight.has && (k = io_weight(field, dir, dev, w->weight.v)) < 0)
			return k;
	}
	/* One io.max line per device with every limit the spec gives for it;
	 * rate 0 means "no limit" as on v1. */
	for (int t = 0; t < 4; t++)
		for (size_t i = 0; i < r->blkio.n_throttle[t]; i++) {
			const spec_throttle_dev *d = &r->blkio.throttle[t][i];
			char line[256];
			bool seen = false;
			for (int pt = 0; pt <= t && !seen; pt++)
				for (size_t pi = 0; pi < (pt < t ? r->blkio.n_throttle[pt] : i) && !seen; pi++)
					seen = r->blkio.throttle[pt][pi].major == d->major &&
					       r->blkio.throttle[pt][pi].minor == d->minor;
			if (seen)
				continue;
			int n = snprintf(line, sizeof line, "%lld:%lld", (long long)d->major, (long long)d->minor);
			for (int ot = t; ot < 4; ot++)
				for (size_t oi = 0; oi < r->blkio.n_throttle[ot]; oi++) {
					const spec_throttle_dev *o = &r->blkio.throttle[ot][oi];
					if (o->major != d->major || o->minor != d->minor || n >= (int)sizeof line)
						continue;
					if (o->rate)
						n += snprintf(line + n, sizeof line - (size_t)n, " %s=%llu", io_max_keys[ot],
							      (unsigned long long)o->rate);
					else
						n += snprintf(line + n, sizeof line - (size_t)n, " %s=max", io_max_keys[ot]);
				}
			snprintf(field, sizeof field, FIELD("blockIO.throttle (device %lld:%lld)"), (long long)d->major,
				 (long long)d->minor);
			if ((k = cg_write(field, dir, "io.max", line)) < 0)
				return k;
		}
	return 0;
}

static int v2_hugetlb(const char *dir, const spec_resources *r)
{
	char field[64], file[128];
	for (size_t i = 0; i < r->n_hugepages; i++) {
		const spec_hugepage *h = &r->hugepages[i];
		snprintf(field, sizeof field, FIELD("hugepageLimits[%zu]"), i);
		if (strchr(h->page_size, '/'))
			return err_set(0, "%s: invalid pageSize \"%s\"", field, h->page_size);
		snprintf(file, sizeof file, "hugetlb.%s.max", h->page_size);
		int k = cg_writef(field, dir, file, "%llu", (unsigned long long)h->limit);
		if (k == -ENOENT)
			return err_set(ENOENT, "%s: %s does not exist (page size \"%s\" not supported?)", field, file,
				       h->page_size);
		if (k < 0)
			return k;
		snprintf(file, sizeof file, "hugetlb.%s.rsvd.max", h->page_size);
		k = cg_writef(field, dir, file, "%llu", (unsigned long long)h->limit);
		if (k < 0 && k != -ENOENT) /* reservations: Linux 5.7+ */
			return k;
	}
	return 0;
}

/* No devices controller in v2: an eBPF program on the directory (cgroup-bpf.c). */
static int v2_devices(const char *dir, const spec_resources *r)
{
	if (!r->n_devices)
		return 0;
	return cg_bpf_devices_apply(dir, r->devices, r->n_devices);
}

static int v2_freeze_state(const char *dir)
{
	char buf[8];
	int64_t frozen;
	int n = cg_read(dir, "cgroup.freeze", buf, sizeof buf);
	if (n < 0)
		return err_set(-n, "cgroup: read %s/cgroup.freeze", dir);
	if (strcmp(buf, "1"))
		return 0;
	n = cg_read_key(dir, "cgroup.events", "frozen", &frozen);
	if (n < 0)
		return err_set(-n, "cgroup: read %s/cgroup.events", dir);
	return frozen == 1;
}

/* cgroup.freeze is each directory's own request: look at every ancestor. */
static int v2_frozen_by(char *dir, size_t root_len, char *why, size_t size)
{
	char buf[8];
	size_t len = strlen(dir);
	int r = 0;
	for (char *slash; strlen(dir) > root_len; *slash = '\0') {
		int n = cg_read(dir, "cgroup.freeze", buf, sizeof buf);
		if (n < 0 && n != -ENOENT) { /* ENOENT: no freezer (Linux < 5.2) */
			r = err_set(-n, "cgroup: read %s/cgroup.freeze", dir);
			break;
		}
		if (n > 0 && !strcmp(buf, "1")) {
			snprintf(why, size, "cgroup.freeze 1, set on %s", dir);
			r = 1;
			break;
		}
		if (!(slash = strrchr(dir, '/')))
			break;
	}
	while (strlen(dir) < len)
		dir[strlen(dir)] = '/';
	return r;
}

static int v2_freeze(const char *dir, bool frozen)
{
	char path[4096], buf[256];
	int k = cg_write(NULL, dir, "cgroup.freeze", frozen ? "1" : "0");
	if (k < 0)
		return k;
	/* The kernel signals a change of cgroup.events with POLLPRI. */
	snprintf(path, sizeof path, "%s/cgroup.events", dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "cgroup: open %s", path);
	struct timespec now, end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 3;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		if (n < 0)
			return err_set(errno, "cgroup: read %s", path);
		buf[n] = '\0';
		const char *f = strstr(buf, "frozen ");
		if (!f)
			return err_set(ENOTSUP, "cgroup: %s has no \"frozen\" key", path);
		if ((f[7] == '1') == frozen)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (left <= 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLPRI };
		(void)poll(&p, 1, left < 50 ? (int)left : 50);
	}
	if (frozen)
		(void)cg_write(NULL, dir, "cgroup.freeze", "0"); /* do not leave it half frozen */
	return err_set(EBUSY, "cgroup: %s: timed out waiting for frozen %d", path, frozen);
}

/* ---- statistics ---- */

/* cpu.stat: usage_usec, user_usec and system_usec are core (always there);
 * the throttling keys come with the cpu controller. */
static int cpu_stat(const char *dir, struct cgroup_stats *st, bool throttling)
{
	_cleanup_free_ struct cgroup_stat_kv *kv = NULL;
	size_t n = 0;
	int k = cg_stat_kv(dir, "cpu.stat", &kv, &n);
	if (k < 0)
		return k;
	if (throttling) {
		st->cpu.periods = cg_stat_kv_get(kv, n, "nr_periods");
		st->cpu.throttled_periods = cg_stat_kv_get(kv, n, "nr_throttled");
		st->cpu.throttled_time = cg_stat_kv_get(kv, n, "throttled_usec") * 1000;
	} else {
		st->cpu.total = cg_stat_kv_get(kv, n, "usage_usec") * 1000;
		st->cpu.user = cg_stat_kv_get(kv, n, "user_usec") * 1000;
		st->cpu.kernel = cg_stat_kv_get(kv, n, "system_usec") * 1000;
	}
	cg_stat_kv_free(TAKE_PTR(kv), n);
	return 0;
}

static int v2_stat_cpuacct(const char *dir, struct cgroup_stats *st) { return cpu_stat(dir, st, false); }
static int v2_stat_cpu(const char *dir, struct cgroup_stats *st) { return cpu_stat(dir, st, true); }

static int v2_stat_cpuset(const char *dir, struct cgroup_stats *st)
{
	int k;
	if ((k = cg_stat_id_list(dir, "cpuset.cpus.effective", &st->cpuset.cpus, &st->cpuset.n_cpus)) < 0 ||
	    (k = cg_stat_id_list(dir, "cpuset.mems.effective", &st->cpuset.mems, &st->cpuset.n_mems)) < 0)
		return k;
	st->cpuset.present = true;
	return 0;
}

/* An optional counter: absent reads as 0. */
static int r_opt(const char *dir, const char *file, uint64_t *ret)
{
	int k = cg_read_u64(dir, file, ret);
	if (k == -ENOENT) {
		*ret = 0;
		return 0;
	}
	return k < 0 ? cg_stat_err(k, dir, file) : 0;
}

/* The count of a key in a small flat-keyed file (memory.events); absent: 0. */
static uint64_t key_or_zero(const char *dir, const char *file, const char *key)
{
	int64_t v = 0;
	return cg_read_key(dir, file, key, &v) == 0 && v > 0 ? (uint64_t)v : 0;
}

static int v2_stat_memory(const char *dir, struct cgroup_stats *st)
{
	struct cgroup_mem_entry *u = &st->memory.usage, *sw = &st->memory.swap;
	int k;
	if ((k = cg_stat_kv(dir, "memory.stat", &st->memory.raw, &st->memory.n_raw)) < 0)
		return k;
	st->memory.cache = cg_stat_kv_get(st->memory.raw, st->memory.n_raw, "file");
	if ((k = cg_read_u64(dir, "memory.current", &u->usage)) < 0)
		return cg_stat_err(k, dir, "memory.current");
	if ((k = cg_read_u64(dir, "memory.max", &u->limit)) < 0)
		return cg_stat_err(k, dir, "memory.max");
	if ((k = r_opt(dir, "memory.peak", &u->max)) < 0) /* Linux 5.19+ */
		return k;
	u->failcnt = key_or_zero(dir, "memory.events", "max");
	/* v1 reports memory+swap; v2 counts swap alone: add them up. */
	uint64_t cur = 0, max = 0, peak = 0;
	if ((k = r_opt(dir, "memory.swap.current", &cur)) < 0 || (k = r_opt(dir, "memory.swap.max", &max)) < 0 ||
	    (k = r_opt(dir, "memory.swap.peak", &peak)) < 0)
		return k;
	sw->usage = u->usage + cur;
	sw->limit = max == UINT64_MAX || u->limit == UINT64_MAX ? UINT64_MAX : max + u->limit;
	sw->max = peak ? u->max + peak : 0;
	sw->failcnt = key_or_zero(dir, "memory.swap.events", "max");
	return 0;
}

static int v2_stat_pids(const char *dir, struct cgroup_stats *st)
{
	int k;
	if ((k = cg_read_u64(dir, "pids.current", &st->pids.current)) < 0)
		return cg_stat_err(k, dir, "pids.current");
	if ((k = cg_read_u64(dir, "pids.max", &st->pids.limit)) < 0)
		return cg_stat_err(k, dir, "pids.max");
	if (st->pids.limit == UINT64_MAX)
		st->pids.limit = 0;
	return 0;
}

/* io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device. */
static int v2_stat_io(const char *dir, struct cgroup_stats *st)
{
	static const struct { const char *key; int kind; const char *op; } keys[] = {
		{ "rbytes", CG_BLKIO_SERVICE_BYTES, "Read" }, { "wbytes", CG_BLKIO_SERVICE_BYTES, "Write" },
		{ "rios", CG_BLKIO_SERVICED, "Read" }, { "wios", CG_BLKIO_SERVICED, "Write" },
	};
	_cleanup_free_ char *path = NULL, *buf = NULL;
	if (asprintf(&path, "%s/io.stat", dir) < 0) {
		path = NULL;
		return err_set(ENOMEM, "cgroup: statistics");
	}
	int k = cg_read_whole(path, &buf);
	if (k < 0)
		return cg_stat_err(k, dir, "io.stat");
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long maj, min;
		int off = 0;
		if (sscanf(line, "%llu:%llu%n", &maj, &min, &off) != 2)
			continue;
		for (char *s2 = NULL, *tok = strtok_r(line + off, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
			char *eq = strchr(tok, '=');
			if (!eq)
				continue;
			*eq = '\0';
			for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
				if (!strcmp(tok, keys[i].key) &&
				    (k = cg_stat_blkio_add(st, keys[i].kind, maj, min, keys[i].op,
							   strtoull(eq + 1, NULL, 10))) < 0)
					return k;
		}
	}
	return 0;
}

static int v2_stat_hugetlb(const char *dir, struct cgroup_stats *st)
{
	_cleanup_free_ char(*sizes)[16] = NULL;
	size_t n = 0;
	int k = cg_hugepage_sizes(&sizes, &n);
	if (k < 0 || !n)
		return k;
	if (!(st->hugetlb = calloc(n, sizeof *st->hugetlb)))
		return err_set(ENOMEM, "cgroup: statistics");
	for (size_t i = 0; i < n; i++) {
		struct cgroup_hugetlb_entry *e = &st->hugetlb[st->n_hugetlb++];
		char file[96];
		snprintf(e->page_size, sizeof e->page_size, "%s", sizes[i]);
		snprintf(file, sizeof file, "hugetlb.%s.current", sizes[i]);
		if ((k = cg_read_u64(dir, file, &e->usage)) < 0)
			return cg_stat_err(k, dir, file);
		snprintf(file, sizeof file, "hugetlb.%s.events", sizes[i]);
		e->failcnt = key_or_zero(dir, file, "max");
	}
	return 0;
}

const struct cgroup_ops cgroup_v2_ops = {
	.name = "cgroup v2",
	.apply = {
		[CG_RES_DEVICES] = v2_devices,
		[CG_RES_MEMORY] = v2_memory,
		[CG_RES_CPU] = v2_cpu,
		[CG_RES_CPUSET] = v2_cpuset,
		[CG_RES_PIDS] = cg_apply_pids,
		[CG_RES_BLKIO] = v2_io,
		[CG_RES_HUGETLB] = v2_hugetlb,
		[CG_RES_RDMA] = cg_apply_rdma,
	},
	.freeze = v2_freeze,
	.freeze_state = v2_freeze_state,
	.frozen_by = v2_frozen_by,
	.stats = {
		[CG_STAT_CPUACCT] = v2_stat_cpuacct,
		[CG_STAT_CPU] = v2_stat_cpu,
		[CG_STAT_CPUSET] = v2_stat_cpuset,
		[CG_STAT_MEMORY] = v2_stat_memory,
		[CG_STAT_PIDS] = v2_stat_pids,
		[CG_STAT_BLKIO] = v2_stat_io,
		[CG_STAT_HUGETLB] = v2_stat_hugetlb,
	},
};
