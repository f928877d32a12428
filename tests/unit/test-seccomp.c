/* Unit tests for sandbox/seccomp.c: compile hand-built spec_seccomp objects,
 * install them in forked children and watch what their syscalls do. */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "unit.h"

#define COUNT(type, ...) (sizeof((type[]){ __VA_ARGS__ }) / sizeof(type))
#define NAMES(...) .names = (char *[]){ __VA_ARGS__ }, .n_names = COUNT(char *, __VA_ARGS__)
#define ARGS(...) .args = (spec_seccomp_arg[]){ __VA_ARGS__ }, .n_args = COUNT(spec_seccomp_arg, __VA_ARGS__)
#define RULES(...) .rules = (spec_seccomp_rule[]){ __VA_ARGS__ }, .n_rules = COUNT(spec_seccomp_rule, __VA_ARGS__)
#define ERRNO_RET(e) .errno_ret = { true, (e) }

static char tmpdir[64]; /* mkdtemp() of a short template */

/* In a child: report the first unexpected result and exit with its step. */
#define EXPECT(step, cond) do { if (!(cond)) { \
	fprintf(stderr, "child step %d: %s failed (errno %d)\n", (step), #cond, errno); \
	return (step); } } while (0)

/* Exit status, or minus the signal that killed the process. */
static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : 999;
}

