/* Foreground waiting: signal forwarding and a raw terminal proxy. */
#include "foreground.h"
#include "sandbox/console.h"
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int status_to_exit(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

/* Copy what is readable from one fd to another; false at end of input. */
static bool pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf);
	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN);
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		off += w;
	}
	return true;
}

int foreground_wait(pid_t pid, int master, const sigset_t *mask)
{
	struct termios saved;
	bool raw = false;
	if (master >= 0 && isatty(0) && tcgetattr(0, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw = tcsetattr(0, TCSANOW, &t) == 0;
		struct winsize ws;
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			(void)ioctl(master, TIOCSWINSZ, &ws);
	}
	int sfd = signalfd(-1, mask, SFD_CLOEXEC);
	int status = 0;
	bool in_open = master >= 0;
	for (;;) {
		struct pollfd p[3] = { { sfd, POLLIN, 0 }, { master, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		if (poll(p, master >= 0 ? 3 : 1, -1) < 0 && errno != EINTR)
			break;
		if (master >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
			if (!pump(master, 1)) {
				close(master);
				master = -1;
			}
		}
		if (in_open && (p[2].revents & (POLLIN | POLLHUP)) && !pump(0, master))
			in_open = false;
		if (!(p[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof si) != sizeof si)
			continue;
		if (si.ssi_signo == SIGCHLD) {
			int st;
			pid_t w;
			bool done = false;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0)
				if (w == pid) {
					status = st;
					done = true;
				}
			if (done)
				break;
		} else if (si.ssi_signo == SIGWINCH && master >= 0) {
			struct winsize ws;
			if (ioctl(0, TIOCGWINSZ, &ws) == 0)
				(void)ioctl(master, TIOCSWINSZ, &ws);
		} else {
			(void)kill(pid, (int)si.ssi_signo);
		}
	}
	while (master >= 0 && pump(master, 1))
		;
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	return status_to_exit(status);
}

int take_console_master(int sock)
{
	int master = -1;
	if (sock < 0)
		return -1;
	/* The init sent a pty master only if process.terminal is set. */
	struct pollfd p = { sock, POLLIN, 0 };
	if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
		(void)recv_fd(sock, &master);
	close(sock);
	return master;
}

void block_forwarded_signals(sigset_t *mask)
{
	sigfillset(mask);
	sigdelset(mask, SIGSEGV);
	sigdelset(mask, SIGBUS);
	sigdelset(mask, SIGILL);
	sigdelset(mask, SIGFPE);
	sigprocmask(SIG_BLOCK, mask, NULL);
}

