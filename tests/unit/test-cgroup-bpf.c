/* cgroup v2 device filter tests: the compiled program run by a small
 * interpreter against a reference model of the rule semantics, and (as root,
 * with a cgroup2 hierarchy) real programs on <cgroup2>/isola-bpf-test-<pid>
 * enforced on a child process, replaced on update, released with the cgroup.
 * On a hybrid host this is /sys/fs/cgroup/unified, which the runtime itself
 * leaves to the v1 devices controller; scripts/cgroup-modes.sh also runs
 * this test with cgroup2 on /sys/fs/cgroup. */
#include "unit.h"
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define R(allow, type, maj, min, acc) { allow, type, maj, min, acc }
#define ALL_ACC (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

/* ---- the program, interpreted ---- */

/* Every instruction reachable and every jump forward and in range, as the
 * verifier demands; -1 if not. */
static int check_shape(const struct bpf_insn *v, size_t n)
{
	bool seen[4096] = { false };
	if (n == 0 || n > 4096)
		return -1;
	seen[0] = true;
	for (size_t pc = 0; pc < n; pc++) {
		uint8_t cls = BPF_CLASS(v[pc].code), op = BPF_OP(v[pc].code);
		if (!seen[pc])
			return -1;
		if (cls == BPF_JMP && op == BPF_EXIT)
			continue;
		if (cls == BPF_JMP) {
			if (v[pc].off < 0 || pc + 1 + (size_t)v[pc].off >= n)
				return -1;
			seen[pc + 1 + (size_t)v[pc].off] = true;
			if (op == BPF_JA)
				continue;
		}
		if (pc + 1 == n)
			return -1; /* falls off the end */
		seen[pc + 1] = true;
	}
	return 0;
}

/* 1 allowed, 0 denied, negative: an instruction this interpreter lacks. */
static int run(const struct bpf_insn *v, size_t n, int type, int acc, uint32_t maj, uint32_t min)
{
	struct bpf_cgroup_dev_ctx ctx = { (uint32_t)(acc << 16 | type), maj, min };
	uint64_t reg[11] = { 0 };
	for (size_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *i = &v[pc];
		uint64_t imm = (uint64_t)(int64_t)i->imm;
		uint32_t w;
		switch (i->code) {
		case BPF_LDX | BPF_MEM | BPF_W:
			if (i->src_reg != BPF_REG_1 || i->off < 0 || (size_t)i->off + 4 > sizeof ctx)
				return -2;
			memcpy(&w, (char *)&ctx + i->off, 4);
			reg[i->dst_reg] = w;
			break;
		case BPF_ALU | BPF_MOV | BPF_X:
			reg[i->dst_reg] = (uint32_t)reg[i->src_reg];
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			reg[i->dst_reg] = (uint32_t)reg[i->dst_reg] & (uint32_t)i->imm;
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			reg[i->dst_reg] = (uint32_t)reg[i->dst_reg] >> i->imm;
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			reg[i->dst_reg] = imm;
			break;
		case BPF_JMP | BPF_JA:
			pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (reg[i->dst_reg] != imm)
				pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			if (reg[i->dst_reg] & imm)
				pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_EXIT:
			return (int)reg[BPF_REG_0];
		default:
			return -3;
		}
	}
	return -4;
}

/* The semantics, written independently: rules in order, the last one that
 * matches decides each access bit; type 'a' resets everything. */
