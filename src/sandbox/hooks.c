/* OCI hooks (see hooks.h). */
#include "hooks.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static int run_one(const spec_hook *h, const char *state, int *ret_status)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	char *argv_default[] = { h->path, NULL };
	char *envp_empty[] = { NULL };
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_set(errno, "fork");
	}
	if (pid == 0) {
		dup2(pipefd[0], 0);
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(h->path, h->args && h->args[0] ? h->args : argv_default, h->env ? h->env : envp_empty);
		_exit(127);
	}
	close(pipefd[0]);
	(void)write_all(pipefd[1], state, strlen(state)); /* the hook may ignore stdin */
	close(pipefd[1]);
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (h->timeout.has && pidfd >= 0) {
		struct pollfd p = { pidfd, POLLIN, 0 };
		long long ms = h->timeout.v * 1000;
		int r;
		do
			r = poll(&p, 1, ms > 0x7fffffff ? 0x7fffffff : (int)ms);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return err_set(ETIMEDOUT, "timed out after %lld s", (long long)h->timeout.v);
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_set(errno, "waitpid");
	*ret_status = st;
	return 0;
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
		fprintf(stderr, "isola-oci: warning: %s\n", err_msg());
		if (!first) {
			first = r;
			snprintf(msg, sizeof msg, "%s", err_msg());
		}
	}
	if (first)
		err_set(0, "%s", msg);
	return first;
}
