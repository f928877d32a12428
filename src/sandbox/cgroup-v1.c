/* cgroup v1 backend: linux.resources written to the per-controller
 * hierarchies, the freezer controller, and the statistics files. */
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD(x) "linux.resources." x

/* Write an int64 the v1 way: -1 stays -1 (unlimited). */
static int w_i64(const char *field, const char *dir, const char *file, int64_t v)
{
	return cg_writef(field, dir, file, "%lld", (long long)v);
}

static int w_u64(const char *field, const char *dir, const char *file, uint64_t v)
{
	return cg_writef(field, dir, file, "%llu", (unsigned long long)v);
}

/* A file that only some kernels have: name the field and the missing file. */
static int w_optional(const char *field, const char *dir, const char *file, int64_t v, const char *why)
{
	int r = w_i64(field, dir, file, v);
	if (r == -ENOENT)
		return err_set(ENOENT, "%s: %s does not exist (%s)", field, file, why);
	return r;
}

static int v1_memory(const char *dir, const spec_resources *r)
{
	const __typeof__(r->memory) *m = &r->memory;
	int k;
	if (m->use_hierarchy.has &&
	    (k = cg_write(FIELD("memory.useHierarchy"), dir, "memory.use_hierarchy", m->use_hierarchy.v ? "1" : "0")) < 0)
		return k;
	if (m->limit.has && m->check_before_update.has && m->check_before_update.v && m->limit.v >= 0) {
		uint64_t usage;
		if ((k = cg_read_u64(dir, "memory.usage_in_bytes", &usage)) < 0)
			return err_set(-k, FIELD("memory.checkBeforeUpdate: read memory.usage_in_bytes"));
		if ((uint64_t)m->limit.v < usage)
			return err_set(EBUSY, FIELD("memory.limit: %lld is below the current usage %llu"),
				       (long long)m->limit.v, (unsigned long long)usage);
	}
	/* memsw (memory+swap) may never be below the memory limit: when the
	 * new limit is above the current memsw limit, raise memsw first. An
	 * unlimited memory limit without a swap value lifts memsw too (runc
	 * does; the kernel would refuse it under a memsw limit otherwise). */
	bool swap = m->swap.has && m->swap.v != 0;
	int64_t swap_v = m->swap.v;
	if (!swap && m->limit.has && m->limit.v == -1) {
		swap = true;
		swap_v = -1;
	}
	bool swap_done = false;
	if (m->limit.has) {
		k = w_i64(FIELD("memory.limit"), dir, "memory.limit_in_bytes", m->limit.v);
		if (k == -EINVAL && swap) {
			if ((k = w_optional(FIELD("memory.swap"), dir, "memory.memsw.limit_in_bytes", swap_v,
					    "swap accounting disabled?")) < 0)
				return k;
			swap_done = true;
			k = w_i64(FIELD("memory.limit"), dir, "memory.limit_in_bytes", m->limit.v);
		}
		if (k < 0)
			return k;
	}
	if (swap && !swap_done) {
		k = w_optional(FIELD("memory.swap"), dir, "memory.memsw.limit_in_bytes", swap_v,
			       "swap accounting disabled?");
		if (k < 0 && !(k == -ENOENT && swap_v == -1)) /* unlimited without memsw: nothing to do */
			return k;
		err_clear();
	}
	if (m->reservation.has &&
	    (k = w_i64(FIELD("memory.reservation"), dir, "memory.soft_limit_in_bytes", m->reservation.v)) < 0)
		return k;
	if (m->kernel.has && (k = w_optional(FIELD("memory.kernel"), dir, "memory.kmem.limit_in_bytes",
					     m->kernel.v, "kernel memory limits were removed in Linux 6.1")) < 0)
		return k;
	if (m->kernel_tcp.has && (k = w_optional(FIELD("memory.kernelTCP"), dir, "memory.kmem.tcp.limit_in_bytes",
						 m->kernel_tcp.v, "not supported by this kernel")) < 0)
		return k;
	if (m->swappiness.has && m->swappiness.v != UINT64_MAX) {
		if (m->swappiness.v > 100)
			return err_set(0, FIELD("memory.swappiness: must be 0..100, got %llu"),
				       (unsigned long long)m->swappiness.v);
		if ((k = w_u64(FIELD("memory.swappiness"), dir, "memory.swappiness", m->swappiness.v)) < 0)
			return k;
	}
	if (m->disable_oom_killer.has &&
	    (k = cg_write(FIELD("memory.disableOOMKiller"), dir, "memory.oom_control",
			  m->disable_oom_killer.v ? "1" : "0")) < 0)
		return k;
	return 0;
}

