/* Seccomp: OCI linux.seccomp -> classic BPF (libseccomp), a flat blob form of
 * the program, installation with seccomp(2) and the listener fd hand-off. */
#include "sandbox/seccomp.h"

#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/err.h"
#include "util/log.h"

/* Compared in seccomp_compile() without the 16 data bits. */
#define ACTION_BASE(a) ((a) & 0xffff0000U)
#define MAX_ERRNO_DATA 0xffffU
#define ARG_INDEX_MAX 6 /* syscalls have at most six arguments */

static const struct {
	uint32_t action;
	const char *name;
	bool has_data; /* errnoRet allowed (SECCOMP_RET_DATA is meaningful) */
} action_table[] = {
	{ SCMP_ACT_KILL_THREAD, "SCMP_ACT_KILL", false },
	{ SCMP_ACT_KILL_PROCESS, "SCMP_ACT_KILL_PROCESS", false },
	{ SCMP_ACT_TRAP, "SCMP_ACT_TRAP", false },
	{ SCMP_ACT_ERRNO(0), "SCMP_ACT_ERRNO", true },
	{ SCMP_ACT_TRACE(0), "SCMP_ACT_TRACE", true },
	{ SCMP_ACT_LOG, "SCMP_ACT_LOG", false },
	{ SCMP_ACT_ALLOW, "SCMP_ACT_ALLOW", false },
	{ SCMP_ACT_NOTIFY, "SCMP_ACT_NOTIFY", false },
};

