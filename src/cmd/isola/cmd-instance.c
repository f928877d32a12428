/* isola launch | create | start | stop | restart | delete | list | info, and
 * the monitor's hidden exit hook. */
#include "manager/instance.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "cmd.h"
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void manager_closep(struct manager **m) { if (*m) manager_close(*m); }
#define _cleanup_manager_ _cleanup_(manager_closep)

int open_manager(struct manager **ret)
{
	return manager_open(g.state_dir, ret);
}

/* Split argv at "--": options and operands before, the command after. */
static int split_dashdash(int argc, char **argv, char ***ret_cmd)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			*ret_cmd = argv + i + 1;
			argv[i] = NULL;
			return i;
		}
	*ret_cmd = NULL;
	return argc;
}

static int push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof **v);
	if (!nv || !(nv[*n] = strdup(s))) {
		*v = nv ? nv : *v;
		return err_set(ENOMEM, "arguments");
	}
	nv[++*n] = NULL;
	*v = nv;
	return 0;
}

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* launch and create share their options. */
static int create_common(int argc, char **argv, const char *cmd, bool start)
{
	static const struct option opts[] = {
		{ "limit", required_argument, 0, 'l' }, { "config", required_argument, 0, 'c' },
		{ "env", required_argument, 0, 'e' }, { "privileged", no_argument, 0, 'p' },
		{ "restart", required_argument, 0, 'r' }, { "autostart", no_argument, 0, 'a' },
		{ 0, 0, 0, 0 },
	};
	char **command = NULL;
	argc = split_dashdash(argc, argv, &command);
	char **config = NULL;
	size_t nconfig = 0;
	bool privileged = false;
	int c, r = 0;
	optind = 0;
	while (r == 0 && (c = getopt_long(argc, argv, "l:c:e:", opts, NULL)) != -1) {
		char buf[4096];
		switch (c) {
		case 'l':
			if (!strchr(optarg, '=')) {
				strv_free(config);
				return usage_error(cmd, "--limit \"%s\": expected KEY=VALUE (cpu=1, memory=256MiB, "
						   "processes=100, disk=10GiB, disk.read=10MB, disk.write=10MB)", optarg);
			}
			snprintf(buf, sizeof buf, "%s%s", strncmp(optarg, "limits.", 7) ? "limits." : "", optarg);
			r = push(&config, &nconfig, buf);
			break;
		case 'c': r = push(&config, &nconfig, optarg); break;
		case 'e':
			snprintf(buf, sizeof buf, "environment.%s", optarg);
			if (!strchr(optarg, '=')) {
				strv_free(config);
				return usage_error(cmd, "--env \"%s\": expected NAME=VALUE", optarg);
			}
			r = push(&config, &nconfig, buf);
			break;
		case 'p': privileged = true; break;
		case 'r':
			snprintf(buf, sizeof buf, "boot.restart=%s", optarg);
			r = push(&config, &nconfig, buf);
			break;
		case 'a': r = push(&config, &nconfig, "boot.autostart=true"); break;
		default: strv_free(config); return option_error(cmd, argv);
		}
	}
	if (r < 0) {
		strv_free(config);
		return fail_cmd(r);
	}
	if (argc - optind != 2) {
		strv_free(config);
		return usage_error(cmd, "expected IMAGE NAME, got %d operand(s)", argc - optind);
	}
	if (command && !*command) {
		strv_free(config);
		return usage_error(cmd, "nothing after \"--\": give a command or leave out \"--\"");
	}
	struct instance_create_opts o = { .image = argv[optind], .name = argv[optind + 1], .privileged = privileged,
					  .command = command, .config = config };
	_cleanup_manager_ struct manager *m = NULL;
	if ((r = open_manager(&m)) < 0 || (r = instance_create(m, &o)) < 0) {
		strv_free(config);
		return fail_cmd(r);
	}
	strv_free(config);
	/* launch is one step: an instance that cannot start is not kept */
	if (start && (r = instance_start(m, o.name)) < 0) {
		fail_cmd(r);
		if (instance_delete(m, o.name, true) < 0)
			fail_cmd(-EIO);
		return 1;
	}
	return 0;
}

int cmd_launch(int argc, char **argv) { return create_common(argc, argv, "launch", true); }
int cmd_create(int argc, char **argv) { return create_common(argc, argv, "create", false); }