static int v1_cpu(const char *dir, const spec_resources *r)
{
	const __typeof__(r->cpu) *c = &r->cpu;
	int k;
	if (c->shares.has && (k = w_u64(FIELD("cpu.shares"), dir, "cpu.shares", c->shares.v)) < 0)
		return k;
	/* The kernel checks quota against period: if the new period does not
	 * fit the old quota, set the quota first. */
	if (c->period.has) {
		k = w_u64(FIELD("cpu.period"), dir, "cpu.cfs_period_us", c->period.v);
		if (k == -EINVAL && c->quota.has) {
			if ((k = w_i64(FIELD("cpu.quota"), dir, "cpu.cfs_quota_us", c->quota.v)) < 0)
				return k;
			k = w_u64(FIELD("cpu.period"), dir, "cpu.cfs_period_us", c->period.v);
		}
		if (k < 0)
			return k;
	}
	if (c->quota.has && (k = w_i64(FIELD("cpu.quota"), dir, "cpu.cfs_quota_us", c->quota.v)) < 0)
		return k;
	if (c->burst.has && (k = w_optional(FIELD("cpu.burst"), dir, "cpu.cfs_burst_us", (int64_t)c->burst.v,
					    "needs Linux 5.14")) < 0)
		return k;
	if (c->realtime_period.has &&
	    (k = w_optional(FIELD("cpu.realtimePeriod"), dir, "cpu.rt_period_us", (int64_t)c->realtime_period.v,
			    "kernel without CONFIG_RT_GROUP_SCHED")) < 0)
		return k;
	if (c->realtime_runtime.has &&
	    (k = w_optional(FIELD("cpu.realtimeRuntime"), dir, "cpu.rt_runtime_us", c->realtime_runtime.v,
			    "kernel without CONFIG_RT_GROUP_SCHED")) < 0)
		return k;
	if (c->idle.has && (k = w_optional(FIELD("cpu.idle"), dir, "cpu.idle", c->idle.v, "needs Linux 5.15")) < 0)
		return k;
	return 0;
}

static int v1_cpuset(const char *dir, const spec_resources *r)
{
	int k;
	if (r->cpu.cpus && *r->cpu.cpus && (k = cg_write(FIELD("cpu.cpus"), dir, "cpuset.cpus", r->cpu.cpus)) < 0)
		return k;
	if (r->cpu.mems && *r->cpu.mems && (k = cg_write(FIELD("cpu.mems"), dir, "cpuset.mems", r->cpu.mems)) < 0)
		return k;
	return 0;
}

/* blkio.weight and blkio.weight_device are CFQ's (gone since Linux 5.0);
 * BFQ's blkio.bfq.weight and blkio.bfq.weight_device take the same values
 * (a bare weight; "MAJ:MIN WEIGHT"). */
static int weight_write(const char *field, const char *dir, const char *cfq, const char *val)
{
	char bfq[64];
	snprintf(bfq, sizeof bfq, "blkio.bfq.%s", cfq + strlen("blkio."));
	int k = cg_write(field, dir, cfq, val);
	if (k == -ENOENT)
		k = cg_write(field, dir, bfq, val);
	if (k == -ENOENT)
		return err_set(ENOENT, "%s: neither %s nor %s exists (no CFQ or BFQ I/O scheduler?)", field, cfq, bfq);
	return k;
}