/* The child's half of an install: what the container init does. */
static int child_prepare(void)
{
	struct rlimit none = { 0, 0 };
	(void) setrlimit(RLIMIT_CORE, &none); /* SIGSYS would dump core */
	(void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* Fork; the child installs p (when given) and exits with fn()'s value. */
static pid_t spawn(const seccomp_prog *p, int (*fn)(int listener, void *arg), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (child_prepare() < 0)
		_exit(200);
	int listener = -2;
	if (p && seccomp_install(p, &listener) < 0) {
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

/* --- errno / trace actions ------------------------------------------------ */

static int child_errno(int listener, void *arg)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/denied", tmpdir);
	EXPECT(1, listener == -1);
	EXPECT(2, mkdir(path, 0755) == -1 && errno == ENOSYS);    /* errnoRet 38 */
	EXPECT(3, chdir("/") == -1 && errno == EPERM);             /* errnoRet absent */
	EXPECT(4, syscall(SYS_getppid) == -1 && errno == ENOSYS); /* TRACE, no tracer */
	EXPECT(5, syscall(SYS_getpid) == getpid());
	EXPECT(6, access(path, F_OK) == -1 && errno == ENOENT);
	return 0;
}

static void test_errno_actions(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("mkdir", "mkdirat"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(ENOSYS) },
		      { NAMES("chdir"), .action = SCMP_ACT_ERRNO(0) },
		      { NAMES("getppid"), .action = SCMP_ACT_TRACE(0), ERRNO_RET(7) }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK(p.len > 0);
	CHECK(!p.needs_listener);
	CHECK_INT(p.flags, 0);
	CHECK_INT(run_filtered(&p, child_errno, NULL), 0);
	seccomp_prog_free(&p);
	CHECK(p.filter == NULL);
	seccomp_prog_free(NULL);
}

/* --- argument comparisons ------------------------------------------------- */

static int child_args(int listener, void *arg)
{
	EXPECT(1, personality(0xffffffff) >= 0);
	EXPECT(2, personality(0x0400) == -1 && errno == EACCES);  /* (0x0400 & 0xff00) == 0x0400 */
	EXPECT(3, personality(0x04ff) == -1 && errno == EACCES);
	EXPECT(4, personality(PER_LINUX) >= 0);                    /* masked value 0 */
	errno = 0;
	EXPECT(5, getpriority(PRIO_PROCESS, 12345) == -1 && errno == EXDEV); /* both args match */
	errno = 0;
	(void) getpriority(PRIO_PROCESS, 0);
	EXPECT(6, errno == 0);                                     /* arg1 differs */
	errno = 0;
	(void) getpriority(PRIO_PGRP, 12345);
	EXPECT(7, errno != EXDEV);                                 /* arg0 differs */
	/* Same index twice: split into two rules, so either value matches. */
	EXPECT(8, syscall(SYS_umask, 077) == -1 && errno == EDOM);
	EXPECT(9, syscall(SYS_umask, 027) == -1 && errno == EDOM);
	EXPECT(10, syscall(SYS_umask, 022) >= 0);
	EXPECT(11, getpgid(2000000) == -1 && errno == ENOTTY);     /* GT */
	EXPECT(12, getpgid(0) >= 0);
	EXPECT(13, syscall(SYS_getsid, 0) >= 0);                   /* NE 0 does not match */
	EXPECT(14, syscall(SYS_getsid, 1) == -1 && errno == ENOLINK);
	return 0;
}

static void test_arg_rules(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("personality"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EACCES),
			ARGS({ .index = 0, .op = SCMP_CMP_MASKED_EQ, .value = 0xff00, .value_two = 0x0400 }) },
		      { NAMES("getpriority"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EXDEV),
			ARGS({ .index = 0, .op = SCMP_CMP_EQ, .value = PRIO_PROCESS },
			     { .index = 1, .op = SCMP_CMP_EQ, .value = 12345 }) },
		      { NAMES("umask"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EDOM),
			ARGS({ .index = 0, .op = SCMP_CMP_EQ, .value = 077 },
			     { .index = 0, .op = SCMP_CMP_EQ, .value = 027 }) },
		      { NAMES("getpgid"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(ENOTTY),
			ARGS({ .index = 0, .op = SCMP_CMP_GT, .value = 1000000 }) },
		      { NAMES("getsid"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(ENOLINK),
			ARGS({ .index = 0, .op = SCMP_CMP_NE, .value = 0 }) }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK_INT(run_filtered(&p, child_args, NULL), 0);
	seccomp_prog_free(&p);
}

/* --- kill and trap -------------------------------------------------------- */

static int child_kill(int listener, void *arg)
{
	EXPECT(1, syscall(SYS_getpid) > 0);
	syscall(SYS_getppid); /* not allowed: the kernel kills us here */
	return 99;
}

static void test_kill(void)
{
	/* Default kill: only what the child needs to get to the fatal call. */
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_KILL,
		RULES({ NAMES("exit_group", "exit", "getpid", "write"), .action = SCMP_ACT_ALLOW }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) == 0) {
		CHECK_INT(run_filtered(&p, child_kill, NULL), -SIGSYS);
		seccomp_prog_free(&p);
	}

	static const uint32_t actions[] = { SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP };
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		spec_seccomp s2 = {
			.present = true, .default_action = SCMP_ACT_ALLOW,
			RULES({ NAMES("getppid"), .action = actions[i] }),
		};
		if (compile_ok(&s2, &p) < 0)
			continue;
		CHECK_INT(run_filtered(&p, child_kill, NULL), -SIGSYS);
		seccomp_prog_free(&p);
	}
}

/* --- skipped rules -------------------------------------------------------- */

static int child_skipped(int listener, void *arg)
{
	EXPECT(1, chdir("/") == -1 && errno == ENOTSUP);
	EXPECT(2, syscall(SYS_getpid) == getpid());
	return 0;
}

static void test_skipped(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("isola_no_such_syscall", "chdir", "fchdir_typo"), .action = SCMP_ACT_ERRNO(0),
			ERRNO_RET(ENOTSUP) },
		      { NAMES("getpid"), .action = SCMP_ACT_ALLOW }, /* equal to the default */
		      { NAMES("only_unknown_a", "only_unknown_b"), .action = SCMP_ACT_NOTIFY }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK(!p.needs_listener); /* the NOTIFY rule matched no syscall */
	CHECK_INT(run_filtered(&p, child_skipped, NULL), 0);
	seccomp_prog_free(&p);

	/* ERRNO(EPERM) under a default of ERRNO with errnoRet absent (EPERM)
	 * equals the default; libseccomp would refuse it with EACCES. */
	spec_seccomp s2 = {
		.present = true, .default_action = SCMP_ACT_ERRNO(0),
		RULES({ NAMES("read"), .action = SCMP_ACT_ALLOW },
		      { NAMES("getpid"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(EPERM) },
		      { NAMES("getppid"), .action = SCMP_ACT_ERRNO(0) }),
	};
	if (compile_ok(&s2, &p) == 0)
		seccomp_prog_free(&p);
}

/* --- configuration errors ------------------------------------------------- */

static void expect_error(const spec_seccomp *s, const char *want)
{
	seccomp_prog p = { .len = 4242 };
	err_clear();
	int r = seccomp_compile(s, &p);
	CHECK_INT(r, -EINVAL);
	CHECK_CONTAINS(err_msg(), want);
	CHECK_INT(p.len, 4242); /* untouched on failure */
	if (r == 0)
		seccomp_prog_free(&p);
}

static void test_errors(void)
{
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("read"), .action = SCMP_ACT_ERRNO(0) },
		      { NAMES("write"), .action = 0x12340000 }) },
		"linux.seccomp.syscalls[1].action: unknown action 0x12340000");
	expect_error(&(spec_seccomp){ .default_action = 0x00010000 },
		"linux.seccomp.defaultAction: unknown action");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_NOTIFY },
		"linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ERRNO(0),
		RULES({ NAMES("read"), .action = SCMP_ACT_ALLOW, ERRNO_RET(EPERM) }) },
		"linux.seccomp.syscalls[0].errnoRet: not supported with SCMP_ACT_ALLOW");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_KILL, .default_errno_ret = { true, 1 } },
		"linux.seccomp.defaultErrnoRet: not supported with SCMP_ACT_KILL");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("read"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(70000) }) },
		"linux.seccomp.syscalls[0].errnoRet: 70000 is out of range");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("read"), .action = SCMP_ACT_ERRNO(0),
			ARGS({ .index = 0, .op = SCMP_CMP_EQ }, { .index = 6, .op = SCMP_CMP_EQ }) }) },
		"linux.seccomp.syscalls[0].args[1].index: 6 is out of range");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("read"), .action = SCMP_ACT_LOG }, { NAMES("read"), .action = SCMP_ACT_ERRNO(0),
			ARGS({ .index = 0, .op = 0 }) }) },
		"linux.seccomp.syscalls[1].args[0].op: unknown operator 0");
	/* Failures inside libseccomp name the rule too: errno > 4095. */
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ALLOW,
		RULES({ NAMES("read"), .action = SCMP_ACT_LOG }, { NAMES("getpid"), .action = SCMP_ACT_TRAP },
		      { NAMES("bogus_name", "write"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(5000) }) },
		"linux.seccomp.syscalls[2]: add rule for \"write\" (SCMP_ACT_ERRNO(5000), 0 argument conditions)");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ERRNO(0), .default_errno_ret = { true, 5000 } },
		"linux.seccomp.defaultAction: create filter with SCMP_ACT_ERRNO(5000)");
	expect_error(&(spec_seccomp){ .default_action = SCMP_ACT_ALLOW,
		.arches = (uint32_t[]){ SCMP_ARCH_X86_64, 0x1234 }, .n_arches = 2 },
		"linux.seccomp.architectures[1]: add 0x1234");
}

