/* cgroup v1 backend: linux.resources written to the per-controller
 * hierarchies, and the freezer controller. */
#include "sandbox/cgroup-internal.h"
#include "util/err.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
	 * new limit is above the current memsw limit, raise memsw first. */
	bool swap = m->swap.has && m->swap.v != 0;
	bool swap_done = false;
	if (m->limit.has) {
		k = w_i64(FIELD("memory.limit"), dir, "memory.limit_in_bytes", m->limit.v);
		if (k == -EINVAL && swap) {
			if ((k = w_optional(FIELD("memory.swap"), dir, "memory.memsw.limit_in_bytes", m->swap.v,
					    "swap accounting disabled?")) < 0)
				return k;
			swap_done = true;
			k = w_i64(FIELD("memory.limit"), dir, "memory.limit_in_bytes", m->limit.v);
		}
		if (k < 0)
			return k;
	}
	if (swap && !swap_done) {
		k = w_optional(FIELD("memory.swap"), dir, "memory.memsw.limit_in_bytes", m->swap.v,
			       "swap accounting disabled?");
		if (k < 0 && !(k == -ENOENT && m->swap.v == -1)) /* unlimited without memsw: nothing to do */
			return k;
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

/* blkio.weight is CFQ's (gone since Linux 5.0); BFQ's file takes the same
 * values. */
static int weight_write(const char *field, const char *dir, const char *cfq, const char *val)
{
	int k = cg_write(field, dir, cfq, val);
	if (k == -ENOENT && !strcmp(cfq, "blkio.weight_device"))
		k = cg_write(field, dir, "blkio.bfq.weight", val);
	else if (k == -ENOENT && !strcmp(cfq, "blkio.weight"))
		k = cg_write(field, dir, "blkio.bfq.weight", val);
	if (k == -ENOENT)
		return err_set(ENOENT, "%s: neither %s nor blkio.bfq.weight exists (no CFQ or BFQ I/O scheduler?)",
			       field, cfq);
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
};