static const char *const throttle_files[4] = {
	"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
	"blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
};
static const char *const throttle_fields[4] = {
	FIELD("blockIO.throttleReadBpsDevice"), FIELD("blockIO.throttleWriteBpsDevice"),
	FIELD("blockIO.throttleReadIOPSDevice"), FIELD("blockIO.throttleWriteIOPSDevice"),
};

static int v1_blkio(const char *dir, const spec_resources *r)
{
	char field[128], val[64];
	int k;
	if (r->blkio.weight.has) {
		snprintf(val, sizeof val, "%llu", (unsigned long long)r->blkio.weight.v);
		if ((k = weight_write(FIELD("blockIO.weight"), dir, "blkio.weight", val)) < 0)
			return k;
	}
	if (r->blkio.leaf_weight.has &&
	    (k = w_optional(FIELD("blockIO.leafWeight"), dir, "blkio.leaf_weight", (int64_t)r->blkio.leaf_weight.v,
			    "CFQ only, removed in Linux 5.0")) < 0)
		return k;
	for (size_t i = 0; i < r->blkio.n_weight_device; i++) {
		const spec_weight_dev *w = &r->blkio.weight_device[i];
		snprintf(field, sizeof field, FIELD("blockIO.weightDevice[%zu]"), i);
		if (w->weight.has) {
			snprintf(val, sizeof val, "%lld:%lld %llu", (long long)w->major, (long long)w->minor,
				 (unsigned long long)w->weight.v);
			if ((k = weight_write(field, dir, "blkio.weight_device", val)) < 0)
				return k;
		}
		if (w->leaf_weight.has) {
			k = cg_writef(field, dir, "blkio.leaf_weight_device", "%lld:%lld %llu", (long long)w->major,
				      (long long)w->minor, (unsigned long long)w->leaf_weight.v);
			if (k == -ENOENT)
				return err_set(ENOENT, "%s.leafWeight: blkio.leaf_weight_device does not exist "
					       "(CFQ only, removed in Linux 5.0)", field);
			if (k < 0)
				return k;
		}
	}
	for (int t = 0; t < 4; t++)
		for (size_t i = 0; i < r->blkio.n_throttle[t]; i++) {
			const spec_throttle_dev *d = &r->blkio.throttle[t][i];
			snprintf(field, sizeof field, "%s[%zu]", throttle_fields[t], i);
			if ((k = cg_writef(field, dir, throttle_files[t], "%lld:%lld %llu", (long long)d->major,
					   (long long)d->minor, (unsigned long long)d->rate)) < 0)
				return k;
		}
	return 0;
}

static int v1_hugetlb(const char *dir, const spec_resources *r)
{
	char field[64], file[128];
	for (size_t i = 0; i < r->n_hugepages; i++) {
		const spec_hugepage *h = &r->hugepages[i];
		snprintf(field, sizeof field, FIELD("hugepageLimits[%zu]"), i);
		if (strchr(h->page_size, '/'))
			return err_set(0, "%s: invalid pageSize \"%s\"", field, h->page_size);
		snprintf(file, sizeof file, "hugetlb.%s.limit_in_bytes", h->page_size);
		int k = w_u64(field, dir, file, h->limit);
		if (k == -ENOENT)
			return err_set(ENOENT, "%s: %s does not exist (page size \"%s\" not supported?)", field, file,
				       h->page_size);
		if (k < 0)
			return k;
		snprintf(file, sizeof file, "hugetlb.%s.rsvd.limit_in_bytes", h->page_size);
		if ((k = w_u64(field, dir, file, h->limit)) < 0 && k != -ENOENT) /* reservations: Linux 5.7+ */
			return k;
	}
	return 0;
}

static int v1_net_cls(const char *dir, const spec_resources *r)
{
	return w_u64(FIELD("network.classID"), dir, "net_cls.classid", r->network.class_id.v);
}

