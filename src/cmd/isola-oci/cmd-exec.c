/* isola-oci exec: run another process in a container (runc's flags). */
#include "cmd.h"
#include "runtime/exec.h"
#include "sandbox/console.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

static int push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof **v);
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	struct exec_opts o = { .root = g.root, .tty = -1, .console_fd = -1 };
	_cleanup_free_ char **env = NULL, **gids = NULL, **caps = NULL;
	size_t n_env = 0, n_gids = 0, n_caps = 0;
	bool detach = false;
	const char *pid_file = NULL;
	static const struct option opts[] = {
		{ "console-socket", required_argument, 0, 'S' }, { "cwd", required_argument, 0, 'w' },
		{ "env", required_argument, 0, 'e' }, { "tty", no_argument, 0, 't' },
		{ "user", required_argument, 0, 'u' }, { "additional-gids", required_argument, 0, 'g' },
		{ "process", required_argument, 0, 'p' }, { "detach", no_argument, 0, 'd' },
		{ "pid-file", required_argument, 0, 'P' }, { "process-label", required_argument, 0, 'l' },
		{ "apparmor", required_argument, 0, 'a' }, { "no-new-privs", no_argument, 0, 'n' },
		{ "cap", required_argument, 0, 'c' }, { "preserve-fds", required_argument, 0, 'f' },
		{ "cgroup", required_argument, 0, 'C' }, { "ignore-paused", no_argument, 0, 'i' },
		{ 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+e:tu:g:p:dc:", opts, NULL)) != -1) {
		switch (c) {
		case 'S': o.console_socket = optarg; break;
		case 'w': o.cwd = optarg; break;
		case 'e': if (push(&env, &n_env, optarg) < 0) return fail_cmd(-ENOMEM); break;
		case 't': o.tty = 1; break;
		case 'u': o.user = optarg; break;
		case 'g': if (push(&gids, &n_gids, optarg) < 0) return fail_cmd(-ENOMEM); break;
		case 'p': o.process_file = optarg; break;
		case 'd': detach = true; break;
		case 'P': pid_file = optarg; break;
		case 'n': o.no_new_privs = true; break;
		case 'c': if (push(&caps, &n_caps, optarg) < 0) return fail_cmd(-ENOMEM); break;
		case 'f':
		{
			int e = parse_preserve_fds("exec", optarg, &o.preserve_fds);
			if (e)
				return e;
			break;
		}
		case 'l': case 'i': break; /* SELinux labels are ignored where SELinux is off */
		case 'a': return usage_error("exec", "--apparmor: AppArmor is not supported by isola-oci");
		case 'C': return usage_error("exec", "--cgroup: sub-cgroups for exec are not supported");
		default: return usage_error("exec", "unknown option");
		}
	}
	if (optind >= argc)
		return usage_error("exec", "usage: exec [OPTIONS] ID [COMMAND [ARGS...]]");
	o.id = argv[optind];
	o.args = argv + optind + 1;
	o.env = env;
	o.additional_gids = gids;
	o.caps = caps;
	if (!o.process_file && !o.args[0])
		return usage_error("exec", "a command or --process is required");

	/* A foreground exec with a terminal and no console socket: the pty is ours. */
	int csock[2] = { -1, -1 };
	bool own_tty = !detach && !o.console_socket;
	if (own_tty) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, csock) < 0)
			return fail_cmd(err_set(errno, "socketpair"));
		o.console_fd = csock[1];
	}
	sigset_t mask;
	if (!detach) {
		(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
		block_forwarded_signals(&mask);
	}
	pid_t pid;
	struct winsize ws;
	if (o.tty == 1 && ioctl(0, TIOCGWINSZ, &ws) == 0) {
		o.rows = ws.ws_row;
		o.cols = ws.ws_col;
	}
	int r = container_exec(&o, &pid);
	if (csock[1] >= 0)
		close(csock[1]);
	if (r < 0) {
		if (csock[0] >= 0)
			close(csock[0]);
		return fail_cmd(r);
	}
	int master = take_console_master(csock[0]);
	if (pid_file && (r = write_pid_file(pid_file, pid)) < 0)
		return fail_cmd(r);
	if (detach)
		return 0;
	return foreground_wait(pid, master, &mask);
}
