/* isola-oci pause, resume, update and ps: the commands that act on a live
 * container's cgroup, with runc 1.1's flags and output formats (events is
 * in cmd-events.c). */
#include "cmd.h"
#include "runtime/container.h"
#include "runtime/live.h"
#include "sandbox/cgroup.h"
#include "spec/spec.h"
#include "util/cleanup.h"
#include "util/err.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- shared: the container, locked, and its cgroup ------------------ */

static int id_only(int argc, char **argv, const char *cmd, const char **id)
{
	static const struct option none[] = { { 0, 0, 0, 0 } };
	optind = 1;
	if (getopt_long_only(argc, argv, "+", none, NULL) != -1)
		return usage_error(cmd, "unknown option");
	if (optind != argc - 1)
		return usage_error(cmd, "expected exactly one container id");
	*id = argv[optind];
	return 0;
}

/* ---- pause / resume ------------------------------------------------- */

static int pause_resume(int argc, char **argv, bool pause)
{
	const char *id = NULL;
	int r = id_only(argc, argv, pause ? "pause" : "resume", &id);
	if (r)
		return r;
	r = pause ? container_pause(g.root, id) : container_resume(g.root, id);
	return r < 0 ? fail_cmd(r) : 0;
}

int cmd_pause(int argc, char **argv) { return pause_resume(argc, argv, true); }
int cmd_resume(int argc, char **argv) { return pause_resume(argc, argv, false); }

/* ---- update --------------------------------------------------------- */

enum {
	U_MEMORY = 256, U_MEMORY_RES, U_MEMORY_SWAP, U_KMEM, U_KMEM_TCP, U_CPU_SHARES, U_CPU_QUOTA, U_CPU_PERIOD,
	U_RT_RUNTIME, U_RT_PERIOD, U_CPUS, U_MEMS, U_PIDS, U_BLKIO_WEIGHT, U_RDT,
};

