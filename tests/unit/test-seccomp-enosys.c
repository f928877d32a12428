/* Unit tests for sandbox/seccomp-enosys.c: programs compiled by
 * seccomp_compile() with a refusing default get ENOSYS for syscall numbers
 * above the highest one the profile names, per architecture (x86-64, its x32
 * ABI, i386 through int 0x80), and nothing else changes: explicit rules, the
 * default below that number, notify rules, permissive defaults. The filters
 * are installed in forked children. */
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "unit.h"

#define COUNT(type, ...) (sizeof((type[]){ __VA_ARGS__ }) / sizeof(type))
#define NAMES(...) .names = (char *[]){ __VA_ARGS__ }, .n_names = COUNT(char *, __VA_ARGS__)
#define RULES(...) .rules = (spec_seccomp_rule[]){ __VA_ARGS__ }, .n_rules = COUNT(spec_seccomp_rule, __VA_ARGS__)
#define ARCHES(...) .arches = (uint32_t[]){ __VA_ARGS__ }, .n_arches = COUNT(uint32_t, __VA_ARGS__)
#define ERRNO_RET(e) .errno_ret = { true, (e) }

#define EXPECT(step, cond) do { if (!(cond)) { \
	fprintf(stderr, "child step %d: %s failed (errno %d)\n", (step), #cond, errno); \
	return (step); } } while (0)

/* Numbers shared by x86-64 and i386 since Linux 5.1 (the common table). */
#define NR_PROCESS_MRELEASE 448 /* named by no rule below */
#define NR_FUTEX_WAITV 449      /* the highest number the rules name */
#define NR_HOME_NODE 450        /* set_mempolicy_home_node: above it */
#define NR_NONE 1000
#define X32_BIT 0x40000000L

/* What the child needs to run and to report: allowed in every profile
 * (ASan calls sigaltstack before _exit). On x32, sigaltstack is 525, the
 * highest x32 number named: the x32 boundary is there. */
#define BASICS "exit_group", "exit", "getpid", "write", "sigaltstack"
#define X32_NR_BELOW 524 /* rt_sigqueueinfo */
#define X32_NR_ABOVE 526 /* timer_create */

static long sys_i386(long nr)
{
#if defined(__x86_64__)
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : 999;
}

static pid_t spawn(const seccomp_prog *p, int (*fn)(int listener, void *arg), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	struct rlimit none = { 0, 0 };
	(void) setrlimit(RLIMIT_CORE, &none); /* SIGSYS would dump core */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(200);
	int listener = -2;
	if (seccomp_install(p, &listener) < 0) {
		fprintf(stderr, "child: %s\n", err_msg());
		_exit(201);
	}
	_exit(fn(listener, arg));
}

static int run_filtered(const seccomp_prog *p, int (*fn)(int, void *), void *arg)
{
	pid_t pid = spawn(p, fn, arg);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 998;
	return exit_code(st);
}

static int compile_ok(const spec_seccomp *s, seccomp_prog *p)
{
	int r = seccomp_compile(s, p);
	if (r < 0)
		fprintf(stderr, "seccomp_compile: %s\n", err_msg());
	CHECK_INT(r, 0);
	return r;
}

/* --- errno default: x86-64, i386 and x32 ----------------------------------- */