/* --- flags ---------------------------------------------------------------- */

static int child_flags(int listener, void *arg)
{
	seccomp_prog *p = arg;
	EXPECT(1, seccomp_install(p, NULL) == -EINVAL);
	EXPECT(2, strstr(err_msg(), "SECCOMP_FILTER_FLAG_LOG|0x40000000") != NULL);
	p->flags = SECCOMP_FILTER_FLAG_LOG;
	EXPECT(3, seccomp_install(p, &listener) == 0 && listener == -1);
	EXPECT(4, chdir("/") == -1 && errno == EPERM);
	return 0;
}

static void test_flags(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ALLOW,
		.flags = SECCOMP_FILTER_FLAG_LOG | (1u << 30),
		RULES({ NAMES("chdir"), .action = SCMP_ACT_ERRNO(0) }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK_INT(p.flags, SECCOMP_FILTER_FLAG_LOG | (1u << 30));
	CHECK_INT(run_filtered(NULL, child_flags, &p), 0);
	seccomp_prog_free(&p);
}

/* --- blob ------------------------------------------------------------------ */

static int child_blob(int listener, void *arg)
{
	EXPECT(1, chdir("/") == -1 && errno == ENOSYS);
	return 0;
}

static void expect_bad_blob(const void *b, size_t len, const char *want)
{
	seccomp_prog p = { .len = 7 };
	err_clear();
	CHECK_INT(seccomp_prog_from_blob(b, len, &p), -EINVAL);
	CHECK_CONTAINS(err_msg(), want);
	CHECK_INT(p.len, 7);
}

static void test_blob(void)
{
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ALLOW, .flags = SECCOMP_FILTER_FLAG_SPEC_ALLOW,
		RULES({ NAMES("chdir"), .action = SCMP_ACT_ERRNO(0), ERRNO_RET(ENOSYS) },
		      { NAMES("getppid"), .action = SCMP_ACT_NOTIFY }),
	};
	seccomp_prog p = { 0 }, q = { 0 };
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK(p.needs_listener);
	void *blob = NULL;
	size_t len = 0;
	CHECK_INT(seccomp_prog_to_blob(&p, &blob, &len), 0);
	CHECK_INT(len, 16 + p.len * sizeof(struct sock_filter));
	CHECK_INT(seccomp_prog_from_blob(blob, len, &q), 0);
	CHECK_INT(q.len, p.len);
	CHECK_INT(q.flags, SECCOMP_FILTER_FLAG_SPEC_ALLOW);
	CHECK(q.needs_listener);
	CHECK(q.filter && memcmp(q.filter, p.filter, p.len * sizeof(struct sock_filter)) == 0);
	seccomp_prog_free(&q);

	/* Without the NOTIFY rule the copy runs in a child. */
	s.n_rules = 1;
	seccomp_prog_free(&p);
	free(blob);
	blob = NULL;
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK_INT(seccomp_prog_to_blob(&p, &blob, &len), 0);
	CHECK_INT(seccomp_prog_from_blob(blob, len, &q), 0);
	CHECK_INT(run_filtered(&q, child_blob, NULL), 0);
	seccomp_prog_free(&q);

	unsigned char *bad = malloc(len + 8);
	memcpy(bad, blob, len);
	expect_bad_blob(NULL, 0, "seccomp blob: truncated");
	expect_bad_blob(bad, 15, "seccomp blob: truncated (15 bytes");
	expect_bad_blob(bad, len - 1, "does not match");
	expect_bad_blob(bad, len + 8, "does not match");
	bad[0] ^= 0xff;
	expect_bad_blob(bad, len, "seccomp blob: bad magic");
	bad[0] ^= 0xff;
	bad[4] = 9; /* version */
	expect_bad_blob(bad, len, "unsupported version 9");
	memcpy(bad, blob, 16);
	bad[6] = bad[7] = 0; /* len = 0 */
	expect_bad_blob(bad, len, "program length 0 out of range");
	memcpy(bad, blob, 16);
	bad[12] = 2; /* needs_listener */
	expect_bad_blob(bad, len, "corrupt header");
	free(bad);
	free(blob);
	seccomp_prog_free(&p);

	seccomp_prog empty = { 0 };
	CHECK(seccomp_prog_to_blob(&empty, &blob, &len) < 0);
}

