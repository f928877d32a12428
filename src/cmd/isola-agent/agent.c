/* isola-agent: the guest side of the host's exec and power requests. A small
 * static program started by the guest's init (respawned if it dies); it talks
 * the framed protocol of src/vm/agent-proto.h over the virtio-serial port
 * "org.isola.agent": runs commands (pipes or a terminal), streams their stdio,
 * reports their exit, powers the guest off, reports memory figures.
 * One poll loop, no threads; every buffer is bounded, and output stops being
 * read from commands while the host does not take it (backpressure). */
#include "vm/agent-proto.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 64
#define OUT_HIGH (256u * 1024)      /* stop reading commands' output above this */
#define STDIN_HIGH (1024u * 1024)   /* stop reading the port while a command's stdin holds this */
#define DRAIN_MAX (256u * 1024)     /* output read after a command exited */

extern char **environ;

struct session {
	uint32_t id;
	pid_t pid;
	bool tty, exited;
	int status;
	int in_fd, out_fd, err_fd; /* tty: in_fd == out_fd == master, err_fd = -1 */
	uint8_t *in_buf;
	size_t in_len;
	bool in_eof;
};

static struct session sessions[MAX_SESSIONS];
static int port = -1;
static bool connected;
static uint8_t rbuf[AGENT_HDR_SIZE + AGENT_MAX_PAYLOAD];
static size_t rlen;
static uint8_t *wbuf;
static size_t wlen, wcap;

static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("isola-agent: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void send_frame(uint16_t type, uint32_t session, const void *data, size_t len)
{
	if (!connected)
		return;
	if (wlen + AGENT_HDR_SIZE + len > wcap) {
		size_t cap = wcap ? wcap : 65536;
		while (cap < wlen + AGENT_HDR_SIZE + len)
			cap *= 2;
		uint8_t *n = realloc(wbuf, cap);
		if (!n) {
			logmsg("out of memory");
			exit(1); /* init respawns the agent */
		}
		wbuf = n;
		wcap = cap;
	}
	agent_hdr_put(wbuf + wlen, type, session, (uint32_t)len);
	if (len)
		memcpy(wbuf + wlen + AGENT_HDR_SIZE, data, len);
	wlen += AGENT_HDR_SIZE + len;
}

static void send_error(uint32_t session, int errnum, const char *fmt, ...)
{
	uint8_t msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf((char *)msg + 4, sizeof msg - 4, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof msg - 5)
		n = sizeof msg - 5;
	agent_put32(msg, (uint32_t)errnum);
	send_frame(AGENT_ERROR, session, msg, 4 + (size_t)n);
}

static void flush_out(void)
{
	while (wlen > 0) {
		ssize_t n = write(port, wbuf, wlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				wlen = 0; /* host gone: the data has nowhere to go */
			return;
		}
		memmove(wbuf, wbuf + n, wlen - (size_t)n);
		wlen -= (size_t)n;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static struct session *session_find(uint32_t id)
{
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].pid > 0 && sessions[i].id == id)
			return &sessions[i];
	return NULL;
}

static void session_free(struct session *s)
{
	if (s->tty)
		s->out_fd = -1; /* same fd as in_fd */
	close_fd(&s->in_fd);
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	free(s->in_buf);
	memset(s, 0, sizeof *s);
	s->in_fd = s->out_fd = s->err_fd = -1;
}

/* Read what a command wrote; false at end of file (or EIO of a pty whose
 * other side is closed). */
static bool pump_output(struct session *s, int fd, uint16_t type, size_t limit)
{
	static uint8_t buf[16384];
	size_t total = 0;
	while (total < limit) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		send_frame(type, s->id, buf, (size_t)n);
		total += (size_t)n;
		if (limit == SIZE_MAX)
			return true; /* one read per poll round */
	}
	return true;
}