static int child_errno_default(int listener, void *arg)
{
	EXPECT(1, syscall(SYS_getpid) == getpid());
	EXPECT(2, syscall(NR_FUTEX_WAITV, 0, 0, 0, 0, 0) == -1 && errno == EACCES); /* explicit */
	EXPECT(3, syscall(NR_PROCESS_MRELEASE, -1, 0) == -1 && errno == EPERM);     /* the default */
	EXPECT(4, syscall(SYS_getuid) == -1 && errno == EPERM);
	EXPECT(5, syscall(NR_HOME_NODE, 0, 0, 0, 0) == -1 && errno == ENOSYS);      /* newer */
	EXPECT(6, syscall(NR_NONE) == -1 && errno == ENOSYS);
	EXPECT(7, syscall(-1L) == -1 && errno == ENOSYS);                            /* 0xffffffff */
	EXPECT(8, sys_i386(20) == getpid());                                          /* i386 getpid */
	EXPECT(9, sys_i386(NR_PROCESS_MRELEASE) == -1 && errno == EPERM);
	EXPECT(10, sys_i386(NR_FUTEX_WAITV) == -1 && errno == EACCES);
	EXPECT(11, sys_i386(NR_HOME_NODE) == -1 && errno == ENOSYS);
	EXPECT(12, sys_i386(NR_NONE) == -1 && errno == ENOSYS);
	/* x32 numbers are checked against the x32 table (this kernel may have
	 * no x32 ABI: then the kernel's answer would be ENOSYS anyway, and only
	 * the EPERM ones prove the filter decided) */
	EXPECT(13, syscall(X32_BIT | NR_PROCESS_MRELEASE, -1, 0) == -1 && errno == EPERM);
	EXPECT(14, syscall(X32_BIT | NR_FUTEX_WAITV) == -1 && errno == EACCES);
	EXPECT(15, syscall(X32_BIT | NR_HOME_NODE) == -1 && errno == EPERM); /* below 525 */
	EXPECT(16, syscall(X32_BIT | X32_NR_BELOW) == -1 && errno == EPERM);
	EXPECT(17, syscall(X32_BIT | X32_NR_ABOVE) == -1 && errno == ENOSYS);
	EXPECT(18, syscall(X32_BIT | NR_NONE) == -1 && errno == ENOSYS);
	return 0;
}

static void test_errno_default(void)
{
	/* with and without defaultErrnoRet (EPERM either way) */
	for (int explicit_errno = 0; explicit_errno < 2; explicit_errno++) {
		spec_seccomp s = {
			.present = true, .default_action = SCMP_ACT_ERRNO(0),
			.default_errno_ret = { explicit_errno, EPERM },
			ARCHES(SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32),
			RULES({ NAMES(BASICS, "no_such_syscall_at_all"), .action = SCMP_ACT_ALLOW },
			      { NAMES("futex_waitv"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EACCES) },
			      /* equal to the default: skipped by the compiler, still counted */
			      { NAMES("getppid"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EPERM) }),
		};
		seccomp_prog p = { 0 };
		if (compile_ok(&s, &p) < 0)
			continue;
		CHECK(!p.needs_listener);
		CHECK_INT(run_filtered(&p, child_errno_default, NULL), 0);
		seccomp_prog_free(&p);
	}
}

/* The highest named syscall equal to the default, the only rule there. */
static int child_boundary(int listener, void *arg)
{
	EXPECT(1, syscall(NR_FUTEX_WAITV, 0, 0, 0, 0, 0) == -1 && errno == EXDEV);
	EXPECT(2, syscall(NR_HOME_NODE, 0, 0, 0, 0) == -1 && errno == ENOSYS);
	return 0;
}

static void test_boundary(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ERRNO(0), .default_errno_ret = { true, EXDEV },
		RULES({ NAMES(BASICS), .action = SCMP_ACT_ALLOW },
		      { NAMES("futex_waitv"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EXDEV) }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) == 0) {
		CHECK_INT(run_filtered(&p, child_boundary, NULL), 0);
		seccomp_prog_free(&p);
	}
}

/* --- without x32 in the profile: x32 numbers stay libseccomp's (bad arch) --- */

static int child_x32_badarch(int listener, void *arg)
{
	EXPECT(1, syscall(NR_NONE) == -1 && errno == ENOSYS);
	syscall(X32_BIT | NR_NONE); /* bad arch: killed here */
	return 99;
}

static void test_native_only(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ERRNO(0),
		RULES({ NAMES(BASICS, "futex_waitv"), .action = SCMP_ACT_ALLOW }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) == 0) {
		CHECK_INT(run_filtered(&p, child_x32_badarch, NULL), -SIGSYS);
		seccomp_prog_free(&p);
	}
}

/* --- kill and trap defaults: newer syscalls fail instead of killing -------- */

static int child_kill_newer(int listener, void *arg)
{
	EXPECT(1, syscall(NR_NONE) == -1 && errno == ENOSYS);
	EXPECT(2, syscall(NR_HOME_NODE) == -1 && errno == ENOSYS);
	syscall(NR_PROCESS_MRELEASE, -1, 0); /* below the highest: the default kills */
	return 99;
}