static void autostart_report(const char *name, int r, const char *msg)
{
	if (r < 0)
		fprintf(stderr, "isola: %s\n", msg);
	else
		printf("started %s\n", name);
}

int cmd_start(int argc, char **argv)
{
	static const struct option opts[] = { { "all-autostart", no_argument, 0, 'a' }, { 0, 0, 0, 0 } };
	bool all = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'a')
			return option_error("start", argv);
		all = true;
	}
	if (all ? optind != argc : optind >= argc)
		return usage_error("start", all ? "--all-autostart takes no instance names" : "expected NAME...");
	_cleanup_manager_ struct manager *m = NULL;
	int r = open_manager(&m);
	if (r < 0)
		return fail_cmd(r);
	if (all) {
		int started = 0, failed = 0;
		if ((r = instance_start_autostart(m, autostart_report, &started, &failed)) < 0)
			return fail_cmd(r);
		return failed ? 1 : 0;
	}
	int status = 0;
	for (int i = optind; i < argc; i++)
		if ((r = instance_start(m, argv[i])) < 0)
			status = fail_cmd(r);
	return status;
}

static int stop_common(int argc, char **argv, const char *cmd, bool restart)
{
	static const struct option opts[] = {
		{ "force", no_argument, 0, 'f' }, { "timeout", required_argument, 0, 't' }, { 0, 0, 0, 0 },
	};
	bool force = false;
	int timeout = 30, c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'f': force = true; break;
		case 't':
			timeout = (int)strtol(optarg, &end, 10);
			if (!*optarg || *end || timeout < -1 || timeout > 86400)
				return usage_error(cmd, "--timeout \"%s\": seconds, 0 to 86400 (-1: wait forever)", optarg);
			break;
		default: return option_error(cmd, argv);
		}
	}
	if (optind >= argc)
		return usage_error(cmd, "expected NAME...");
	_cleanup_manager_ struct manager *m = NULL;
	int r = open_manager(&m);
	if (r < 0)
		return fail_cmd(r);
	int status = 0;
	for (int i = optind; i < argc; i++) {
		if ((r = instance_stop(m, argv[i], force, timeout)) < 0 && !(restart && r == -EINVAL)) {
			status = fail_cmd(r);
			continue;
		}
		if (restart && (r = instance_start(m, argv[i])) < 0)
			status = fail_cmd(r);
	}
	return status;
}

int cmd_stop(int argc, char **argv) { return stop_common(argc, argv, "stop", false); }
int cmd_restart(int argc, char **argv) { return stop_common(argc, argv, "restart", true); }

int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, 0, 'f' }, { 0, 0, 0, 0 } };
	bool force = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		if (c != 'f')
			return option_error("delete", argv);
		force = true;
	}
	if (optind >= argc)
		return usage_error("delete", "expected NAME...");
	_cleanup_manager_ struct manager *m = NULL;
	int r = open_manager(&m);
	if (r < 0)
		return fail_cmd(r);
	int status = 0;
	for (int i = optind; i < argc; i++)
		if ((r = instance_delete(m, argv[i], force)) < 0)
			status = fail_cmd(r);
	return status;
}

/* ---- list and info ------------------------------------------------------- */

static char *limit_text(const struct instance *in)
{
	static const char *const keys[] = { "limits.cpu", "limits.memory", "limits.processes", "limits.disk",
					    "limits.disk.read", "limits.disk.write" };
	char buf[512] = "";
	size_t off = 0;
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *v = strmap_get(&in->config, keys[i]);
		if (v)
			off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s=%s", off ? "," : "", keys[i] + 7, v);
	}
	return strdup(off ? buf : "-");
}

/* "running", or "degraded: monitor gone" */
static char *status_text(const struct instance *in)
{
	char *s = NULL;
	if (!in->problem)
		return strdup(instance_status_name(in->status));
	return asprintf(&s, "%s: %s", instance_status_name(in->status), in->problem) < 0 ? NULL : s;
}

static json_t *config_json(const struct instance *in)
{
	json_t *o = json_object();
	for (size_t i = 0; i < in->config.cap; i++)
		if (in->config.keys[i] && in->config.values[i])
			json_object_set_new(o, in->config.keys[i], json_string(in->config.values[i]));
	return o;
}

