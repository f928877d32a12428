/* isola-oci: the OCI runtime command line (runc's contract). Parses
 * arguments, calls the runtime library, prints. */
#include "runtime/container.h"
#include "sandbox/console.h"
#include "sandbox/seccomp.h"
#include "sandbox/userns.h"
#include "spec/spec.h"
#include "util/err.h"
#include "util/log.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/kernel.h"
#include "cmd.h"
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#ifndef ISOLA_VERSION
#define ISOLA_VERSION "0.1.0"
#endif

struct globals g = { .root = NULL, .log_format = "text" };

static void log_line(const char *level, const char *msg)
{
	if (!g.log)
		return;
	FILE *f = fopen(g.log, "ae");
	if (!f)
		return;
	char ts[64];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!strcmp(g.log_format, "json")) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "level", level, "msg", msg, "time", ts);
		char *s = json_dumps(o, JSON_COMPACT);
		fprintf(f, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		fprintf(f, "time=\"%s\" level=%s msg=\"%s\"\n", ts, level, msg);
	}
	fclose(f);
}

int fail_cmd(int r)
{
	(void)r;
	const char *msg = err_msg();
	fprintf(stderr, "isola-oci: %s\n", msg);
	log_line("error", msg);
	return 1;
}

static void debug_hook(const char *msg)
{
	debugf("%s", msg);
}

static void warning_hook(const char *msg)
{
	fprintf(stderr, "isola-oci: warning: %s\n", msg);
	log_line("warning", msg);
}

void debugf(const char *fmt, ...)
{
	if (!g.debug && !g.log)
		return;
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (g.debug)
		fprintf(stderr, "isola-oci: debug: %s\n", buf);
	log_line("debug", buf);
}

/* ---- signals -------------------------------------------------------- */

static const struct { const char *name; int sig; } signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL }, { "TRAP", SIGTRAP },
	{ "ABRT", SIGABRT }, { "IOT", SIGIOT }, { "BUS", SIGBUS }, { "FPE", SIGFPE }, { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU },
	{ "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "POLL", SIGPOLL }, { "PWR", SIGPWR }, { "SYS", SIGSYS },
};

int parse_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < NSIG ? (int)n : -1;
	const char *name = !strncasecmp(s, "SIG", 3) ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (!strcasecmp(name, signals[i].name))
			return signals[i].sig;
	if (!strncasecmp(name, "RTMIN", 5) || !strncasecmp(name, "RTMAX", 5)) {
		int base = !strncasecmp(name, "RTMIN", 5) ? SIGRTMIN : SIGRTMAX;
		long off = name[5] ? strtol(name + 5, &end, 10) : 0;
		if (name[5] && *end)
			return -1;
		int sig = base + (int)off;
		return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -1;
	}
	return -1;
}

/* ---- option parsing helpers ---------------------------------------- */

