/* Seccomp: the ENOSYS stub put in front of libseccomp's program. A profile
 * refuses by default (errno, kill, trap) every syscall it does not name, so a
 * syscall newer than the profile would get EPERM (or a kill); libc and
 * language runtimes probe new syscalls and fall back to older ones only on
 * ENOSYS (clone3, faccessat2, ...). As runc does, every syscall number above
 * the highest one the profile names (and libseccomp can resolve), per
 * architecture, gets ENOSYS instead. Explicit rules are never above that
 * number, so their actions are untouched. */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/err.h"
#include "util/log.h"

#define X32_SYSCALL_BIT 0x40000000U
/* seccomp_data: nr at offset 0, arch at offset 4 */
#define OFF_NR 0
#define OFF_ARCH 4
/* Jump offsets in classic BPF are 8 bits: the stub stays well below. */
#define STUB_MAX 255

/* One kernel architecture (AUDIT_ARCH_*) and the highest syscall the profile
 * names there; x86-64 also carries the x32 ABI (numbers with bit 30 set). */
struct arch_max {
	uint32_t audit;
	int64_t native, x32; /* -1: none named (or the ABI is not in the profile) */
	bool s390;           /* syscall 0 multiplexes numbers the kernel does not know */
};

static bool wants_stub(uint32_t def)
{
	switch (def & 0xffff0000U) {
	case SCMP_ACT_ERRNO(0):
		return (def & 0xffffU) != ENOSYS; /* already the answer */
	case SCMP_ACT_KILL_THREAD:
	case SCMP_ACT_KILL_PROCESS:
	case SCMP_ACT_TRAP:
		return true;
	default:
		/* allow and log let the kernel answer; a tracer handles
		 * unknown syscalls itself (runc leaves these alone too) */
		return false;
	}
}

/* The highest number any rule names for libseccomp architecture `arch`, or
 * -1. Pseudo numbers (negative: calls multiplexed on that architecture) and
 * names libseccomp does not know do not count. */
static int64_t highest_named(const spec_seccomp *s, uint32_t arch)
{
	int64_t max = -1;
	for (size_t i = 0; i < s->n_rules; i++)
		for (size_t j = 0; j < s->rules[i].n_names; j++) {
			int nr = seccomp_syscall_resolve_name_arch(arch, s->rules[i].names[j]);
			if (nr >= 0 && nr > max)
				max = nr;
		}
	return max;
}

static void note_arch(struct arch_max *v, size_t *n, const spec_seccomp *s, uint32_t arch)
{
	bool x32 = arch == SCMP_ARCH_X32;
	uint32_t audit = x32 ? SCMP_ARCH_X86_64 : arch; /* SCMP_ARCH_* are AUDIT_ARCH_* but x32 */
	size_t i = 0;
	while (i < *n && v[i].audit != audit)
		i++;
	if (i == *n)
		v[(*n)++] = (struct arch_max){ .audit = audit, .native = -1, .x32 = -1,
					       .s390 = arch == SCMP_ARCH_S390 || arch == SCMP_ARCH_S390X };
	int64_t *slot = x32 ? &v[i].x32 : &v[i].native;
	if (*slot < 0)
		*slot = highest_named(s, arch);
}

/* Jump targets, resolved once the stub's length is known. */
enum target { T_NEXT, T_SKIP_ARCH, T_X32, T_ENOSYS, T_FILTER };

struct insn {
	uint16_t code;
	enum target jt, jf;
	uint32_t k;
	size_t arch_end; /* for T_SKIP_ARCH: index of the next section */
	size_t x32_at;   /* for T_X32 */
};

struct stub {
	struct insn v[STUB_MAX];
	size_t n;
	bool full;
};

static size_t put(struct stub *st, uint16_t code, uint32_t k, enum target jt, enum target jf)
{
	if (st->n == STUB_MAX) {
		st->full = true;
		return st->n - 1;
	}
	st->v[st->n] = (struct insn){ .code = code, .k = k, .jt = jt, .jf = jf };
	return st->n++;
}

#define LD(st, off) put(st, BPF_LD | BPF_W | BPF_ABS, off, T_NEXT, T_NEXT)
#define JGT(st, k, jt, jf) put(st, BPF_JMP | BPF_JGT | BPF_K, k, jt, jf)
#define JEQ(st, k, jt, jf) put(st, BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf)
#define JSET(st, k, jt, jf) put(st, BPF_JMP | BPF_JSET | BPF_K, k, jt, jf)