/* --- notify + listener ------------------------------------------------------ */

static const char notify_state[] = "{\"ociVersion\":\"1.1.0\",\"fds\":[\"seccompFd\"],\"pid\":1,"
				   "\"metadata\":\"unit\",\"state\":{\"id\":\"t\",\"status\":\"creating\"}}";

static int child_notify(int listener, void *arg)
{
	const char *sock = arg;
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/notified", tmpdir);
	EXPECT(1, listener >= 0);
	if (seccomp_send_listener(sock, notify_state, listener) < 0) {
		fprintf(stderr, "child: %s\n", err_msg());
		return 2;
	}
	close(listener);
	EXPECT(3, mkdir(path, 0755) == -1 && errno == EXDEV); /* the agent answers -EXDEV */
	EXPECT(4, syscall(SYS_getppid) == 4242);              /* ... and 4242 */
	EXPECT(5, access(path, F_OK) == -1 && errno == ENOENT);
	return 0;
}

/* The seccomp agent: receive state + fd, answer two notifications. */
static void agent(int lsk, pid_t child)
{
	struct pollfd pfd = { .fd = lsk, .events = POLLIN };
	CHECK_INT(poll(&pfd, 1, 10000), 1);
	int c = accept4(lsk, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(c >= 0);
	if (c < 0)
		return;
	char buf[4096] = { 0 };
	size_t got = 0;
	int nfd = -1, nmsg = 0;
	for (;;) {
		pfd = (struct pollfd){ .fd = c, .events = POLLIN };
		if (poll(&pfd, 1, 10000) != 1)
			break;
		union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
		struct iovec iov = { .iov_base = buf + got, .iov_len = sizeof buf - 1 - got };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				      .msg_controllen = sizeof ctl.b };
		ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			break; /* EOF: the runtime closes after one state */
		nmsg++;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&nfd, CMSG_DATA(cm), sizeof nfd);
		got += n;
	}
	close(c);
	CHECK_STR(buf, notify_state);
	CHECK(nmsg >= 1);
	CHECK(nfd >= 0);
	if (nfd < 0)
		return;
	CHECK_INT(fcntl(nfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	int answered = 0;
	for (int i = 0; i < 2; i++) {
		pfd = (struct pollfd){ .fd = nfd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) != 1)
			break;
		struct seccomp_notif req;
		memset(&req, 0, sizeof req);
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			fprintf(stderr, "SECCOMP_IOCTL_NOTIF_RECV: %s\n", strerror(errno));
			break;
		}
		CHECK_INT(req.pid, child);
		struct seccomp_notif_resp resp = { .id = req.id };
		if (req.data.nr == __NR_mkdir || req.data.nr == __NR_mkdirat) {
			resp.error = -EXDEV;
		} else {
			CHECK_INT(req.data.nr, __NR_getppid);
			resp.val = 4242;
		}
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0)
			answered++;
		else
			fprintf(stderr, "SECCOMP_IOCTL_NOTIF_SEND: %s\n", strerror(errno));
	}
	CHECK_INT(answered, 2);
	close(nfd);
}