static void session_finish(struct session *s)
{
	/* What the command wrote before it exited, within a bound: a background
	 * process still holding the pipe cannot keep the session open. */
	if (s->out_fd >= 0)
		pump_output(s, s->out_fd, AGENT_STDOUT, DRAIN_MAX);
	if (s->err_fd >= 0)
		pump_output(s, s->err_fd, AGENT_STDERR, DRAIN_MAX);
	uint8_t m[8];
	if (WIFSIGNALED(s->status)) {
		agent_put32(m, (uint32_t)-1);
		agent_put32(m + 4, (uint32_t)WTERMSIG(s->status));
	} else {
		agent_put32(m, (uint32_t)WEXITSTATUS(s->status));
		agent_put32(m + 4, 0);
	}
	send_frame(AGENT_EXIT, s->id, m, sizeof m);
	session_free(s);
}

static void kill_all_sessions(void)
{
	for (int i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		if (s->pid <= 0)
			continue;
		kill(-s->pid, SIGKILL);
		kill(s->pid, SIGKILL);
		if (s->exited)
			session_free(s);
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct exec_req {
	uint32_t flags;
	uint16_t rows, cols;
	char *argv[AGENT_EXEC_MAX_STRINGS + 1], *envp[AGENT_EXEC_MAX_STRINGS + 1];
	const char *cwd;
};

/* Split an EXEC payload in place (its strings are NUL-terminated in it). */
static int exec_parse(uint8_t *p, size_t len, struct exec_req *r)
{
	if (len < AGENT_EXEC_FIXED)
		return -1;
	r->flags = agent_get32(p);
	r->rows = agent_get16(p + 4);
	r->cols = agent_get16(p + 6);
	r->cwd = "/";
	size_t na = 0, ne = 0, at = AGENT_EXEC_FIXED;
	while (at < len) {
		uint8_t tag = p[at];
		char *str = (char *)p + at + 1;
		uint8_t *nul = memchr(p + at + 1, 0, len - at - 1);
		if (at + 1 >= len || !nul)
			return -1;
		at = (size_t)(nul - p) + 1;
		if (tag == 'a' && na < AGENT_EXEC_MAX_STRINGS)
			r->argv[na++] = str;
		else if (tag == 'e' && ne < AGENT_EXEC_MAX_STRINGS && strchr(str, '='))
			r->envp[ne++] = str;
		else if (tag == 'c' && *str)
			r->cwd = str;
		else
			return -1;
	}
	if (na == 0)
		return -1;
	r->argv[na] = NULL;
	if (ne == 0) {
		static char path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		static char home[] = "HOME=/root", term[] = "TERM=xterm";
		r->envp[ne++] = path;
		r->envp[ne++] = home;
		if (r->flags & AGENT_EXEC_TTY)
			r->envp[ne++] = term;
	}
	r->envp[ne] = NULL;
	return 0;
}

static void child_fail(int errfd, int what)
{
	int msg[2] = { what, errno };
	(void)!write(errfd, msg, sizeof msg);
	_exit(127);
}

static void start_exec(uint32_t id, uint8_t *payload, size_t len)
{
	static struct exec_req r;
	if (exec_parse(payload, len, &r) < 0) {
		send_error(id, EINVAL, "malformed exec request");
		return;
	}
	if (id == 0 || session_find(id)) {
		send_error(id, EBUSY, "session %u is in use", id);
		return;
	}
	struct session *s = NULL;
	for (int i = 0; i < MAX_SESSIONS && !s; i++)
		if (sessions[i].pid <= 0)
			s = &sessions[i];
	if (!s) {
		send_error(id, EAGAIN, "too many commands running (%d)", MAX_SESSIONS);
		return;
	}
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, ep[2] = { -1, -1 }, master = -1;
	const char *slave = NULL;
	bool tty = r.flags & AGENT_EXEC_TTY;
	if (pipe2(ep, O_CLOEXEC) < 0)
		goto fail;
	if (tty) {
		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || !(slave = ptsname(master)))
			goto fail;
		struct winsize ws = { .ws_row = r.rows ? r.rows : 24, .ws_col = r.cols ? r.cols : 80 };
		ioctl(master, TIOCSWINSZ, &ws);
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		if (tty) {
			int sl = open(slave, O_RDWR);
			if (sl < 0 || ioctl(sl, TIOCSCTTY, 0) < 0)
				child_fail(ep[1], 1);
			dup2(sl, 0), dup2(sl, 1), dup2(sl, 2);
			if (sl > 2)
				close(sl);
		} else {
			dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
		}
		if (chdir(r.cwd) < 0)
			child_fail(ep[1], 2);
		environ = r.envp; /* execvp searches the command's own PATH */
		execvp(r.argv[0], r.argv);
		child_fail(ep[1], 3);
	}
	close_fd(&ep[1]);
	int msg[2];
	ssize_t n;
	do
		n = read(ep[0], msg, sizeof msg);
	while (n < 0 && errno == EINTR);
	close_fd(&ep[0]);
	if (n == (ssize_t)sizeof msg) {
		waitpid(pid, NULL, 0);
		const char *what = msg[0] == 1 ? "terminal for" : msg[0] == 2 ? "working directory for" : "exec";
		if (msg[0] == 2)
			send_error(id, msg[1], "working directory \"%s\": %s", r.cwd, strerror(msg[1]));
		else
			send_error(id, msg[1], "%s \"%s\": %s", what, r.argv[0], strerror(msg[1]));
		close_fd(&master), close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]);
		close_fd(&out[1]), close_fd(&err[0]), close_fd(&err[1]);
		return;
	}
	memset(s, 0, sizeof *s);
	s->id = id;
	s->pid = pid;
	s->tty = tty;
	if (tty) {
		s->in_fd = s->out_fd = master;
		s->err_fd = -1;
	} else {
		close_fd(&in[0]), close_fd(&out[1]), close_fd(&err[1]);
		s->in_fd = in[1], s->out_fd = out[0], s->err_fd = err[0];
	}
	set_nonblock(s->in_fd), set_nonblock(s->out_fd);
	if (s->err_fd >= 0)
		set_nonblock(s->err_fd);
	uint8_t m[4];
	agent_put32(m, (uint32_t)pid);
	send_frame(AGENT_STARTED, id, m, sizeof m);
	return;
