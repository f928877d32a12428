/* Processes and sockets of the VM layer: running qemu-img with a deadline,
 * starting QEMU with its fds in place, pidfds, the runtime directory's
 * unix sockets. */
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define RUN_MAX_OUTPUT (1024 * 1024)

int vm_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int vm_pidfd_kill(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int vm_poll1(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r >= 0)
			return r > 0;
		if (errno != EINTR)
			return -errno;
	}
}

unsigned long long vm_proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p)
		return 0;
	unsigned long long v = 0;
	/* after ") ": state is field 3; start time is field 22 */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

const char *vm_last_line(char *text)
{
	if (!text)
		return "";
	size_t n = strlen(text);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';
	char *nl = strrchr(text, '\n');
	return nl ? nl + 1 : text;
}

/* In the child: fds to their places, everything else closed. */
static int place_fds(const int *from, const int *to, int nfds, int log_fd)
{
	int maxto = 2;
	for (int i = 0; i < nfds; i++)
		if (to[i] > maxto)
			maxto = to[i];
	/* First move every source above every target, so dup2 never clobbers one. */
	int tmp[16];
	if (nfds > 16)
		return -E2BIG;
	int logtmp = log_fd >= 0 ? fcntl(log_fd, F_DUPFD_CLOEXEC, maxto + 1) : -1;
	for (int i = 0; i < nfds; i++)
		if ((tmp[i] = fcntl(from[i], F_DUPFD_CLOEXEC, maxto + 1)) < 0)
			return -errno;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0)
		return -errno;
	int out = logtmp >= 0 ? logtmp : devnull;
	if (dup2(out, 1) < 0 || dup2(out, 2) < 0)
		return -errno;
	for (int i = 0; i < nfds; i++)
		if (dup2(tmp[i], to[i]) < 0) /* dup2 clears close-on-exec */
			return -errno;
	/* Everything above the targets (the temporaries too) goes at exec. */
	if (syscall(SYS_close_range, maxto + 1, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
		for (int fd = maxto + 1; fd < 1024; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* Between 3 and maxto, only the targets stay. */
	for (int fd = 3; fd <= maxto; fd++) {
		bool keep = false;
		for (int i = 0; i < nfds; i++)
			keep |= to[i] == fd;
		if (!keep)
			close(fd);
	}
	return 0;
}

int vm_exec_qemu(char **argv, const int *fds_from, const int *fds_to, int nfds, int log_fd)
{
	int r = place_fds(fds_from, fds_to, nfds, log_fd);
	if (r < 0)
		return err_set(-r, "placing QEMU's file descriptors");
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	return err_set(errno, "exec %s", argv[0]);
}

int vm_spawn(char **argv, const int *from, const int *to, int nfds, int log_fd, pid_t *ret_pid, int *ret_pidfd)
{
	/* A pipe closed by exec tells a failed exec from a started program. */
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(ep[0]), close(ep[1]);
		return err_set(e, "fork for %s", argv[0]);
	}
	if (pid == 0) {
		close(ep[0]);
		signal(SIGPIPE, SIG_DFL);
		(void)vm_exec_qemu(argv, from, to, nfds, log_fd);
		int e = errno ? errno : EINVAL;
		(void)!write(ep[1], &e, sizeof e);
		_exit(127);
	}
	close(ep[1]);
	int e = 0;
	ssize_t n;
	do
		n = read(ep[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof e) {
		waitpid(pid, NULL, 0);
		return err_set(e, "exec %s", argv[0]);
	}
	int pidfd = vm_pidfd_open(pid);
	if (pidfd < 0) {
		e = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return err_set(e, "pidfd_open for %s", argv[0]);
	}
	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return 0;
}

struct capture {
	int fd;
	char *buf;
	size_t len;
};

static void capture_read(struct capture *c)
{
	char tmp[8192];
	ssize_t n = read(c->fd, tmp, sizeof tmp);
	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(c->fd);
			c->fd = -1;
		}
		return;
	}
	if (c->len + (size_t)n > RUN_MAX_OUTPUT)
		n = (ssize_t)(RUN_MAX_OUTPUT - c->len); /* the rest is dropped */
	char *nb = realloc(c->buf, c->len + (size_t)n + 1);
	if (!nb)
		return;
	c->buf = nb;
	memcpy(c->buf + c->len, tmp, (size_t)n);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
}