static json_t *instance_json(const struct instance *in, const struct instance_usage *u)
{
	char created[64], started[64], exited[64];
	format_time(in->created_at, created, sizeof created, true);
	json_t *cmd = json_null();
	if (in->command) {
		cmd = json_array();
		for (char **p = in->command; *p; p++)
			json_array_append_new(cmd, json_string(*p));
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:b, s:o, s:i, s:s, s:o, s:i, s:o}", "name", in->name,
			      "status", instance_status_name(in->status), "type", in->type, "image_alias", in->image_alias,
			      "image", in->image, "privileged", in->privileged,
			      "idmap_base", in->idmap_base >= 0 ? json_integer(in->idmap_base) : json_null(),
			      "pid", (int)in->pid, "created_at", created, "command", cmd, "restarts", in->restarts,
			      "config", config_json(in));
	if (in->problem)
		json_object_set_new(o, "problem", json_string(in->problem));
	if (in->last_started_at) {
		format_time(in->last_started_at, started, sizeof started, true);
		json_object_set_new(o, "last_started_at", json_string(started));
	}
	if (in->has_last_exit) {
		format_time(in->last_exit_at, exited, sizeof exited, true);
		int st = in->last_exit;
		json_object_set_new(o, "last_exit", json_pack("{s:s, s:o, s:o}", "at", exited,
			"code", WIFEXITED(st) ? json_integer(WEXITSTATUS(st)) : json_null(),
			"signal", WIFSIGNALED(st) ? json_integer(WTERMSIG(st)) : json_null()));
	}
	if (u) {
		json_t *usage = json_pack("{s:I}", "disk_bytes", (json_int_t)u->disk);
		if (u->has_cgroup) {
			json_object_set_new(usage, "cpu_ns", json_integer((json_int_t)u->cpu_ns));
			json_object_set_new(usage, "memory_bytes", json_integer((json_int_t)u->memory));
			json_object_set_new(usage, "memory_peak_bytes", json_integer((json_int_t)u->memory_peak));
			json_object_set_new(usage, "processes", json_integer((json_int_t)u->processes));
		}
		json_object_set_new(o, "usage", usage);
	}
	return o;
}

static int format_opt(int argc, char **argv, const char *cmd, bool *json)
{
	static const struct option opts[] = { { "format", required_argument, 0, 'f' }, { 0, 0, 0, 0 } };
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'f') {
			option_error(cmd, argv);
			return -1;
		}
		if (parse_format(cmd, optarg, json))
			return -1;
	}
	return 0;
}

int cmd_list(int argc, char **argv)
{
	bool json = false;
	if (format_opt(argc, argv, "list", &json) < 0)
		return 1;
	if (optind != argc)
		return usage_error("list", "unexpected argument \"%s\"", argv[optind]);
	_cleanup_manager_ struct manager *m = NULL;
	struct instance *v = NULL;
	size_t n = 0;
	int r = open_manager(&m);
	if (r < 0 || (r = instance_list(m, &v, &n)) < 0)
		return fail_cmd(r);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, instance_json(&v[i], NULL));
		instance_array_free(v, n);
		return print_json(a);
	}
	enum { NAME, STATUS, IMAGE, PID, LIMITS, NCOL };
	static const char *const head[NCOL] = { "NAME", "STATUS", "IMAGE", "PID", "LIMITS" };
	char **cells = calloc(n * NCOL + 1, sizeof *cells);
	for (size_t i = 0; cells && i < n; i++) {
		char **row = cells + i * NCOL, pid[16];
		row[NAME] = strdup(v[i].name);
		row[STATUS] = status_text(&v[i]);
		row[IMAGE] = v[i].image_alias ? strdup(v[i].image_alias) : strndup(v[i].image, 12);
		snprintf(pid, sizeof pid, "%d", (int)v[i].pid);
		row[PID] = strdup(v[i].pid ? pid : "-");
		row[LIMITS] = limit_text(&v[i]);
	}
	if (cells)
		print_table(NCOL, head, cells, n);
	for (size_t i = 0; cells && i < n * NCOL; i++)
		free(cells[i]);
	free(cells);
	instance_array_free(v, n);
	return 0;
}

