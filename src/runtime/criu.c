/* Running the criu binary: fork, prepare (cgroup, private mount namespace,
 * inherited descriptors, output captured in a memfd), exec; and the error
 * text for a failed run, quoting CRIU's log and `criu check`. */
#include "criu.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>

#define QUOTE_LINES 5 /* CRIU error lines quoted in a failure */

/* ---- small vectors ------------------------------------------------- */

void strv_add(struct strv *a, const char *s)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		char **v = realloc(a->v, cap * sizeof *v);
		if (!v) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	if (!(a->v[a->n] = strdup(s))) {
		a->oom = true;
		return;
	}
	a->v[++a->n] = NULL;
}

void strv_addf(struct strv *a, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		a->oom = true;
		return;
	}
	strv_add(a, s);
	free(s);
}

void strv_free(struct strv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* ---- running criu -------------------------------------------------- */

static __attribute__((noreturn)) void child_fail(int pipefd)
{
	const char *msg = err_msg();
	(void)!write(pipefd, msg, strlen(msg));
	_exit(127);
}

/* Runs in the forked child: everything criu needs, then exec. */
static __attribute__((noreturn)) void criu_child(struct criu_run *c, int errpipe, int outfd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	int r;
	struct strv argv = { 0 };
	for (char **a = c->argv; *a; a++)
		strv_add(&argv, *a);
	if (c->cg) {
		if ((r = cgroup_enter(c->cg, getpid())) < 0) {
			err_wrap(r, "move criu into the container cgroup");
			child_fail(errpipe);
		}
		/* Restored tasks go to the same cgroups, named as criu sees them. */
		_cleanup_free_ char *text = NULL;
		if ((r = read_file_at(AT_FDCWD, "/proc/self/cgroup", &text, NULL)) < 0)
			child_fail(errpipe);
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
			char *c1 = strchr(line, ':');
			if (c1) {
				strv_add(&argv, "--cgroup-root");
				strv_add(&argv, c1 + 1);
			}
		}
	}
	if (c->bind_src) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			err_set(errno, "private mount namespace for criu");
			child_fail(errpipe);
		}
		if (mount(c->bind_src, c->bind_dst, NULL, MS_BIND | MS_REC, NULL) < 0) {
			err_set(errno, "bind-mount the rootfs '%s' on '%s'", c->bind_src, c->bind_dst);
			child_fail(errpipe);
		}
	}
	for (size_t i = 0; i < c->n_fd_map; i++) {
		int from = c->fd_map[2 * i], to = c->fd_map[2 * i + 1];
		if (dup2(from, to) < 0) {
			err_set(errno, "pass a file to criu");
			child_fail(errpipe);
		}
	}
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0) {
		err_set(errno, "redirect criu's standard streams");
		child_fail(errpipe);
	}
	if (argv.oom) {
		err_set(ENOMEM, "criu arguments");
		child_fail(errpipe);
	}
	execvp(argv.v[0], argv.v);
	if (errno == ENOENT)
		err_set(0, "criu not found in PATH: checkpoint and restore need CRIU (Debian package criu)");
	else
		err_set(errno, "execute criu");
	child_fail(errpipe);
}

int criu_exec(struct criu_run *c)
{
	_cleanup_close_ int out = memfd_create("criu-output", MFD_CLOEXEC);
	if (out < 0)
		return err_set(errno, "memfd_create");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return err_set(e, "fork criu");
	}
	if (pid == 0) {
		close(p[0]);
		criu_child(c, p[1], out);
	}
	close(p[1]);
	char msg[2048];
	ssize_t n = read_all(p[0], msg, sizeof msg - 1);
	close(p[0]);
	while (waitpid(pid, &c->status, 0) < 0 && errno == EINTR)
		;
	if (n > 0) {
		msg[n] = '\0';
		return err_set(0, "%s", msg);
	}
	off_t len = lseek(out, 0, SEEK_END);
	if (len < 0)
		len = 0;
	if (len > 65536)
		len = 65536;
	c->output = calloc(1, (size_t)len + 1);
	if (c->output && len > 0)
		(void)!pread(out, c->output, (size_t)len, 0);
	return 0;
}

