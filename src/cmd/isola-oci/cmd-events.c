/* isola-oci events: runc 1.1's event stream for a container, stats events
 * (types.Stats as JSON) every interval and oom events, or one stats event
 * with --stats. */
#include "cmd.h"
#include "runtime/container.h"
#include "runtime/live.h"
#include "sandbox/cgroup.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON writer that keeps uint64 values whole (jansson's integers stop at
 * INT64_MAX; "limit": 18446744073709551615 is common) and escapes strings
 * as Go's encoder does, so the output matches runc's byte for byte. */
typedef struct {
	FILE *f;
	int depth;
	bool comma[16];
} jw;

static void jw_str(jw *w, const char *s)
{
	fputc('"', w->f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(w->f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", w->f);
		else if (ch == '\t')
			fputs("\\t", w->f);
		else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&')
			fprintf(w->f, "\\u%04x", ch);
		else
			fputc(ch, w->f);
	}
	fputc('"', w->f);
}

static void jw_key(jw *w, const char *k)
{
	if (w->comma[w->depth])
		fputc(',', w->f);
	w->comma[w->depth] = true;
	if (k) {
		jw_str(w, k);
		fputc(':', w->f);
	}
}

static void jw_open(jw *w, const char *k, char ch)
{
	jw_key(w, k);
	fputc(ch, w->f);
	w->comma[++w->depth] = false;
}

static void jw_close(jw *w, char ch)
{
	fputc(ch, w->f);
	w->depth--;
}

static void jw_u64(jw *w, const char *k, uint64_t v)
{
	jw_key(w, k);
	fprintf(w->f, "%" PRIu64, v);
}

/* Go's omitempty: zero values are left out. */
static void jw_u64_nz(jw *w, const char *k, uint64_t v)
{
	if (v)
		jw_u64(w, k, v);
}

static void jw_u64_list(jw *w, const char *k, const uint64_t *v, size_t n)
{
	if (!n)
		return;
	jw_open(w, k, '[');
	for (size_t i = 0; i < n; i++)
		jw_u64(w, NULL, v[i]);
	jw_close(w, ']');
}

static void jw_u32_list(jw *w, const char *k, const uint32_t *v, size_t n)
{
	if (!n)
		return;
	jw_open(w, k, '[');
	for (size_t i = 0; i < n; i++)
		jw_u64(w, NULL, v[i]);
	jw_close(w, ']');
}

static void jw_mem_entry(jw *w, const char *k, const struct cgroup_mem_entry *e)
{
	jw_open(w, k, '{');
	jw_u64(w, "limit", e->limit);
	jw_u64_nz(w, "usage", e->usage);
	jw_u64_nz(w, "max", e->max);
	jw_u64(w, "failcnt", e->failcnt);
	jw_close(w, '}');
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct cgroup_stat_kv *)a)->key, ((const struct cgroup_stat_kv *)b)->key);
}

static int cmp_hugetlb(const void *a, const void *b)
{
	return strcmp(((const struct cgroup_hugetlb_entry *)a)->page_size,
		      ((const struct cgroup_hugetlb_entry *)b)->page_size);
}

