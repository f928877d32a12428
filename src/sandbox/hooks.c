/* OCI hooks (see hooks.h). */
#include "hooks.h"
#include "util/err.h"
#include "util/log.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write the state to the hook's stdin while waiting for it to exit, both
 * within its timeout (counted from its start): a hook that never reads its
 * stdin, with a state bigger than the pipe buffer, must not hold us past
 * it. Returns 0 once the hook has exited, -ETIMEDOUT, or -errno of poll. */
static int feed_and_wait(int wfd, int pidfd, const char *state, const spec_hook *h)
{
	size_t len = strlen(state), off = 0;
	long long deadline = h->timeout.has ? now_ms() + (h->timeout.v > LLONG_MAX / 1000 ? LLONG_MAX / 2 : h->timeout.v * 1000)
					    : -1;
	for (;;) {
		if (wfd >= 0 && off == len) {
			close(wfd);
			wfd = -1;
		}
		struct pollfd p[2] = { { pidfd, POLLIN, 0 }, { wfd, POLLOUT, 0 } };
		int ms = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			if (left <= 0)
				break;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		int r = poll(p, wfd >= 0 ? 2 : 1, ms);
		if (r < 0 && errno != EINTR) {
			r = -errno;
			if (wfd >= 0)
				close(wfd);
			return r;
		}
		if (r <= 0)
			continue;
		if (p[0].revents) {
			if (wfd >= 0)
				close(wfd);
			return 0;
		}
		if (p[1].revents & POLLOUT) {
			ssize_t n = write(wfd, state + off, len - off);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				off = len; /* EPIPE: the hook closed its stdin, as it may */
		} else if (p[1].revents) {
			off = len; /* POLLERR: no reader left */
		}
	}
	if (wfd >= 0)
		close(wfd);
	return -ETIMEDOUT;
}

static int run_one(const spec_hook *h, const char *state, int *ret_status)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	char *argv_default[] = { h->path, NULL };
	char *envp_empty[] = { NULL };
	/* SIGPIPE must not kill us if the hook closes its stdin early; our
	 * callers may not ignore it, so block it while we write. */
	sigset_t pipe_set, old_mask;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe_set, &old_mask);
	bool had_pipe = false;
	sigset_t pending;
	if (sigpending(&pending) == 0)
		had_pipe = sigismember(&pending, SIGPIPE);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		return err_set(e, "fork");
	}
	if (pid == 0) {
		/* The state on stdin; fd 0 may already be the pipe (the
		 * runtime started without stdin), then it only loses its
		 * close-on-exec flag. */
		if (pipefd[0] == 0)
			(void)fcntl(0, F_SETFD, 0);
		else
			dup2(pipefd[0], 0);
		/* Nothing but stdio reaches the hook: not an fd our caller left
		 * open (delete's, start's), not the fds --preserve-fds keeps for
		 * the container process (the init marks them inheritable before
		 * startContainer hooks run). */
		if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(h->path, h->args && h->args[0] ? h->args : argv_default, h->env ? h->env : envp_empty);
		_exit(127);
	}
	close(pipefd[0]);
	int r = 0;
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || fcntl(pipefd[1], F_SETFL, O_NONBLOCK) < 0) {
		r = err_set(errno, "pidfd_open");
		close(pipefd[1]);
		kill(pid, SIGKILL);
	} else if ((r = feed_and_wait(pipefd[1], pidfd, state, h)) < 0) {
		kill(pid, SIGKILL);
		r = r == -ETIMEDOUT ? err_set(ETIMEDOUT, "timed out after %lld s", (long long)h->timeout.v)
				    : err_set(-r, "wait for the hook");
	}
	/* Drop a SIGPIPE our writes raised, then restore the mask. */
	static const struct timespec zero = { 0, 0 };
	if (!had_pipe && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		(void)sigtimedwait(&pipe_set, NULL, &zero);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return r < 0 ? r : err_set(errno, "waitpid");
	if (r == 0)
		*ret_status = st;
	return r;
}

static int check_one(const oci_spec *s, int kind, size_t i, const char *state_json)
{
	const spec_hook *h = &s->hooks[kind].v[i];
	const char *name = spec_hook_names[kind];
	int st = 0;
	int r = run_one(h, state_json, &st);
	if (r < 0)
		return err_wrap(r, "hooks.%s[%zu] (%s)", name, i, h->path);
	if (WIFSIGNALED(st))
		return err_set(0, "hooks.%s[%zu] (%s): killed by signal %d", name, i, h->path, WTERMSIG(st));
	if (WEXITSTATUS(st) == 127)
		return err_set(0, "hooks.%s[%zu] (%s): could not execute (exit status 127)", name, i, h->path);
	if (WEXITSTATUS(st) != 0)
		return err_set(0, "hooks.%s[%zu] (%s): exit status %d", name, i, h->path, WEXITSTATUS(st));
	return 0;
}

int hooks_run(const oci_spec *s, int kind, const char *state_json, bool keep_going)
{
	int first = 0;
	char msg[1024] = "";
	for (size_t i = 0; i < s->hooks[kind].n; i++) {
		int r = check_one(s, kind, i, state_json);
		if (r == 0)
			continue;
		if (!keep_going)
			return r;
		log_warnf("%s", err_msg());
		if (!first) {
			first = r;
			snprintf(msg, sizeof msg, "%s", err_msg());
		}
	}
	if (first)
		err_set(0, "%s", msg);
	return first;
}