static char *exit_text(int status)
{
	char *s = NULL;
	if (WIFEXITED(status))
		(void)!asprintf(&s, "criu exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)!asprintf(&s, "criu was killed by signal %d", WTERMSIG(status));
	else
		s = strdup("criu ended abnormally");
	return s;
}

/* Append the last `max` lines of text that contain `needle` (all lines when
 * NULL), each indented and without CRIU's "(00.123456) " time stamp. */
static void quote_lines(FILE *m, const char *text, const char *needle, int max)
{
	const char *starts[QUOTE_LINES * 4];
	size_t lens[QUOTE_LINES * 4];
	int count = 0;
	if (max > (int)ARRAY_SIZE(starts))
		max = (int)ARRAY_SIZE(starts);
	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		const char *s = l;
		if (*s == '(') {
			const char *close = memchr(s, ')', len);
			if (close && close[1] == ' ') {
				len -= (size_t)(close + 2 - s);
				s = close + 2;
			}
		}
		while (len > 0 && *s == ' ') {
			s++;
			len--;
		}
		bool match = len > 0 && (!needle || memmem(s, len, needle, strlen(needle)));
		if (match) {
			if (count == max) {
				memmove(starts, starts + 1, (size_t)(max - 1) * sizeof *starts);
				memmove(lens, lens + 1, (size_t)(max - 1) * sizeof *lens);
				count--;
			}
			starts[count] = s;
			lens[count] = len > 300 ? 300 : len;
			count++;
		}
		l = nl ? nl + 1 : NULL;
	}
	for (int i = 0; i < count; i++)
		fprintf(m, "\n  %.*s", (int)lens[i], starts[i]);
}

/* Ask `criu check` (and `criu --version`) about this host; appended to a
 * failure only when the check fails, since then no dump can work here. */
static void append_criu_check(FILE *m, const char *quoted)
{
	char *check_argv[] = { "criu", "check", NULL };
	struct criu_run c = { .argv = check_argv };
	if (criu_exec(&c) < 0) {
		err_clear();
		return;
	}
	if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) {
		free(c.output);
		return;
	}
	char *version_argv[] = { "criu", "--version", NULL };
	struct criu_run v = { .argv = version_argv };
	const char *ver = NULL;
	if (criu_exec(&v) == 0 && v.output && (ver = strstr(v.output, "Version:"))) {
		ver += 8;
		while (*ver == ' ')
			ver++;
	} else {
		err_clear();
	}
	_cleanup_free_ char *how = exit_text(c.status);
	fprintf(m, "\n`criu check` fails on this host as well (CRIU %.*s, %s)", ver ? (int)strcspn(ver, "\n") : 7,
		ver ? ver : "unknown", how ? how : "failed");
	char *check = NULL;
	size_t len = 0;
	FILE *q = open_memstream(&check, &len);
	if (q) {
		quote_lines(q, c.output, NULL, QUOTE_LINES);
		fclose(q);
	}
	/* Usually with the very errors the dump or restore log ended with. */
	if (check && quoted && !strcmp(check, quoted))
		fprintf(m, ", with the same errors");
	else if (check)
		fprintf(m, ":%s", check);
	free(check);
	free(c.output);
	free(v.output);
}

int criu_failed(const char *what, const struct criu_run *c, const char *work, const char *log)
{
	char logpath[PATH_MAX];
	snprintf(logpath, sizeof logpath, "%s/%s", work, log);
	_cleanup_free_ char *text = NULL;
	if (read_file_at(AT_FDCWD, logpath, &text, NULL) < 0)
		err_clear();
	char *msg = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&msg, &len);
	if (!m)
		return err_set(ENOMEM, "CRIU %s failed", what);
	_cleanup_free_ char *how = exit_text(c->status);
	fprintf(m, "CRIU %s failed (%s)", what, how ? how : "failed");
	char *quoted = NULL;
	size_t qlen = 0;
	FILE *q = open_memstream(&quoted, &qlen);
	if (q) {
		if (text && strstr(text, "Error"))
			quote_lines(q, text, "Error", QUOTE_LINES);
		else if (c->output)
			quote_lines(q, c->output, NULL, QUOTE_LINES);
		fclose(q);
	}
	if (text && strstr(text, "Error"))
		fprintf(m, "; last errors in %s:%s", logpath, quoted ? quoted : "");
	else if (quoted && quoted[0])
		fprintf(m, "; criu said:%s%s%s", quoted, text ? "\nlog: " : "", text ? logpath : "");
	else
		fprintf(m, "; no errors in %s", logpath);
	append_criu_check(m, quoted);
	fclose(m);
	free(quoted);
	int r = err_set(0, "%s", msg ? msg : "CRIU failed");
	free(msg);
	return r;
}