static int v1_net_prio(const char *dir, const spec_resources *r)
{
	char field[64];
	for (size_t i = 0; i < r->network.n_priorities; i++) {
		const spec_netprio *p = &r->network.priorities[i];
		snprintf(field, sizeof field, FIELD("network.priorities[%zu]"), i);
		if (!*p->name || strpbrk(p->name, " \n/"))
			return err_set(0, "%s: invalid interface name \"%s\"", field, p->name);
		int k = cg_writef(field, dir, "net_prio.ifpriomap", "%s %u", p->name, p->priority);
		if (k < 0)
			return k;
	}
	return 0;
}

static void dev_num(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		snprintf(buf, size, "*");
	else
		snprintf(buf, size, "%lld", (long long)v);
}

/* Deny everything, then the rules in order, as the spec reads. */
static int v1_devices(const char *dir, const spec_resources *r)
{
	char field[64], maj[24], min[24];
	size_t i = 0;
	int k = cg_write(FIELD("devices"), dir, "devices.deny", "a");
	if (k < 0)
		return k;
	while (i < r->n_devices && !r->devices[i].allow && r->devices[i].type == 'a')
		i++; /* the usual leading deny-all: already done */
	for (; i < r->n_devices; i++) {
		const spec_dev_rule *d = &r->devices[i];
		const char *file = d->allow ? "devices.allow" : "devices.deny";
		snprintf(field, sizeof field, FIELD("devices[%zu]"), i);
		if (d->type == 'a')
			k = cg_write(field, dir, file, "a");
		else {
			dev_num(maj, sizeof maj, d->major);
			dev_num(min, sizeof min, d->minor);
			k = cg_writef(field, dir, file, "%c %s:%s %s", d->type, maj, min, d->access);
		}
		if (k < 0)
			return k;
	}
	return 0;
}

static int v1_freeze_state(const char *dir)
{
	char buf[32];
	int n = cg_read(dir, "freezer.state", buf, sizeof buf);
	if (n < 0)
		return err_set(-n, "cgroup: read %s/freezer.state", dir);
	return !strcmp(buf, "FROZEN");
}

/* freezer.state shows the effective state, a parent's freeze included;
 * freezer.self_freezing tells which directory asked for it. */
static int v1_frozen_by(char *dir, size_t root_len, char *why, size_t size)
{
	char state[32], self[8];
	size_t len = strlen(dir);
	int n = cg_read(dir, "freezer.state", state, sizeof state);
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return err_set(-n, "cgroup: read %s/freezer.state", dir);
	if (!strcmp(state, "THAWED"))
		return 0;
	snprintf(why, size, "freezer.state %s", state);
	for (char *slash; strlen(dir) > root_len; *slash = '\0') {
		if (cg_read(dir, "freezer.self_freezing", self, sizeof self) > 0 && !strcmp(self, "1")) {
			size_t k = strlen(why);
			snprintf(why + k, size - k, ", set on %s", dir);
			break;
		}
		if (!(slash = strrchr(dir, '/')))
			break;
	}
	while (strlen(dir) < len) /* undo the cuts */
		dir[strlen(dir)] = '/';
	return 1;
}

static int v1_freeze(const char *dir, bool frozen)
{
	const char *want = frozen ? "FROZEN" : "THAWED";
	char buf[32];
	int k = cg_write(NULL, dir, "freezer.state", want);
	if (k < 0)
		return k;
	/* FREEZING lasts until every task stopped; writing FROZEN again
	 * retries tasks that were busy in the kernel. */
	for (unsigned i = 0, ms = 1; i < 200; i++, ms = ms < 16 ? ms * 2 : ms) {
		int n = cg_read(dir, "freezer.state", buf, sizeof buf);
		if (n < 0)
			return err_set(-n, "cgroup: read %s/freezer.state", dir);
		if (!strcmp(buf, want))
			return 0;
		cg_sleep_ms(ms);
		if (i % 10 == 9 && (k = cg_write(NULL, dir, "freezer.state", want)) < 0)
			return k;
	}
	if (frozen)
		(void)cg_write(NULL, dir, "freezer.state", "THAWED"); /* do not leave it half frozen */
	return err_set(EBUSY, "cgroup: %s/freezer.state: still %s", dir, buf);
}

/* ---- statistics ---- */