static void test_notify(void)
{
	char sock[128];
	snprintf(sock, sizeof sock, "%s/agent.sock", tmpdir);
	spec_seccomp s = {
		.present = true, .default_action = SCMP_ACT_ALLOW, .listener_path = sock,
		RULES({ NAMES("mkdir", "mkdirat", "getppid"), .action = SCMP_ACT_NOTIFY }),
	};
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) < 0)
		return;
	CHECK(p.needs_listener);

	int lsk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	CHECK(strlen(sock) < sizeof sa.sun_path);
	memcpy(sa.sun_path, sock, strlen(sock));
	CHECK_INT(bind(lsk, (struct sockaddr *)&sa, sizeof sa), 0);
	CHECK_INT(listen(lsk, 1), 0);

	pid_t pid = spawn(&p, child_notify, sock);
	agent(lsk, pid);
	int st = 0;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	for (int i = 0; i < 1000 && waitpid(pid, &st, WNOHANG) == 0; i++)
		nanosleep(&ts, NULL);
	if (waitpid(pid, &st, WNOHANG) == 0) { /* stuck on an unanswered call */
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	CHECK_INT(exit_code(st), 0);
	close(lsk);
	unlink(sock);
	seccomp_prog_free(&p);
}

/* seccomp_send_listener: errors name the path; paths too long for sun_path. */
static void test_send_listener(void)
{
	err_clear();
	CHECK_INT(seccomp_send_listener("/nonexistent/isola-agent.sock", "{}", 0), -ENOENT);
	CHECK_CONTAINS(err_msg(), "seccomp listener '/nonexistent/isola-agent.sock': connect");

	char dir[256], sock[300];
	snprintf(dir, sizeof dir, "%s/%0120d", tmpdir, 0);
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	CHECK(strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path));
	CHECK_INT(mkdir(dir, 0700), 0);
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int lsk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/agent.sock", dfd);
	CHECK_INT(bind(lsk, (struct sockaddr *)&sa, sizeof sa), 0);
	CHECK_INT(listen(lsk, 1), 0);

	int pfd[2];
	CHECK_INT(pipe2(pfd, O_CLOEXEC), 0);
	err_clear();
	int r = seccomp_send_listener(sock, "{\"long\":true}", pfd[0]);
	if (r < 0)
		fprintf(stderr, "seccomp_send_listener: %s\n", err_msg());
	CHECK_INT(r, 0);
	int c = accept4(lsk, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(c >= 0);
	char buf[64] = { 0 };
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
	CHECK_INT(recvmsg(c, &msg, MSG_CMSG_CLOEXEC), 13);
	CHECK_STR(buf, "{\"long\":true}");
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS);
	if (cm) {
		int fd;
		memcpy(&fd, CMSG_DATA(cm), sizeof fd);
		struct stat a, b;
		CHECK(fstat(fd, &a) == 0 && fstat(pfd[0], &b) == 0 && a.st_ino == b.st_ino);
		close(fd);
	}
	close(c);
	close(lsk);
	close(pfd[0]);
	close(pfd[1]);
	unlink(sock);
	rmdir(dir);
	close(dfd);

	CHECK(seccomp_send_listener("/nonexistent", "", 0) < 0);
}

