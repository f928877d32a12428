/* isola-monitor: the small process that looks after one running instance
 * (like conmon): it holds the console's pty master, writes what the console
 * prints to the instance's log, relays it to attached `isola console`
 * clients, reaps the init, and when the init exits execs the manager's exit
 * handler with the wait status. Static and free of our libraries, so it
 * stays well under 1 MiB of resident memory. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CLIENTS 8
#define DRAIN_QUIET_MS 100

static const char *name = "?";
static const char *log_path;
static long long log_max = 1 << 20;
static int log_fd = -1;
static long long log_size;
static int clients[MAX_CLIENTS];

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "isola-monitor: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: isola-monitor --name NAME --init PID --master FD --console-socket FD "
			"--log PATH [--log-max BYTES] -- EXIT_CMD [ARGS...]\n");
	return 2;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return false;
	*ret = v;
	return true;
}

static void log_open(void)
{
	log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct stat st;
	log_size = log_fd >= 0 && fstat(log_fd, &st) == 0 ? (long long)st.st_size : 0;
}

/* Keep the log bounded: the older half moves to PATH.1. */
static void log_write(const char *buf, size_t n)
{
	if (log_fd >= 0 && log_size + (long long)n > log_max && log_size > 0) {
		char old[4096];
		if ((size_t)snprintf(old, sizeof old, "%s.1", log_path) < sizeof old) {
			close(log_fd);
			(void)rename(log_path, old);
			log_open();
		}
	}
	if (log_fd < 0)
		return;
	ssize_t w = write(log_fd, buf, n);
	if (w > 0)
		log_size += w;
}

static void client_drop(int i)
{
	close(clients[i]);
	clients[i] = -1;
}

static void client_accept(int lsock, int master)
{
	int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	int slot = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] < 0) {
			slot = i;
			break;
		}
	/* The pty master goes along, for the client's window-size ioctls. */
	char byte = 'M';
	struct iovec iov = { &byte, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (slot < 0 || sendmsg(c, &msg, MSG_NOSIGNAL) != 1) {
		close(c);
		return;
	}
	clients[slot] = c;
}

/* Console output: to the log and every client; a client that cannot keep
 * up loses what does not fit rather than stalling the instance. */
static bool master_read(int master)
{
	char buf[8192];
	ssize_t n = read(master, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	log_write(buf, (size_t)n);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] >= 0 && send(clients[i], buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
		    errno != EAGAIN)
			client_drop(i);
	return true;
}

static void client_read(int i, int master)
{
	char buf[4096];
	ssize_t n = read(clients[i], buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		client_drop(i);
		return;
	}
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(master, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += w;
	}
}

int main(int argc, char **argv)
{
	long long init = -1, master = -1, lsock = -1;
	int i;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--"))
			break;
		if (i + 1 >= argc)
			return usage("%s: needs a value", o);
		const char *v = argv[++i];
		long long *num = !strcmp(o, "--init") ? &init : !strcmp(o, "--master") ? &master
				 : !strcmp(o, "--console-socket") ? &lsock : !strcmp(o, "--log-max") ? &log_max : NULL;
		if (!strcmp(o, "--name"))
			name = v;
		else if (!strcmp(o, "--log"))
			log_path = v;
		else if (!num)
			return usage("unknown option %s", o);
		else if (!parse_int(v, num == &log_max ? 4096 : num == &init ? 1 : 0, 1LL << 40, num))
			return usage("bad number \"%s\"", v);
	}
	if (i >= argc || i + 1 >= argc)
		return usage("%s", "missing \"--\" EXIT_CMD");
	if (init < 0 || master < 0 || lsock < 0 || !log_path)
		return usage("%s", "--init, --master, --console-socket and --log are required");
	char **exit_argv = argv + i + 1;
	if (exit_argv[0][0] != '/')
		return usage("EXIT_CMD \"%s\": must be an absolute path", exit_argv[0]);
	if (waitpid((pid_t)init, NULL, WNOHANG | __WALL) < 0 && errno == ECHILD) {
		fprintf(stderr, "isola-monitor: --init %lld: not a child of this process\n", init);
		return 2;
	}

	(void)prctl(PR_SET_NAME, "isola-monitor", 0, 0, 0);
	static const int ignored[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGTTOU, SIGTTIN };
	for (size_t k = 0; k < sizeof ignored / sizeof *ignored; k++)
		signal(ignored[k], SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	for (int k = 0; k < MAX_CLIENTS; k++)
		clients[k] = -1;
	int mfd = (int)master, ls = (int)lsock;
	(void)fcntl(mfd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(ls, F_SETFD, FD_CLOEXEC);
	(void)fcntl(mfd, F_SETFL, fcntl(mfd, F_GETFL) | O_NONBLOCK);
	log_open();

	int status = 0;
	bool master_open = true, exited = false;
	while (!exited) {
		struct pollfd p[2 + 1 + MAX_CLIENTS];
		int n = 0;
		p[n++] = (struct pollfd){ sfd, POLLIN, 0 };
		p[n++] = (struct pollfd){ master_open ? mfd : -1, POLLIN, 0 };
		p[n++] = (struct pollfd){ ls, POLLIN, 0 };
		for (int k = 0; k < MAX_CLIENTS; k++)
			p[n++] = (struct pollfd){ clients[k], POLLIN, 0 };
		/* Without a signalfd, look for the init's exit once a second. */
		if (poll(p, (nfds_t)n, sfd < 0 ? 1000 : -1) < 0 && errno != EINTR)
			break;
		if (master_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !master_read(mfd))
			master_open = false;
		if (p[2].revents & POLLIN)
			client_accept(ls, mfd);
		for (int k = 0; k < MAX_CLIENTS; k++)
			if (clients[k] >= 0 && (p[3 + k].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(k, mfd);
		struct signalfd_siginfo si;
		while (sfd >= 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
			;
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
			if (w == (pid_t)init) {
				status = st;
				exited = true;
			}
	}
	/* What the instance printed last still goes to the log. */
	while (master_open) {
		struct pollfd p = { mfd, POLLIN, 0 };
		if (poll(&p, 1, DRAIN_QUIET_MS) <= 0 || !master_read(mfd))
			break;
	}
	for (int k = 0; k < MAX_CLIENTS; k++)
		if (clients[k] >= 0)
			client_drop(k);
	close(ls);
	close(mfd);
	if (sfd >= 0)
		close(sfd);
	if (log_fd >= 0)
		close(log_fd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	static const int restored[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGTTOU, SIGTTIN };
	for (size_t k = 0; k < sizeof restored / sizeof *restored; k++)
		signal(restored[k], SIG_DFL);

	int argn = 0;
	while (exit_argv[argn])
		argn++;
	char **args = calloc((size_t)argn + 2, sizeof *args);
	char st_text[16];
	snprintf(st_text, sizeof st_text, "%d", status);
	if (args) {
		memcpy(args, exit_argv, (size_t)argn * sizeof *args);
		args[argn] = st_text;
		execv(args[0], args);
	}
	int e = errno;
	log_open();
	char line[512];
	int len = snprintf(line, sizeof line, "isola-monitor %s: exec %s: %s\n", name, exit_argv[0], strerror(e));
	if (log_fd >= 0 && len > 0)
		(void)!write(log_fd, line, (size_t)len);
	return 1;
}