/* A file that kernels or configurations may lack: absent reads as 0. */
static int r_opt(const char *dir, const char *file, uint64_t *ret)
{
	int k = cg_read_u64(dir, file, ret);
	if (k == -ENOENT) {
		*ret = 0;
		return 0;
	}
	return k < 0 ? cg_stat_err(k, dir, file) : 0;
}

/* cpuacct.usage_all (Linux 4.16+): a "cpu user system" header, then one
 * line per cpu. */
static int usage_all(const char *dir, struct cgroup_stats *st)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	if (asprintf(&path, "%s/cpuacct.usage_all", dir) < 0) {
		path = NULL;
		return err_set(ENOMEM, "cgroup: statistics");
	}
	int k = cg_read_whole(path, &buf);
	if (k == -ENOENT)
		return 0;
	if (k < 0)
		return cg_stat_err(k, dir, "cpuacct.usage_all");
	size_t lines = 0;
	for (const char *p = buf; *p; p++)
		lines += *p == '\n';
	st->cpu.percpu_user = calloc(lines + 1, sizeof(uint64_t));
	st->cpu.percpu_kernel = calloc(lines + 1, sizeof(uint64_t));
	if (!st->cpu.percpu_user || !st->cpu.percpu_kernel)
		return err_set(ENOMEM, "cgroup: statistics");
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long cpu, user, sys;
		if (sscanf(l, "%llu %llu %llu", &cpu, &user, &sys) != 3)
			continue; /* the header */
		st->cpu.percpu_user[st->cpu.n_percpu_user++] = user;
		st->cpu.percpu_kernel[st->cpu.n_percpu_kernel++] = sys;
	}
	return 0;
}

static int v1_stat_cpuacct(const char *dir, struct cgroup_stats *st)
{
	int k;
	if ((k = cg_read_u64(dir, "cpuacct.usage", &st->cpu.total)) < 0)
		return cg_stat_err(k, dir, "cpuacct.usage");
	if ((k = cg_stat_u64_list(dir, "cpuacct.usage_percpu", &st->cpu.percpu, &st->cpu.n_percpu)) < 0)
		return k;
	if ((k = usage_all(dir, st)) < 0)
		return k;
	/* cpuacct.stat counts USER_HZ ticks */
	int64_t user = 0, sys = 0;
	if ((k = cg_read_key(dir, "cpuacct.stat", "user", &user)) < 0 ||
	    (k = cg_read_key(dir, "cpuacct.stat", "system", &sys)) < 0)
		return cg_stat_err(k, dir, "cpuacct.stat");
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	st->cpu.user = (uint64_t)user * (1000000000ULL / (uint64_t)hz);
	st->cpu.kernel = (uint64_t)sys * (1000000000ULL / (uint64_t)hz);
	return 0;
}

static int v1_stat_cpu(const char *dir, struct cgroup_stats *st)
{
	_cleanup_free_ struct cgroup_stat_kv *kv = NULL;
	size_t n = 0;
	int k = cg_stat_kv(dir, "cpu.stat", &kv, &n);
	if (k < 0)
		return k;
	st->cpu.periods = cg_stat_kv_get(kv, n, "nr_periods");
	st->cpu.throttled_periods = cg_stat_kv_get(kv, n, "nr_throttled");
	st->cpu.throttled_time = cg_stat_kv_get(kv, n, "throttled_time");
	cg_stat_kv_free(TAKE_PTR(kv), n);
	return 0;
}

static int v1_stat_cpuset(const char *dir, struct cgroup_stats *st)
{
	static const struct { const char *file; size_t off; } flags[] = {
#define F(m) { "cpuset." #m, offsetof(struct cgroup_stats, cpuset.m) }
		F(cpu_exclusive), F(mem_hardwall), F(mem_exclusive), F(memory_migrate), F(memory_spread_page),
		F(memory_spread_slab), F(memory_pressure), F(sched_load_balance),
#undef F
	};
	int k;
	if ((k = cg_stat_id_list(dir, "cpuset.cpus", &st->cpuset.cpus, &st->cpuset.n_cpus)) < 0 ||
	    (k = cg_stat_id_list(dir, "cpuset.mems", &st->cpuset.mems, &st->cpuset.n_mems)) < 0)
		return k;
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if ((k = r_opt(dir, flags[i].file, (uint64_t *)((char *)st + flags[i].off))) < 0)
			return k;
	char buf[32];
	st->cpuset.sched_relax_domain_level = -1;
	if (cg_read(dir, "cpuset.sched_relax_domain_level", buf, sizeof buf) > 0)
		st->cpuset.sched_relax_domain_level = strtoll(buf, NULL, 10);
	st->cpuset.present = true;
	return 0;
}