/* runc's types.Stats, field order and omitempty rules included. */
static void write_stats(jw *w, struct cgroup_stats *st)
{
	static const char *const blkio_keys[CG_BLKIO__MAX] = {
		"ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive", "ioServiceTimeRecursive",
		"ioWaitTimeRecursive", "ioMergedRecursive", "ioTimeRecursive", "sectorsRecursive",
	};
	jw_open(w, "data", '{');
	jw_open(w, "cpu", '{');
	jw_open(w, "usage", '{');
	jw_u64_nz(w, "total", st->cpu.total);
	jw_u64_list(w, "percpu", st->cpu.percpu, st->cpu.n_percpu);
	jw_u64_list(w, "percpu_kernel", st->cpu.percpu_kernel, st->cpu.n_percpu_kernel);
	jw_u64_list(w, "percpu_user", st->cpu.percpu_user, st->cpu.n_percpu_user);
	jw_u64(w, "kernel", st->cpu.kernel);
	jw_u64(w, "user", st->cpu.user);
	jw_close(w, '}');
	jw_open(w, "throttling", '{');
	jw_u64_nz(w, "periods", st->cpu.periods);
	jw_u64_nz(w, "throttledPeriods", st->cpu.throttled_periods);
	jw_u64_nz(w, "throttledTime", st->cpu.throttled_time);
	jw_close(w, '}');
	jw_close(w, '}');

	jw_open(w, "cpuset", '{');
	jw_u32_list(w, "cpus", st->cpuset.cpus, st->cpuset.n_cpus);
	jw_u64(w, "cpu_exclusive", st->cpuset.cpu_exclusive);
	jw_u32_list(w, "mems", st->cpuset.mems, st->cpuset.n_mems);
	jw_u64(w, "mem_hardwall", st->cpuset.mem_hardwall);
	jw_u64(w, "mem_exclusive", st->cpuset.mem_exclusive);
	jw_u64(w, "memory_migrate", st->cpuset.memory_migrate);
	jw_u64(w, "memory_spread_page", st->cpuset.memory_spread_page);
	jw_u64(w, "memory_spread_slab", st->cpuset.memory_spread_slab);
	jw_u64(w, "memory_pressure", st->cpuset.memory_pressure);
	jw_u64(w, "sched_load_balance", st->cpuset.sched_load_balance);
	jw_key(w, "sched_relax_domain_level");
	fprintf(w->f, "%" PRId64, st->cpuset.sched_relax_domain_level);
	jw_close(w, '}');

	jw_open(w, "memory", '{');
	jw_u64_nz(w, "cache", st->memory.cache);
	jw_mem_entry(w, "usage", &st->memory.usage);
	jw_mem_entry(w, "swap", &st->memory.swap);
	jw_mem_entry(w, "kernel", &st->memory.kernel);
	jw_mem_entry(w, "kernelTCP", &st->memory.kernel_tcp);
	if (st->memory.n_raw) {
		qsort(st->memory.raw, st->memory.n_raw, sizeof *st->memory.raw, cmp_kv); /* Go sorts map keys */
		jw_open(w, "raw", '{');
		for (size_t i = 0; i < st->memory.n_raw; i++)
			jw_u64(w, st->memory.raw[i].key, st->memory.raw[i].value);
		jw_close(w, '}');
	}
	jw_close(w, '}');

	jw_open(w, "pids", '{');
	jw_u64_nz(w, "current", st->pids.current);
	jw_u64_nz(w, "limit", st->pids.limit);
	jw_close(w, '}');

	jw_open(w, "blkio", '{');
	for (int k = 0; k < CG_BLKIO__MAX; k++) {
		if (!st->blkio.n[k])
			continue;
		jw_open(w, blkio_keys[k], '[');
		for (size_t i = 0; i < st->blkio.n[k]; i++) {
			const struct cgroup_blkio_entry *e = &st->blkio.v[k][i];
			jw_open(w, NULL, '{');
			jw_u64_nz(w, "major", e->major);
			jw_u64_nz(w, "minor", e->minor);
			if (e->op[0]) {
				jw_key(w, "op");
				jw_str(w, e->op);
			}
			jw_u64_nz(w, "value", e->value);
			jw_close(w, '}');
		}
		jw_close(w, ']');
	}
	jw_close(w, '}');

	jw_open(w, "hugetlb", '{');
	if (st->n_hugetlb)
		qsort(st->hugetlb, st->n_hugetlb, sizeof *st->hugetlb, cmp_hugetlb);
	for (size_t i = 0; i < st->n_hugetlb; i++) {
		jw_open(w, st->hugetlb[i].page_size, '{');
		jw_u64_nz(w, "usage", st->hugetlb[i].usage);
		jw_u64_nz(w, "max", st->hugetlb[i].max);
		jw_u64(w, "failcnt", st->hugetlb[i].failcnt);
		jw_close(w, '}');
	}
	jw_close(w, '}');
	jw_open(w, "intel_rdt", '{');
	jw_close(w, '}');
	jw_key(w, "network_interfaces");
	fputs("null", w->f);
	jw_close(w, '}');
}