static int model(const spec_dev_rule *rules, size_t n, char type, int acc, int64_t maj, int64_t min)
{
	static const char bitc[] = { 'm', 'r', 'w' };
	for (int b = 0; b < 3; b++) {
		if (!(acc & (1 << b)))
			continue;
		bool ok = false;
		for (size_t i = 0; i < n; i++) {
			const spec_dev_rule *r = &rules[i];
			if (r->type == 'a')
				ok = r->allow;
			else if (r->type == type && (r->major < 0 || r->major == maj) &&
				 (r->minor < 0 || r->minor == min) && strchr(r->access, bitc[b]))
				ok = r->allow;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

struct prog { struct bpf_insn *v; size_t n; };

static struct prog compile(const spec_dev_rule *rules, size_t n)
{
	struct prog p = { NULL, 0 };
	int r = cg_bpf_devices_compile(rules, n, &p.v, &p.n);
	CHECK_INT(r, 0);
	if (r < 0)
		fprintf(stderr, "  %s\n", err_msg());
	else
		CHECK_INT(check_shape(p.v, p.n), 0);
	return p;
}

/* 1/0 from the compiled program for "c 1:5 rw" style queries. */
static int ask(struct prog p, char type, const char *acc, uint32_t maj, uint32_t min)
{
	int a = 0;
	for (; *acc; acc++)
		a |= *acc == 'm' ? BPF_DEVCG_ACC_MKNOD : *acc == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
	return run(p.v, p.n, type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, a, maj, min);
}

/* Program and model agree on every type, access set and a grid of numbers. */
static void check_against_model(const spec_dev_rule *rules, size_t n)
{
	static const uint32_t nums[] = { 0, 1, 3, 5, 7, 8, 136, 4095, 1048575 };
	struct prog p = compile(rules, n);
	int bad = 0;
	if (!p.v)
		return;
	for (int t = 0; t < 2; t++)
		for (int acc = 0; acc <= ALL_ACC; acc++)
			for (size_t a = 0; a < ARRAY_SIZE(nums); a++)
				for (size_t b = 0; b < ARRAY_SIZE(nums); b++) {
					char type = t ? 'c' : 'b';
					int got = run(p.v, p.n, t ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, acc, nums[a],
						      nums[b]);
					int want = model(rules, n, type, acc, nums[a], nums[b]);
					if (got != want && bad++ < 5)
						fprintf(stderr, "  %c %u:%u access %d: program %d, model %d\n", type,
							nums[a], nums[b], acc, got, want);
				}
	CHECK_INT(bad, 0);
	free(p.v);
}

static void test_compile(void)
{
	/* the usual list: deny all, then allows */
	spec_dev_rule basic[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 3, "rwm"), R(true, 'c', 1, 5, "r"),
	};
	struct prog p = compile(basic, ARRAY_SIZE(basic));
	if (p.v) {
		CHECK_INT(ask(p, 'c', "rw", 1, 3), 1);
		CHECK_INT(ask(p, 'c', "m", 1, 3), 1);
		CHECK_INT(ask(p, 'c', "r", 1, 5), 1);
		CHECK_INT(ask(p, 'c', "w", 1, 5), 0);
		CHECK_INT(ask(p, 'c', "rw", 1, 5), 0);
		CHECK_INT(ask(p, 'c', "m", 1, 5), 0);
		CHECK_INT(ask(p, 'c', "r", 1, 7), 0);
		CHECK_INT(ask(p, 'b', "r", 1, 3), 0);
		free(p.v);
	}
	check_against_model(basic, ARRAY_SIZE(basic));

	/* wildcards; a later deny takes one access away again */
	spec_dev_rule wild[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', -1, -1, "m"), R(true, 'b', -1, -1, "m"),
		R(true, 'c', 1, -1, "rw"), R(false, 'c', 1, 5, "w"), R(true, 'c', -1, 3, "r"),
		R(true, 'c', 136, -1, "rwm"),
	};
	p = compile(wild, ARRAY_SIZE(wild));
	if (p.v) {
		CHECK_INT(ask(p, 'c', "r", 1, 5), 1);
		CHECK_INT(ask(p, 'c', "w", 1, 5), 0);
		CHECK_INT(ask(p, 'c', "rw", 1, 9), 1);
		CHECK_INT(ask(p, 'c', "m", 4, 1), 1);
		CHECK_INT(ask(p, 'c', "r", 4, 1), 0);
		CHECK_INT(ask(p, 'c', "r", 4, 3), 1);
		CHECK_INT(ask(p, 'b', "m", 8, 0), 1);
		CHECK_INT(ask(p, 'b', "r", 8, 0), 0);
		CHECK_INT(ask(p, 'c', "rwm", 136, 2), 1);
		free(p.v);
	}
	check_against_model(wild, ARRAY_SIZE(wild));

	/* type 'a' is every device and every access, whatever else it says */
	spec_dev_rule all_but[] = { R(true, 'a', 5, 5, "r"), R(false, 'c', 1, 7, "rwm") };
	p = compile(all_but, ARRAY_SIZE(all_but));
	if (p.v) {
		CHECK_INT(ask(p, 'c', "rw", 1, 7), 0);
		CHECK_INT(ask(p, 'c', "m", 1, 7), 0);
		CHECK_INT(ask(p, 'c', "rwm", 1, 3), 1);
		CHECK_INT(ask(p, 'b', "rwm", 8, 0), 1);
		free(p.v);
	}
	check_against_model(all_but, ARRAY_SIZE(all_but));
	spec_dev_rule reset[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 3, "rwm"), R(false, 'a', -1, -1, "r"),
		R(true, 'b', 8, -1, "r"),
	};
	p = compile(reset, ARRAY_SIZE(reset));
	if (p.v) {
		CHECK_INT(ask(p, 'c', "r", 1, 3), 0);
		CHECK_INT(ask(p, 'c', "m", 1, 3), 0);
		CHECK_INT(ask(p, 'b', "r", 8, 1), 1);
		CHECK_INT(ask(p, 'b', "w", 8, 1), 0);
		free(p.v);
	}
	check_against_model(reset, ARRAY_SIZE(reset));

	/* without a leading deny-all the default is still deny (as on v1) */
	spec_dev_rule no_default[] = { R(true, 'c', 1, 3, "r") };
	check_against_model(no_default, ARRAY_SIZE(no_default));
	/* accesses granted by separate rules add up */
	spec_dev_rule split[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 5, "r"), R(true, 'c', 1, 5, "w"),
		R(true, 'c', -1, -1, "m"), R(false, 'c', 1, -1, "m"),
	};
	p = compile(split, ARRAY_SIZE(split));
	if (p.v) {
		CHECK_INT(ask(p, 'c', "rw", 1, 5), 1);
		CHECK_INT(ask(p, 'c', "m", 1, 5), 0);
		CHECK_INT(ask(p, 'c', "m", 2, 5), 1);
		free(p.v);
	}
	check_against_model(split, ARRAY_SIZE(split));
	/* allow-all last: nothing after it may be emitted (the verifier rejects
	 * unreachable code), and deny-all last */
	spec_dev_rule allow_last[] = { R(false, 'c', 1, 3, "rw"), R(true, 'a', -1, -1, "rwm") };
	check_against_model(allow_last, ARRAY_SIZE(allow_last));
	spec_dev_rule deny_last[] = { R(true, 'c', 1, 3, "rw"), R(false, 'a', -1, -1, "rwm") };
	check_against_model(deny_last, ARRAY_SIZE(deny_last));
	/* the runtime's default list */
	spec_dev_rule runtime[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', -1, -1, "m"), R(true, 'b', -1, -1, "m"),
		R(true, 'c', 1, 3, "rwm"), R(true, 'c', 1, 5, "rwm"), R(true, 'c', 1, 7, "rwm"),
		R(true, 'c', 1, 8, "rwm"), R(true, 'c', 1, 9, "rwm"), R(true, 'c', 5, 0, "rwm"),
		R(true, 'c', 5, 1, "rwm"), R(true, 'c', 5, 2, "rwm"), R(true, 'c', 136, -1, "rwm"),
	};
	check_against_model(runtime, ARRAY_SIZE(runtime));
	/* an empty list denies everything; numbers beyond 32 bits of sign never match */
	check_against_model(NULL, 0);
	spec_dev_rule huge[] = { R(true, 'c', 0x80000001LL, -1, "rwm"), R(true, 'c', 1, 3, "r") };
	check_against_model(huge, ARRAY_SIZE(huge));

	/* invalid rules name the field */
	struct bpf_insn *v = NULL;
	size_t n = 0;
	spec_dev_rule bad_type[] = { R(false, 'a', -1, -1, "rwm"), R(true, 'x', 1, 3, "rwm") };
	CHECK_INT(cg_bpf_devices_compile(bad_type, 2, &v, &n), -EINVAL);
	CHECK_CONTAINS(err_msg(), "linux.resources.devices[1].type");
	spec_dev_rule bad_acc[] = { R(true, 'c', 1, 3, "rx") };
	CHECK_INT(cg_bpf_devices_compile(bad_acc, 1, &v, &n), -EINVAL);
	CHECK_CONTAINS(err_msg(), "linux.resources.devices[0].access");
	spec_dev_rule bad_major[] = { R(true, 'c', 1LL << 33, 3, "r") };
	CHECK_INT(cg_bpf_devices_compile(bad_major, 1, &v, &n), -EINVAL);
	CHECK_CONTAINS(err_msg(), "linux.resources.devices[0].major");
	CHECK(v == NULL);
}