/* memory.<prefix>usage_in_bytes etc.; a missing set (no swap accounting,
 * no kmem) stays zero, but the plain memory one must be there. */
static int mem_entry(const char *dir, const char *prefix, struct cgroup_mem_entry *e)
{
	static const struct { const char *name; size_t off; } files[] = {
		{ "usage_in_bytes", offsetof(struct cgroup_mem_entry, usage) },
		{ "max_usage_in_bytes", offsetof(struct cgroup_mem_entry, max) },
		{ "failcnt", offsetof(struct cgroup_mem_entry, failcnt) },
		{ "limit_in_bytes", offsetof(struct cgroup_mem_entry, limit) },
	};
	char file[64];
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(file, sizeof file, "memory.%s%s", prefix, files[i].name);
		int k = cg_read_u64(dir, file, (uint64_t *)((char *)e + files[i].off));
		if (k == -ENOENT && *prefix)
			continue;
		if (k < 0)
			return cg_stat_err(k, dir, file);
	}
	return 0;
}

static int v1_stat_memory(const char *dir, struct cgroup_stats *st)
{
	int k;
	if ((k = cg_stat_kv(dir, "memory.stat", &st->memory.raw, &st->memory.n_raw)) < 0)
		return k;
	st->memory.cache = cg_stat_kv_get(st->memory.raw, st->memory.n_raw, "cache");
	if ((k = mem_entry(dir, "", &st->memory.usage)) < 0 || (k = mem_entry(dir, "memsw.", &st->memory.swap)) < 0 ||
	    (k = mem_entry(dir, "kmem.", &st->memory.kernel)) < 0 ||
	    (k = mem_entry(dir, "kmem.tcp.", &st->memory.kernel_tcp)) < 0)
		return k;
	return 0;
}

/* "8:0 Read 4096" / "8:0 4096" lines; "Total N" is skipped. */
static int blkio_file(const char *dir, const char *file, int kind, struct cgroup_stats *st)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0) {
		path = NULL;
		return err_set(ENOMEM, "cgroup: statistics");
	}
	int k = cg_read_whole(path, &buf);
	if (k < 0)
		return k == -ENOENT ? k : cg_stat_err(k, dir, file);
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char op[12] = "";
		unsigned long long maj, min, v;
		if (sscanf(line, "%llu:%llu %11s %llu", &maj, &min, op, &v) != 4) {
			op[0] = '\0';
			if (sscanf(line, "%llu:%llu %llu", &maj, &min, &v) != 3)
				continue;
		}
		if ((k = cg_stat_blkio_add(st, kind, maj, min, op, v)) < 0)
			return k;
	}
	return 0;
}

/* The first scheduler whose files exist and have lines wins: BFQ, CFQ
 * (gone since Linux 5.0), then the throttle policy's counters. */
