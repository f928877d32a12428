/* cgroup manager tests: layout detection, the saved-path format, and (as
 * root) real cgroups under /isola-unit-test-<pid> in every hierarchy: create,
 * enter, apply, freeze, kill, destroy, the container's cgroup mount. Run in
 * a private mount namespace with another layout by scripts/cgroup-modes.sh;
 * ISOLA_EXPECT_CGROUP_MODE=legacy|hybrid|unified says which one to expect. */
#include "unit.h"
#include "sandbox/cgroup.h"
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <unistd.h>

static const char *const mode_names[] = { "legacy", "hybrid", "unified" };
static enum cgroup_mode mode;
static char base[64]; /* "/isola-unit-test-<pid>" */

/* ---- what the host has, found independently of the code under test ---- */

struct mnt { char dir[256], opts[256]; bool v2; };
static struct mnt mnts[32];
static int n_mnts;

static void load_mounts(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	while (f && fgets(line, sizeof line, f) && n_mnts < 32) {
		char dir[256], fstype[32], src[256], opts[256];
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", dir) != 1 ||
		    sscanf(sep + 3, "%31s %255s %255s", fstype, src, opts) != 3)
			continue;
		bool v2 = !strcmp(fstype, "cgroup2");
		if (!v2 && strcmp(fstype, "cgroup"))
			continue;
		if (mode == CGROUP_UNIFIED && !v2)
			continue;
		bool dup = false;
		for (int i = 0; i < n_mnts; i++)
			dup |= mnts[i].v2 == v2 && !strcmp(mnts[i].opts, v2 ? "" : opts);
		if (dup)
			continue;
		struct mnt *m = &mnts[n_mnts++];
		snprintf(m->dir, sizeof m->dir, "%s", dir);
		snprintf(m->opts, sizeof m->opts, "%s", v2 ? "" : opts);
		m->v2 = v2;
	}
	if (f)
		fclose(f);
}

static bool has_token(const char *list, const char *tok, char sep)
{
	size_t n = strlen(tok);
	for (const char *p = list; (p = strstr(p, tok)); p += n)
		if ((p == list || p[-1] == sep) && (p[n] == sep || !p[n]))
			return true;
	return false;
}

static const char *v1_mount(const char *ctrl)
{
	for (int i = 0; i < n_mnts; i++)
		if (!mnts[i].v2 && has_token(mnts[i].opts, ctrl, ','))
			return mnts[i].dir;
	return NULL;
}

static const char *v2_mount(void)
{
	for (int i = 0; i < n_mnts; i++)
		if (mnts[i].v2)
			return mnts[i].dir;
	return NULL;
}

static int read_str(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return 0;
}

static const char *readf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *readf(const char *fmt, ...)
{
	static char buf[4][4096];
	static int k;
	char path[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	char *b = buf[k++ % 4];
	return read_str(path, b, sizeof buf[0]) < 0 ? "(unreadable)" : b;
}

static bool exists(const char *dir, const char *sub)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof p, "%s%s", dir, sub);
	return stat(p, &st) == 0;
}

/* Is controller c usable in the cgroup2 directory sub? */
static bool v2_has(const char *sub, const char *c)
{
	const char *m = v2_mount();
	return m && has_token(readf("%s%s/cgroup.controllers", m, sub), c, ' ');
}