/* ---- real programs on a cgroup2 directory ---- */

static char cgdir[PATH_MAX], tmpdir[64] = "/tmp/isola-bpf-test-XXXXXX";
static bool have_tmp;

static void cleanup(void)
{
	if (cgdir[0] && rmdir(cgdir) < 0 && errno != ENOENT)
		fprintf(stderr, "cleanup: rmdir %s: %s\n", cgdir, strerror(errno));
	if (have_tmp)
		(void)rmdir(tmpdir); /* best effort: the nodes are unlinked by now */
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int try_mknod(mode_t type, unsigned maj, unsigned min)
{
	char path[128];
	snprintf(path, sizeof path, "%s/node", tmpdir);
	if (mknod(path, type | 0600, makedev(maj, min)) < 0)
		return -errno;
	(void)unlink(path);
	return 0;
}

/* Run fn in a child moved into cgdir; its CHECK failures fail the test. */
static void in_cgroup(void (*fn)(void))
{
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		unit_fail = 0;
		if (cg_write(NULL, cgdir, "cgroup.procs", "0") < 0) {
			fprintf(stderr, "  %s\n", err_msg());
			_exit(2);
		}
		fn();
		_exit(unit_fail ? 1 : 0);
	}
	int st = -1;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK_INT(st, 0);
}

