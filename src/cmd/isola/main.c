/* isola: the instance manager's command line. Parses the global options and
 * dispatches to a command table (`image` now; `launch`, `list` and the
 * other instance commands join it as they land). */
#include "util/cleanup.h"
#include "util/err.h"
#include "util/kernel.h"
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cmd.h"
#include "runtime/container.h"
#include <stdlib.h>

#ifndef ISOLA_VERSION
#define ISOLA_VERSION "0.1.0"
#endif
#define DEFAULT_STATE_DIR "/var/lib/isola"

struct globals g;

int fail_cmd(int r)
{
	(void)r;
	fprintf(stderr, "isola: %s\n", err_msg());
	return 1;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	err_set(0, "%s: %s", cmd, buf);
	return fail_cmd(-EINVAL);
}

int option_error(const char *cmd, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	if (optopt && arg[0] == '-' && arg[1] != '-')
		return usage_error(cmd, "unknown option -%c (or it needs a value)", optopt);
	return usage_error(cmd, "unknown option \"%s\" (or it needs a value)", arg);
}

int parse_format(const char *cmd, const char *arg, bool *json)
{
	if (!strcmp(arg, "json"))
		*json = true;
	else if (!strcmp(arg, "table"))
		*json = false;
	else
		return usage_error(cmd, "--format: must be table or json, got \"%s\"", arg);
	return 0;
}

void print_usage(FILE *f, const char *group, const struct command *cmds, size_t n)
{
	fprintf(f, "usage: isola [--state-dir DIR] %s%sCOMMAND [ARGS...]\ncommands:\n", group ? group : "",
		group ? " " : "");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %s%s%s\n", group ? group : "", group ? " " : "", cmds[i].usage);
}

int dispatch(const char *group, const struct command *cmds, size_t n, int argc, char **argv)
{
	if (argc < 1) {
		print_usage(stderr, group, cmds, n);
		return 1;
	}
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
		print_usage(stdout, group, cmds, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(argv[0], cmds[i].name))
			return cmds[i].fn(argc, argv);
	err_set(0, "unknown command \"%s%s%s\"", group ? group : "", group ? " " : "", argv[0]);
	fail_cmd(-EINVAL);
	print_usage(stderr, group, cmds, n);
	return 1;
}

static const struct command commands[] = {
	{ "launch", cmd_launch, "launch IMAGE NAME [--limit K=V]... [--env K=V]... [--privileged] [--restart P] "
				"[--autostart] [-- CMD...]" },
	{ "create", cmd_create, "create IMAGE NAME [options as launch]   create without starting\n"
				"    --privileged: no user namespace: the instance's root is host root, kept apart only\n"
				"    by namespaces, cgroups and a seccomp filter. /proc/sys, /sys and its cgroup files\n"
				"    stay read-only and mounting is refused: that stops accidents, not a determined\n"
				"    root (--config security.protect_host=false lifts it)" },
	{ "start", cmd_start, "start NAME... | start --all-autostart" },
	{ "stop", cmd_stop, "stop [--force] [--timeout S] NAME..." },
	{ "restart", cmd_restart, "restart [--force] [--timeout S] NAME..." },
	{ "delete", cmd_delete, "delete [--force] NAME..." },
	{ "list", cmd_list, "list [--format table|json]" },
	{ "info", cmd_info, "info NAME [--format table|json]   state, limits and current usage" },
	{ "exec", cmd_exec, "exec NAME [-t|-T] [--env K=V] [--cwd DIR] [--user UID[:GID]] -- CMD [ARGS...]" },
	{ "console", cmd_console, "console NAME   attach to the console (detach: ctrl+a q)" },
	{ "logs", cmd_logs, "logs NAME   the console log" },
	{ "config", cmd_config, "config get|set|unset|show NAME [KEY [VALUE]]" },
	{ "image", cmd_image, "image list|info|import|export|delete ...   the image store" },
};

/* Not listed: run by isola-monitor when an instance's init exits. */
static const struct command hidden[] = {
	{ "__monitor-exit", cmd_monitor_exit, "" },
};

int main(int argc, char **argv)
{
	/* The runtime re-executes this binary as the container init. */
	if (argc >= 3 && !strcmp(argv[0], "isola-oci") && !strcmp(argv[1], "init"))
		return container_init_main(atoi(argv[2]));
	signal(SIGPIPE, SIG_IGN);
	opterr = 0; /* option errors are reported as "isola: CMD: ..." */
	static const struct option opts[] = {
		{ "state-dir", required_argument, 0, 's' }, { "version", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	const char *env = getenv("ISOLA_STATE_DIR");
	g.state_dir = env && *env ? env : DEFAULT_STATE_DIR;
	int c;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 's': g.state_dir = optarg; break;
		case 'v': printf("isola version %s\n", ISOLA_VERSION); return 0;
		case 'h': print_usage(stdout, NULL, commands, ARRAY_SIZE(commands)); return 0;
		default: print_usage(stderr, NULL, commands, ARRAY_SIZE(commands)); return 1;
		}
	}
	if (!*g.state_dir)
		return usage_error("isola", "--state-dir: must not be empty");
	int kr = kernel_check();
	if (kr < 0)
		return fail_cmd(kr);
	if (optind < argc && !strcmp(argv[optind], hidden[0].name))
		return hidden[0].fn(argc - optind, argv + optind);
	return dispatch(NULL, commands, ARRAY_SIZE(commands), argc - optind, argv + optind);
}