static void print_info(const struct instance *in, const struct instance_usage *u)
{
	char buf[64], size[32];
	printf("Name:        %s\n", in->name);
	_cleanup_free_ char *status = status_text(in);
	printf("Status:      %s\n", status ? status : "?");
	printf("Type:        %s (%s)\n", in->type, in->command ? "application" : "system");
	printf("Image:       %s (%.12s)\n", in->image_alias ? in->image_alias : "-", in->image);
	if (in->privileged)
		printf("Privileged:  yes (no user namespace)\n");
	else
		printf("ID map:      0-65535 -> host %lld-%lld\n", (long long)in->idmap_base,
		       (long long)in->idmap_base + 65535);
	if (in->pid)
		printf("PID:         %d\n", (int)in->pid);
	format_time(in->created_at, buf, sizeof buf, false);
	printf("Created:     %s\n", buf);
	if (in->last_started_at) {
		format_time(in->last_started_at, buf, sizeof buf, false);
		printf("Started:     %s\n", buf);
	}
	if (in->has_last_exit) {
		int st = in->last_exit;
		if (WIFEXITED(st))
			printf("Last exit:   code %d\n", WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			printf("Last exit:   signal %d\n", WTERMSIG(st));
	}
	if (in->restarts)
		printf("Restarts:    %d\n", in->restarts);
	printf("Config:\n");
	bool any = false;
	for (size_t i = 0; i < in->config.cap; i++)
		if (in->config.keys[i] && in->config.values[i]) {
			printf("  %s: %s\n", in->config.keys[i], in->config.values[i]);
			any = true;
		}
	if (!any)
		printf("  (none)\n");
	printf("Usage:\n");
	if (u->has_cgroup) {
		printf("  CPU time:  %.2f s\n", (double)u->cpu_ns / 1e9);
		printf("  Memory:    %s", image_format_size(u->memory, size, sizeof size));
		printf(" (peak %s)\n", image_format_size(u->memory_peak, size, sizeof size));
		printf("  Processes: %llu\n", (unsigned long long)u->processes);
	}
	printf("  Disk:      %s\n", image_format_size(u->disk, size, sizeof size));
}

int cmd_info(int argc, char **argv)
{
	bool json = false;
	if (format_opt(argc, argv, "info", &json) < 0)
		return 1;
	if (argc - optind != 1)
		return usage_error("info", "expected NAME");
	_cleanup_manager_ struct manager *m = NULL;
	struct instance in;
	int r = open_manager(&m);
	if (r < 0 || (r = instance_get(m, argv[optind], &in)) < 0)
		return fail_cmd(r);
	struct instance_usage u;
	(void)instance_usage(m, &in, &u);
	if (json) {
		r = print_json(instance_json(&in, &u));
	} else {
		print_info(&in, &u);
		r = 0;
	}
	instance_clear(&in);
	return r;
}

/* isola __monitor-exit NAME STATUS: run by isola-monitor when the init exits;
 * NAME lxcfs: when the host's LXCFS daemon died. */
int cmd_monitor_exit(int argc, char **argv)
{
	if (argc != 3)
		return usage_error("__monitor-exit", "expected NAME STATUS or NAME lxcfs");
	bool lxcfs = !strcmp(argv[2], "lxcfs");
	/* A state directory removed meanwhile is not made anew. */
	char db[4096];
	snprintf(db, sizeof db, "%s/isola.db", g.state_dir);
	if (access(db, F_OK) < 0)
		return 0;
	_cleanup_manager_ struct manager *m = NULL;
	int r = open_manager(&m);
	if (r == 0)
		r = lxcfs ? instance_monitor_lxcfs_gone(m, argv[1]) : instance_monitor_exit(m, argv[1], atoi(argv[2]));
	if (r < 0 && m) {
		/* Nobody reads our stderr (/dev/null): the instance's log does. */
		char *path = instance_path(m, argv[1], "console.log");
		FILE *f = path ? fopen(path, "ae") : NULL;
		if (f && lxcfs)
			fprintf(f, "\nisola: LXCFS died; repair: %s\n", err_msg());
		else if (f)
			fprintf(f, "\nisola: after the init exited (status %s): %s\n", argv[2], err_msg());
		if (f) {
			fclose(f);
		}
		free(path);
	}
	return r < 0 ? fail_cmd(r) : 0;
}