/* One architecture's section: entered with the arch in A, leaves to the next
 * section when it is another arch, else to ENOSYS or the filter. */
static void put_arch(struct stub *st, const struct arch_max *a)
{
	size_t head = JEQ(st, a->audit, T_NEXT, T_SKIP_ARCH);
	LD(st, OFF_NR);
	bool x86_64 = a->audit == SCMP_ARCH_X86_64;
	if (x86_64 && a->native >= 0 && a->x32 >= 0) {
		size_t j = JSET(st, X32_SYSCALL_BIT, T_X32, T_NEXT);
		JGT(st, (uint32_t)a->native, T_ENOSYS, T_FILTER);
		st->v[j].x32_at = JGT(st, (uint32_t)a->x32, T_ENOSYS, T_FILTER);
	} else if (x86_64) {
		/* only one ABI named: the other one is libseccomp's business */
		bool native = a->native >= 0;
		JSET(st, X32_SYSCALL_BIT, native ? T_FILTER : T_NEXT, native ? T_NEXT : T_FILTER);
		JGT(st, (uint32_t)(native ? a->native : a->x32), T_ENOSYS, T_FILTER);
	} else {
		if (a->s390)
			JEQ(st, 0, T_ENOSYS, T_NEXT);
		JGT(st, (uint32_t)a->native, T_ENOSYS, T_FILTER);
	}
	st->v[head].arch_end = st->n;
}

static int resolve(const struct stub *st, size_t i, enum target t, uint8_t *ret)
{
	size_t n = st->n + 1, to; /* the stub ends with "ret ENOSYS"; the filter follows */
	switch (t) {
	case T_NEXT: to = i + 1; break;
	case T_SKIP_ARCH: to = st->v[i].arch_end; break;
	case T_X32: to = st->v[i].x32_at; break;
	case T_ENOSYS: to = n - 1; break;
	default: to = n; break;
	}
	/* the last section's "other arch" goes straight to the filter */
	if (t == T_SKIP_ARCH && to == st->n)
		to = n;
	if (to <= i || to - i - 1 > UINT8_MAX)
		return err_set(E2BIG, "linux.seccomp: ENOSYS stub: jump out of range");
	*ret = (uint8_t)(to - i - 1);
	return 0;
}

int seccomp_enosys_stub(const spec_seccomp *s, uint32_t def, seccomp_prog *p)
{
	if (!wants_stub(def))
		return 0;
	struct arch_max archs[64];
	size_t n_archs = 0;
	note_arch(archs, &n_archs, s, seccomp_arch_native());
	for (size_t i = 0; i < s->n_arches && n_archs < ARRAY_SIZE(archs); i++)
		note_arch(archs, &n_archs, s, s->arches[i]);

	struct stub st = { .n = 0 };
	LD(&st, OFF_ARCH);
	bool any = false;
	for (size_t i = 0; i < n_archs; i++) {
		if (archs[i].native < 0 && archs[i].x32 < 0)
			continue; /* the profile names nothing there */
		put_arch(&st, &archs[i]);
		any = true;
	}
	if (!any) {
		log_debugf("linux.seccomp: no syscall named: no ENOSYS stub");
		return 0;
	}
	if (st.full)
		return err_set(E2BIG, "linux.seccomp: ENOSYS stub: too many architectures");

	size_t total = st.n + 1 + p->len;
	if (total > BPF_MAXINSNS)
		return err_set(E2BIG, "linux.seccomp: compiled program has %zu instructions with the ENOSYS stub "
			       "(at most %d allowed)", total, BPF_MAXINSNS);
	_cleanup_free_ struct sock_filter *f = calloc(total, sizeof *f);
	if (!f)
		return err_set(ENOMEM, "linux.seccomp: allocate program");
	for (size_t i = 0; i < st.n; i++) {
		const struct insn *in = &st.v[i];
		f[i] = (struct sock_filter){ .code = in->code, .k = in->k };
		if (BPF_CLASS(in->code) == BPF_JMP) {
			int r = resolve(&st, i, in->jt, &f[i].jt);
			if (r == 0)
				r = resolve(&st, i, in->jf, &f[i].jf);
			if (r < 0)
				return r;
		}
	}
	f[st.n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SCMP_ACT_ERRNO(ENOSYS));
	memcpy(f + st.n + 1, p->filter, (size_t)p->len * sizeof *f);
	free(p->filter);
	p->filter = TAKE_PTR(f);
	p->len = (unsigned short)total;
	return 0;
}