int vm_run(char *const argv[], int timeout_ms, char **ret_out, char **ret_err, int *ret_status)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	if (pipe2(pe, O_CLOEXEC) < 0) {
		int e = errno;
		close(po[0]), close(po[1]);
		return err_set(e, "pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
		return err_set(e, "fork for %s", argv[0]);
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0), dup2(po[1], 1), dup2(pe[1], 2);
		syscall(SYS_close_range, 3, ~0U, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]), close(pe[1]);
	struct capture c[2] = { { .fd = po[0] }, { .fd = pe[0] } };
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool timed_out = false;
	while (c[0].fd >= 0 || c[1].fd >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long used = (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (timeout_ms >= 0 && used >= timeout_ms) {
			timed_out = true;
			break;
		}
		struct pollfd p[2] = { { .fd = c[0].fd, .events = POLLIN }, { .fd = c[1].fd, .events = POLLIN } };
		int r = poll(p, 2, timeout_ms < 0 ? -1 : (int)(timeout_ms - used));
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++)
			if (c[i].fd >= 0 && p[i].revents)
				capture_read(&c[i]);
	}
	for (int i = 0; i < 2; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	if (timed_out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ret_out)
		*ret_out = c[0].buf ? c[0].buf : strdup("");
	else
		free(c[0].buf);
	if (ret_err)
		*ret_err = c[1].buf ? c[1].buf : strdup("");
	else
		free(c[1].buf);
	if (timed_out)
		return vm_refuse(ETIMEDOUT, "%s did not finish within %d ms", argv[0], timeout_ms);
	*ret_status = status;
	return 0;
}

static int sock_addr_at(int dirfd, const char *name, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	/* Through the directory's fd: any path length. */
	int n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dirfd, name);
	if (n < 0 || (size_t)n >= sizeof sa->sun_path)
		return err_set(ENAMETOOLONG, "socket name %s", name);
	return 0;
}

static int listen_at(int dirfd, const char *name, int *ret)
{
	struct sockaddr_un sa;
	int r = sock_addr_at(dirfd, name, &sa);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(errno, "socket %s", name);
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return err_set(errno, "removing the old socket %s", name);
	mode_t old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0)
		return err_set(errno, "bind %s", name);
	if (listen(fd, 8) < 0) {
		int e = errno;
		(void)unlinkat(dirfd, name, 0);
		return err_set(e, "listen %s", name);
	}
	*ret = TAKE_FD(fd);
	return 0;
}

int vm_sockets_create(int dirfd, int *ret_qmp, int *ret_agent)
{
	int q = -1, a = -1, r;
	if ((r = listen_at(dirfd, VM_QMP_SOCKET, &q)) < 0)
		return r;
	if ((r = listen_at(dirfd, VM_AGENT_SOCKET, &a)) < 0) {
		close(q);
		(void)unlinkat(dirfd, VM_QMP_SOCKET, 0);
		return r;
	}
	*ret_qmp = q;
	*ret_agent = a;
	return 0;
}

int vm_socket_connect(int dirfd, const char *name, int *ret_fd)
{
	struct sockaddr_un sa;
	int r = sock_addr_at(dirfd, name, &sa);
	if (r < 0)
		return r;
	/* Non-blocking: QEMU serves one client at a time, the others wait in
	 * the listen backlog, and a blocking connect to a full backlog would
	 * wait without a deadline. */
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return errno == EAGAIN ? vm_refuse(EAGAIN, "connect to %s: busy (its backlog is full)", name)
				       : err_set(errno, "connect to %s", name);
	*ret_fd = TAKE_FD(fd);
	return 0;
}
