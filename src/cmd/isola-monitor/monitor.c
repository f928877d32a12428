/* isola-monitor: the small process that looks after one running instance
 * (like conmon): it holds the console's pty master, writes what the console
 * prints to the instance's log, relays it to attached `isola console`
 * clients, answers the instance's sysinfo(2) calls (seccomp user
 * notification) from its cgroup so that `free` and `uptime` show its own
 * memory and uptime (at a bounded rate: it runs in the instance's cgroup
 * and works for the instance), reaps the init, and when the init exits
 * execs the manager's exit handler with the wait status. When the host's
 * LXCFS daemon dies it runs the exit handler's command with "lxcfs" instead
 * of a status, which restarts LXCFS and mounts its files in the instance
 * again. Static and free of our libraries, so it stays well under 1 MiB of
 * resident memory. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CLIENTS 8
#define MAX_NOTIFY 16
#define DRAIN_QUIET_MS 100
/* sysinfo(2) answers: a token bucket. Past the burst, callers wait in the
 * kernel for their turn; they never get the host's values. */
#define SYSINFO_RATE 1000 /* per second */
#define SYSINFO_BURST 100
/* After a failed LXCFS repair, try again this much later. */
#define REPAIR_RETRY_MS 5000

static const char *name = "?";
static const char *log_path;
static long long log_max = 1 << 20;
static int log_fd = -1;
static long long log_size;
static int clients[MAX_CLIENTS];
static int notifies[MAX_NOTIFY];
static const char *mem_limit_file, *mem_usage_file, *pids_file;
static unsigned long long init_start; /* clock ticks after boot */
static double tokens = SYSINFO_BURST;
static long long tokens_at; /* ms, CLOCK_MONOTONIC */
static const char *lxcfs_pidfile;
static int lxcfs_pidfd = -1;
static pid_t lxcfs_pid, repair_pid;
static long long repair_retry_at; /* ms; 0: none due */
static char **exit_argv;

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "isola-monitor: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: isola-monitor --name NAME --init PID --master FD --console-socket FD "
			"--log PATH [--log-max BYTES] [--seccomp-socket FD --notify FD] [--mem-limit-file F "
			"--mem-usage-file F --pids-file F] [--lxcfs-pidfile F] -- EXIT_CMD [ARGS...]\n");
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

static unsigned long long read_ull(const char *path, unsigned long long fallback)
{
	if (!path)
		return fallback;
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fallback;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return fallback;
	buf[n] = 0;
	char *end;
	unsigned long long v = strtoull(buf, &end, 10);
	return end == buf ? fallback : v; /* "max" (cgroup v2): none */
}

static unsigned long long starttime_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long t = 0;
	/* field 22, counted from the state (field 3) after "pid (comm)" */
	for (int field = 2; p && *p; p++)
		if (*p == ' ' && ++field == 22) {
			t = strtoull(p + 1, NULL, 10);
			break;
		}
	return t;
}