/* One event line: {"type":...,"id":...[,"data":{...}]}. Returns false when
 * stdout is gone (the reader went away). */
static bool print_event(const char *type, const char *id, struct cgroup_stats *st)
{
	jw w = { .f = stdout };
	jw_open(&w, NULL, '{');
	jw_key(&w, "type");
	jw_str(&w, type);
	jw_key(&w, "id");
	jw_str(&w, id);
	if (st)
		write_stats(&w, st);
	jw_close(&w, '}');
	fputc('\n', stdout);
	return fflush(stdout) == 0;
}

static bool on_event(const struct container_event *ev, void *userdata)
{
	return print_event(ev->type == CONTAINER_EVENT_OOM ? "oom" : "stats", ev->id, ev->stats);
}

/* A Go duration ("5s", "500ms", "1m30s", "1.5h"; units ns us µs ms s m h)
 * in nanoseconds. */
static int parse_duration(const char *s, int64_t *ret)
{
	static const struct { const char *unit; long double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3L }, { "\xc2\xb5s", 1e3L }, { "\xce\xbcs", 1e3L }, { "ms", 1e6L },
		{ "s", 1e9L }, { "m", 60e9L }, { "h", 3600e9L },
	};
	const char *p = s;
	bool neg = *p == '-';
	if (*p == '-' || *p == '+')
		p++;
	if (!strcmp(p, "0")) {
		*ret = 0;
		return 0;
	}
	if (!*p)
		return -EINVAL;
	long double total = 0;
	while (*p) {
		long double v = 0, scale = 1;
		bool digits = false;
		for (; *p >= '0' && *p <= '9'; p++, digits = true)
			v = v * 10 + (*p - '0');
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++, digits = true)
				v += (*p - '0') / (scale *= 10);
		if (!digits)
			return -EINVAL;
		size_t best = ARRAY_SIZE(units), bl = 0;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			size_t l = strlen(units[i].unit);
			if (l > bl && !strncmp(p, units[i].unit, l)) {
				best = i;
				bl = l;
			}
		}
		if (best == ARRAY_SIZE(units))
			return -EINVAL; /* a missing unit, as in Go */
		total += v * units[best].ns;
		p += bl;
	}
	if (total > (long double)INT64_MAX)
		return -ERANGE;
	*ret = neg ? -(int64_t)total : (int64_t)total;
	return 0;
}

int cmd_events(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stats", no_argument, 0, 's' }, { "interval", required_argument, 0, 'i' }, { 0, 0, 0, 0 },
	};
	bool stats = false;
	int64_t interval = 5000000000LL;
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 's')
			stats = true;
		else if (c == 'i') {
			if (parse_duration(optarg, &interval) < 0)
				return usage_error("events", "--interval: invalid duration \"%s\"", optarg);
		} else
			return usage_error("events", "unknown option");
	}
	if (optind != argc - 1)
		return usage_error("events", "expected exactly one container id");
	if (interval <= 0)
		return usage_error("events", "--interval: must be greater than 0");
	const char *id = argv[optind];
	if (!stats) {
		int r = container_events(g.root, id, interval, on_event, NULL);
		return r < 0 ? fail_cmd(r) : 0;
	}
	struct cgroup_stats st;
	int r = container_stats(g.root, id, &st);
	if (r < 0)
		return fail_cmd(err_wrap(r, "events"));
	print_event("stats", id, &st);
	cgroup_stats_clear(&st);
	return 0;
}
