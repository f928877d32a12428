/* The host side of the guest agent against a fake guest (a forked child on a
 * socketpair) that behaves as a hostile guest might: garbage before its
 * answer, silence, a frame claiming 4 GiB, frames of the wrong type or size,
 * impossible exit statuses, a flood of output, an error message with control
 * characters, a command that ignores its timeout. The host must resync,
 * time out, refuse, and never buffer what the guest sends. */
#include "unit.h"
#include "vm/agent.h"
#include "vm/qmp.h"
#include "util/err.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return -1;
		p += n, len -= (size_t)n;
	}
	return 0;
}

/* One frame from the host; payload into buf (up to 64 KiB). */
static int host_frame(int fd, struct agent_hdr *h, uint8_t *buf)
{
	uint8_t hdr[AGENT_HDR_SIZE];
	if (read_full(fd, hdr, sizeof hdr) < 0 || agent_hdr_get(hdr, h) < 0)
		return -1;
	return read_full(fd, buf, h->len);
}

static void send_frame(int fd, uint16_t type, uint32_t sid, const void *data, size_t len)
{
	uint8_t hdr[AGENT_HDR_SIZE];
	agent_hdr_put(hdr, type, sid, (uint32_t)len);
	(void)!write(fd, hdr, sizeof hdr);
	if (len)
		(void)!write(fd, data, len);
}

static void pong(int fd, const struct agent_hdr *h, const uint8_t *p)
{
	uint8_t m[12];
	memcpy(m, p, 8);
	agent_put32(m + 8, 1);
	send_frame(fd, AGENT_PONG, h->session, m, sizeof m);
}

static void exit_frame(int fd, uint32_t sid, int32_t code, int32_t sig)
{
	uint8_t m[8];
	agent_put32(m, (uint32_t)code);
	agent_put32(m + 4, (uint32_t)sig);
	send_frame(fd, AGENT_EXIT, sid, m, sizeof m);
}

static void guest(int fd, int scenario)
{
	static uint8_t p[AGENT_MAX_PAYLOAD];
	struct agent_hdr h;
	if (host_frame(fd, &h, p) < 0)
		_exit(1);
	if (scenario == 1) { /* silence */
		sleep(5);
		_exit(0);
	}
	/* garbage first: the tail of an old frame and a fake header */
	uint8_t junk[64];
	memset(junk, 0xAB, sizeof junk);
	(void)!write(fd, junk, 37);
	send_frame(fd, AGENT_PONG, h.session ^ 1, "00000000xxxx", 12);
	pong(fd, &h, p);
	if (host_frame(fd, &h, p) < 0)
		_exit(0);
	uint32_t sid = h.session;
	uint8_t pid[4];
	agent_put32(pid, 42);
	switch (scenario) {
	case 2: { /* a header claiming 4 GiB */
		uint8_t hdr[AGENT_HDR_SIZE];
		agent_hdr_put(hdr, AGENT_STDOUT, sid, 0xFFFFFFF0u);
		(void)!write(fd, hdr, sizeof hdr);
		sleep(5);
		break;
	}
	case 3: /* a normal command, with frames of another session between */
		send_frame(fd, AGENT_STARTED, sid, pid, 4);
		send_frame(fd, AGENT_STDOUT, sid + 2, "not mine", 8);
		send_frame(fd, AGENT_STDOUT, sid, "hello\n", 6);
		send_frame(fd, AGENT_STDERR, sid, "oops\n", 5);
		if (host_frame(fd, &h, p) == 0 && h.type == AGENT_STDIN && h.len == 0)
			exit_frame(fd, sid, 3, 0);
		break;
	case 4: { /* a refusal with control characters in its text */
		uint8_t m[64];
		agent_put32(m, ENOENT);
		memcpy(m + 4, "exec \"x\": \x1b[2Jgone\n", 19);
		send_frame(fd, AGENT_ERROR, sid, m, 4 + 19);
		break;
	}
	case 5: { /* 8 MiB of output */
		send_frame(fd, AGENT_STARTED, sid, pid, 4);
		static uint8_t big[AGENT_MAX_PAYLOAD];
		memset(big, 'x', sizeof big);
		for (int i = 0; i < 128; i++)
			send_frame(fd, AGENT_STDOUT, sid, big, sizeof big);
		exit_frame(fd, sid, 0, 0);
		break;
	}
	case 6: /* an impossible exit status */
		exit_frame(fd, sid, 1000, 0);
		break;
	case 7: /* ignores everything but SIGKILL */
		send_frame(fd, AGENT_STARTED, sid, pid, 4);
		while (host_frame(fd, &h, p) == 0)
			if (h.type == AGENT_SIGNAL && agent_get32(p) == SIGKILL) {
				exit_frame(fd, sid, -1, SIGKILL);
				break;
			}
		break;
	case 8: /* a host->guest type coming from the guest */
		send_frame(fd, AGENT_EXEC, sid, "\0\0\0\0\0\0\0\0ash\0", 13);
		break;
	case 9: /* a wrong-sized exit frame */
		send_frame(fd, AGENT_EXIT, sid, "abc", 3);
		break;
	}
	sleep(1);
	_exit(0);
}

