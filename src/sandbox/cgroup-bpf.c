/* cgroup v2 device filter: linux.resources.devices compiled into a
 * BPF_PROG_TYPE_CGROUP_DEVICE program and attached to a cgroup2 directory
 * through raw bpf(2). */
#include "sandbox/cgroup-internal.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FIELD "linux.resources.devices"
/* Jump offsets are 16 bits: a longer program could not be assembled. */
#define PROG_MAX_INSNS 32767
/* No GPL-only helper is called; the kernel checks the string only for those. */
#define PROG_LICENSE "Apache-2.0"
#define PROG_NAME "isola_devices"

/* ---- compiling the rules ----
 *
 * Semantics, as the v1 devices controller and runc/crun: the rules apply in
 * order on top of "deny everything", so the last rule that matches a device
 * decides. Each requested access (m, r, w) is decided on its own and a request
 * is allowed only if every access in it is: "allow c 1:5 r" followed by
 * "allow c 1:5 w" allows an O_RDWR open, and "deny c 1:5 w" after
 * "allow c 1:5 rwm" leaves reads allowed, as the v1 exception list does.
 * Type 'a' is v1's "a": every device and every access, whatever major, minor
 * and access say (a reset to allow-all or deny-all).
 *
 * Generated code: r2 = requested access bits, r3 = device type, r4 = major,
 * r5 = minor; then one section per access bit that scans the rules from the
 * last to the first and returns 0 on a deny, jumps to the next section on an
 * allow. The verifier rejects unreachable instructions, so nothing is emitted
 * after a rule that matches everything. */

struct prog {
	struct bpf_insn *v;
	size_t n, cap;
	bool oom;
};

static size_t emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	if (p->n == p->cap && !p->oom) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct bpf_insn *nv = realloc(p->v, cap * sizeof *nv);
		if (!nv)
			p->oom = true;
		else {
			p->v = nv;
			p->cap = cap;
		}
	}
	if (p->oom)
		return p->n;
	p->v[p->n] = (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
	return p->n++;
}

/* Point the jump at `at` to the next instruction emitted. */
static void patch(struct prog *p, size_t at)
{
	if (!p->oom && at < p->n && p->n - at - 1 <= INT16_MAX)
		p->v[at].off = (int16_t)(p->n - at - 1);
}

#define JNE_IMM(p, reg, imm) emit(p, BPF_JMP | BPF_JNE | BPF_K, reg, 0, 0, imm)
#define JA(p) emit(p, BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define RETURN(p, v) do { \
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, v); \
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0); \
} while (0)

static const struct { char c; int32_t bit; } access_bits[] = {
	{ 'm', BPF_DEVCG_ACC_MKNOD }, { 'r', BPF_DEVCG_ACC_READ }, { 'w', BPF_DEVCG_ACC_WRITE },
};

/* The access bits a rule applies to; 0 if it can match no device. */
static int rule_bits(const spec_dev_rule *d, size_t i, int32_t *ret)
{
	int32_t bits = 0;
	if (d->type != 'a' && d->type != 'c' && d->type != 'b')
		return err_set(0, FIELD "[%zu].type: invalid device type '%c' (expected a, c or b)", i, d->type);
	if (d->major > UINT32_MAX)
		return err_set(0, FIELD "[%zu].major: %lld is out of range", i, (long long)d->major);
	if (d->minor > UINT32_MAX)
		return err_set(0, FIELD "[%zu].minor: %lld is out of range", i, (long long)d->minor);
	for (const char *a = d->access; a < d->access + sizeof d->access && *a; a++) {
		size_t k = 0;
		while (k < ARRAY_SIZE(access_bits) && access_bits[k].c != *a)
			k++;
		if (k == ARRAY_SIZE(access_bits))
			return err_set(0, FIELD "[%zu].access: invalid access \"%.*s\": must be a combination of "
				       "r, w and m", i, (int)sizeof d->access, d->access);
		bits |= access_bits[k].bit;
	}
	if (d->type == 'a')
		bits = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
	/* Device numbers are 12 + 20 bits: a larger one never matches (and
	 * would not fit a sign-extended 32-bit immediate). */
	if (d->type != 'a' && (d->major > INT32_MAX || d->minor > INT32_MAX))
		bits = 0;
	*ret = bits;
	return 0;
}