static enum cgroup_mode expected_mode(void)
{
	const char *e = getenv("ISOLA_EXPECT_CGROUP_MODE");
	struct statfs s;
	for (int i = 0; e && i < 3; i++)
		if (!strcmp(e, mode_names[i]))
			return (enum cgroup_mode)i;
	if (statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_UNIFIED;
	if (statfs("/sys/fs/cgroup/unified", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_HYBRID;
	return CGROUP_LEGACY;
}

/* ---- tests that need no privileges ---- */

static void test_paths_unprivileged(void)
{
	cgroup *cg = NULL;
	CHECK(cgroup_create("system.slice:isola:abc", "abc", &cg) == -EINVAL);
	CHECK_CONTAINS(err_msg(), "systemd cgroup paths need the systemd driver, which isola-oci does not have");
	CHECK(cg == NULL);
	CHECK(cgroup_create(NULL, NULL, &cg) < 0);
	CHECK(cgroup_create(NULL, "a/b", &cg) < 0);
	CHECK(cgroup_create("/", "x", &cg) < 0);
	CHECK_CONTAINS(err_msg(), "root cgroup");
	CHECK(cgroup_create("/a/../..", "x", &cg) < 0);
	CHECK(cg == NULL);

	CHECK(cgroup_open("", &cg) < 0);
	CHECK(cgroup_open("garbage", &cg) < 0);
	CHECK(cgroup_open("1:relative", &cg) < 0);
	CHECK(cgroup_open("1:/a/../b", &cg) < 0);
	CHECK(cgroup_open("1:/", &cg) < 0);
	CHECK_CONTAINS(err_msg(), "invalid saved cgroup path");
	CHECK(cg == NULL);

	/* opening touches nothing on disk; the string comes back unchanged */
	const char *forms[] = { "1:/x", "2:/a%3Bb/c%25d", "0:/shared/ctr" };
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		CHECK_INT(cgroup_open(forms[i], &cg), 0);
		if (cg)
			CHECK_STR(cgroup_path(cg), forms[i]);
		cgroup_free(cg);
		cg = NULL;
	}
	/* the per-hierarchy form: entries for hierarchies not mounted are skipped */
	if (mode != CGROUP_UNIFIED && v1_mount("memory")) {
		CHECK_INT(cgroup_open("memory=1:/m;nonexistent_ctrl=1:/n", &cg), 0);
		cgroup_free(cg);
		cg = NULL;
	}
	CHECK(cgroup_open("nonexistent_ctrl=1:/n", &cg) < 0);
}

/* ---- backend output formats, against plain files in a temporary directory
 * (no privileges; a missing file is a missing kernel interface) ---- */

static char fakedir[64];

/* The directory holds exactly these (empty) files afterwards. */
static void fake(const char *files)
{
	char list[1024], p[256];
	DIR *d = opendir(fakedir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			(void)unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	snprintf(list, sizeof list, "%s", files);
	for (char *f = strtok(list, " "); f; f = strtok(NULL, " ")) {
		snprintf(p, sizeof p, "%s/%s", fakedir, f);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
}

static const char *fread_(const char *file)
{
	return readf("%s/%s", fakedir, file);
}

static void test_backend_formats(void)
{
	const struct cgroup_ops *v1 = &cgroup_v1_ops, *v2 = &cgroup_v2_ops;
	spec_resources r;
	snprintf(fakedir, sizeof fakedir, "/tmp/isola-unit-cgfake-XXXXXX");
	if (!mkdtemp(fakedir)) {
		CHECK(!"mkdtemp");
		return;
	}

	/* v2 memory: swap is memory+swap in the spec, swap alone in v2 */
	fake("memory.max memory.swap.max memory.low");
	memset(&r, 0, sizeof r);
	r.memory.limit = (opt_i64){ true, 256 << 20 };
	r.memory.swap = (opt_i64){ true, 384 << 20 };
	r.memory.reservation = (opt_i64){ true, -1 };
	CHECK_INT(v2->apply[CG_RES_MEMORY](fakedir, &r), 0);
	CHECK_STR(fread_("memory.max"), "268435456");
	CHECK_STR(fread_("memory.swap.max"), "134217728");
	CHECK_STR(fread_("memory.low"), "max");
	r.memory.swap.v = 1 << 20;
	CHECK(v2->apply[CG_RES_MEMORY](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.memory.swap: 1048576 is below memory.limit");
	r.memory.limit.has = false;
	CHECK(v2->apply[CG_RES_MEMORY](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.memory.swap: needs a memory.limit");
	memset(&r, 0, sizeof r);
	r.memory.disable_oom_killer = (opt_bool){ true, true };
	CHECK_INT(v2->apply[CG_RES_MEMORY](fakedir, &r), -EOPNOTSUPP);
	CHECK_CONTAINS(err_msg(), "linux.resources.memory.disableOOMKiller: not supported by cgroup v2");
	memset(&r, 0, sizeof r);
	r.memory.kernel = (opt_i64){ true, 1 << 20 };
	CHECK(v2->apply[CG_RES_MEMORY](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.memory.kernel");
	fake("memory.max memory.swap.max");
	memset(&r, 0, sizeof r);
	r.memory.limit = (opt_i64){ true, -1 };
	CHECK_INT(v2->apply[CG_RES_MEMORY](fakedir, &r), 0);
	CHECK_STR(fread_("memory.max"), "max");
	CHECK_STR(fread_("memory.swap.max"), "max");

	/* v2 cpu: shares -> weight, quota/period -> cpu.max */
	fake("cpu.weight cpu.max cpu.max.burst cpu.idle");
	memset(&r, 0, sizeof r);
	r.cpu.shares = (opt_u64){ true, 1024 };
	r.cpu.quota = (opt_i64){ true, -1 };
	r.cpu.period = (opt_u64){ true, 50000 };
	r.cpu.burst = (opt_u64){ true, 1000 };
	r.cpu.idle = (opt_i64){ true, 1 };
	CHECK_INT(v2->apply[CG_RES_CPU](fakedir, &r), 0);
	CHECK_STR(fread_("cpu.weight"), "39");
	CHECK_STR(fread_("cpu.max"), "max 50000");
	CHECK_STR(fread_("cpu.max.burst"), "1000");
	CHECK_STR(fread_("cpu.idle"), "1");
	r.cpu.shares.v = 262144;
	r.cpu.quota.v = 20000;
	r.cpu.period.has = false;
	fake("cpu.weight cpu.max cpu.max.burst cpu.idle");
	CHECK_INT(v2->apply[CG_RES_CPU](fakedir, &r), 0);
	CHECK_STR(fread_("cpu.weight"), "10000");
	CHECK_STR(fread_("cpu.max"), "20000");
	r.cpu.shares.v = 2;
	r.cpu.quota.has = false;
	r.cpu.period = (opt_u64){ true, 100000 };
	fake("cpu.weight cpu.max cpu.max.burst cpu.idle");
	CHECK_INT(v2->apply[CG_RES_CPU](fakedir, &r), 0);
	CHECK_STR(fread_("cpu.weight"), "1");
	CHECK_STR(fread_("cpu.max"), "max 100000");
	/* a period alone keeps the current quota */
	fake("cpu.weight cpu.max cpu.max.burst cpu.idle");
	CHECK_INT(cg_write(NULL, fakedir, "cpu.max", "30000 100000"), 0);
	r.cpu.period.v = 200000; /* as long as before: plain files are not truncated */
	CHECK_INT(v2->apply[CG_RES_CPU](fakedir, &r), 0);
	CHECK_STR(fread_("cpu.max"), "30000 200000");
	memset(&r, 0, sizeof r);
	r.cpu.realtime_runtime = (opt_i64){ true, 1000 };
	CHECK_INT(v2->apply[CG_RES_CPU](fakedir, &r), -EOPNOTSUPP);
	CHECK_CONTAINS(err_msg(), "linux.resources.cpu.realtimeRuntime");

	/* v2 io: weight through io.weight when BFQ is absent, one io.max line per device */
	fake("io.weight io.max");
	spec_throttle_dev rb = { 8, 0, 1048576 }, wi = { 8, 0, 100 }, wb = { 8, 0, 0 };
	memset(&r, 0, sizeof r);
	r.blkio.weight = (opt_u64){ true, 500 };
	r.blkio.throttle[THROTTLE_READ_BPS] = &rb;
	r.blkio.n_throttle[THROTTLE_READ_BPS] = 1;
	r.blkio.throttle[THROTTLE_WRITE_BPS] = &wb;
	r.blkio.n_throttle[THROTTLE_WRITE_BPS] = 1;
	r.blkio.throttle[THROTTLE_WRITE_IOPS] = &wi;
	r.blkio.n_throttle[THROTTLE_WRITE_IOPS] = 1;
	CHECK_INT(v2->apply[CG_RES_BLKIO](fakedir, &r), 0);
	CHECK_STR(fread_("io.weight"), "default 4950");
	CHECK_STR(fread_("io.max"), "8:0 rbps=1048576 wbps=max wiops=100");
	fake("io.bfq.weight io.max");
	CHECK_INT(v2->apply[CG_RES_BLKIO](fakedir, &r), 0);
	CHECK_STR(fread_("io.bfq.weight"), "default 500");
	r.blkio.leaf_weight = (opt_u64){ true, 10 };
	CHECK_INT(v2->apply[CG_RES_BLKIO](fakedir, &r), -EOPNOTSUPP);
	CHECK_CONTAINS(err_msg(), "linux.resources.blockIO.leafWeight");

	/* hugetlb, rdma, pids, devices */
	fake("hugetlb.2MB.max rdma.max pids.max");
	spec_hugepage hp = { "2MB", 8 << 20 }, bad = { "1GB", 0 };
	spec_rdma rd = { "mlx5_0", { true, 10 }, { false, 0 } };
	memset(&r, 0, sizeof r);
	r.hugepages = &hp;
	r.n_hugepages = 1;
	r.rdma = &rd;
	r.n_rdma = 1;
	r.pids.limit = (opt_i64){ true, 0 };
	CHECK_INT(v2->apply[CG_RES_HUGETLB](fakedir, &r), 0);
	CHECK_STR(fread_("hugetlb.2MB.max"), "8388608");
	CHECK_INT(v2->apply[CG_RES_RDMA](fakedir, &r), 0);
	CHECK_STR(fread_("rdma.max"), "mlx5_0 hca_handle=10");
	CHECK_INT(v2->apply[CG_RES_PIDS](fakedir, &r), 0);
	CHECK_STR(fread_("pids.max"), "max");
	r.hugepages = &bad;
	CHECK(v2->apply[CG_RES_HUGETLB](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.hugepageLimits[0]: hugetlb.1GB.max does not exist");
	CHECK_INT(v2->apply[CG_RES_DEVICES](fakedir, &r), 0); /* no rules: nothing to do */
	CHECK(v2->apply[CG_RES_NET_CLS] == NULL);

	/* v1 memory */
	fake("memory.limit_in_bytes memory.memsw.limit_in_bytes memory.soft_limit_in_bytes memory.swappiness "
	     "memory.oom_control memory.use_hierarchy");
	memset(&r, 0, sizeof r);
	r.memory.limit = (opt_i64){ true, 256 << 20 };
	r.memory.swap = (opt_i64){ true, -1 };
	r.memory.reservation = (opt_i64){ true, 128 << 20 };
	r.memory.swappiness = (opt_u64){ true, 0 };
	r.memory.disable_oom_killer = (opt_bool){ true, true };
	r.memory.use_hierarchy = (opt_bool){ true, true };
	CHECK_INT(v1->apply[CG_RES_MEMORY](fakedir, &r), 0);
	CHECK_STR(fread_("memory.limit_in_bytes"), "268435456");
	CHECK_STR(fread_("memory.memsw.limit_in_bytes"), "-1");
	CHECK_STR(fread_("memory.soft_limit_in_bytes"), "134217728");
	CHECK_STR(fread_("memory.swappiness"), "0");
	CHECK_STR(fread_("memory.oom_control"), "1");
	CHECK_STR(fread_("memory.use_hierarchy"), "1");
	r.memory.swappiness.v = 101;
	CHECK(v1->apply[CG_RES_MEMORY](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.memory.swappiness: must be 0..100");
	memset(&r, 0, sizeof r);
	r.memory.kernel = (opt_i64){ true, 1 << 20 };
	CHECK_INT(v1->apply[CG_RES_MEMORY](fakedir, &r), -ENOENT);
	CHECK_CONTAINS(err_msg(), "linux.resources.memory.kernel: memory.kmem.limit_in_bytes does not exist");
	/* an unlimited limit without a swap value lifts memory+swap too (runc);
	 * without swap accounting there is nothing to lift */
	fake("memory.limit_in_bytes memory.memsw.limit_in_bytes");
	memset(&r, 0, sizeof r);
	r.memory.limit = (opt_i64){ true, -1 };
	CHECK_INT(v1->apply[CG_RES_MEMORY](fakedir, &r), 0);
	CHECK_STR(fread_("memory.limit_in_bytes"), "-1");
	CHECK_STR(fread_("memory.memsw.limit_in_bytes"), "-1");
	fake("memory.limit_in_bytes");
	CHECK_INT(v1->apply[CG_RES_MEMORY](fakedir, &r), 0);
	CHECK_STR(fread_("memory.limit_in_bytes"), "-1");

	/* v1 cpu and blkio (BFQ only, as on kernels since 5.0) */
	fake("cpu.shares cpu.cfs_quota_us cpu.cfs_period_us cpu.rt_period_us cpu.rt_runtime_us blkio.bfq.weight "
	     "blkio.bfq.weight_device blkio.throttle.write_iops_device");
	memset(&r, 0, sizeof r);
	r.cpu.shares = (opt_u64){ true, 512 };
	r.cpu.quota = (opt_i64){ true, -1 };
	r.cpu.period = (opt_u64){ true, 100000 };
	r.cpu.realtime_period = (opt_u64){ true, 1000000 };
	r.cpu.realtime_runtime = (opt_i64){ true, 950000 };
	CHECK_INT(v1->apply[CG_RES_CPU](fakedir, &r), 0);
	CHECK_STR(fread_("cpu.shares"), "512");
	CHECK_STR(fread_("cpu.cfs_quota_us"), "-1");
	CHECK_STR(fread_("cpu.cfs_period_us"), "100000");
	CHECK_STR(fread_("cpu.rt_runtime_us"), "950000");
	r.cpu.idle = (opt_i64){ true, 1 };
	CHECK(v1->apply[CG_RES_CPU](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.cpu.idle: cpu.idle does not exist");
	memset(&r, 0, sizeof r);
	r.blkio.weight = (opt_u64){ true, 300 };
	r.blkio.throttle[THROTTLE_WRITE_IOPS] = &wi;
	r.blkio.n_throttle[THROTTLE_WRITE_IOPS] = 1;
	CHECK_INT(v1->apply[CG_RES_BLKIO](fakedir, &r), 0);
	CHECK_STR(fread_("blkio.bfq.weight"), "300");
	CHECK_STR(fread_("blkio.throttle.write_iops_device"), "8:0 100");
	/* per device: BFQ's weight_device file, never the bare-number one */
	spec_weight_dev wd = { .major = 7, .minor = 3, .weight = { true, 500 } };
	r.blkio.weight.has = false;
	r.blkio.weight_device = &wd;
	r.blkio.n_weight_device = 1;
	CHECK_INT(v1->apply[CG_RES_BLKIO](fakedir, &r), 0);
	CHECK_STR(fread_("blkio.bfq.weight_device"), "7:3 500");
	CHECK_STR(fread_("blkio.bfq.weight"), "300");
	r.blkio.weight_device = NULL;
	r.blkio.n_weight_device = 0;
	r.blkio.leaf_weight = (opt_u64){ true, 10 };
	CHECK(v1->apply[CG_RES_BLKIO](fakedir, &r) < 0);
	CHECK_CONTAINS(err_msg(), "linux.resources.blockIO.leafWeight: blkio.leaf_weight does not exist");

	/* v1 net_prio names the entry */
	spec_netprio np = { "eth0", 5 };
	fake("net_prio.ifpriomap net_cls.classid");
	memset(&r, 0, sizeof r);
	r.network.priorities = &np;
	r.network.n_priorities = 1;
	r.network.class_id = (opt_u64){ true, 0x100001 };
	CHECK_INT(v1->apply[CG_RES_NET_PRIO](fakedir, &r), 0);
	CHECK_STR(fread_("net_prio.ifpriomap"), "eth0 5");
	CHECK_INT(v1->apply[CG_RES_NET_CLS](fakedir, &r), 0);
	CHECK_STR(fread_("net_cls.classid"), "1048577");

	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fakedir);
	CHECK_INT(system(cmd), 0);
}

/* ---- real cgroups ---- */

struct kid { pid_t pid; int go, ack; };

/* A child that, once told, touches some memory (charged to its new cgroup)
 * and then sleeps. */
static struct kid spawn(void)
{
	int go[2], ack[2];
	struct kid k = { -1, -1, -1 };
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0)
		return k;
	k.pid = fork();
	if (k.pid == 0) {
		char c;
		if (read(go[0], &c, 1) == 1) {
			size_t n = 4 << 20;
			volatile char *m = malloc(n);
			for (size_t i = 0; m && i < n; i += 4096)
				m[i] = 1;
			(void)!write(ack[1], "k", 1);
		}
		for (;;)
			pause();
	}
	close(go[0]);
	close(ack[1]);
	k.go = go[1];
	k.ack = ack[0];
	return k;
}

static void kid_go(struct kid *k)
{
	char c;
	(void)!write(k->go, "g", 1);
	(void)!read(k->ack, &c, 1);
}

static void kid_close(struct kid *k)
{
	close(k->go);
	close(k->ack);
}

/* Every line of /proc/<pid>/cgroup that belongs to a hierarchy in use ends
 * in `want` (prefixed by the process's own cgroup when `rel`). */
static void check_proc_cgroup(pid_t pid, const char *want, const char *own_cgroup_file)
{
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "re");
	int checked = 0;
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		bool v2line = !strncmp(line, "0::", 3);
		if ((mode == CGROUP_UNIFIED && !v2line) || (mode == CGROUP_LEGACY && v2line))
			continue;
		char *c = strchr(strchr(line, ':') + 1, ':') + 1, expect[1024];
		snprintf(expect, sizeof expect, "%s", want);
		if (own_cgroup_file) { /* relative: below our own cgroup of that hierarchy */
			char own[1024], key[256];
			FILE *o = fopen(own_cgroup_file, "re");
			snprintf(key, sizeof key, "%.*s", (int)(c - strchr(line, ':') - 2), strchr(line, ':') + 1);
			while (o && fgets(own, sizeof own, o)) {
				own[strcspn(own, "\n")] = '\0';
				char *oc = strchr(own, ':') + 1;
				if (!strncmp(oc, key, strlen(key)) && oc[strlen(key)] == ':')
					snprintf(expect, sizeof expect, "%s/%s", strcmp(oc + strlen(key) + 1, "/") ?
						 oc + strlen(key) + 1 : "", want);
			}
			if (o)
				fclose(o);
		}
		CHECK_STR(c, expect);
		checked++;
	}
	if (f)
		fclose(f);
	CHECK(checked > 0);
}

/* Directories sub exist (or not) in every hierarchy. */
static void check_dirs(const char *sub, bool want)
{
	for (int i = 0; i < n_mnts; i++)
		if (exists(mnts[i].dir, sub) != want) {
			unit_fail++;
			fprintf(stderr, "%s%s: %s\n", mnts[i].dir, sub, want ? "missing" : "still there");
		} else
			unit_pass++;
}

static void test_apply(cgroup *cg, const char *p, struct kid *k)
{
	const char *m;
	spec_resources r;

	/* memory limit, with the v1 file or the v2 one */
	memset(&r, 0, sizeof r);
	r.present = true;
	r.memory.limit = (opt_i64){ true, 64 << 20 };
	int rc = cgroup_apply(cg, &r);
	if ((m = v1_mount("memory"))) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/memory.limit_in_bytes", m, p), "67108864");
	} else if (v2_has(p, "memory")) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/memory.max", v2_mount(), p), "67108864");
	} else {
		CHECK(rc < 0);
		CHECK_CONTAINS(err_msg(), "linux.resources.memory.limit: cgroup controller 'memory' is not");
	}
	/* checkBeforeUpdate: the child touched 4 MiB after it entered */
	r.memory.limit.v = 1 << 20;
	r.memory.check_before_update = (opt_bool){ true, true };
	if (v1_mount("memory") || v2_has(p, "memory")) {
		CHECK(cgroup_apply(cg, &r) < 0);
		CHECK_CONTAINS(err_msg(), "linux.resources.memory.limit: 1048576 is below the current usage");
	}

	/* pids */
	memset(&r, 0, sizeof r);
	r.present = true;
	r.pids.limit = (opt_i64){ true, 100 };
	rc = cgroup_apply(cg, &r);
	if ((m = v1_mount("pids")) || ((m = v2_mount()) && v2_has(p, "pids"))) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/pids.max", m, p), "100");
		r.pids.limit.v = -1;
		CHECK_INT(cgroup_apply(cg, &r), 0);
		CHECK_STR(readf("%s%s/pids.max", m, p), "max");
	} else
		CHECK_CONTAINS(err_msg(), "linux.resources.pids.limit: cgroup controller 'pids'");

	/* cpu quota/period and cpuset */
	memset(&r, 0, sizeof r);
	r.present = true;
	r.cpu.quota = (opt_i64){ true, 50000 };
	r.cpu.period = (opt_u64){ true, 100000 };
	r.cpu.cpus = "0";
	r.cpu.mems = "0";
	rc = cgroup_apply(cg, &r);
	if (v1_mount("cpu") && v1_mount("cpuset")) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/cpu.cfs_quota_us", v1_mount("cpu"), p), "50000");
		CHECK_STR(readf("%s%s/cpu.cfs_period_us", v1_mount("cpu"), p), "100000");
		CHECK_STR(readf("%s%s/cpuset.cpus", v1_mount("cpuset"), p), "0");
		CHECK_STR(readf("%s%s/cpuset.mems", v1_mount("cpuset"), p), "0");
	} else if (v2_has(p, "cpu") && v2_has(p, "cpuset")) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/cpu.max", v2_mount(), p), "50000 100000");
		CHECK_STR(readf("%s%s/cpuset.cpus", v2_mount(), p), "0");
	} else {
		CHECK(rc < 0);
		CHECK_CONTAINS(err_msg(), "linux.resources.cpu.quota: cgroup controller 'cpu' is not");
	}

	/* blkio throttle on the first block device */
	DIR *d = opendir("/sys/dev/block");
	struct dirent *e;
	int maj = -1, min = -1;
	while (d && (e = readdir(d)) && maj < 0)
		if (sscanf(e->d_name, "%d:%d", &maj, &min) != 2)
			maj = -1;
	if (d)
		closedir(d);
	if (maj >= 0) {
		spec_throttle_dev t = { maj, min, 1048576 };
		char want[64];
		memset(&r, 0, sizeof r);
		r.present = true;
		r.blkio.throttle[THROTTLE_READ_BPS] = &t;
		r.blkio.n_throttle[THROTTLE_READ_BPS] = 1;
		rc = cgroup_apply(cg, &r);
		if ((m = v1_mount("blkio"))) {
			CHECK_INT(rc, 0);
			snprintf(want, sizeof want, "%d:%d 1048576", maj, min);
			CHECK_STR(readf("%s%s/blkio.throttle.read_bps_device", m, p), want);
		} else if (v2_has(p, "io")) {
			CHECK_INT(rc, 0);
			snprintf(want, sizeof want, "%d:%d rbps=1048576", maj, min);
			CHECK_CONTAINS(readf("%s%s/io.max", v2_mount(), p), want);
		} else
			CHECK_CONTAINS(err_msg(), "linux.resources.blockIO.throttleReadBpsDevice: cgroup controller");
	}

	/* hugetlb: on this kind of hybrid host it lives in the cgroup2 hierarchy */
	spec_hugepage hp = { "2MB", 4 << 20 };
	memset(&r, 0, sizeof r);
	r.present = true;
	r.hugepages = &hp;
	r.n_hugepages = 1;
	rc = cgroup_apply(cg, &r);
	if ((m = v1_mount("hugetlb")) && exists(m, "/hugetlb.2MB.limit_in_bytes")) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/hugetlb.2MB.limit_in_bytes", m, p), "4194304");
	} else if (!m && v2_has("", "hugetlb") && exists("/sys/kernel/mm/hugepages/", "hugepages-2048kB")) {
		/* create enabled it in every ancestor's cgroup.subtree_control */
		CHECK(v2_has(p, "hugetlb"));
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/hugetlb.2MB.max", v2_mount(), p), "4194304");
	} else
		CHECK(rc < 0 && strstr(err_msg(), "linux.resources.hugepageLimits"));

	/* net_cls is v1 only and not mounted on every host */
	memset(&r, 0, sizeof r);
	r.present = true;
	r.network.class_id = (opt_u64){ true, 0x100001 };
	rc = cgroup_apply(cg, &r);
	if ((m = v1_mount("net_cls"))) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/net_cls.classid", m, p), "1048577");
	} else {
		CHECK_INT(rc, -EOPNOTSUPP);
		CHECK_CONTAINS(err_msg(), "linux.resources.network.classID: cgroup controller 'net_cls' is not mounted");
	}

	/* devices: v1 list, or an eBPF program on v2 */
	spec_dev_rule rules[] = {
		{ false, 'a', -1, -1, "rwm" },
		{ true, 'c', 1, 3, "rwm" },
		{ true, 'c', 136, -1, "rw" },
	};
	memset(&r, 0, sizeof r);
	r.present = true;
	r.devices = rules;
	r.n_devices = ARRAY_SIZE(rules);
	rc = cgroup_apply(cg, &r);
	if ((m = v1_mount("devices"))) {
		CHECK_INT(rc, 0);
		CHECK_STR(readf("%s%s/devices.list", m, p), "c 1:3 rwm\nc 136:* rw");
	} else if (v2_mount()) { /* an eBPF program (cgroup-bpf.c); applying again replaces it */
		char dir[512];
		CHECK_INT(rc, 0);
		snprintf(dir, sizeof dir, "%s%s", v2_mount(), p);
		CHECK_INT(cg_bpf_devices_count(dir), 1);
		CHECK_INT(cgroup_apply(cg, &r), 0);
		CHECK_INT(cg_bpf_devices_count(dir), 1);
	} else
		CHECK_INT(rc, -EOPNOTSUPP);

	/* fields v2 cannot express */
	if (mode == CGROUP_UNIFIED && v2_has(p, "memory")) {
		memset(&r, 0, sizeof r);
		r.present = true;
		r.memory.swappiness = (opt_u64){ true, 10 };
		CHECK(cgroup_apply(cg, &r) < 0);
		CHECK_CONTAINS(err_msg(), "linux.resources.memory.swappiness");
	}
	if (mode == CGROUP_UNIFIED && v2_has(p, "cpu")) {
		memset(&r, 0, sizeof r);
		r.present = true;
		r.cpu.shares = (opt_u64){ true, 1024 };
		CHECK_INT(cgroup_apply(cg, &r), 0);
		CHECK_STR(readf("%s%s/cpu.weight", v2_mount(), p), "39");
	}

	/* unified: only where a cgroup2 hierarchy has the controller */
	spec_kv kv = { "memory.high", "max" };
	memset(&r, 0, sizeof r);
	r.present = true;
	r.unified = &kv;
	r.n_unified = 1;
	rc = cgroup_apply(cg, &r);
	if (v2_has(p, "memory"))
		CHECK_INT(rc, 0);
	else if (mode != CGROUP_UNIFIED)
		CHECK_CONTAINS(err_msg(), "linux.resources.unified: memory.high: no cgroup v2 controller on this host");
	else
		CHECK_CONTAINS(err_msg(), "linux.resources.unified: memory.high: cgroup v2 controller 'memory'");
	kv.key = "../escape";
	CHECK(cgroup_apply(cg, &r) < 0);
	(void)k;
}

static void test_lifecycle(void)
{
	char p[128];
	cgroup *cg = NULL, *cg2 = NULL;
	snprintf(p, sizeof p, "%s/ctr", base);
	int rc = cgroup_create(p, "ignored", &cg);
	CHECK_INT(rc, 0);
	if (rc < 0) {
		fprintf(stderr, "create: %s\n", err_msg());
		return;
	}
	char want[160];
	snprintf(want, sizeof want, "2:%s", p);
	CHECK_STR(cgroup_path(cg), want);
	check_dirs(p, true);
	if (v1_mount("cpuset")) /* inherited so that a process can enter */
		CHECK(strlen(readf("%s%s/cpuset.cpus", v1_mount("cpuset"), p)) > 0);

	struct kid k = spawn();
	CHECK(k.pid > 0);
	CHECK_INT(cgroup_enter(cg, k.pid), 0);
	kid_go(&k);
	check_proc_cgroup(k.pid, p, NULL);

	pid_t *pids = NULL;
	size_t n = 0;
	CHECK_INT(cgroup_pids(cg, &pids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(n ? pids[0] : 0, k.pid);
	free(pids);
	CHECK(!cgroup_is_empty(cg));

	test_apply(cg, p, &k);

	/* freeze / thaw */
	CHECK(!cgroup_is_frozen(cg));
	CHECK_INT(cgroup_freeze(cg, true), 0);
	CHECK(cgroup_is_frozen(cg));
	if (v1_mount("freezer"))
		CHECK_STR(readf("%s%s/freezer.state", v1_mount("freezer"), p), "FROZEN");
	else
		CHECK_CONTAINS(readf("%s%s/cgroup.events", v2_mount(), p), "frozen 1");
	CHECK_INT(cgroup_freeze(cg, false), 0);
	CHECK(!cgroup_is_frozen(cg));

	/* a second handle from the saved string manages the same directories */
	CHECK_INT(cgroup_open(cgroup_path(cg), &cg2), 0);

	/* kill --all, both paths: a plain signal to each pid, and SIGKILL */
	struct kid k2 = spawn();
	CHECK_INT(cgroup_enter(cg2, k2.pid), 0);
	kid_go(&k2);
	CHECK_INT(cgroup_pids(cg2, &pids, &n), 0);
	CHECK_INT(n, 2);
	free(pids);
	CHECK_INT(cgroup_kill_all(cg2, SIGTERM), 0);
	int st = 0;
	CHECK_INT(waitpid(k.pid, &st, 0), k.pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	CHECK_INT(waitpid(k2.pid, &st, 0), k2.pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	kid_close(&k);
	kid_close(&k2);
	CHECK(cgroup_is_empty(cg2));

	k = spawn();
	CHECK_INT(cgroup_enter(cg, k.pid), 0);
	kid_go(&k);
	CHECK_INT(cgroup_freeze(cg, true), 0); /* a paused container can be killed */
	CHECK_INT(cgroup_kill_all(cg, SIGKILL), 0);
	CHECK_INT(waitpid(k.pid, &st, 0), k.pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	kid_close(&k);
	CHECK(cgroup_is_empty(cg));
	CHECK_INT(cgroup_freeze(cg, false), 0);

	/* nested cgroups the container made go too */
	char sub[512];
	snprintf(sub, sizeof sub, "%s%s/nested", v2_mount() && mode == CGROUP_UNIFIED ? v2_mount() : mnts[0].dir, p);
	CHECK_INT(mkdir(sub, 0755), 0);

	CHECK_INT(cgroup_destroy(cg2), 0);
	check_dirs(base, false);
	CHECK_INT(cgroup_destroy(cg2), 0); /* twice is harmless */
	cgroup_free(cg2);
	cgroup_free(cg);
}

/* Shared parents: created by one container, reused by another. */
static void test_shared(void)
{
	char a[128], b[128];
	cgroup *ca = NULL, *cb = NULL;
	snprintf(a, sizeof a, "%s/a", base);
	snprintf(b, sizeof b, "%s/b", base);
	CHECK_INT(cgroup_create(a, "a", &ca), 0);
	CHECK_INT(cgroup_create(b, "b", &cb), 0);
	if (!ca || !cb)
		return;
	char want[160];
	snprintf(want, sizeof want, "1:%s", b);
	CHECK_STR(cgroup_path(cb), want);
	/* b created only its leaf; destroying it keeps the parent for a */
	CHECK_INT(cgroup_destroy(cb), 0);
	check_dirs(b, false);
	check_dirs(a, true);
	/* reusing an existing cgroup: destroy removes nothing */
	cgroup *cc = NULL;
	CHECK_INT(cgroup_create(a, "c", &cc), 0);
	snprintf(want, sizeof want, "0:%s", a);
	CHECK_STR(cc ? cgroup_path(cc) : NULL, want);
	CHECK_INT(cc ? cgroup_destroy(cc) : -1, 0);
	check_dirs(a, true);
	cgroup_free(cc);
	CHECK_INT(cgroup_destroy(ca), 0);
	check_dirs(base, false);
	cgroup_free(ca);
	cgroup_free(cb);
}

/* NULL path, ':' in an absolute path, a path relative to our own cgroup. */
static void test_path_forms(void)
{
	char id[96], p[160];
	cgroup *cg = NULL;
	snprintf(id, sizeof id, "%s-id", base + 1);
	CHECK_INT(cgroup_create(NULL, id, &cg), 0);
	if (cg) {
		snprintf(p, sizeof p, "1:/%s", id);
		CHECK_STR(cgroup_path(cg), p);
		CHECK_INT(cgroup_destroy(cg), 0);
		snprintf(p, sizeof p, "/%s", id);
		check_dirs(p, false);
		cgroup_free(cg);
	}

	snprintf(p, sizeof p, "%s:colon", base);
	CHECK_INT(cgroup_create(p, "x", &cg), 0);
	if (cg) {
		check_dirs(p, true);
		CHECK_INT(cgroup_destroy(cg), 0);
		check_dirs(p, false);
		cgroup_free(cg);
	}

	snprintf(p, sizeof p, "%s-rel/./x/../ctr", base + 1);
	CHECK_INT(cgroup_create(p, "x", &cg), 0);
	if (cg) {
		cgroup *again = NULL;
		struct kid k = spawn();
		char leaf[128];
		snprintf(leaf, sizeof leaf, "%s-rel/ctr", base + 1);
		CHECK_INT(cgroup_enter(cg, k.pid), 0);
		kid_go(&k);
		check_proc_cgroup(k.pid, leaf, "/proc/self/cgroup");
		CHECK_INT(cgroup_kill_all(cg, SIGKILL), 0);
		waitpid(k.pid, NULL, 0);
		kid_close(&k);
		CHECK_INT(cgroup_open(cgroup_path(cg), &again), 0);
		CHECK_INT(again ? cgroup_destroy(again) : -1, 0);
		CHECK(cgroup_is_empty(cg));
		cgroup_free(again);
		cgroup_free(cg);
		/* everything is gone again, whatever our own cgroup is */
		char own[1024];
		FILE *f = fopen("/proc/self/cgroup", "re");
		while (f && fgets(own, sizeof own, f)) {
			own[strcspn(own, "\n")] = '\0';
			const char *path = strchr(strchr(own, ':') + 1, ':') + 1;
			for (int i = 0; i < n_mnts; i++) {
				char d[1200];
				snprintf(d, sizeof d, "%s%s/%s-rel", mnts[i].dir, strcmp(path, "/") ? path : "", base + 1);
				CHECK(access(d, F_OK) < 0);
			}
		}
		if (f)
			fclose(f);
	}
}

/* A failure in one hierarchy undoes the others: the cgroup2 hierarchy
 * refuses the directory through cgroup.max.depth. */
static void test_undo(void)
{
	const char *v2 = v2_mount();
	char parent[256], p[160];
	cgroup *cg = NULL;
	if (!v2)
		return;
	snprintf(p, sizeof p, "%s-d", base);
	snprintf(parent, sizeof parent, "%s%s", v2, p);
	CHECK_INT(mkdir(parent, 0755), 0);
	int fd = open(strcat(parent, "/cgroup.max.depth"), O_WRONLY | O_CLOEXEC);
	CHECK((fd >= 0 && write(fd, "0", 1) == 1));
	close(fd);
	*strrchr(parent, '/') = '\0';
	strcat(p, "/x/y");
	CHECK(cgroup_create(p, "x", &cg) < 0);
	CHECK_CONTAINS(err_msg(), "mkdir");
	CHECK(cg == NULL);
	snprintf(p, sizeof p, "%s-d", base);
	for (int i = 0; i < n_mnts; i++)
		if (!mnts[i].v2)
			CHECK(!exists(mnts[i].dir, p));
	CHECK(!exists(parent, "/x"));
	CHECK_INT(rmdir(parent), 0);
}

static void write_str(const char *dir, const char *rel, const char *file, const char *val)
{
	char path[512];
	snprintf(path, sizeof path, "%s%s/%s", dir, rel, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val));
	if (fd >= 0)
		close(fd);
}

/* A frozen cgroup, the target itself or an ancestor, in the v1 freezer or
 * cgroup2 (hybrid hosts have cgroup.freeze too): create refuses it at once,
 * naming the frozen directory, makes nothing and removes nothing. */
static void test_frozen(void)
{
	struct { const char *mnt, *file, *on, *off; } fz[2];
	int n = 0;
	if (v1_mount("freezer"))
		fz[n++] = (__typeof__(fz[0])){ v1_mount("freezer"), "freezer.state", "FROZEN", "THAWED" };
	if (v2_mount())
		fz[n++] = (__typeof__(fz[0])){ v2_mount(), "cgroup.freeze", "1", "0" };
	char top[128], target[160];
	snprintf(top, sizeof top, "%s-frz", base);
	snprintf(target, sizeof target, "%s/ct", top);
	for (int i = 0; i < n; i++) {
		for (int self = 0; self < 2; self++) {
			const char *frozen = self ? target : top;
			char dir[512], want[640];
			snprintf(dir, sizeof dir, "%s%s", fz[i].mnt, top);
			CHECK_INT(mkdir(dir, 0755), 0);
			if (self) {
				snprintf(dir, sizeof dir, "%s%s", fz[i].mnt, target);
				CHECK_INT(mkdir(dir, 0755), 0);
			}
			char ffile[256];
			snprintf(ffile, sizeof ffile, "%s/%s", frozen, fz[i].file);
			if (!exists(fz[i].mnt, ffile)) { /* cgroup2 before Linux 5.2 */
				printf("test-cgroup: SKIP frozen cgroups in %s: no %s\n", fz[i].mnt, fz[i].file);
				rmdir(dir);
				snprintf(dir, sizeof dir, "%s%s", fz[i].mnt, top);
				rmdir(dir);
				break;
			}
			write_str(fz[i].mnt, frozen, fz[i].file, fz[i].on);
			cgroup *cg = NULL;
			err_clear();
			CHECK_INT(cgroup_create(target, "x", &cg), -EBUSY);
			CHECK(cg == NULL);
			CHECK_CONTAINS(err_msg(), "is frozen");
			snprintf(want, sizeof want, "set on %s%s", fz[i].mnt, frozen);
			CHECK_CONTAINS(err_msg(), want);
			CHECK(exists(fz[i].mnt, frozen)); /* not ours to remove */
			CHECK_STR(readf("%s%s/%s", fz[i].mnt, frozen, fz[i].file), fz[i].on);
			if (!self)
				CHECK(!exists(fz[i].mnt, target)); /* what it made is gone */
			for (int k = 0; k < n_mnts; k++)
				if (strcmp(mnts[k].dir, fz[i].mnt))
					CHECK(!exists(mnts[k].dir, top));
			/* thawed, the same cgroup is fine */
			write_str(fz[i].mnt, frozen, fz[i].file, fz[i].off);
			CHECK_INT(cgroup_create(target, "x", &cg), 0);
			if (cg) {
				CHECK_INT(cgroup_destroy(cg), 0);
				cgroup_free(cg);
			}
			for (int k = 0; k < n_mnts; k++) {
				snprintf(dir, sizeof dir, "%.255s%s", mnts[k].dir, target);
				rmdir(dir);
				snprintf(dir, sizeof dir, "%.255s%s", mnts[k].dir, top);
				rmdir(dir);
			}
		}
	}
	check_dirs(top, false);
}

/* In a child with its own mount namespace: the container's cgroup mount. */
static int mount_child(const char *dir, bool cgroupns, cgroup *cg)
{
	int fails = 0, fd;
	char t[64], path[512], buf[4096];
	if (unshare(CLONE_NEWNS | (cgroupns ? CLONE_NEWCGROUP : 0)) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 100;
	if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 101;
	snprintf(t, sizeof t, "/proc/self/fd/%d", fd);
	if (cgroup_mount_in_container(t, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, cgroupns) < 0) {
		fprintf(stderr, "cgroup_mount_in_container: %s\n", err_msg());
		return 102;
	}
	char me[16];
	snprintf(me, sizeof me, "%d", (int)getpid());
	for (int i = 0; i < n_mnts; i++) {
		const char *name = strrchr(mnts[i].dir, '/') + 1;
		if (mode == CGROUP_UNIFIED)
			snprintf(path, sizeof path, "%s/cgroup.procs", dir);
		else
			snprintf(path, sizeof path, "%s/%s/cgroup.procs", dir, name);
		/* our own cgroup is the root of what is mounted */
		if (read_str(path, buf, sizeof buf) < 0 || !has_token(buf, me, '\n')) {
			fprintf(stderr, "%s: \"%s\" lacks pid %s\n", path, buf, me);
			fails++;
		}
		snprintf(path, sizeof path, "%s/%s/x", dir, mode == CGROUP_UNIFIED ? "." : name);
		if (mkdir(path, 0755) == 0 || errno != EROFS) {
			fprintf(stderr, "mkdir %s: not read-only (%s)\n", path, strerror(errno));
			fails++;
		}
	}
	struct statfs s;
	if (statfs(dir, &s) < 0 || s.f_type != (mode == CGROUP_UNIFIED ? CGROUP2_SUPER_MAGIC : TMPFS_MAGIC)) {
		fprintf(stderr, "%s: wrong filesystem\n", dir);
		fails++;
	}
	(void)cg;
	return fails;
}

static void test_mount(void)
{
	char dir[64], p[128];
	cgroup *cg = NULL;
	snprintf(dir, sizeof dir, "/tmp/isola-unit-cgmnt-%d", (int)getpid());
	snprintf(p, sizeof p, "%s/mnt", base);
	if (mkdir(dir, 0755) < 0 || cgroup_create(p, "m", &cg) < 0) {
		CHECK(!"setup");
		return;
	}
	for (int ns = 0; ns < 2; ns++) {
		int go[2];
		if (pipe2(go, O_CLOEXEC) < 0)
			break;
		pid_t pid = fork();
		if (pid == 0) {
			char c;
			close(go[1]);
			if (read(go[0], &c, 1) != 1)
				_exit(99);
			_exit(mount_child(dir, ns, cg));
		}
		close(go[0]);
		CHECK_INT(cgroup_enter(cg, pid), 0);
		(void)!write(go[1], "g", 1);
		close(go[1]);
		int st = -1;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fprintf(stderr, "mount test (cgroupns=%d): status %d\n", ns, st);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK_INT(cgroup_destroy(cg), 0);
	cgroup_free(cg);
	rmdir(dir);
	check_dirs(base, false);
}

int main(void)
{
	mode = cgroup_mode();
	load_mounts();
	CHECK_STR(mode_names[mode], mode_names[expected_mode()]);
	CHECK(cgroup_mode() == mode); /* cached */
	snprintf(base, sizeof base, "/isola-unit-test-%d", (int)getpid());

	test_paths_unprivileged();
	test_backend_formats();

	cgroup *probe = NULL;
	if (geteuid() != 0) {
		printf("test-cgroup: SKIP real cgroups: not root\n");
		return unit_done("test-cgroup");
	}
	if (cgroup_create(base, "probe", &probe) < 0) {
		printf("test-cgroup: SKIP real cgroups: cannot create %s: %s\n", base, err_msg());
		return unit_done("test-cgroup");
	}
	CHECK_INT(cgroup_destroy(probe), 0);
	cgroup_free(probe);

	test_lifecycle();
	test_shared();
	test_path_forms();
	test_undo();
	test_frozen();
	test_mount();
	check_dirs(base, false);
	printf("test-cgroup: mode %s, %d hierarchies\n", mode_names[mode], n_mnts);
	return unit_done("test-cgroup");
}