static int start(int scenario, pid_t *pid, struct agent **a, int timeout_ms)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	*pid = fork();
	if (*pid == 0) {
		close(sv[0]);
		guest(sv[1], scenario);
	}
	close(sv[1]);
	return agent_open_fd(sv[0], "test-vm", timeout_ms, a);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int run(int scenario, int timeout_ms, int out, int err, struct agent_status *st)
{
	pid_t pid;
	struct agent *a = NULL;
	int r = start(scenario, &pid, &a, 5000);
	CHECK_INT(r, 0);
	const char *argv[] = { "sh", "-c", "true", NULL };
	struct agent_exec_opts o = { .argv = argv, .stdin_fd = -1, .stdout_fd = out, .stderr_fd = err, .winch_fd = -1,
				     .timeout_ms = timeout_ms };
	if (r == 0)
		r = agent_exec(a, &o, st);
	agent_close(a);
	reap(pid);
	return r;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	pid_t pid;
	struct agent *a = NULL;
	struct agent_status st;

	/* silence: the deadline holds */
	long long t0 = qmp_now_ms();
	CHECK_INT(start(1, &pid, &a, 300), -ETIMEDOUT);
	CHECK(qmp_now_ms() - t0 < 2500);
	CHECK_CONTAINS(err_msg(), "no answer within 300 ms");
	reap(pid);

	/* 4 GiB claimed: refused at the header, nothing allocated or awaited */
	t0 = qmp_now_ms();
	CHECK_INT(run(2, 10000, -1, -1, &st), -EPROTO);
	CHECK_CONTAINS(err_msg(), "malformed frame");
	CHECK(qmp_now_ms() - t0 < 2500);

	/* a normal command after garbage: resync, output, exit code */
	int po[2], pe[2];
	CHECK_INT(pipe2(po, O_CLOEXEC | O_NONBLOCK), 0);
	CHECK_INT(pipe2(pe, O_CLOEXEC | O_NONBLOCK), 0);
	CHECK_INT(run(3, 5000, po[1], pe[1], &st), 0);
	CHECK_INT(st.code, 3);
	CHECK_INT(st.signal, 0);
	CHECK_INT(st.pid, 42);
	char buf[64] = "";
	ssize_t n = read(po[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	CHECK_STR(buf, "hello\n");
	n = read(pe[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	CHECK_STR(buf, "oops\n");

	/* the guest's refusal: its errno, its text made printable */
	CHECK_INT(run(4, 5000, -1, -1, &st), -ENOENT);
	CHECK_CONTAINS(err_msg(), "exec in test-vm: exec \"x\": ?[2Jgone?");

	/* a flood is relayed (to /dev/null), never buffered */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK_INT(run(5, 20000, null, -1, &st), 0);
	CHECK_INT(st.code, 0);
	close(null);

	CHECK_INT(run(6, 5000, -1, -1, &st), -EPROTO);
	CHECK_CONTAINS(err_msg(), "impossible exit status 1000/0");

	/* the timeout kills the command and says so */
	CHECK_INT(run(7, 300, -1, -1, &st), -ETIMEDOUT);
	CHECK_CONTAINS(err_msg(), "killed after 300 ms");

	CHECK_INT(run(8, 5000, -1, -1, &st), -EPROTO);
	CHECK_INT(run(9, 5000, -1, -1, &st), -EPROTO);

	/* requests the host will not send */
	CHECK_INT(start(3, &pid, &a, 5000), 0);
	const char *noargs[] = { NULL };
	struct agent_exec_opts o = { .argv = noargs, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .winch_fd = -1, .timeout_ms = 100 };
	CHECK_INT(agent_exec(a, &o, &st), -EINVAL);
	static char huge[70000];
	memset(huge, 'a', sizeof huge - 1);
	const char *big[] = { huge, NULL };
	o.argv = big;
	CHECK_INT(agent_exec(a, &o, &st), -E2BIG);
	const char *env[] = { "NOEQUALS", NULL }, *sh[] = { "sh", NULL };
	o.argv = sh;
	o.env = env;
	CHECK_INT(agent_exec(a, &o, &st), -EINVAL);
	CHECK_CONTAINS(err_msg(), "environment entry \"NOEQUALS\"");
	agent_close(a);
	reap(pid);
	return unit_done("test-vm-agent");
}
