/* isola exec | console | logs: getting into an instance and reading it. */
#include "manager/instance.h"
#include "runtime/exec.h"
#include "runtime/foreground.h"
#include "sandbox/console.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "cmd.h"
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

static void manager_closep(struct manager **m) { if (*m) manager_close(*m); }
#define _cleanup_manager_ _cleanup_(manager_closep)

/* A running instance, or a clear refusal. */
static int running_instance(struct manager *m, const char *name, struct instance *in)
{
	int r = instance_get(m, name, in);
	if (r < 0)
		return r;
	if (in->status == INSTANCE_DEGRADED) {
		err_set(0, "instance '%s' is degraded (%s): stop it, or restart it", name, in->problem);
		instance_clear(in);
		return -EINVAL;
	}
	if (in->status != INSTANCE_RUNNING) {
		err_set(0, "instance '%s' is not running (%s)", name, instance_status_name(in->status));
		instance_clear(in);
		return -EINVAL;
	}
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tty", no_argument, 0, 't' }, { "no-tty", no_argument, 0, 'T' }, { "env", required_argument, 0, 'e' },
		{ "cwd", required_argument, 0, 'w' }, { "user", required_argument, 0, 'u' }, { 0, 0, 0, 0 },
	};
	int dd = argc;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dd = i;
			break;
		}
	int tty = -1, c;
	const char *cwd = NULL, *user = NULL;
	char *envs[64];
	size_t nenv = 0;
	optind = 0;
	while ((c = getopt_long(dd, argv, "tTe:w:u:", opts, NULL)) != -1) {
		switch (c) {
		case 't': tty = 1; break;
		case 'T': tty = 0; break;
		case 'e':
			if (!strchr(optarg, '=') || nenv + 1 >= sizeof envs / sizeof *envs)
				return usage_error("exec", "--env \"%s\": expected NAME=VALUE (at most 62)", optarg);
			envs[nenv++] = optarg;
			break;
		case 'w': cwd = optarg; break;
		case 'u': user = optarg; break;
		default: return option_error("exec", argv);
		}
	}
	envs[nenv] = NULL;
	if (dd - optind != 1 || dd + 1 >= argc)
		return usage_error("exec", "expected NAME -- COMMAND [ARGS...]");
	const char *name = argv[optind];
	_cleanup_manager_ struct manager *m = NULL;
	struct instance in;
	int r = open_manager(&m);
	if (r < 0 || (r = running_instance(m, name, &in)) < 0)
		return fail_cmd(r);
	/* The instance's environment.* keys, then --env. */
	char *env[192];
	size_t ne = 0;
	for (size_t i = 0; i < in.config.cap && ne < 120; i++) {
		const char *k = in.config.keys[i], *v = in.config.values[i];
		if (k && v && !strncmp(k, "environment.", 12) && asprintf(&env[ne], "%s=%s", k + 12, v) >= 0)
			ne++;
	}
	for (size_t i = 0; i < nenv; i++)
		env[ne++] = strdup(envs[i]);
	env[ne] = NULL;
	instance_clear(&in);
	if (tty < 0)
		tty = isatty(0);
	int csock[2] = { -1, -1 };
	if (tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, csock) < 0)
		return fail_cmd(err_set(errno, "socketpair"));
	/* The process is reparented to us through the pid namespace. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	sigset_t mask;
	block_forwarded_signals(&mask);
	struct exec_opts o = { .root = manager_run_dir(m), .id = name, .args = argv + dd + 1, .env = env, .cwd = cwd,
			       .user = user, .tty = tty, .console_fd = csock[1], .preserve_fds = 0 };
	pid_t pid;
	struct winsize ws;
	if (o.tty == 1 && ioctl(0, TIOCGWINSZ, &ws) == 0) {
		o.rows = ws.ws_row;
		o.cols = ws.ws_col;
	}
	r = container_exec(&o, &pid);
	for (size_t i = 0; i < ne; i++)
		free(env[i]);
	if (csock[1] >= 0)
		close(csock[1]);
	if (r < 0) {
		if (csock[0] >= 0)
			close(csock[0]);
		return fail_cmd(r);
	}
	int master = take_console_master(csock[0]);
	return foreground_wait(pid, master, &mask);
}

/* Ctrl-a q detaches; Ctrl-a Ctrl-a sends one Ctrl-a. */
#define DETACH_PREFIX 0x01

int cmd_console(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return usage_error("console", "expected NAME");
	_cleanup_manager_ struct manager *m = NULL;
	struct instance in;
	int r = open_manager(&m);
	if (r < 0 || (r = running_instance(m, argv[1], &in)) < 0)
		return fail_cmd(r);
	instance_clear(&in);
	_cleanup_close_ int s = instance_connect_console(m, argv[1]);
	if (s < 0)
		return fail_cmd(s);
	_cleanup_close_ int master = -1;
	if (recv_fd(s, &master) < 0)
		return fail_cmd(err_set(EPROTO, "instance '%s': the monitor did not answer on the console", argv[1]));
	bool term = isatty(0);
	struct termios saved;
	if (term && tcgetattr(0, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		(void)tcsetattr(0, TCSANOW, &t);
		struct winsize ws;
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			(void)ioctl(master, TIOCSWINSZ, &ws);
		fprintf(stderr, "To detach from the console, press: <ctrl>+a q\r\n");
	}
	bool in_open = true, prefix = false;
	for (;;) {
		struct pollfd p[2] = { { s, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		/* Without a terminal, stop once the input is done and output is quiet. */
		int n = poll(p, 2, in_open ? -1 : 500);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		char buf[4096];
		if (p[0].revents & (POLLIN | POLLHUP)) {
			ssize_t k = read(s, buf, sizeof buf);
			if (k <= 0)
				break;
			(void)write_all(1, buf, (size_t)k);
		}
		if (in_open && (p[1].revents & (POLLIN | POLLHUP))) {
			ssize_t k = read(0, buf, sizeof buf);
			if (k <= 0) {
				in_open = false;
				continue;
			}
			char out[sizeof buf];
			size_t o = 0;
			bool detach = false;
			for (ssize_t i = 0; i < k; i++) {
				unsigned char ch = (unsigned char)buf[i];
				if (term && prefix) {
					prefix = false;
					if (ch == 'q') {
						detach = true;
						break;
					}
					if (ch != DETACH_PREFIX)
						out[o++] = DETACH_PREFIX;
					out[o++] = (char)ch;
				} else if (term && ch == DETACH_PREFIX) {
					prefix = true;
				} else {
					out[o++] = (char)ch;
				}
			}
			if (o)
				(void)write_all(s, out, o);
			if (detach)
				break;
		}
	}
	if (term) {
		(void)tcsetattr(0, TCSANOW, &saved);
		fprintf(stderr, "\n");
	}
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return usage_error("logs", "expected NAME");
	_cleanup_manager_ struct manager *m = NULL;
	struct instance in;
	int r = open_manager(&m);
	if (r < 0 || (r = instance_get(m, argv[1], &in)) < 0)
		return fail_cmd(r);
	instance_clear(&in);
	/* The rotated part first, then the current log. */
	const char *files[] = { "console.log.1", "console.log" };
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *path = instance_path(m, argv[1], files[i]);
		_cleanup_close_ int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
		if (fd < 0)
			continue;
		char buf[65536];
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf)) > 0)
			if (write_all(1, buf, (size_t)n) < 0)
				return fail_cmd(err_set(errno, "write"));
	}
	return 0;
}