/* One section: decide access `bit` (whose rules are rules[i] with bits[i] &
 * bit). `allow` has room for n jumps. */
static void emit_section(struct prog *p, const spec_dev_rule *rules, const int32_t *bits, size_t n, int32_t bit,
			 size_t *allow)
{
	size_t skip, n_allow = 0;
	emit(p, BPF_JMP | BPF_JSET | BPF_K, BPF_REG_2, 0, 1, bit); /* requested: go on */
	skip = JA(p);
	bool ended = false;
	for (size_t i = n; i-- > 0 && !ended;) {
		const spec_dev_rule *d = &rules[i];
		size_t next[3], n_next = 0;
		if (!(bits[i] & bit))
			continue;
		if (d->type == 'a')
			ended = true; /* matches everything: nothing after it is reachable */
		else {
			next[n_next++] = JNE_IMM(p, BPF_REG_3, d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
			if (d->major >= 0)
				next[n_next++] = JNE_IMM(p, BPF_REG_4, (int32_t)d->major);
			if (d->minor >= 0)
				next[n_next++] = JNE_IMM(p, BPF_REG_5, (int32_t)d->minor);
		}
		if (!d->allow)
			RETURN(p, 0);
		else if (!ended) /* an 'a' allow falls through to the next section */
			allow[n_allow++] = JA(p);
		for (size_t k = 0; k < n_next; k++)
			patch(p, next[k]);
	}
	if (!ended)
		RETURN(p, 0); /* no rule matched: denied */
	patch(p, skip);
	for (size_t k = 0; k < n_allow; k++)
		patch(p, allow[k]);
}

int cg_bpf_devices_compile(const spec_dev_rule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n)
{
	struct prog p = { 0 };
	_cleanup_free_ int32_t *bits = calloc(n ? n : 1, sizeof *bits);
	_cleanup_free_ size_t *jumps = calloc(n ? n : 1, sizeof *jumps);
	if (!bits || !jumps)
		return err_set(ENOMEM, FIELD);
	for (size_t i = 0; i < n; i++) {
		int r = rule_bits(&rules[i], i, &bits[i]);
		if (r < 0)
			return r;
	}
	if (n > PROG_MAX_INSNS / (3 * 5))
		return err_set(E2BIG, FIELD ": %zu rules are too many for one device program", n);
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type), 0);
	emit(&p, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
	emit(&p, BPF_ALU | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xffff);
	emit(&p, BPF_ALU | BPF_RSH | BPF_K, BPF_REG_2, 0, 0, 16);
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major), 0);
	emit(&p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor), 0);
	for (size_t k = 0; k < ARRAY_SIZE(access_bits); k++)
		emit_section(&p, rules, bits, n, access_bits[k].bit, jumps);
	RETURN(&p, 1);
	if (p.oom) {
		free(p.v);
		return err_set(ENOMEM, FIELD);
	}
	if (p.n > PROG_MAX_INSNS) {
		free(p.v);
		return err_set(E2BIG, FIELD ": %zu rules are too many for one device program", n);
	}
	*ret = p.v;
	*ret_n = p.n;
	return 0;
}

/* ---- bpf(2) ---- */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

static int prog_load(const struct bpf_insn *insns, size_t n)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.expected_attach_type = BPF_CGROUP_DEVICE;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = (uint32_t)n;
	a.license = (uintptr_t)PROG_LICENSE;
	memcpy(a.prog_name, PROG_NAME, sizeof PROG_NAME);
	int fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (fd >= 0)
		return fd;
	int e = errno;
	if (e == ENOSYS)
		return err_set(e, FIELD ": load the eBPF device program (kernel without bpf(2)?)");
	if (e == EPERM)
		return err_set(e, FIELD ": load the eBPF device program (needs CAP_BPF or CAP_SYS_ADMIN; "
			       "RLIMIT_MEMLOCK too low on kernels before 5.11?)");
	/* Load again with the verifier's log for the message. */
	_cleanup_free_ char *log = calloc(1, 65536);
	if (log) {
		a.log_buf = (uintptr_t)log;
		a.log_size = 65536;
		a.log_level = 1;
		int fd2 = sys_bpf(BPF_PROG_LOAD, &a);
		if (fd2 >= 0) /* passed the second time: use it */
			return fd2;
		size_t l = strlen(log);
		while (l && log[l - 1] == '\n')
			log[--l] = '\0';
		char *last = strrchr(log, '\n');
		if (l)
			return err_set(e, FIELD ": load the eBPF device program: verifier: %s", last ? last + 1 : log);
	}
	return err_set(e, FIELD ": load the eBPF device program");
}