static const struct {
	unsigned flag;
	const char *name;
} flag_table[] = {
	{ SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC" },
	{ SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG" },
	{ SECCOMP_FILTER_FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW" },
	{ SECCOMP_FILTER_FLAG_NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER" },
	{ SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH" },
	{ SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" },
};

static const struct {
	uint32_t arch;
	const char *name;
} arch_table[] = {
	{ SCMP_ARCH_X86, "SCMP_ARCH_X86" },         { SCMP_ARCH_X86_64, "SCMP_ARCH_X86_64" },
	{ SCMP_ARCH_X32, "SCMP_ARCH_X32" },         { SCMP_ARCH_ARM, "SCMP_ARCH_ARM" },
	{ SCMP_ARCH_AARCH64, "SCMP_ARCH_AARCH64" }, { SCMP_ARCH_MIPS, "SCMP_ARCH_MIPS" },
	{ SCMP_ARCH_MIPS64, "SCMP_ARCH_MIPS64" },   { SCMP_ARCH_MIPS64N32, "SCMP_ARCH_MIPS64N32" },
	{ SCMP_ARCH_MIPSEL, "SCMP_ARCH_MIPSEL" },   { SCMP_ARCH_MIPSEL64, "SCMP_ARCH_MIPSEL64" },
	{ SCMP_ARCH_MIPSEL64N32, "SCMP_ARCH_MIPSEL64N32" },
	{ SCMP_ARCH_PPC, "SCMP_ARCH_PPC" },         { SCMP_ARCH_PPC64, "SCMP_ARCH_PPC64" },
	{ SCMP_ARCH_PPC64LE, "SCMP_ARCH_PPC64LE" }, { SCMP_ARCH_S390, "SCMP_ARCH_S390" },
	{ SCMP_ARCH_S390X, "SCMP_ARCH_S390X" },     { SCMP_ARCH_PARISC, "SCMP_ARCH_PARISC" },
	{ SCMP_ARCH_PARISC64, "SCMP_ARCH_PARISC64" }, { SCMP_ARCH_RISCV64, "SCMP_ARCH_RISCV64" },
};

static const char *action_name(uint32_t base)
{
	for (size_t i = 0; i < ARRAY_SIZE(action_table); i++)
		if (action_table[i].action == base)
			return action_table[i].name;
	return NULL;
}

/* "SCMP_ACT_ERRNO(38)", "SCMP_ACT_ALLOW". */
static const char *action_str(uint32_t action, char *buf, size_t size)
{
	uint32_t base = ACTION_BASE(action);
	const char *name = action_name(base);
	if (base == SCMP_ACT_ERRNO(0) || base == SCMP_ACT_TRACE(0))
		snprintf(buf, size, "%s(%u)", name, action & 0xffffU);
	else
		snprintf(buf, size, "%s", name ? name : "?");
	return buf;
}

static const char *arch_name(uint32_t arch, char *buf, size_t size)
{
	for (size_t i = 0; i < ARRAY_SIZE(arch_table); i++)
		if (arch_table[i].arch == arch)
			return arch_table[i].name;
	snprintf(buf, size, "0x%x", arch);
	return buf;
}

/* "SECCOMP_FILTER_FLAG_LOG|SECCOMP_FILTER_FLAG_NEW_LISTENER", unknown bits
 * in hex, "0x0" for none. The buffer fits every known name at once. */
static const char *flags_name(unsigned flags, char buf[static 256])
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(flag_table); i++) {
		if (!(flags & flag_table[i].flag))
			continue;
		flags &= ~flag_table[i].flag;
		n += snprintf(buf + n, 256 - n, "%s%s", n ? "|" : "", flag_table[i].name);
	}
	if (flags || n == 0)
		snprintf(buf + n, 256 - n, "%s0x%x", n ? "|" : "", flags);
	return buf;
}

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

/* Combine a base action with errnoRet. `where` is the JSON object path,
 * `afield`/`efield` the names of its action and errno members. */
static int action_resolve(uint32_t base, opt_u64 errno_ret, const char *where, const char *afield,
			  const char *efield, uint32_t *ret)
{
	size_t i;
	for (i = 0; i < ARRAY_SIZE(action_table); i++)
		if (action_table[i].action == base)
			break;
	if (i == ARRAY_SIZE(action_table))
		return err_set(0, "%s.%s: unknown action 0x%x", where, afield, base);
	if (!action_table[i].has_data) {
		if (errno_ret.has)
			return err_set(0, "%s.%s: not supported with %s", where, efield, action_table[i].name);
		*ret = base;
		return 0;
	}
	/* runtime-spec: errnoRet defaults to EPERM, for SCMP_ACT_TRACE too. */
	uint64_t data = errno_ret.has ? errno_ret.v : EPERM;
	if (data > MAX_ERRNO_DATA)
		return err_set(0, "%s.%s: %llu is out of range (0..%u)", where, efield,
			       (unsigned long long)data, MAX_ERRNO_DATA);
	*ret = base | (uint32_t)data;
	return 0;
}

/* Add one OCI rule for one syscall. libseccomp rejects two comparisons on the
 * same argument in one rule; when an index repeats, every comparison becomes
 * its own rule (so they combine with OR, as in runc). */
static int rule_add(scmp_filter_ctx ctx, uint32_t action, int nr, const struct scmp_arg_cmp *cmp,
		    size_t n, bool split)
{
	if (!split)
		return seccomp_rule_add_array(ctx, action, nr, n, cmp);
	for (size_t k = 0; k < n; k++) {
		int r = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[k]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int export_bpf(scmp_filter_ctx ctx, seccomp_prog *ret)
{
	/* libseccomp 2.5 can only export to an fd; a memfd never blocks. */
	_cleanup_close_ int fd = memfd_create("isola-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "linux.seccomp: memfd_create");
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return err_set(-r, "linux.seccomp: export BPF program");
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_set(errno, "linux.seccomp: stat exported program");
	size_t size = st.st_size;
	if (size == 0 || size % sizeof(struct sock_filter) != 0 ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return err_set(E2BIG, "linux.seccomp: compiled program has %zu bytes (at most %d instructions allowed)",
			       size, BPF_MAXINSNS);
	_cleanup_free_ struct sock_filter *f = malloc(size);
	if (!f)
		return err_set(ENOMEM, "linux.seccomp: allocate program");
	for (size_t off = 0; off < size;) {
		ssize_t k = pread(fd, (char *)f + off, size - off, off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return err_set(k < 0 ? errno : EIO, "linux.seccomp: read exported program");
		off += k;
	}
	ret->filter = TAKE_PTR(f);
	ret->len = size / sizeof(struct sock_filter);
	return 0;
}

int seccomp_compile(const spec_seccomp *s, seccomp_prog *ret)
{
	uint32_t def;
	int r = action_resolve(ACTION_BASE(s->default_action), s->default_errno_ret, "linux.seccomp",
			       "defaultAction", "defaultErrnoRet", &def);
	if (r < 0)
		return r;
	if (ACTION_BASE(def) == SCMP_ACT_NOTIFY)
		return err_set(0, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");

	errno = 0;
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx) {
		/* seccomp_init() reports no reason; an invalid action is likely. */
		char abuf[48];
		return err_set(errno == ENOMEM ? ENOMEM : EINVAL, "linux.seccomp.defaultAction: create filter with %s",
			       action_str(def, abuf, sizeof abuf));
	}
	/* no_new_privs is the runtime's business (process.noNewPrivileges). */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0)
		return err_set(-r, "linux.seccomp: clear SCMP_FLTATR_CTL_NNP");

	for (size_t i = 0; i < s->n_arches; i++) {
		r = seccomp_arch_add(ctx, s->arches[i]);
		if (r == -EEXIST) /* the native one is always there */
			continue;
		if (r < 0) {
			char buf[32];
			return err_set(-r, "linux.seccomp.architectures[%zu]: add %s", i,
				       arch_name(s->arches[i], buf, sizeof buf));
		}
	}

	bool notify = false;
	for (size_t i = 0; i < s->n_rules; i++) {
		const spec_seccomp_rule *rule = &s->rules[i];
		char where[64];
		snprintf(where, sizeof where, "linux.seccomp.syscalls[%zu]", i);
		uint32_t action;
		r = action_resolve(ACTION_BASE(rule->action), rule->errno_ret, where, "action", "errnoRet",
				   &action);
		if (r < 0)
			return r;

		/* Validated even when the rule ends up skipped, so that a bad
		 * config fails the same way whatever the default action. */
		struct scmp_arg_cmp cmp_buf[ARG_INDEX_MAX], *cmp = cmp_buf;
		_cleanup_free_ struct scmp_arg_cmp *cmp_heap = NULL;
		if (rule->n_args > ARRAY_SIZE(cmp_buf)) {
			cmp = cmp_heap = calloc(rule->n_args, sizeof *cmp);
			if (!cmp)
				return err_set(ENOMEM, "%s.args", where);
		}
		unsigned seen = 0;
		bool split = false;
		for (size_t j = 0; j < rule->n_args; j++) {
			const spec_seccomp_arg *a = &rule->args[j];
			if (a->index >= ARG_INDEX_MAX)
				return err_set(0, "%s.args[%zu].index: %u is out of range (0..%d)", where, j,
					       a->index, ARG_INDEX_MAX - 1);
			if (a->op < SCMP_CMP_NE || a->op > SCMP_CMP_MASKED_EQ)
				return err_set(0, "%s.args[%zu].op: unknown operator %d", where, j, a->op);
			if (seen & (1u << a->index))
				split = true;
			seen |= 1u << a->index;
			/* For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo
			 * the datum, as libseccomp's (mask, datum) pair. */
			cmp[j] = (struct scmp_arg_cmp){
				.arg = a->index, .op = a->op, .datum_a = a->value, .datum_b = a->value_two
			};
		}

		if (action == def)
			continue; /* libseccomp refuses these; they change nothing */

		for (size_t j = 0; j < rule->n_names; j++) {
			/* Names of other architectures resolve to libseccomp's
			 * pseudo numbers; only names it has never heard of fail. */
			int nr = seccomp_syscall_resolve_name(rule->names[j]);
			if (nr == __NR_SCMP_ERROR) {
				/* Skipped, as runc does: the profile may be newer than
				 * libseccomp or name another architecture's calls. */
				log_debugf("%s: unknown syscall \"%s\" skipped", where, rule->names[j]);
				continue;
			}
			r = rule_add(ctx, action, nr, cmp, rule->n_args, split);
			if (r < 0) {
				char abuf[48];
				return err_set(-r, "%s: add rule for \"%s\" (%s, %zu argument conditions)", where,
					       rule->names[j], action_str(action, abuf, sizeof abuf), rule->n_args);
			}
			if (ACTION_BASE(action) == SCMP_ACT_NOTIFY)
				notify = true;
		}
	}

	seccomp_prog p = { .flags = s->flags, .needs_listener = notify };
	r = export_bpf(ctx, &p);
	if (r == 0 && (r = seccomp_enosys_stub(s, def, &p)) < 0)
		seccomp_prog_free(&p);
	if (r < 0)
		return r;
	*ret = p;
	return 0;
}

void seccomp_prog_free(seccomp_prog *p)
{
	if (!p)
		return;
	free(p->filter);
	p->filter = NULL;
	p->len = 0;
}

/* Blob layout, host byte order (the blob never leaves the machine). */
#define BLOB_MAGIC 0x49534343U /* "ISCC" */
#define BLOB_VERSION 1
typedef struct {
	uint32_t magic;
	uint16_t version;
	uint16_t len; /* instructions */
	uint32_t flags;
	uint8_t needs_listener;
	uint8_t pad[3];
} blob_header;
_Static_assert(sizeof(blob_header) == 16, "blob header layout");

int seccomp_prog_to_blob(const seccomp_prog *p, void **ret, size_t *len)
{
	if (p->len == 0 || !p->filter)
		return err_set(0, "seccomp blob: empty program");
	size_t body = (size_t)p->len * sizeof(struct sock_filter);
	size_t size = sizeof(blob_header) + body;
	char *b = malloc(size);
	if (!b)
		return err_set(ENOMEM, "seccomp blob: allocate %zu bytes", size);
	blob_header h = { .magic = BLOB_MAGIC, .version = BLOB_VERSION, .len = p->len,
			  .flags = p->flags, .needs_listener = p->needs_listener };
	memcpy(b, &h, sizeof h);
	memcpy(b + sizeof h, p->filter, body);
	*ret = b;
	*len = size;
	return 0;
}

int seccomp_prog_from_blob(const void *blob, size_t len, seccomp_prog *ret)
{
	blob_header h;
	if (!blob || len < sizeof h)
		return err_set(0, "seccomp blob: truncated (%zu bytes, the header alone is %zu)", len, sizeof h);
	memcpy(&h, blob, sizeof h);
	if (h.magic != BLOB_MAGIC)
		return err_set(0, "seccomp blob: bad magic 0x%08x", h.magic);
	if (h.version != BLOB_VERSION)
		return err_set(0, "seccomp blob: unsupported version %u (expected %u)", h.version, BLOB_VERSION);
	if (h.len == 0 || h.len > BPF_MAXINSNS)
		return err_set(0, "seccomp blob: program length %u out of range (1..%d)", h.len, BPF_MAXINSNS);
	if (h.needs_listener > 1 || h.pad[0] || h.pad[1] || h.pad[2])
		return err_set(0, "seccomp blob: corrupt header");
	size_t body = (size_t)h.len * sizeof(struct sock_filter);
	if (len != sizeof h + body)
		return err_set(0, "seccomp blob: size %zu does not match %u instructions (expected %zu)", len,
			       h.len, sizeof h + body);
	struct sock_filter *f = malloc(body);
	if (!f)
		return err_set(ENOMEM, "seccomp blob: allocate program");
	memcpy(f, (const char *)blob + sizeof h, body);
	*ret = (seccomp_prog){ .filter = f, .len = h.len, .flags = h.flags, .needs_listener = h.needs_listener };
	return 0;
}

int seccomp_install(const seccomp_prog *p, int *ret_listener)
{
	struct sock_fprog prog = { .len = p->len, .filter = p->filter };
	unsigned flags = p->flags;
	if (p->needs_listener) {
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
		/* TSYNC alone would make the kernel reject NEW_LISTENER. */
		if (flags & SECCOMP_FILTER_FLAG_TSYNC)
			flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
	}
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r < 0) {
		char buf[256];
		int e = errno;
		if (e == EINVAL && flags)
			return err_set(e, "seccomp: install filter with flags %s (unsupported flag set?)",
				       flags_name(flags, buf));
		if (e == EACCES)
			return err_set(e, "seccomp: install filter: needs no_new_privs or CAP_SYS_ADMIN");
		return err_set(e, "seccomp: install filter (%u instructions, flags %s)", p->len,
			       flags_name(flags, buf));
	}
	if (p->needs_listener) {
		int fd = (int)r; /* the kernel opens it O_CLOEXEC */
		if (ret_listener)
			*ret_listener = fd;
		else
			close(fd); /* nobody to hand it to: notifications fail with ENOSYS */
	} else if (ret_listener) {
		*ret_listener = -1;
	}
	return 0;
}

int seccomp_send_listener(const char *listener_path, const char *state, int listener_fd)
{
	if (!state || !*state)
		return err_set(0, "seccomp listener '%s': empty state", listener_path);

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int pathfd = -EBADF;
	if (strlen(listener_path) < sizeof sa.sun_path) {
		strcpy(sa.sun_path, listener_path);
	} else {
		/* Too long for sun_path: connect through the /proc magic link. */
		pathfd = open(listener_path, O_PATH | O_CLOEXEC);
		if (pathfd < 0)
			return err_set(errno, "seccomp listener '%s': open", listener_path);
		snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", pathfd);
	}

	_cleanup_close_ int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return err_set(errno, "seccomp listener '%s': socket", listener_path);
	if (connect(sk, (struct sockaddr *)&sa, sizeof sa) < 0)
		return err_set(errno, "seccomp listener '%s': connect", listener_path);

	/* One sendmsg carries the fd; a short write (signal) is finished with
	 * plain sends, which the runtime-spec allows. */
	size_t len = strlen(state);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov = { .iov_base = (void *)state, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &listener_fd, sizeof(int));

	ssize_t n;
	do
		n = sendmsg(sk, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set(errno, "seccomp listener '%s': send state", listener_path);
	for (size_t off = n; off < len; off += n) {
		n = send(sk, state + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			return err_set(errno, "seccomp listener '%s': send state", listener_path);
	}
	return 0;
}