/* --- the Docker-style default profile (tests/data/seccomp-default.json) --- */

static void free_profile(spec_seccomp *s)
{
	for (size_t i = 0; i < s->n_rules; i++) {
		for (size_t j = 0; j < s->rules[i].n_names; j++)
			free(s->rules[i].names[j]);
		free(s->rules[i].names);
		free(s->rules[i].args);
	}
	free(s->rules);
	free(s->arches);
	memset(s, 0, sizeof *s);
}

static uint32_t action_from_name(const char *n)
{
	static const struct { const char *name; uint32_t act; } t[] = {
		{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW }, { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0) },
		{ "SCMP_ACT_KILL", SCMP_ACT_KILL }, { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
		{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP }, { "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0) },
		{ "SCMP_ACT_LOG", SCMP_ACT_LOG }, { "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(t[i].name, n) == 0)
			return t[i].act;
	return 0x12340000; /* let seccomp_compile complain */
}

static int op_from_name(const char *n)
{
	static const char *const ops[] = { NULL, "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
					   "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ" };
	for (int i = 1; i < (int)ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i], n) == 0)
			return i;
	return 0;
}

static uint32_t arch_from_name(const char *n)
{
	char lower[32];
	size_t i;
	if (strncmp(n, "SCMP_ARCH_", 10) == 0)
		n += 10;
	for (i = 0; n[i] && i < sizeof lower - 1; i++)
		lower[i] = (n[i] >= 'A' && n[i] <= 'Z') ? n[i] - 'A' + 'a' : n[i];
	lower[i] = '\0';
	return seccomp_arch_resolve_name(lower);
}

/* A test-local reader for the profile; the real parser is spec/. */
static int load_profile(const char *path, spec_seccomp *s, size_t *n_names)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root)
		return -1;
	memset(s, 0, sizeof *s);
	s->present = true;
	s->default_action = action_from_name(json_string_value(json_object_get(root, "defaultAction")));
	json_t *v = json_object_get(root, "defaultErrnoRet");
	if (v)
		s->default_errno_ret = (opt_u64){ true, json_integer_value(v) };
	json_t *arches = json_object_get(root, "architectures");
	s->n_arches = json_array_size(arches);
	s->arches = calloc(s->n_arches + 1, sizeof *s->arches);
	for (size_t i = 0; i < s->n_arches; i++)
		s->arches[i] = arch_from_name(json_string_value(json_array_get(arches, i)));
	json_t *calls = json_object_get(root, "syscalls");
	s->n_rules = json_array_size(calls);
	s->rules = calloc(s->n_rules + 1, sizeof *s->rules);
	*n_names = 0;
	for (size_t i = 0; i < s->n_rules; i++) {
		json_t *c = json_array_get(calls, i), *names = json_object_get(c, "names");
		json_t *args = json_object_get(c, "args");
		spec_seccomp_rule *r = &s->rules[i];
		r->action = action_from_name(json_string_value(json_object_get(c, "action")));
		if ((v = json_object_get(c, "errnoRet")))
			r->errno_ret = (opt_u64){ true, json_integer_value(v) };
		r->n_names = json_array_size(names);
		r->names = calloc(r->n_names + 1, sizeof(char *));
		for (size_t j = 0; j < r->n_names; j++)
			r->names[j] = strdup(json_string_value(json_array_get(names, j)));
		*n_names += r->n_names;
		r->n_args = json_array_size(args);
		r->args = calloc(r->n_args + 1, sizeof *r->args);
		for (size_t j = 0; j < r->n_args; j++) {
			json_t *a = json_array_get(args, j);
			r->args[j].index = json_integer_value(json_object_get(a, "index"));
			r->args[j].value = (uint64_t)json_integer_value(json_object_get(a, "value"));
			r->args[j].value_two = (uint64_t)json_integer_value(json_object_get(a, "valueTwo"));
			r->args[j].op = op_from_name(json_string_value(json_object_get(a, "op")));
		}
	}
	json_decref(root);
	return 0;
}