int parse_preserve_fds(const char *cmd, const char *arg, int *ret)
{
	char *end;
	errno = 0;
	long n = strtol(arg, &end, 10);
	if (!*arg || *end || errno || n < 0 || n > RUNTIME_PRESERVE_FDS_MAX)
		return usage_error(cmd, "--preserve-fds: not a count from 0 to %d: \"%s\"", RUNTIME_PRESERVE_FDS_MAX, arg);
	*ret = (int)n;
	return 0;
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

static int cmd_create_or_run(int argc, char **argv, bool run)
{
	const char *cmd = run ? "run" : "create";
	struct create_opts o = { .root = g.root, .bundle = ".", .console_fd = -1 };
	bool detach = false, keep = false;
	static const struct option opts[] = {
		{ "bundle", required_argument, 0, 'b' }, { "pid-file", required_argument, 0, 'p' },
		{ "console-socket", required_argument, 0, 'c' }, { "no-pivot", no_argument, 0, 'n' },
		{ "preserve-fds", required_argument, 0, 'f' }, { "detach", no_argument, 0, 'd' },
		{ "no-new-keyring", no_argument, 0, 'k' }, { "keep", no_argument, 0, 'K' },
		{ "no-subreaper", no_argument, 0, 'S' }, { 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+b:d", opts, NULL)) != -1) {
		switch (c) {
		case 'b': o.bundle = optarg; break;
		case 'p': o.pid_file = optarg; break;
		case 'c': o.console_socket = optarg; break;
		case 'n': o.no_pivot = true; break;
		case 'f':
		{
			int e = parse_preserve_fds(cmd, optarg, &o.preserve_fds);
			if (e)
				return e;
			break;
		}
		case 'd': detach = true; break;
		case 'K': keep = true; break;
		case 'k': case 'S': break;
		default: return usage_error(cmd, "unknown option");
		}
	}
	if (optind != argc - 1)
		return usage_error(cmd, "expected exactly one container id");
	if (!run && detach)
		return usage_error(cmd, "unknown option --detach");
	if (!run && keep)
		return usage_error(cmd, "unknown option --keep");
	o.id = argv[optind];
	if (!run) {
		pid_t pid;
		int r = container_create(&o, &pid);
		return r < 0 ? fail_cmd(r) : 0;
	}
	return run_container(&o, detach, keep);
}

static int cmd_create(int argc, char **argv) { return cmd_create_or_run(argc, argv, false); }
static int cmd_run(int argc, char **argv) { return cmd_create_or_run(argc, argv, true); }

static int one_id(int argc, char **argv, const char *cmd, const char **id)
{
	optind = 1;
	static const struct option none[] = { { 0, 0, 0, 0 } };
	if (getopt_long_only(argc, argv, "+", none, NULL) != -1)
		return usage_error(cmd, "unknown option");
	if (optind != argc - 1)
		return usage_error(cmd, "expected exactly one container id");
	*id = argv[optind];
	return 0;
}

static int cmd_start(int argc, char **argv)
{
	const char *id;
	int r = one_id(argc, argv, "start", &id);
	if (r)
		return r;
	r = container_start(g.root, id);
	return r < 0 ? fail_cmd(r) : 0;
}

static int cmd_state(int argc, char **argv)
{
	const char *id;
	int r = one_id(argc, argv, "state", &id);
	if (r)
		return r;
	container_state st;
	if ((r = container_load(g.root, id, &st)) < 0)
		return fail_cmd(r);
	char *js = container_state_json(&st);
	printf("%s\n", js);
	free(js);
	container_state_clear(&st);
	return 0;
}

static int cmd_kill(int argc, char **argv)
{
	bool all = false;
	static const struct option opts[] = { { "all", no_argument, 0, 'a' }, { 0, 0, 0, 0 } };
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+a", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else
			return usage_error("kill", "unknown option");
	}
	if (optind >= argc || argc - optind > 2)
		return usage_error("kill", "usage: kill [--all] ID [SIGNAL]");
	int sig = SIGTERM;
	/* Signal 0 is a liveness probe: it fails only when the container
	 * (with --all: its cgroup) has nothing left to signal. */
	if (argc - optind == 2 && !strcmp(argv[optind + 1], "0"))
		sig = 0;
	else if (argc - optind == 2 && (sig = parse_signal(argv[optind + 1])) < 0)
		return usage_error("kill", "unknown signal \"%s\"", argv[optind + 1]);
	int r = container_kill(g.root, argv[optind], sig, all);
	return r < 0 ? fail_cmd(r) : 0;
}

static int cmd_delete(int argc, char **argv)
{
	bool force = false;
	static const struct option opts[] = { { "force", no_argument, 0, 'f' }, { 0, 0, 0, 0 } };
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+f", opts, NULL)) != -1) {
		if (c == 'f')
			force = true;
		else
			return usage_error("delete", "unknown option");
	}
	if (optind >= argc)
		return usage_error("delete", "expected a container id");
	int ret = 0;
	for (int i = optind; i < argc; i++) {
		int r = container_delete(g.root, argv[i], force);
		if (r < 0) {
			if (force && r == -ENOENT)
				continue; /* nothing to force away */
			ret = fail_cmd(r);
		}
	}
	return ret;
}