static void child_basic(void)
{
	CHECK_INT(try_open("/dev/null", O_RDWR), 0);
	CHECK_INT(try_open("/dev/zero", O_RDONLY), 0);
	CHECK_INT(try_open("/dev/zero", O_WRONLY), -EPERM);
	CHECK_INT(try_open("/dev/zero", O_RDWR), -EPERM);
	CHECK_INT(try_open("/dev/full", O_RDONLY), -EPERM);
	CHECK_INT(try_mknod(S_IFCHR, 1, 7), -EPERM);
	CHECK_INT(try_mknod(S_IFCHR, 1, 3), 0);
}

static void child_wild(void)
{
	CHECK_INT(try_open("/dev/full", O_RDWR), 0);
	CHECK_INT(try_open("/dev/zero", O_RDONLY), 0);
	CHECK_INT(try_open("/dev/zero", O_WRONLY), -EPERM);
	CHECK_INT(try_open("/dev/null", O_RDWR), 0);
	CHECK_INT(try_mknod(S_IFCHR, 1, 7), 0);
	CHECK_INT(try_mknod(S_IFCHR, 200, 7), 0);
	CHECK_INT(try_mknod(S_IFBLK, 7, 0), -EPERM);
}

static void child_all_but_full(void)
{
	CHECK_INT(try_open("/dev/full", O_RDONLY), -EPERM);
	CHECK_INT(try_open("/dev/null", O_RDWR), 0);
	CHECK_INT(try_open("/dev/zero", O_RDWR), 0);
	CHECK_INT(try_mknod(S_IFCHR, 1, 7), -EPERM);
	CHECK_INT(try_mknod(S_IFBLK, 7, 0), 0);
}

static void child_all(void)
{
	CHECK_INT(try_open("/dev/full", O_RDWR), 0);
	CHECK_INT(try_mknod(S_IFCHR, 1, 7), 0);
}

static int apply(const spec_dev_rule *rules, size_t n)
{
	int r = cg_bpf_devices_apply(cgdir, rules, n);
	if (r < 0)
		fprintf(stderr, "  %s\n", err_msg());
	return r;
}

static int sys_bpf(int cmd, union bpf_attr *a) { return (int)syscall(__NR_bpf, cmd, a, sizeof *a); }

/* Attach a program the way a manager without BPF_F_ALLOW_MULTI would. */
static int attach_single(const spec_dev_rule *rules, size_t n)
{
	struct prog p = compile(rules, n);
	union bpf_attr a;
	if (!p.v)
		return -1;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uintptr_t)p.v;
	a.insn_cnt = (uint32_t)p.n;
	a.license = (uintptr_t)"Apache-2.0";
	_cleanup_close_ int prog = sys_bpf(BPF_PROG_LOAD, &a);
	_cleanup_close_ int cg = open(cgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(p.v);
	if (prog < 0 || cg < 0)
		return -errno;
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cg;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	return sys_bpf(BPF_PROG_ATTACH, &a) < 0 ? -errno : 0;
}