fail:;
	int e = errno;
	close_fd(&ep[0]), close_fd(&ep[1]), close_fd(&master), close_fd(&in[0]), close_fd(&in[1]);
	close_fd(&out[0]), close_fd(&out[1]), close_fd(&err[0]), close_fd(&err[1]);
	send_error(id, e, "starting \"%s\": %s", r.argv[0], strerror(e));
}

static void stdin_data(struct session *s, const uint8_t *data, size_t len)
{
	if (len == 0) {
		s->in_eof = true;
	} else if (!s->in_eof && s->in_fd >= 0) {
		uint8_t *n = realloc(s->in_buf, s->in_len + len);
		if (!n)
			return;
		s->in_buf = n;
		memcpy(s->in_buf + s->in_len, data, len);
		s->in_len += len;
	}
}

static void stdin_flush(struct session *s)
{
	while (s->in_len > 0 && s->in_fd >= 0) {
		ssize_t n = write(s->in_fd, s->in_buf, s->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) { /* the command closed its stdin */
			s->in_len = 0;
			break;
		}
		memmove(s->in_buf, s->in_buf + n, s->in_len - (size_t)n);
		s->in_len -= (size_t)n;
	}
	if (s->in_eof && s->in_len == 0 && !s->tty)
		close_fd(&s->in_fd);
	if (s->in_eof && s->in_len == 0 && s->tty) {
		char eot = 4; /* end of input on a terminal: ^D */
		(void)!write(s->in_fd, &eot, 1);
		s->in_eof = false;
	}
}

static void do_poweroff(void)
{
	flush_out();
	sync();
	/* busybox init (and sysvinit's via /sbin/poweroff) shut down on SIGUSR2 */
	if (getpid() == 1 || kill(1, SIGUSR2) < 0)
		reboot(RB_POWER_OFF);
}