static int read_fd_all(int fd, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (cap - len < 2) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int read_resources(const char *file, spec_resources *ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;
	if (!strcmp(file, "-")) {
		if ((r = read_fd_all(STDIN_FILENO, &text, &len)) < 0)
			return err_set(-r, "update: read resources from stdin");
		return spec_parse_resources(text, len, "stdin", ret);
	}
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(errno, "update: open '%s'", file);
	if ((r = read_fd_all(fd, &text, &len)) < 0)
		return err_set(-r, "update: read '%s'", file);
	return spec_parse_resources(text, len, file, ret);
}

/* Memory sizes as runc takes them: "-1" (unlimited) or a size ("64m"). */
static int flag_size(const char *flag, const char *s, opt_i64 *ret)
{
	int64_t v;
	if (!strcmp(s, "-1"))
		v = -1;
	else if (spec_parse_mem_size(s, &v) < 0)
		return err_set(0, "update: --%s: invalid size \"%s\"", flag, s);
	*ret = (opt_i64){ true, v };
	return 0;
}

static int flag_int(const char *flag, const char *s, int64_t lo, int64_t hi, opt_i64 *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return err_set(0, "update: --%s: invalid value \"%s\" (an integer %lld..%lld)", flag, s,
			       (long long)lo, (long long)hi);
	*ret = (opt_i64){ true, v };
	return 0;
}

static int flag_uint(const char *flag, const char *s, opt_u64 *ret)
{
	opt_i64 v;
	int r = flag_int(flag, s, 0, INT64_MAX, &v);
	if (r == 0)
		*ret = (opt_u64){ true, (uint64_t)v.v };
	return r;
}

static int flag_str(const char *s, char **ret)
{
	char *d = strdup(s);
	if (!d)
		return err_set(ENOMEM, "update");
	free(*ret);
	*ret = d;
	return 0;
}

/* As runc: 0 means "leave as it is" for these (its help shows a template
 * full of zeros), and device rules are set at create time only. */
static void drop_unchanged(spec_resources *r)
{
	opt_i64 *i64s[] = { &r->memory.limit, &r->memory.reservation, &r->memory.swap, &r->memory.kernel,
			    &r->memory.kernel_tcp, &r->cpu.quota, &r->cpu.realtime_runtime, &r->pids.limit };
	opt_u64 *u64s[] = { &r->cpu.shares, &r->cpu.period, &r->cpu.realtime_period, &r->blkio.weight };
	for (size_t i = 0; i < ARRAY_SIZE(i64s); i++)
		if (i64s[i]->has && i64s[i]->v == 0)
			i64s[i]->has = false;
	for (size_t i = 0; i < ARRAY_SIZE(u64s); i++)
		if (u64s[i]->has && u64s[i]->v == 0)
			u64s[i]->has = false;
	free(r->devices);
	r->devices = NULL;
	r->n_devices = 0;
}

static int update_flag(int c, const char *arg, spec_resources *r)
{
	switch (c) {
	case U_MEMORY: return flag_size("memory", arg, &r->memory.limit);
	case U_MEMORY_RES: return flag_size("memory-reservation", arg, &r->memory.reservation);
	case U_MEMORY_SWAP: return flag_size("memory-swap", arg, &r->memory.swap);
	case U_KMEM: return flag_size("kernel-memory", arg, &r->memory.kernel);
	case U_KMEM_TCP: return flag_size("kernel-memory-tcp", arg, &r->memory.kernel_tcp);
	case U_CPU_SHARES: return flag_uint("cpu-share", arg, &r->cpu.shares);
	case U_CPU_QUOTA: return flag_int("cpu-quota", arg, INT64_MIN, INT64_MAX, &r->cpu.quota);
	case U_CPU_PERIOD: return flag_uint("cpu-period", arg, &r->cpu.period);
	case U_RT_RUNTIME: return flag_int("cpu-rt-runtime", arg, INT64_MIN, INT64_MAX, &r->cpu.realtime_runtime);
	case U_RT_PERIOD: return flag_uint("cpu-rt-period", arg, &r->cpu.realtime_period);
	case U_CPUS: return flag_str(arg, &r->cpu.cpus);
	case U_MEMS: return flag_str(arg, &r->cpu.mems);
	case U_PIDS: return flag_int("pids-limit", arg, INT64_MIN, INT64_MAX, &r->pids.limit);
	case U_BLKIO_WEIGHT: {
		opt_i64 v;
		int k = flag_int("blkio-weight", arg, 0, UINT16_MAX, &v);
		if (k == 0)
			r->blkio.weight = (opt_u64){ true, (uint64_t)v.v };
		return k;
	}
	case U_RDT: return err_set(EOPNOTSUPP, "update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
	}
	return err_set(EINVAL, "update: unknown option");
}

int cmd_update(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resources", required_argument, 0, 'r' },
		{ "memory", required_argument, 0, U_MEMORY },
		{ "memory-reservation", required_argument, 0, U_MEMORY_RES },
		{ "memory-swap", required_argument, 0, U_MEMORY_SWAP },
		{ "kernel-memory", required_argument, 0, U_KMEM },
		{ "kernel-memory-tcp", required_argument, 0, U_KMEM_TCP },
		{ "cpu-share", required_argument, 0, U_CPU_SHARES },
		{ "cpu-shares", required_argument, 0, U_CPU_SHARES },
		{ "cpu-quota", required_argument, 0, U_CPU_QUOTA },
		{ "cpu-period", required_argument, 0, U_CPU_PERIOD },
		{ "cpu-rt-runtime", required_argument, 0, U_RT_RUNTIME },
		{ "cpu-rt-period", required_argument, 0, U_RT_PERIOD },
		{ "cpuset-cpus", required_argument, 0, U_CPUS },
		{ "cpuset-mems", required_argument, 0, U_MEMS },
		{ "pids-limit", required_argument, 0, U_PIDS },
		{ "blkio-weight", required_argument, 0, U_BLKIO_WEIGHT },
		{ "l3-cache-schema", required_argument, 0, U_RDT },
		{ "mem-bw-schema", required_argument, 0, U_RDT },
		{ 0, 0, 0, 0 },
	};
	const char *file = NULL;
	struct { int c; const char *arg; } given[64];
	size_t n_given = 0;
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+r:", opts, NULL)) != -1) {
		if (c == 'r')
			file = optarg;
		else if (c >= U_MEMORY && c <= U_RDT && n_given < ARRAY_SIZE(given))
			given[n_given++] = (__typeof__(given[0])){ c, optarg };
		else
			return usage_error("update", "%s", c == '?' ? "unknown option" : "too many options");
	}
	if (optind != argc - 1)
		return usage_error("update", "expected exactly one container id");
	const char *id = argv[optind];

	/* The file first, then the flags over it. */
	spec_resources res = { .present = true };
	int r = file ? read_resources(file, &res) : 0;
	for (size_t i = 0; r >= 0 && i < n_given; i++)
		r = update_flag(given[i].c, given[i].arg, &res);
	if (r < 0) {
		spec_resources_free(&res);
		return fail_cmd(r);
	}
	drop_unchanged(&res);

	r = container_update(g.root, id, &res);
	spec_resources_free(&res);
	return r < 0 ? fail_cmd(r) : 0;
}