/* The host's sysinfo with the instance's memory, process count and uptime. */
static void instance_sysinfo(struct sysinfo *si)
{
	sysinfo(si);
	unsigned long long unit = si->mem_unit ? si->mem_unit : 1;
	unsigned long long host_total = (unsigned long long)si->totalram * unit;
	unsigned long long limit = read_ull(mem_limit_file, host_total);
	if (limit < host_total) {
		unsigned long long used = read_ull(mem_usage_file, 0);
		if (used > limit)
			used = limit;
		si->totalram = (unsigned long)(limit / unit);
		si->freeram = (unsigned long)((limit - used) / unit);
		si->sharedram = 0;
		si->bufferram = 0;
		si->totalswap = 0;
		si->freeswap = 0;
	}
	unsigned long long procs = read_ull(pids_file, 0);
	if (procs)
		si->procs = (unsigned short)(procs > 65535 ? 65535 : procs);
	long hz = sysconf(_SC_CLK_TCK);
	if (init_start && hz > 0 && (unsigned long long)si->uptime >= init_start / (unsigned long long)hz)
		si->uptime -= (long)(init_start / (unsigned long long)hz);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Refill; the ms until the next answer may go (0: now). */
static int tokens_wait_ms(void)
{
	long long now = now_ms();
	tokens += (double)(now - tokens_at) * SYSINFO_RATE / 1000.0;
	if (tokens > SYSINFO_BURST)
		tokens = SYSINFO_BURST;
	tokens_at = now;
	if (tokens >= 1)
		return 0;
	int ms = (int)((1 - tokens) * 1000.0 / SYSINFO_RATE) + 1;
	return ms;
}

/* The LXCFS daemon named by its pid file, watched through a pidfd: its end
 * wakes us, at no cost meanwhile. A pid file that names no lxcfs is no daemon. */
static void lxcfs_watch(void)
{
	if (lxcfs_pidfd >= 0) {
		close(lxcfs_pidfd);
		lxcfs_pidfd = -1;
	}
	lxcfs_pid = 0;
	char buf[4096];
	int fd = lxcfs_pidfile && *lxcfs_pidfile ? open(lxcfs_pidfile, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	long long pid;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	if (!parse_int(buf, 2, 1 << 30, &pid))
		return;
	char path[64];
	snprintf(path, sizeof path, "/proc/%lld/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	const char *base = strrchr(buf, '/');
	if (strcmp(base ? base + 1 : buf, "lxcfs"))
		return;
	lxcfs_pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (lxcfs_pidfd >= 0) {
		(void)fcntl(lxcfs_pidfd, F_SETFD, FD_CLOEXEC);
		lxcfs_pid = (pid_t)pid;
	}
}

/* LXCFS died: run EXIT_CMD with "lxcfs" (restart it, mount its files in
 * the instance again) in a child; reap() picks up its end. */
static void lxcfs_repair(void)
{
	if (repair_pid > 0)
		return;
	int argn = 0;
	while (exit_argv[argn])
		argn++;
	char **args = calloc((size_t)argn + 2, sizeof *args);
	if (!args)
		return;
	memcpy(args, exit_argv, (size_t)argn * sizeof *args);
	args[argn] = "lxcfs";
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		static const int restored[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGTTOU, SIGTTIN };
		for (size_t k = 0; k < sizeof restored / sizeof *restored; k++)
			signal(restored[k], SIG_DFL);
		execv(args[0], args);
		_exit(127);
	}
	free(args);
	if (pid > 0) {
		repair_pid = pid;
		repair_retry_at = 0;
	} else
		repair_retry_at = now_ms() + REPAIR_RETRY_MS;
}

/* A repair ended: watch the daemon it left; none, or the same dead one:
 * try again later. */
static void lxcfs_repaired(int status)
{
	pid_t old = lxcfs_pid;
	repair_pid = 0;
	lxcfs_watch();
	if (lxcfs_pidfd < 0 || lxcfs_pid == old || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		repair_retry_at = now_ms() + REPAIR_RETRY_MS;
}

/* One seccomp notification: sysinfo gets the instance's view written into
 * the caller's buffer; anything else carries on in the kernel. */
static void notify_handle(int k)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	memset(&req, 0, sizeof req);
	if (ioctl(notifies[k], SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
		if (errno != EINTR && errno != ENOENT) {
			close(notifies[k]);
			notifies[k] = -1;
		}
		return;
	}
	memset(&resp, 0, sizeof resp);
	resp.id = req.id;
	tokens -= 1;
	if (req.data.nr != __NR_sysinfo) {
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else {
		struct sysinfo si;
		instance_sysinfo(&si);
		char mem[64];
		snprintf(mem, sizeof mem, "/proc/%u/mem", req.pid);
		int fd = open(mem, O_WRONLY | O_CLOEXEC);
		/* the caller may have gone (and its pid been reused) meanwhile */
		if (fd < 0 || ioctl(notifies[k], SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0 ||
		    pwrite(fd, &si, sizeof si, (off_t)req.data.args[0]) != (ssize_t)sizeof si)
			resp.error = -EFAULT;
		if (fd >= 0)
			close(fd);
	}
	(void)ioctl(notifies[k], SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* An exec'd process brings its own filter: the runtime hands us its fd. */
static void notify_accept(int ssock)
{
	int c = accept4(ssock, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	char buf[4096];
	struct iovec iov = { buf, sizeof buf };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
	ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
	close(c);
	struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	for (int k = 0; k < MAX_NOTIFY; k++)
		if (notifies[k] < 0) {
			notifies[k] = fd;
			return;
		}
	close(fd); /* full: that process's sysinfo calls fail with ENOSYS */
}

/* Reap every exited child; true when one of them was the init. */
static bool reap(pid_t init, int *status)
{
	bool found = false;
	int st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
		if (w == init) {
			*status = st;
			found = true;
		} else if (w == repair_pid)
			lxcfs_repaired(st);
	}
	return found;
}

int main(int argc, char **argv)
{
	long long init = -1, master = -1, lsock = -1, ssock = -1, notify = -1;
	int i;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--"))
			break;
		if (i + 1 >= argc)
			return usage("%s: needs a value", o);
		const char *v = argv[++i];
		long long *num = !strcmp(o, "--init") ? &init : !strcmp(o, "--master") ? &master
				 : !strcmp(o, "--console-socket") ? &lsock : !strcmp(o, "--log-max") ? &log_max
				 : !strcmp(o, "--seccomp-socket") ? &ssock : !strcmp(o, "--notify") ? &notify : NULL;
		if (!strcmp(o, "--name"))
			name = v;
		else if (!strcmp(o, "--mem-limit-file"))
			mem_limit_file = v;
		else if (!strcmp(o, "--mem-usage-file"))
			mem_usage_file = v;
		else if (!strcmp(o, "--pids-file"))
			pids_file = v;
		else if (!strcmp(o, "--lxcfs-pidfile"))
			lxcfs_pidfile = v;
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
	exit_argv = argv + i + 1;
	if (exit_argv[0][0] != '/')
		return usage("EXIT_CMD \"%s\": must be an absolute path", exit_argv[0]);
	siginfo_t probe;
	/* WNOWAIT: an init that already exited stays to be reaped below. */
	if (waitid(P_PID, (id_t)init, &probe, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0 && errno == ECHILD) {
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
	for (int k = 0; k < MAX_NOTIFY; k++)
		notifies[k] = -1;
	if (notify >= 0) {
		notifies[0] = (int)notify;
		(void)fcntl(notifies[0], F_SETFD, FD_CLOEXEC);
	}
	if (ssock >= 0)
		(void)fcntl((int)ssock, F_SETFD, FD_CLOEXEC);
	init_start = starttime_of((pid_t)init);
	int mfd = (int)master, ls = (int)lsock;
	(void)fcntl(mfd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(ls, F_SETFD, FD_CLOEXEC);
	(void)fcntl(mfd, F_SETFL, fcntl(mfd, F_GETFL) | O_NONBLOCK);
	log_open();
	tokens_at = now_ms();
	lxcfs_watch();

	int status = 0;
	bool master_open = true;
	/* The init may have exited before we watched for SIGCHLD. */
	bool exited = reap((pid_t)init, &status);
	while (!exited) {
		struct pollfd p[3 + MAX_CLIENTS + 1 + MAX_NOTIFY + 1];
		int n = 0;
		int wait_ms = tokens_wait_ms(), timeout = sfd < 0 ? 1000 : -1;
		if (wait_ms > 0)
			timeout = wait_ms;
		if (repair_retry_at) {
			long long due = repair_retry_at - now_ms();
			if (due <= 0) {
				repair_retry_at = 0;
				lxcfs_repair();
			} else if (timeout < 0 || due < timeout)
				timeout = (int)due;
		}
		p[n++] = (struct pollfd){ sfd, POLLIN, 0 };
		p[n++] = (struct pollfd){ master_open ? mfd : -1, POLLIN, 0 };
		p[n++] = (struct pollfd){ ls, POLLIN, 0 };
		for (int k = 0; k < MAX_CLIENTS; k++)
			p[n++] = (struct pollfd){ clients[k], POLLIN, 0 };
		p[n++] = (struct pollfd){ (int)ssock, POLLIN, 0 };
		/* Out of tokens: the callers wait in the kernel until we take them. */
		for (int k = 0; k < MAX_NOTIFY; k++)
			p[n++] = (struct pollfd){ wait_ms > 0 ? -1 : notifies[k], POLLIN, 0 };
		p[n++] = (struct pollfd){ lxcfs_pidfd, POLLIN, 0 };
		/* Without a signalfd, look for the init's exit once a second. */
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (master_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !master_read(mfd))
			master_open = false;
		if (p[2].revents & POLLIN)
			client_accept(ls, mfd);
		for (int k = 0; k < MAX_CLIENTS; k++)
			if (clients[k] >= 0 && (p[3 + k].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(k, mfd);
		if (p[3 + MAX_CLIENTS].revents & POLLIN)
			notify_accept((int)ssock);
		for (int k = 0; k < MAX_NOTIFY; k++) {
			short ev = p[4 + MAX_CLIENTS + k].revents;
			if (notifies[k] < 0 || !ev)
				continue;
			if ((ev & POLLIN) && tokens >= 1)
				notify_handle(k);
			else if (ev & (POLLHUP | POLLERR)) { /* every process of that filter is gone */
				close(notifies[k]);
				notifies[k] = -1;
			}
		}
		if (lxcfs_pidfd >= 0 && (p[4 + MAX_CLIENTS + MAX_NOTIFY].revents & (POLLIN | POLLHUP | POLLERR))) {
			close(lxcfs_pidfd);
			lxcfs_pidfd = -1;
			lxcfs_repair();
		}
		struct signalfd_siginfo si;
		while (sfd >= 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
			;
		exited = reap((pid_t)init, &status);
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
	if (ssock >= 0)
		close((int)ssock);
	for (int k = 0; k < MAX_NOTIFY; k++)
		if (notifies[k] >= 0)
			close(notifies[k]);
	if (sfd >= 0)
		close(sfd);
	if (lxcfs_pidfd >= 0)
		close(lxcfs_pidfd);
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