static void meminfo(uint32_t id)
{
	uint64_t v[3] = { 0, 0, 0 };
	static const char *const keys[3] = { "MemTotal:", "MemFree:", "MemAvailable:" };
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		for (int i = 0; i < 3; i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
				v[i] = strtoull(line + strlen(keys[i]), NULL, 10);
	if (f)
		fclose(f);
	uint8_t m[24];
	for (int i = 0; i < 3; i++)
		agent_put64(m + 8 * i, v[i]);
	send_frame(AGENT_MEMINFO_REPLY, id, m, sizeof m);
}

static void handle_frame(const struct agent_hdr *h, uint8_t *p)
{
	struct session *s = session_find(h->session);
	switch (h->type) {
	case AGENT_PING: {
		uint8_t m[12];
		memcpy(m, p, h->len >= 8 ? 8 : 0);
		if (h->len < 8)
			memset(m, 0, 8);
		agent_put32(m + 8, AGENT_PROTO_VERSION);
		send_frame(AGENT_PONG, h->session, m, sizeof m);
		break;
	}
	case AGENT_EXEC:
		start_exec(h->session, p, h->len);
		break;
	case AGENT_STDIN:
		if (s)
			stdin_data(s, p, h->len);
		break;
	case AGENT_RESIZE:
		if (s && s->tty && h->len >= 4) {
			struct winsize ws = { .ws_row = agent_get16(p), .ws_col = agent_get16(p + 2) };
			ioctl(s->in_fd, TIOCSWINSZ, &ws);
		}
		break;
	case AGENT_SIGNAL:
		if (s && !s->exited && h->len >= 4) {
			int sig = (int)agent_get32(p);
			if (sig > 0 && sig < NSIG && kill(-s->pid, sig) < 0)
				kill(s->pid, sig);
		}
		break;
	case AGENT_POWEROFF:
		send_frame(AGENT_OK, h->session, NULL, 0);
		do_poweroff();
		break;
	case AGENT_MEMINFO:
		meminfo(h->session);
		break;
	default:
		send_error(h->session, EOPNOTSUPP, "unknown request type %u", h->type);
	}
}

/* Frames from the host. A bad header (bytes of an earlier connection) makes
 * the parser skip to the next magic. */
static void parse_input(void)
{
	size_t at = 0;
	while (rlen - at >= AGENT_HDR_SIZE) {
		struct agent_hdr h;
		if (agent_hdr_get(rbuf + at, &h) < 0) {
			at++;
			continue;
		}
		if (rlen - at < AGENT_HDR_SIZE + h.len)
			break;
		handle_frame(&h, rbuf + at + AGENT_HDR_SIZE);
		at += AGENT_HDR_SIZE + h.len;
	}
	memmove(rbuf, rbuf + at, rlen - at);
	rlen -= at;
}

static void disconnected(void)
{
	connected = false;
	rlen = wlen = 0;
	kill_all_sessions();
}

static int open_port(void)
{
	for (int tries = 0; tries < 300; tries++) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char path[PATH_MAX], name[64] = "";
			snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
			FILE *f = fopen(path, "re");
			if (!f)
				continue;
			bool match = fgets(name, sizeof name, f) && strncmp(name, AGENT_PORT_NAME, strlen(AGENT_PORT_NAME)) == 0;
			fclose(f);
			if (!match)
				continue;
			snprintf(path, sizeof path, "/dev/%s", e->d_name);
			closedir(d);
			return open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		}
		if (d)
			closedir(d);
		usleep(100000);
	}
	errno = ENOENT;
	return -1;
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (int i = 0; i < MAX_SESSIONS; i++)
			if (sessions[i].pid == pid) {
				sessions[i].exited = true;
				sessions[i].status = status;
			}
}

