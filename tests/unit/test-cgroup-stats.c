/* Unit tests for the cgroup statistics readers (`events --stats`): the v1
 * and v2 backends' stats functions run against directories of fake
 * interface files, so every format is covered whatever this host mounts. */
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cgroup-internal.h"
#include "util/err.h"
#include "unit.h"

static char dir[64];

static void put(const char *file, const char *text)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "we");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static void fresh_dir(void)
{
	static int n;
	snprintf(dir, sizeof dir, "/tmp/isola-test-stats.%d.%d", (int)getpid(), ++n);
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		exit(1);
	}
}

static void rm_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void test_parsers(void)
{
	fresh_dir();
	put("list", "10 20\n30\n");
	put("kv", "cache 4096\nrss 8192\nmax_thing max\nnested\n  x 1\n");
	put("cpus", "0-2,5,7-8\n");
	put("empty", "\n");
	put("bad", "1-x\n");

	uint64_t *v = NULL;
	size_t n = 0;
	CHECK_INT(cg_stat_u64_list(dir, "list", &v, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_INT(v[0], 10);
		CHECK_INT(v[2], 30);
	}
	free(v);

	struct cgroup_stat_kv *kv = NULL;
	CHECK_INT(cg_stat_kv(dir, "kv", &kv, &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(cg_stat_kv_get(kv, n, "rss"), 8192);
	CHECK(cg_stat_kv_get(kv, n, "max_thing") == UINT64_MAX);
	CHECK_INT(cg_stat_kv_get(kv, n, "absent"), 0);
	cg_stat_kv_free(kv, n);

	uint32_t *ids = NULL;
	CHECK_INT(cg_stat_id_list(dir, "cpus", &ids, &n), 0);
	CHECK_INT(n, 6);
	if (n == 6) {
		CHECK_INT(ids[0], 0);
		CHECK_INT(ids[2], 2);
		CHECK_INT(ids[3], 5);
		CHECK_INT(ids[5], 8);
	}
	free(ids);
	ids = NULL;
	CHECK_INT(cg_stat_id_list(dir, "empty", &ids, &n), 0);
	CHECK_INT(n, 0);
	free(ids);
	CHECK_INT(cg_stat_id_list(dir, "bad", &ids, &n), -EINVAL);
	CHECK_CONTAINS(err_msg(), "/bad: unexpected content");
	CHECK_INT(cg_stat_kv(dir, "missing", &kv, &n), -ENOENT);
	CHECK_CONTAINS(err_msg(), "/missing: No such file or directory");
	rm_dir();
}

static void test_v1(void)
{
	struct cgroup_stats st = { 0 };
	fresh_dir();
	put("cpuacct.usage", "3000\n");
	put("cpuacct.usage_percpu", "1000 2000 \n");
	put("cpuacct.usage_all", "cpu user system\n0 600 400\n1 1500 500\n");
	put("cpuacct.stat", "user 3\nsystem 2\n");
	put("cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n");
	put("memory.stat", "cache 100\nrss 200\ntotal_cache 100\n");
	put("memory.usage_in_bytes", "4096\n");
	put("memory.max_usage_in_bytes", "8192\n");
	put("memory.failcnt", "2\n");
	put("memory.limit_in_bytes", "9223372036854771712\n");
	put("memory.memsw.usage_in_bytes", "5000\n");
	put("memory.memsw.max_usage_in_bytes", "9000\n");
	put("memory.memsw.failcnt", "0\n");
	put("memory.memsw.limit_in_bytes", "33554432\n");
	put("pids.current", "3\n");
	put("pids.max", "max\n");
	put("cpuset.cpus", "0-1\n");
	put("cpuset.mems", "0\n");
	put("cpuset.sched_load_balance", "1\n");
	put("cpuset.sched_relax_domain_level", "-1\n");
	put("blkio.bfq.io_serviced_recursive", "Total 0\n"); /* no I/O under BFQ: next */
	put("blkio.throttle.io_serviced_recursive", "8:0 Read 3\n8:0 Write 4\nTotal 7\n");
	put("blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:16 Write 512\nTotal 4608\n");

	const struct cgroup_ops *o = &cgroup_v1_ops;
	CHECK_INT(o->stats[CG_STAT_CPUACCT](dir, &st), 0);
	CHECK_INT(st.cpu.total, 3000);
	CHECK_INT(st.cpu.n_percpu, 2);
	CHECK_INT(st.cpu.n_percpu_user, 2);
	if (st.cpu.n_percpu_user == 2) {
		CHECK_INT(st.cpu.percpu_user[1], 1500);
		CHECK_INT(st.cpu.percpu_kernel[0], 400);
	}
	long hz = sysconf(_SC_CLK_TCK);
	CHECK_INT(st.cpu.user, 3 * (1000000000LL / hz));
	CHECK_INT(st.cpu.kernel, 2 * (1000000000LL / hz));
	CHECK_INT(o->stats[CG_STAT_CPU](dir, &st), 0);
	CHECK_INT(st.cpu.periods, 10);
	CHECK_INT(st.cpu.throttled_periods, 4);
	CHECK_INT(st.cpu.throttled_time, 5000);
	CHECK_INT(o->stats[CG_STAT_MEMORY](dir, &st), 0);
	CHECK_INT(st.memory.cache, 100);
	CHECK_INT(st.memory.n_raw, 3);
	CHECK_INT(st.memory.usage.usage, 4096);
	CHECK_INT(st.memory.usage.max, 8192);
	CHECK_INT(st.memory.usage.failcnt, 2);
	CHECK(st.memory.usage.limit == 9223372036854771712ULL);
	CHECK_INT(st.memory.swap.limit, 33554432);
	CHECK_INT(st.memory.kernel.usage, 0); /* no kmem files: zero, no error */
	CHECK_INT(o->stats[CG_STAT_PIDS](dir, &st), 0);
	CHECK_INT(st.pids.current, 3);
	CHECK_INT(st.pids.limit, 0); /* max */
	CHECK_INT(o->stats[CG_STAT_CPUSET](dir, &st), 0);
	CHECK(st.cpuset.present);
	CHECK_INT(st.cpuset.n_cpus, 2);
	CHECK_INT(st.cpuset.sched_load_balance, 1);
	CHECK_INT(st.cpuset.sched_relax_domain_level, -1);
	CHECK_INT(o->stats[CG_STAT_BLKIO](dir, &st), 0);
	CHECK_INT(st.blkio.n[CG_BLKIO_SERVICED], 2);
	CHECK_INT(st.blkio.n[CG_BLKIO_SERVICE_BYTES], 2);
	if (st.blkio.n[CG_BLKIO_SERVICE_BYTES] == 2) {
		CHECK_INT(st.blkio.v[CG_BLKIO_SERVICE_BYTES][1].minor, 16);
		CHECK_STR(st.blkio.v[CG_BLKIO_SERVICE_BYTES][1].op, "Write");
		CHECK_INT(st.blkio.v[CG_BLKIO_SERVICE_BYTES][1].value, 512);
	}
	cgroup_stats_clear(&st);

	/* the plain memory counters are not optional */
	char failcnt[128];
	snprintf(failcnt, sizeof failcnt, "%s/memory.failcnt", dir);
	if (unlink(failcnt) == 0) {
		CHECK_INT(o->stats[CG_STAT_MEMORY](dir, &st), -ENOENT);
		CHECK_CONTAINS(err_msg(), "memory.failcnt");
		cgroup_stats_clear(&st);
	}
	rm_dir();
}

static void test_v2(void)
{
	struct cgroup_stats st = { 0 };
	fresh_dir();
	put("cpu.stat", "usage_usec 7\nuser_usec 4\nsystem_usec 3\nnr_periods 9\nnr_throttled 2\nthrottled_usec 11\n");
	put("memory.stat", "anon 300\nfile 200\n");
	put("memory.current", "1000\n");
	put("memory.max", "4000\n");
	put("memory.peak", "1500\n");
	put("memory.events", "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n");
	put("memory.swap.current", "24\n");
	put("memory.swap.max", "max\n");
	put("pids.current", "2\n");
	put("pids.max", "20\n");
	put("io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
	put("cpuset.cpus.effective", "1\n");
	put("cpuset.mems.effective", "0\n");

	const struct cgroup_ops *o = &cgroup_v2_ops;
	CHECK_INT(o->stats[CG_STAT_CPUACCT](dir, &st), 0);
	CHECK_INT(st.cpu.total, 7000);
	CHECK_INT(st.cpu.user, 4000);
	CHECK_INT(st.cpu.kernel, 3000);
	CHECK_INT(st.cpu.periods, 0); /* throttling is the cpu controller's */
	CHECK_INT(o->stats[CG_STAT_CPU](dir, &st), 0);
	CHECK_INT(st.cpu.periods, 9);
	CHECK_INT(st.cpu.throttled_periods, 2);
	CHECK_INT(st.cpu.throttled_time, 11000);
	CHECK_INT(o->stats[CG_STAT_MEMORY](dir, &st), 0);
	CHECK_INT(st.memory.cache, 200);
	CHECK_INT(st.memory.usage.usage, 1000);
	CHECK_INT(st.memory.usage.limit, 4000);
	CHECK_INT(st.memory.usage.max, 1500);
	CHECK_INT(st.memory.usage.failcnt, 6);
	CHECK_INT(st.memory.swap.usage, 1024); /* memory + swap, as v1 */
	CHECK(st.memory.swap.limit == UINT64_MAX);
	CHECK_INT(o->stats[CG_STAT_PIDS](dir, &st), 0);
	CHECK_INT(st.pids.current, 2);
	CHECK_INT(st.pids.limit, 20);
	CHECK_INT(o->stats[CG_STAT_BLKIO](dir, &st), 0);
	CHECK_INT(st.blkio.n[CG_BLKIO_SERVICE_BYTES], 2);
	CHECK_INT(st.blkio.n[CG_BLKIO_SERVICED], 2);
	if (st.blkio.n[CG_BLKIO_SERVICE_BYTES] == 2) {
		CHECK_STR(st.blkio.v[CG_BLKIO_SERVICE_BYTES][0].op, "Read");
		CHECK_INT(st.blkio.v[CG_BLKIO_SERVICE_BYTES][0].value, 4096);
		CHECK_INT(st.blkio.v[CG_BLKIO_SERVICE_BYTES][1].value, 8192);
	}
	CHECK_INT(o->stats[CG_STAT_CPUSET](dir, &st), 0);
	CHECK_INT(st.cpuset.n_cpus, 1);
	cgroup_stats_clear(&st);

	put("memory.swap.max", "100\n");
	CHECK_INT(o->stats[CG_STAT_MEMORY](dir, &st), 0);
	CHECK_INT(st.memory.swap.limit, 4100);
	cgroup_stats_clear(&st);
	rm_dir();
}

int main(void)
{
	test_parsers();
	test_v1();
	test_v2();
	return unit_done("test-cgroup-stats");
}