/* ---- ps ------------------------------------------------------------- */

static bool pid_in(pid_t p, const pid_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == p)
			return true;
	return false;
}

/* Run ps on the host with stdout and stderr into one buffer. */
static int run_ps(char **args, char **ret)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_set(errno, "ps: pipe");
	_cleanup_close_ int rd = fds[0];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
	pid_t pid;
	int e = posix_spawnp(&pid, "ps", &fa, NULL, args, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (e)
		return err_set(e, "ps: run ps");
	size_t len;
	int r = read_fd_all(rd, ret, &len);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return err_set(-r, "ps: read the output of ps");
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char *out = *ret;
		out[strcspn(out, "\n")] = '\0';
		r = err_set(0, "ps: ps exited with status %d: %s", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out);
		free(out);
		*ret = NULL;
		return r;
	}
	return 0;
}

static int ps_table(char **ps_args, int n_args, const pid_t *pids, size_t n)
{
	_cleanup_free_ char **args = calloc((size_t)n_args + 3, sizeof *args);
	_cleanup_free_ char *out = NULL;
	if (!args)
		return err_set(ENOMEM, "ps");
	args[0] = "ps";
	for (int i = 0; i < n_args; i++)
		args[i + 1] = ps_args[i];
	if (!n_args)
		args[1] = "-ef";
	int r = run_ps(args, &out);
	if (r < 0)
		return r;
	char *save = NULL, *header = strtok_r(out, "\n", &save);
	int col = -1, k = 0;
	_cleanup_free_ char *hcopy = header ? strdup(header) : NULL;
	for (char *s2 = NULL, *f = hcopy ? strtok_r(hcopy, " \t", &s2) : NULL; f; f = strtok_r(NULL, " \t", &s2), k++)
		if (!strcmp(f, "PID")) {
			col = k;
			break;
		}
	if (col < 0)
		return err_set(0, "ps: no PID column in the output of ps");
	printf("%s\n", header);
	for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p = line;
		for (int i = 0; i < col && *p; i++) {
			p += strspn(p, " \t");
			p += strcspn(p, " \t");
		}
		p += strspn(p, " \t");
		char *end;
		long v = strtol(p, &end, 10);
		if (end != p && (*end == ' ' || *end == '\t' || !*end) && pid_in((pid_t)v, pids, n))
			printf("%s\n", line);
	}
	return 0;
}

int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, 0, 'f' }, { 0, 0, 0, 0 } };
	const char *format = "table";
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+f:", opts, NULL)) != -1) {
		if (c == 'f')
			format = optarg;
		else
			return usage_error("ps", "unknown option");
	}
	if (optind >= argc)
		return usage_error("ps", "usage: ps [--format table|json] ID [ps options]");
	if (strcmp(format, "table") && strcmp(format, "json"))
		return usage_error("ps", "--format: must be table or json, got \"%s\"", format);
	const char *id = argv[optind];
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r = container_pids(g.root, id, &pids, &n);
	if (r < 0)
		return fail_cmd(err_wrap(r, "ps"));
	if (!strcmp(format, "json")) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", (int)pids[i]);
		printf("]\n");
		return 0;
	}
	r = ps_table(argv + optind + 1, argc - optind - 1, pids, n);
	return r < 0 ? fail_cmd(r) : 0;
}