int main(void)
{
	for (int i = 0; i < MAX_SESSIONS; i++)
		sessions[i].in_fd = sessions[i].out_fd = sessions[i].err_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGIO);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	port = open_port();
	if (sfd < 0 || port < 0) {
		logmsg("cannot open the virtio-serial port %s: %s", AGENT_PORT_NAME, strerror(errno));
		sleep(5); /* init respawns us; do not spin */
		return 1;
	}
	/* The port signals SIGIO when the host side connects or disconnects. */
	fcntl(port, F_SETOWN, getpid());
	fcntl(port, F_SETFL, fcntl(port, F_GETFL) | O_ASYNC);
	connected = true;
	for (;;) {
		struct pollfd pfd[2 + 2 * MAX_SESSIONS];
		struct session *who[2 + 2 * MAX_SESSIONS];
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		size_t pending_in = 0;
		for (int i = 0; i < MAX_SESSIONS; i++)
			pending_in += sessions[i].in_len;
		int port_idx = -1;
		if (connected) {
			port_idx = n;
			short ev = (pending_in < STDIN_HIGH ? POLLIN : 0) | (wlen ? POLLOUT : 0);
			pfd[n++] = (struct pollfd){ .fd = port, .events = ev };
		}
		for (int i = 0; i < MAX_SESSIONS; i++) {
			struct session *s = &sessions[i];
			if (s->pid <= 0 || s->exited)
				continue;
			short ev = (wlen < OUT_HIGH ? POLLIN : 0) | (s->in_len ? POLLOUT : 0);
			if (s->out_fd >= 0 && ev) {
				who[n] = s;
				pfd[n++] = (struct pollfd){ .fd = s->out_fd, .events = s->tty ? ev : (ev & POLLIN) };
			}
			if (s->err_fd >= 0 && wlen < OUT_HIGH) {
				who[n] = s;
				pfd[n++] = (struct pollfd){ .fd = s->err_fd, .events = POLLIN };
			}
			if (!s->tty && s->in_fd >= 0 && s->in_len) {
				who[n] = s;
				pfd[n++] = (struct pollfd){ .fd = s->in_fd, .events = POLLOUT };
			}
		}
		if (poll(pfd, (nfds_t)n, connected ? -1 : 1000) < 0 && errno != EINTR)
			return 1;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
				;
			reap();
		}
		if (!connected) {
			/* Woken by SIGIO or the timeout: is the host there again? */
			struct pollfd t = { .fd = port, .events = POLLIN };
			if (poll(&t, 1, 0) >= 0 && !(t.revents & POLLHUP))
				connected = true;
		} else if (port_idx >= 0 && pfd[port_idx].revents) {
			short re = pfd[port_idx].revents;
			if (re & POLLIN) {
				ssize_t r = read(port, rbuf + rlen, sizeof rbuf - rlen);
				if (r > 0) {
					rlen += (size_t)r;
					parse_input();
				} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
					disconnected();
				}
			} else if (re & (POLLHUP | POLLERR)) {
				disconnected();
			}
			if (connected && (re & POLLOUT))
				flush_out();
		}
		for (int i = 1; i < n; i++) {
			if (i == port_idx || !pfd[i].revents)
				continue;
			struct session *s = who[i];
			if (s->pid <= 0)
				continue;
			if (pfd[i].fd == s->in_fd && (pfd[i].revents & POLLOUT))
				stdin_flush(s);
			if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && pfd[i].fd == s->out_fd && s->out_fd >= 0) {
				if (!pump_output(s, s->out_fd, AGENT_STDOUT, SIZE_MAX)) {
					if (s->tty)
						s->in_fd = -1;
					close_fd(&s->out_fd);
				}
			} else if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) && pfd[i].fd == s->err_fd && s->err_fd >= 0) {
				if (!pump_output(s, s->err_fd, AGENT_STDERR, SIZE_MAX))
					close_fd(&s->err_fd);
			}
		}
		for (int i = 0; i < MAX_SESSIONS; i++) {
			struct session *s = &sessions[i];
			if (s->pid <= 0)
				continue;
			if (s->in_len || s->in_eof)
				stdin_flush(s);
			if (s->exited && connected)
				session_finish(s);
			else if (s->exited)
				session_free(s);
		}
		if (connected)
			flush_out();
	}
}