/* Device programs attached to the cgroup itself (not inherited). */
static int prog_query(int cgfd, uint32_t **ret_ids, uint32_t *ret_n, uint32_t *ret_flags)
{
	uint32_t cap = 8;
	for (;;) {
		_cleanup_free_ uint32_t *ids = calloc(cap, sizeof *ids);
		union bpf_attr a;
		if (!ids)
			return -ENOMEM;
		memset(&a, 0, sizeof a);
		a.query.target_fd = (uint32_t)cgfd;
		a.query.attach_type = BPF_CGROUP_DEVICE;
		a.query.prog_ids = (uintptr_t)ids;
		a.query.prog_cnt = cap;
		if (sys_bpf(BPF_PROG_QUERY, &a) < 0) {
			if (errno == ENOSPC && a.query.prog_cnt > cap) { /* prog_cnt: how many there are */
				cap = a.query.prog_cnt;
				continue;
			}
			return -errno;
		}
		*ret_n = a.query.prog_cnt;
		*ret_flags = a.query.attach_flags;
		*ret_ids = TAKE_PTR(ids);
		return 0;
	}
}

static int prog_detach(int cgfd, uint32_t id)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_id = id;
	_cleanup_close_ int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* released meanwhile */
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cgfd;
	a.attach_bpf_fd = (uint32_t)fd;
	a.attach_type = BPF_CGROUP_DEVICE;
	if (sys_bpf(BPF_PROG_DETACH, &a) < 0)
		return errno == ENOENT ? 0 : -errno; /* a concurrent update detached it */
	return 0;
}

static int open_cgroup(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, FIELD ": open '%s'", dir);
	return fd;
}

int cg_bpf_devices_apply(const char *dir, const spec_dev_rule *rules, size_t n)
{
	_cleanup_free_ struct bpf_insn *insns = NULL;
	_cleanup_free_ uint32_t *old = NULL;
	uint32_t n_old = 0, flags = 0;
	size_t n_insns;
	int r = cg_bpf_devices_compile(rules, n, &insns, &n_insns);
	if (r < 0)
		return r;
	_cleanup_close_ int cgfd = open_cgroup(dir);
	if (cgfd < 0)
		return cgfd;
	_cleanup_close_ int prog = prog_load(insns, n_insns);
	if (prog < 0)
		return prog;
	/* What is attached now is replaced: nothing is stored on disk, so an
	 * update finds the previous program here. */
	if ((r = prog_query(cgfd, &old, &n_old, &flags)) < 0)
		return err_set(-r, FIELD ": query the device programs of '%s'", dir);

	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cgfd;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	/* A program attached without BPF_F_ALLOW_MULTI (by another manager) is
	 * replaced in one step by attaching with the same flags. Otherwise the
	 * new one is attached next to the old ones first: until they are
	 * detached both apply, which never allows more than either. */
	bool single = n_old && !(flags & BPF_F_ALLOW_MULTI);
	a.attach_flags = single ? flags : BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) {
		if (errno == EPERM)
			return err_set(errno, FIELD ": attach the eBPF device program to '%s' (a parent cgroup "
				       "has a device program that does not allow more)", dir);
		return err_set(errno, FIELD ": attach the eBPF device program to '%s'", dir);
	}
	for (uint32_t i = 0; !single && i < n_old; i++)
		if ((r = prog_detach(cgfd, old[i])) < 0)
			return err_set(-r, FIELD ": detach the previous device program (id %u) from '%s'",
				       old[i], dir);
	return 0;
}

int cg_bpf_devices_count(const char *dir)
{
	_cleanup_free_ uint32_t *ids = NULL;
	uint32_t n, flags;
	_cleanup_close_ int cgfd = open_cgroup(dir);
	if (cgfd < 0)
		return cgfd;
	int r = prog_query(cgfd, &ids, &n, &flags);
	if (r < 0)
		return err_set(-r, FIELD ": query the device programs of '%s'", dir);
	return (int)n;
}