static void test_kernel(void)
{
	const struct cg_hier *hs;
	const char *mnt = NULL;
	size_t n;
	if (geteuid() != 0) {
		printf("test-cgroup-bpf: SKIP kernel tests: needs root\n");
		return;
	}
	if (cg_layout(&hs, &n) == 0)
		for (size_t i = 0; i < n && !mnt; i++)
			if (hs[i].v2)
				mnt = hs[i].mnt;
	if (!mnt) {
		printf("test-cgroup-bpf: SKIP kernel tests: no cgroup2 hierarchy is mounted\n");
		return;
	}
	if (!mkdtemp(tmpdir)) {
		CHECK(!"mkdtemp");
		return;
	}
	have_tmp = true;
	/* outside the cgroup the devices work: the EPERMs below are the filter's */
	CHECK_INT(try_open("/dev/full", O_RDWR), 0);
	CHECK_INT(try_mknod(S_IFCHR, 1, 7), 0);

	snprintf(cgdir, sizeof cgdir, "%s/isola-bpf-test-%d", mnt, (int)getpid());
	if (mkdir(cgdir, 0755) < 0) {
		fprintf(stderr, "mkdir %s: %s\n", cgdir, strerror(errno));
		CHECK(!"mkdir the test cgroup");
		cgdir[0] = '\0';
		return;
	}
	CHECK_INT(cg_bpf_devices_count(cgdir), 0);

	spec_dev_rule basic[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 3, "rwm"), R(true, 'c', 1, 5, "r"),
	};
	if (apply(basic, ARRAY_SIZE(basic)) == 0) {
		CHECK_INT(cg_bpf_devices_count(cgdir), 1);
		in_cgroup(child_basic);
	} else
		CHECK(!"apply basic rules");

	/* update: the new program replaces the old one */
	spec_dev_rule wild[] = {
		R(false, 'a', -1, -1, "rwm"), R(true, 'c', -1, -1, "m"), R(true, 'c', 1, -1, "rw"),
		R(false, 'c', 1, 5, "w"),
	};
	CHECK_INT(apply(wild, ARRAY_SIZE(wild)), 0);
	CHECK_INT(cg_bpf_devices_count(cgdir), 1);
	in_cgroup(child_wild);

	spec_dev_rule all_but_full[] = { R(true, 'a', -1, -1, "rwm"), R(false, 'c', 1, 7, "rwm") };
	CHECK_INT(apply(all_but_full, ARRAY_SIZE(all_but_full)), 0);
	CHECK_INT(cg_bpf_devices_count(cgdir), 1);
	in_cgroup(child_all_but_full);

	/* a program attached without BPF_F_ALLOW_MULTI is replaced as well */
	CHECK_INT(rmdir(cgdir), 0);
	CHECK_INT(mkdir(cgdir, 0755), 0);
	CHECK_INT(attach_single(basic, ARRAY_SIZE(basic)), 0);
	CHECK_INT(cg_bpf_devices_count(cgdir), 1);
	in_cgroup(child_basic);
	spec_dev_rule allow_all[] = { R(true, 'a', -1, -1, "r") };
	CHECK_INT(apply(allow_all, ARRAY_SIZE(allow_all)), 0);
	CHECK_INT(cg_bpf_devices_count(cgdir), 1);
	in_cgroup(child_all);

	/* invalid rules attach nothing */
	spec_dev_rule bad[] = { R(true, 'x', 1, 3, "rwm") };
	CHECK_INT(cg_bpf_devices_apply(cgdir, bad, 1), -EINVAL);
	CHECK_INT(cg_bpf_devices_count(cgdir), 1);
	CHECK(cg_bpf_devices_apply("/nonexistent-isola-cgroup", basic, 1) == -ENOENT);
	CHECK_CONTAINS(err_msg(), "/nonexistent-isola-cgroup");

	/* the programs go with the cgroup */
	CHECK_INT(rmdir(cgdir), 0);
	cgdir[0] = '\0';
}

int main(void)
{
	atexit(cleanup);
	test_compile();
	test_kernel();
	return unit_done("test-cgroup-bpf");
}