static void test_kill_default(void)
{
	static const uint32_t defaults[] = { SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP };
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		spec_seccomp s = {
			.present = true, .default_action = defaults[i],
			RULES({ NAMES(BASICS, "futex_waitv"), .action = SCMP_ACT_ALLOW }),
		};
		seccomp_prog p = { 0 };
		if (compile_ok(&s, &p) < 0)
			continue;
		CHECK_INT(run_filtered(&p, child_kill_newer, NULL), -SIGSYS);
		seccomp_prog_free(&p);
	}
}

/* --- no stub where the default does not refuse ----------------------------- */

struct kernel_answer { long ret; int err; };

static int child_permissive(int listener, void *arg)
{
	const struct kernel_answer *k = arg;
	errno = 0;
	long r = syscall(NR_HOME_NODE, 0, 0, 0, 0);
	EXPECT(1, r == k->ret && (r != -1 || errno == k->err));
	EXPECT(2, syscall(NR_FUTEX_WAITV, 0, 0, 0, 0, 0) == -1 && errno == EACCES);
	return 0;
}

static int child_enosys_default(int listener, void *arg)
{
	EXPECT(1, syscall(SYS_getuid) == -1 && errno == ENOSYS);
	EXPECT(2, syscall(NR_NONE) == -1 && errno == ENOSYS);
	EXPECT(3, syscall(NR_FUTEX_WAITV, 0, 0, 0, 0, 0) == -1 && errno == EACCES);
	return 0;
}

static void test_no_stub(void)
{
	/* the kernel's own answer, asked before any filter */
	struct kernel_answer k;
	errno = 0;
	k.ret = syscall(NR_HOME_NODE, 0, 0, 0, 0);
	k.err = errno;
	static const uint32_t permissive[] = { SCMP_ACT_ALLOW, SCMP_ACT_LOG };
	for (size_t i = 0; i < ARRAY_SIZE(permissive); i++) {
		spec_seccomp s = {
			.present = true, .default_action = permissive[i],
			RULES({ NAMES("futex_waitv"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EACCES) }),
		};
		seccomp_prog p = { 0 };
		if (compile_ok(&s, &p) < 0)
			continue;
		/* SCMP_ACT_LOG logs every call: only the allow run executes */
		if (permissive[i] == SCMP_ACT_ALLOW)
			CHECK_INT(run_filtered(&p, child_permissive, &k), 0);
		seccomp_prog p2 = { 0 };
		spec_seccomp s2 = s;
		s2.default_action = SCMP_ACT_ERRNO(0);
		if (compile_ok(&s2, &p2) == 0) /* the stub makes the refusing one longer */
			CHECK(p2.len > p.len);
		seccomp_prog_free(&p2);
		seccomp_prog_free(&p);
	}

	/* an ENOSYS default is already the answer: the same program as
	 * libseccomp's, the same as with a default that does not get a stub */
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ERRNO(0), .default_errno_ret = { true, ENOSYS },
		RULES({ NAMES(BASICS), .action = SCMP_ACT_ALLOW },
		      { NAMES("futex_waitv"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EACCES) }),
	};
	seccomp_prog p = { 0 }, p_eperm = { 0 };
	if (compile_ok(&s, &p) == 0) {
		CHECK_INT(run_filtered(&p, child_enosys_default, NULL), 0);
		s.default_errno_ret.v = EPERM;
		if (compile_ok(&s, &p_eperm) == 0)
			CHECK(p_eperm.len > p.len);
	}
	seccomp_prog_free(&p_eperm);
	seccomp_prog_free(&p);

	/* nothing named: nothing to compare with, no stub */
	spec_seccomp none = { .present = true, .default_action = SCMP_ACT_ERRNO(0),
			      RULES({ NAMES("no_such_syscall_at_all"), .action = SCMP_ACT_ALLOW }) };
	spec_seccomp none_allow = none;
	none_allow.default_action = SCMP_ACT_ALLOW;
	none_allow.default_errno_ret = (opt_u64){ 0 };
	seccomp_prog a = { 0 }, b = { 0 };
	if (compile_ok(&none, &a) == 0 && compile_ok(&none_allow, &b) == 0)
		CHECK_INT(a.len, b.len);
	seccomp_prog_free(&a);
	seccomp_prog_free(&b);
}