static int cmd_list(int argc, char **argv)
{
	const char *format = "table";
	bool quiet = false;
	static const struct option opts[] = {
		{ "format", required_argument, 0, 'f' }, { "quiet", no_argument, 0, 'q' }, { 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+f:q", opts, NULL)) != -1) {
		if (c == 'f')
			format = optarg;
		else if (c == 'q')
			quiet = true;
		else
			return usage_error("list", "unknown option");
	}
	if (strcmp(format, "table") && strcmp(format, "json"))
		return usage_error("list", "--format: must be table or json, got \"%s\"", format);
	char **ids;
	container_list_ids(g.root, &ids);
	json_t *arr = json_array();
	if (!quiet && !strcmp(format, "table"))
		printf("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
	for (size_t i = 0; ids[i]; i++) {
		container_state st;
		if (container_load(g.root, ids[i], &st) < 0) {
			free(ids[i]);
			continue;
		}
		if (quiet)
			printf("%s\n", ids[i]);
		else if (!strcmp(format, "table"))
			printf("%-20s %-8d %-10s %-40s %-32s %s\n", ids[i], st.status == ST_STOPPED ? 0 : (int)st.pid,
			       container_status_names[st.status], st.bundle, st.created, st.owner[0] ? st.owner : "root");
		else {
			char *js = container_state_json(&st);
			json_array_append_new(arr, json_loads(js, 0, NULL));
			free(js);
		}
		container_state_clear(&st);
		free(ids[i]);
	}
	free(ids);
	if (!quiet && !strcmp(format, "json")) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	}
	json_decref(arr);
	return 0;
}

static int cmd_spec(int argc, char **argv)
{
	const char *bundle = ".";
	bool rootless = false;
	static const struct option opts[] = {
		{ "bundle", required_argument, 0, 'b' }, { "rootless", no_argument, 0, 'r' }, { 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+b:", opts, NULL)) != -1) {
		if (c == 'b')
			bundle = optarg;
		else if (c == 'r')
			rootless = true;
		else
			return usage_error("spec", "unknown option");
	}
	_cleanup_close_ int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail_cmd(err_set(errno, "spec: bundle '%s'", bundle));
	if (faccessat(dfd, "config.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return fail_cmd(err_set(EEXIST, "spec: %s/config.json", bundle));
	_cleanup_free_ char *js = spec_default_json(rootless);
	if (!js)
		return fail_cmd(err_set(ENOMEM, "spec"));
	int r = write_file_atomic_at(dfd, "config.json", js, strlen(js), 0644);
	return r < 0 ? fail_cmd(r) : 0;
}

static int cmd_features(int argc, char **argv)
{
	json_t *ns = json_array();
	for (int t = 0; t < NS__MAX; t++)
		json_array_append_new(ns, json_string(spec_ns_names[t]));
	/* From the parser's own tables: what features says is what create takes. */
	json_t *caps = json_array();
	for (int c = 0; spec_cap_name(c); c++)
		json_array_append_new(caps, json_string(spec_cap_name(c)));
	json_t *mo = json_array();
	for (size_t i = 0; spec_mount_option_name(i); i++)
		json_array_append_new(mo, json_string(spec_mount_option_name(i)));
	json_t *o = json_pack(
		"{s:s, s:s, s:[ssssss], s:o, s:{s:o, s:o, s:{s:b, s:b, s:b}, s:{s:b, s:b}, s:{s:b}, s:{s:b}}, s:{s:s}}",
		"ociVersionMin", "1.0.0", "ociVersionMax", ISOLA_OCI_VERSION,
		"hooks", "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
		"mountOptions", mo,
		"linux", "namespaces", ns, "capabilities", caps,
		"cgroup", "v1", 1, "v2", 1, "systemd", 0,
		"seccomp", "enabled", 1, "notify", 1,
		"apparmor", "enabled", 0, "selinux", "enabled", 0,
		"annotations", "org.opencontainers.runc.checkpoint.enabled", "true");
	char *s = json_dumps(o, JSON_INDENT(4));
	printf("%s\n", s);
	free(s);
	json_decref(o);
	return 0;
}

static const struct { const char *name; int (*fn)(int, char **); } commands[] = {
	{ "create", cmd_create }, { "start", cmd_start }, { "run", cmd_run }, { "state", cmd_state },
	{ "kill", cmd_kill }, { "delete", cmd_delete }, { "list", cmd_list }, { "spec", cmd_spec },
	{ "features", cmd_features }, { "exec", cmd_exec },
	{ "pause", cmd_pause }, { "resume", cmd_resume }, { "update", cmd_update }, { "ps", cmd_ps },
	{ "events", cmd_events },
	{ "checkpoint", cmd_checkpoint }, { "restore", cmd_restore },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: isola-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [ARGS...]\n"
		   "commands: create start run exec state kill delete list pause resume update ps events\n"
		   "          checkpoint restore spec features\n");
}

/* Unprivileged (or root of a user namespace, as under rootless podman) the
 * state lives in the user's $XDG_RUNTIME_DIR, as with runc. */
static const char *default_state_root(void)
{
	static char buf[PATH_MAX];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && xdg[0] == '/' && userns_rootless() &&
	    snprintf(buf, sizeof buf, "%s/isola-oci", xdg) < (int)sizeof buf)
		return buf;
	return "/run/isola-oci";
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "init"))
		return container_init_main(atoi(argv[2]));
	signal(SIGPIPE, SIG_IGN);
	static const struct option opts[] = {
		{ "root", required_argument, 0, 'r' }, { "log", required_argument, 0, 'l' },
		{ "log-format", required_argument, 0, 'F' }, { "debug", no_argument, 0, 'D' },
		{ "systemd-cgroup", no_argument, 0, 's' }, { "rootless", required_argument, 0, 'R' },
		{ "criu", required_argument, 0, 'C' }, { "version", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	bool systemd = false;
	int c;
	while ((c = getopt_long_only(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': g.root = optarg; break;
		case 'l': g.log = optarg; break;
		case 'F':
			if (strcmp(optarg, "text") && strcmp(optarg, "json"))
				return usage_error("isola-oci", "--log-format: must be text or json, got \"%s\"", optarg);
			g.log_format = optarg;
			break;
		case 'D': g.debug = true; break;
		case 's': systemd = true; break;
		case 'R': case 'C': break;
		case 'v':
			printf("isola-oci version %s\nspec: %s\n", ISOLA_VERSION, ISOLA_OCI_VERSION);
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!g.root)
		g.root = default_state_root();
	if (g.debug || g.log)
		log_set_debug_hook(debug_hook);
	log_set_warning_hook(warning_hook);
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	int kr = kernel_check();
	if (kr < 0)
		return fail_cmd(kr);
	if (systemd)
		return fail_cmd(err_set(EOPNOTSUPP, "--systemd-cgroup: isola-oci has no systemd cgroup driver; use cgroupfs paths"));
	const char *name = argv[optind];
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].fn(argc - optind, argv + optind);
	err_set(0, "unknown command \"%s\"", name);
	usage(stderr);
	return fail_cmd(-EINVAL);
}