static char *profile_path(void)
{
	static char path[PATH_MAX + 64];
	const char *dir = getenv("ISOLA_TEST_DATA");
	if (dir) {
		snprintf(path, sizeof path, "%.*s/seccomp-default.json", PATH_MAX, dir);
		return path;
	}
	if (access("tests/data/seccomp-default.json", R_OK) == 0)
		return strcpy(path, "tests/data/seccomp-default.json");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, sizeof path, "%s/../../tests/data/seccomp-default.json", exe);
	return path;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Print (never assert) how long seccomp_compile takes. */
static void time_compile(const spec_seccomp *s, const char *what, size_t n_names)
{
	enum { N = 40 };
	static double t[N];
	seccomp_prog p = { 0 };
	for (int i = 0; i < N; i++) {
		double t0 = now_us();
		int r = seccomp_compile(s, &p);
		t[i] = now_us() - t0;
		if (r < 0) {
			CHECK_INT(r, 0);
			return;
		}
		if (i < N - 1)
			seccomp_prog_free(&p);
	}
	qsort(t, N, sizeof t[0], cmp_double);
	double sum = 0;
	for (int i = 0; i < N; i++)
		sum += t[i];
	printf("seccomp_compile(default profile, %zu names, %s): %u BPF instructions; "
	       "min %.0f us, median %.0f us, mean %.0f us over %d runs\n",
	       n_names, what, p.len, t[0], t[N / 2], sum / N, N);
	seccomp_prog_free(&p);
}

static int child_profile(int listener, void *arg)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/allowed", tmpdir);
	EXPECT(1, mkdir(path, 0755) == 0 && rmdir(path) == 0);
	EXPECT(2, syscall(SYS_getpid) == getpid());
	EXPECT(3, syscall(SYS_keyctl, 0x7fffffff, 0, 0, 0, 0) == -1 && errno == EPERM); /* not listed */
	EXPECT(4, unshare(CLONE_NEWNS) == -1 && errno == EPERM);
	EXPECT(5, syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS);
	EXPECT(6, personality(0xffffffff) >= 0);
	EXPECT(7, personality(0x0400) == -1 && errno == EPERM);
	pid_t pid = fork(); /* clone without namespace flags */
	EXPECT(8, pid >= 0);
	if (pid == 0)
		_exit(7);
	int st;
	EXPECT(9, waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
	EXPECT(10, syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0) == -1 && errno == EPERM);
	return 0;
}

static void test_default_profile(void)
{
	const char *path = profile_path();
	spec_seccomp s;
	size_t n_names = 0;
	if (!path || load_profile(path, &s, &n_names) < 0) {
		fprintf(stderr, "cannot read %s (run from the source tree or set ISOLA_TEST_DATA)\n",
			path ? path : "seccomp-default.json");
		CHECK(0);
		return;
	}
	CHECK(n_names >= 300);
	CHECK_INT(s.n_arches, 3);
	seccomp_prog p = { 0 };
	if (compile_ok(&s, &p) == 0) {
		CHECK(!p.needs_listener);
		CHECK_INT(run_filtered(&p, child_profile, NULL), 0);
		seccomp_prog_free(&p);
	}
	time_compile(&s, "x86_64+x86+x32", n_names);
	size_t n_arches = s.n_arches;
	s.n_arches = 0;
	time_compile(&s, "native only", n_names);
	s.n_arches = n_arches;
	free_profile(&s);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/isola-test-seccomp-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_errno_actions();
	test_arg_rules();
	test_kill();
	test_skipped();
	test_errors();
	test_flags();
	test_blob();
	test_notify();
	test_send_listener();
	test_default_profile();
	rmdir(tmpdir);
	return unit_done("test-seccomp");
}