/* --- notify rules under a refusing default --------------------------------- */

static int child_notify(int listener, void *arg)
{
	const char *sock = arg;
	EXPECT(1, listener >= 0);
	if (seccomp_send_listener(sock, "{}", listener) < 0) {
		fprintf(stderr, "child: %s\n", err_msg());
		return 2;
	}
	close(listener);
	EXPECT(3, syscall(SYS_getppid) == 4242);                          /* the agent's answer */
	EXPECT(4, syscall(NR_NONE) == -1 && errno == ENOSYS);
	EXPECT(5, syscall(SYS_getuid) == -1 && errno == EPERM);
	return 0;
}

/* Receive the listener fd, answer one getppid with 4242. */
static void agent(int lsk)
{
	struct pollfd pfd = { .fd = lsk, .events = POLLIN };
	CHECK_INT(poll(&pfd, 1, 10000), 1);
	_cleanup_close_ int c = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
	CHECK(c >= 0);
	if (c < 0)
		return;
	char buf[64];
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
	_cleanup_close_ int nfd = -1;
	if (recvmsg(c, &msg, MSG_CMSG_CLOEXEC) > 0)
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&nfd, CMSG_DATA(cm), sizeof nfd);
	CHECK(nfd >= 0);
	pfd = (struct pollfd){ .fd = nfd, .events = POLLIN };
	if (nfd < 0 || poll(&pfd, 1, 10000) != 1)
		return;
	struct seccomp_notif req;
	memset(&req, 0, sizeof req);
	CHECK_INT(ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req), 0);
	CHECK_INT(req.data.nr, __NR_getppid);
	struct seccomp_notif_resp resp = { .id = req.id, .val = 4242 };
	CHECK_INT(ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp), 0);
}

static void test_notify(void)
{
	char dir[] = "/tmp/isola-test-enosys-XXXXXX", sock[64];
	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ERRNO(0), .listener_path = sock,
		RULES({ NAMES(BASICS, "socket", "connect", "sendmsg", "close"), .action = SCMP_ACT_ALLOW },
		      { NAMES("getppid"), .action = SCMP_ACT_NOTIFY }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) == 0) {
		CHECK(p.needs_listener);
		int lsk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		memcpy(sa.sun_path, sock, strlen(sock));
		CHECK_INT(bind(lsk, (struct sockaddr *)&sa, sizeof sa), 0);
		CHECK_INT(listen(lsk, 1), 0);
		pid_t pid = spawn(&p, child_notify, sock);
		agent(lsk);
		int st = 0;
		if (waitpid(pid, &st, 0) != pid)
			st = 998 << 8;
		CHECK_INT(exit_code(st), 0);
		close(lsk);
		unlink(sock);
		seccomp_prog_free(&p);
	}
	rmdir(dir);
}

/* --- the compiled-filter cache hands out the program with the stub --------- */

static void test_cache(void)
{
	char dir[] = "/tmp/isola-test-enosys-XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ERRNO(0),
		ARCHES(SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32),
		RULES({ NAMES(BASICS, "no_such_syscall_at_all"), .action = SCMP_ACT_ALLOW },
		      { NAMES("futex_waitv"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EACCES) },
		      { NAMES("getppid"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EPERM) }),
	};
	for (int round = 0; round < 2; round++) { /* a miss, then a hit */
		void *blob = NULL;
		size_t len = 0;
		seccomp_prog p = { 0 };
		CHECK_INT(seccomp_compile_cached(&s, dir, &blob, &len), 0);
		if (blob && seccomp_prog_from_blob(blob, len, &p) == 0)
			CHECK_INT(run_filtered(&p, child_errno_default, NULL), 0);
		else
			CHECK(0);
		seccomp_prog_free(&p);
		free(blob);
	}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CHECK_INT(system(cmd), 0);
}

int main(void)
{
	if (seccomp_arch_native() != SCMP_ARCH_X86_64) {
		printf("test-seccomp-enosys: SKIP: the probes use x86-64 numbers\n");
		return 0;
	}
	test_errno_default();
	test_boundary();
	test_native_only();
	test_kill_default();
	test_no_stub();
	test_notify();
	test_cache();
	return unit_done("test-seccomp-enosys");
}