static int v1_stat_blkio(const char *dir, struct cgroup_stats *st)
{
	static const struct { const char *file; int kind; } sets[][8] = {
		{ { "blkio.bfq.io_serviced_recursive", CG_BLKIO_SERVICED },
		  { "blkio.bfq.io_service_bytes_recursive", CG_BLKIO_SERVICE_BYTES } },
		{ { "blkio.io_serviced_recursive", CG_BLKIO_SERVICED },
		  { "blkio.io_service_bytes_recursive", CG_BLKIO_SERVICE_BYTES },
		  { "blkio.io_queued_recursive", CG_BLKIO_QUEUED },
		  { "blkio.io_service_time_recursive", CG_BLKIO_SERVICE_TIME },
		  { "blkio.io_wait_time_recursive", CG_BLKIO_WAIT_TIME },
		  { "blkio.io_merged_recursive", CG_BLKIO_MERGED },
		  { "blkio.time_recursive", CG_BLKIO_TIME },
		  { "blkio.sectors_recursive", CG_BLKIO_SECTORS } },
		{ { "blkio.throttle.io_serviced_recursive", CG_BLKIO_SERVICED },
		  { "blkio.throttle.io_service_bytes_recursive", CG_BLKIO_SERVICE_BYTES } },
		{ { "blkio.throttle.io_serviced", CG_BLKIO_SERVICED },
		  { "blkio.throttle.io_service_bytes", CG_BLKIO_SERVICE_BYTES } },
	};
	for (size_t s = 0; s < ARRAY_SIZE(sets); s++) {
		for (size_t i = 0; i < 8 && sets[s][i].file; i++) {
			int k = blkio_file(dir, sets[s][i].file, sets[s][i].kind, st);
			if (i == 0 && (k == -ENOENT || (k == 0 && !st->blkio.n[sets[s][i].kind])))
				break; /* not this scheduler */
			if (k < 0 && k != -ENOENT)
				return k;
			if (i == 7 || !sets[s][i + 1].file)
				return 0;
		}
	}
	return 0;
}

static int v1_stat_pids(const char *dir, struct cgroup_stats *st)
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

static int v1_stat_hugetlb(const char *dir, struct cgroup_stats *st)
{
	static const char *const files[3] = { "usage_in_bytes", "max_usage_in_bytes", "failcnt" };
	_cleanup_free_ char(*sizes)[16] = NULL;
	size_t n = 0;
	int k = cg_hugepage_sizes(&sizes, &n);
	if (k < 0 || !n)
		return k;
	if (!(st->hugetlb = calloc(n, sizeof *st->hugetlb)))
		return err_set(ENOMEM, "cgroup: statistics");
	for (size_t i = 0; i < n; i++) {
		struct cgroup_hugetlb_entry *e = &st->hugetlb[st->n_hugetlb++];
		uint64_t *vals[3] = { &e->usage, &e->max, &e->failcnt };
		snprintf(e->page_size, sizeof e->page_size, "%s", sizes[i]);
		for (int f = 0; f < 3; f++) {
			char file[96];
			snprintf(file, sizeof file, "hugetlb.%s.%s", sizes[i], files[f]);
			if ((k = cg_read_u64(dir, file, vals[f])) < 0)
				return cg_stat_err(k, dir, file);
		}
	}
	return 0;
}

const struct cgroup_ops cgroup_v1_ops = {
	.name = "cgroup v1",
	.apply = {
		[CG_RES_DEVICES] = v1_devices,
		[CG_RES_MEMORY] = v1_memory,
		[CG_RES_CPU] = v1_cpu,
		[CG_RES_CPUSET] = v1_cpuset,
		[CG_RES_PIDS] = cg_apply_pids,
		[CG_RES_BLKIO] = v1_blkio,
		[CG_RES_HUGETLB] = v1_hugetlb,
		[CG_RES_NET_CLS] = v1_net_cls,
		[CG_RES_NET_PRIO] = v1_net_prio,
		[CG_RES_RDMA] = cg_apply_rdma,
	},
	.freeze = v1_freeze,
	.freeze_state = v1_freeze_state,
	.frozen_by = v1_frozen_by,
	.stats = {
		[CG_STAT_CPUACCT] = v1_stat_cpuacct,
		[CG_STAT_CPU] = v1_stat_cpu,
		[CG_STAT_CPUSET] = v1_stat_cpuset,
		[CG_STAT_MEMORY] = v1_stat_memory,
		[CG_STAT_PIDS] = v1_stat_pids,
		[CG_STAT_BLKIO] = v1_stat_blkio,
		[CG_STAT_HUGETLB] = v1_stat_hugetlb,
	},
};
