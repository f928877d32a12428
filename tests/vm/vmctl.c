/* vmctl: drives the VM layer (src/vm) for the integration tests and the
 * benchmark, one library call per command, the way the manager will:
 *
 *   vmctl start DIR --image IMG [--machine M] [--memory SIZE] [--cpus N]
 *               [--accel auto|kvm|tcg] [--state SDIR] [--disk F] [--incoming]
 *               [--throttle BR,BW,IR,IW] [--timeout-ms N] [--no-wait]
 *   vmctl exec DIR [-t] [--size RxC] [--timeout-ms N] -- CMD...
 *   vmctl meminfo|status|usage|pause|resume|kill|throttle-get DIR
 *   vmctl stop DIR [--timeout-ms N]      vmctl wait-exit DIR [--timeout-ms N]
 *   vmctl balloon DIR SIZE               vmctl throttle DIR BR,BW,IR,IW
 *   vmctl migrate-send DIR  (stream on stdout, stats JSON on stderr)
 *   vmctl migrate-receive DIR (stream on stdin)
 *   vmctl probe --state SDIR --image IMG [--timeout-ms N]
 *   vmctl check-disk FILE [--backing B]  vmctl overlay BASE FILE
 *   vmctl argv DIR --image IMG [start options]  (QEMU's command line, one argument per line)
 *
 * DIR is the VM's runtime directory: vm.json, qmp.sock, agent.sock,
 * console.sock, console.log, qemu.log, exit.json, root.qcow2. Results are
 * JSON on stdout; errors "vmctl: ..." on stderr with exit status 1. */
#include "vmctl.h"
#include "vm/agent.h"
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>

struct opts {
	const char *image, *machine, *accel, *state, *disk, *backing;
	uint64_t memory;
	unsigned cpus, rows, cols;
	int timeout_ms;
	bool incoming, no_wait, tty;
	struct vm_throttle throttle;
};

static int fail(int r)
{
	fprintf(stderr, "vmctl: %s\n", err_msg());
	return r < 0 ? 1 : r;
}

static int print_json(json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!t)
		return 1;
	printf("%s\n", t);
	free(t);
	return 0;
}

static int parse_throttle(const char *s, struct vm_throttle *t)
{
	unsigned long long v[4];
	if (sscanf(s, "%llu,%llu,%llu,%llu", &v[0], &v[1], &v[2], &v[3]) != 4)
		return vm_refuse(EINVAL, "throttle \"%s\": want BPS_READ,BPS_WRITE,IOPS_READ,IOPS_WRITE", s);
	*t = (struct vm_throttle){ v[0], v[1], v[2], v[3] };
	return 0;
}

/* "256" (MiB), "256MiB", "1KiB", "1GiB", "1048576B" */
static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	static const struct {
		const char *unit;
		unsigned shift;
	} units[] = { { "", 20 }, { "B", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 } };
	for (size_t i = 0; end != s && !errno && i < ARRAY_SIZE(units); i++)
		if (strcmp(end, units[i].unit) == 0 && v <= (UINT64_MAX >> units[i].shift)) {
			*ret = (uint64_t)v << units[i].shift;
			return 0;
		}
	return vm_refuse(EINVAL, "size \"%s\": want a number of MiB or N{B,KiB,MiB,GiB}", s);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "image", 1, 0, 'i' },  { "machine", 1, 0, 'M' },  { "memory", 1, 0, 'm' },    { "cpus", 1, 0, 'c' },
		{ "accel", 1, 0, 'a' },  { "state", 1, 0, 's' },    { "disk", 1, 0, 'd' },      { "incoming", 0, 0, 'I' },
		{ "throttle", 1, 0, 'T' }, { "timeout-ms", 1, 0, 'w' }, { "no-wait", 0, 0, 'n' }, { "size", 1, 0, 'S' },
		{ "backing", 1, 0, 'b' }, { "tty", 0, 0, 't' },      { 0, 0, 0, 0 },
	};
	*o = (struct opts){ .machine = "microvm", .accel = "tcg", .memory = 256ull << 20, .cpus = 1, .timeout_ms = 60000 };
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "+t", lo, NULL)) != -1) {
		switch (c) {
		case 'i': o->image = optarg; break;
		case 'M': o->machine = optarg; break;
		case 'm': {
			int r = parse_size(optarg, &o->memory);
			if (r < 0)
				return r;
			break;
		}
		case 'c': o->cpus = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'a': o->accel = optarg; break;
		case 's': o->state = optarg; break;
		case 'd': o->disk = optarg; break;
		case 'b': o->backing = optarg; break;
		case 'I': o->incoming = true; break;
		case 'n': o->no_wait = true; break;
		case 't': o->tty = true; break;
		case 'w': o->timeout_ms = atoi(optarg); break;
		case 'S':
			if (sscanf(optarg, "%ux%u", &o->rows, &o->cols) != 2)
				return vm_refuse(EINVAL, "--size %s: want ROWSxCOLS", optarg);
			break;
		case 'T': {
			int r = parse_throttle(optarg, &o->throttle);
			if (r < 0)
				return r;
			break;
		}
		default:
			return vm_refuse(EINVAL, "unknown option");
		}
	}
	return 0;
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "VM directory %s", dir);
	return fd;
}

/* The VM the monitor started in dirfd (vm.json). */
static int open_vm(int dirfd, struct vm **ret)
{
	int fd = openat(dirfd, "vm.json", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "vm.json (no VM started here)");
	json_t *j = json_loadfd(fd, 0, NULL);
	close(fd);
	enum vm_machine m;
	int r = vm_machine_from_name(json_string_value(json_object_get(j, "machine")), &m);
	if (r == 0)
		r = vm_open(dirfd, (pid_t)json_integer_value(json_object_get(j, "pid")),
			    (unsigned long long)json_integer_value(json_object_get(j, "starttime")), m,
			    json_string_value(json_object_get(j, "name")), ret);
	json_decref(j);
	return r;
}

/* The configuration from options; disk defaults to DIR/root.qcow2. */
static int make_config(const char *dir, const struct opts *o, struct vm_image *img, struct vm_config *c, char **disk)
{
	if (!o->image)
		return vm_refuse(EINVAL, "--image is needed");
	int r = vm_image_open(o->image, img);
	if (r < 0)
		return r;
	*c = (struct vm_config){ .name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir, .vcpus = o->cpus,
				 .memory = o->memory, .kernel = img->kernel, .initrd = img->initrd,
				 .throttle = o->throttle, .incoming = o->incoming };
	if ((r = vm_machine_from_name(o->machine, &c->machine)) < 0 || (r = vm_accel_from_name(o->accel, &c->accel)) < 0)
		return r;
	if (c->accel == VM_ACCEL_AUTO) {
		_cleanup_free_ char *why = NULL;
		if ((r = vm_accel_choose(o->state ? o->state : dir, img, -1, &c->accel, &why)) < 0)
			return r;
	}
	_cleanup_free_ char *absdir = realpath(dir, NULL);
	if (o->disk)
		*disk = realpath(o->disk, NULL) ?: strdup(o->disk);
	else if (asprintf(disk, "%s/root.qcow2", absdir ? absdir : dir) < 0)
		*disk = NULL;
	if (!*disk)
		return err_set(ENOMEM, "disk path");
	c->disk = *disk;
	return 0;
}

static int cmd_start(const char *dir, const struct opts *o)
{
	_cleanup_close_ int dirfd = open_dir(dir);
	if (dirfd < 0)
		return fail(dirfd);
	struct vm_image img = { 0 };
	struct vm_config c;
	_cleanup_free_ char *disk = NULL;
	long long t0 = qmp_now_ms();
	int r = make_config(dir, o, &img, &c, &disk);
	if (r == 0 && !o->disk && access(disk, F_OK) != 0)
		r = vm_disk_overlay_create(img.base, disk);
	if (r < 0) {
		vm_image_free(&img);
		return fail(r);
	}
	struct vm_start_opts so = { .dirfd = dirfd, .tap_fd = -1, .check_disk = !o->incoming, /* the source holds it */
				    .backing = o->disk ? o->backing : img.base };
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return fail(err_set(errno, "pipe"));
	pid_t pid = fork();
	if (pid < 0)
		return fail(err_set(errno, "fork"));
	if (pid == 0) {
		close(rep[0]);
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int log = openat(dirfd, "monitor.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		dup2(null, 0), dup2(null, 1), dup2(log >= 0 ? log : null, 2);
		vmctl_monitor(dirfd, &c, &so, rep[1]);
	}
	close(rep[1]);
	char msg[4300] = "";
	ssize_t n = read(rep[0], msg, sizeof msg - 1);
	close(rep[0]);
	msg[n > 0 ? n : 0] = '\0';
	if (strcmp(msg, "OK") != 0) {
		vm_image_free(&img);
		fprintf(stderr, "vmctl: %s\n", msg[0] == 'E' ? msg + 1 : "the monitor died");
		return 1;
	}
	long long started = qmp_now_ms();
	struct vm *v = NULL;
	if ((r = open_vm(dirfd, &v)) < 0) {
		vm_image_free(&img);
		return fail(r);
	}
	if (!o->no_wait && !o->incoming && (r = vm_wait_ready(v, o->timeout_ms)) < 0) {
		int k = r;
		vm_kill(v, NULL);
		vm_free(v);
		vm_image_free(&img);
		return fail(k);
	}
	long long ready = qmp_now_ms();
	json_t *out = json_pack("{s:i, s:s, s:s, s:I, s:I}", "pid", (int)vm_pid(v), "accel", vm_accel_name(c.accel),
				"machine", vm_machine_name(c.machine), "spawn_ms", (json_int_t)(started - t0), "ready_ms",
				(json_int_t)(ready - t0));
	vm_free(v);
	vm_image_free(&img);
	return print_json(out);
}

static int cmd_argv(const char *dir, const struct opts *o)
{
	struct vm_image img = { 0 };
	struct vm_config c;
	_cleanup_free_ char *disk = NULL;
	int r = make_config(dir, o, &img, &c, &disk);
	char **argv = NULL;
	struct vm_fds fds = { .qmp = 3, .agent = 4, .console = 5, .tap = -1 };
	if (r == 0)
		r = vm_qemu_argv(&c, &fds, &argv);
	vm_image_free(&img);
	if (r < 0)
		return fail(r);
	for (size_t i = 0; argv[i]; i++)
		printf("%s\n", argv[i]);
	vm_argv_free(argv);
	return 0;
}

static struct termios saved_tio;
static bool raw_mode;
static void restore_tty(void)
{
	if (raw_mode)
		tcsetattr(0, TCSADRAIN, &saved_tio);
}

static int cmd_exec(int dirfd, const struct opts *o, char **cmd)
{
	if (!cmd[0])
		return fail(vm_refuse(EINVAL, "exec: no command (vmctl exec DIR -- CMD...)"));
	struct agent *a = NULL;
	int r = agent_connect_at(dirfd, "vm", 10000, &a);
	if (r < 0)
		return fail(r);
	struct agent_exec_opts eo = { .argv = (const char *const *)cmd, .tty = o->tty, .rows = (unsigned short)o->rows,
				      .cols = (unsigned short)o->cols, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2,
				      .winch_fd = -1, .timeout_ms = o->timeout_ms };
	if (o->tty && isatty(0) && tcgetattr(0, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		raw_mode = tcsetattr(0, TCSADRAIN, &raw) == 0;
		atexit(restore_tty);
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGWINCH);
		sigprocmask(SIG_BLOCK, &m, NULL);
		eo.winch_fd = signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK);
	}
	struct agent_status st;
	r = agent_exec(a, &eo, &st);
	agent_close(a);
	restore_tty();
	raw_mode = false;
	if (r < 0)
		return fail(r) == 1 && r == -ENOENT ? 127 : 1;
	return st.signal ? 128 + st.signal : st.code;
}

static int cmd_meminfo(int dirfd)
{
	struct agent *a = NULL;
	struct agent_meminfo mi;
	int r = agent_connect_at(dirfd, "vm", 10000, &a);
	if (r == 0)
		r = agent_meminfo(a, 10000, &mi);
	agent_close(a);
	if (r < 0)
		return fail(r);
	return print_json(json_pack("{s:I, s:I, s:I}", "total_kib", (json_int_t)mi.total_kib, "free_kib",
				    (json_int_t)mi.free_kib, "available_kib", (json_int_t)mi.available_kib));
}

/* The monitor's record of QEMU's exit. */
static int wait_exit_json(int dirfd, int timeout_ms)
{
	long long deadline = qmp_now_ms() + timeout_ms;
	for (;;) {
		int fd = openat(dirfd, "exit.json", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			json_t *j = json_loadfd(fd, 0, NULL);
			close(fd);
			if (j)
				return print_json(j);
		}
		if (qmp_now_ms() > deadline)
			return fail(vm_refuse(ETIMEDOUT, "no exit.json after %d ms", timeout_ms));
		usleep(20000);
	}
}

static int cmd_migrate(int dirfd, bool send, const struct opts *o)
{
	struct vm *v = NULL;
	int r = open_vm(dirfd, &v);
	if (r < 0)
		return fail(r);
	if (send) {
		struct vm_migration_stats st;
		r = vm_migrate_send(v, 1, o->timeout_ms, &st);
		close(1);
		if (r == 0) {
			fprintf(stderr, "{\"total_ms\":%" PRIu64 ",\"downtime_ms\":%" PRIu64 ",\"setup_ms\":%" PRIu64
					",\"transferred_bytes\":%" PRIu64 "}\n",
				st.total_ms, st.downtime_ms, st.setup_ms, st.transferred_bytes);
			(void)qmp_execute(vm_qmp(v, 5000), "quit", NULL, 5000, NULL); /* the source's part is over */
		}
	} else {
		r = vm_migrate_incoming(v, 0);
		if (r == 0)
			r = vm_migrate_wait(v, o->timeout_ms);
	}
	vm_free(v);
	return r < 0 ? fail(r) : 0;
}

static int cmd_vm(const char *cmd, int dirfd, const struct opts *o, char **rest)
{
	struct vm *v = NULL;
	int r = open_vm(dirfd, &v);
	if (r < 0)
		return fail(r);
	json_t *out = NULL;
	if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "kill") == 0) {
		struct vm_exit e;
		r = strcmp(cmd, "stop") == 0 ? vm_stop(v, o->timeout_ms, &e) : vm_kill(v, &e);
		vm_free(v);
		return r < 0 ? fail(r) : wait_exit_json(dirfd, 5000);
	} else if (strcmp(cmd, "pause") == 0) {
		r = vm_pause(v);
	} else if (strcmp(cmd, "resume") == 0) {
		r = vm_resume(v);
	} else if (strcmp(cmd, "status") == 0) {
		char st[32];
		if ((r = vm_status(v, st, sizeof st)) == 0)
			out = json_pack("{s:s}", "status", st);
	} else if (strcmp(cmd, "balloon") == 0) {
		uint64_t b = 0;
		r = rest[0] ? parse_size(rest[0], &b) : vm_refuse(EINVAL, "balloon DIR SIZE");
		if (r == 0)
			r = vm_set_memory(v, b);
	} else if (strcmp(cmd, "throttle") == 0) {
		struct vm_throttle t;
		r = rest[0] ? parse_throttle(rest[0], &t) : vm_refuse(EINVAL, "throttle DIR BR,BW,IR,IW");
		if (r == 0)
			r = vm_set_throttle(v, &t);
	} else if (strcmp(cmd, "throttle-get") == 0) {
		struct vm_throttle t;
		if ((r = vm_get_throttle(v, &t)) == 0)
			out = json_pack("{s:I, s:I, s:I, s:I}", "bps_rd", (json_int_t)t.bps_read, "bps_wr", (json_int_t)t.bps_write,
					"iops_rd", (json_int_t)t.iops_read, "iops_wr", (json_int_t)t.iops_write);
	} else if (strcmp(cmd, "usage") == 0) {
		struct vm_usage u;
		char disk[64];
		snprintf(disk, sizeof disk, "/proc/self/fd/%d/root.qcow2", dirfd);
		if ((r = vm_usage(v, o->disk ? o->disk : disk, &u)) == 0)
			out = json_pack("{s:I, s:I, s:I}", "disk_bytes", (json_int_t)u.disk_bytes, "balloon_bytes",
					(json_int_t)u.balloon_bytes, "rss_bytes", (json_int_t)u.rss_bytes);
	} else {
		r = vm_refuse(EINVAL, "unknown command %s", cmd);
	}
	vm_free(v);
	if (r < 0)
		return fail(r);
	return out ? print_json(out) : 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 3) {
		fprintf(stderr, "usage: vmctl COMMAND DIR|FILE [options] (see tests/vm/vmctl.c)\n");
		return 2;
	}
	const char *cmd = argv[1];
	struct opts o;
	/* The first argument after the command is the directory or file;
	 * options may come before or after it. */
	const char *target = argv[2];
	char **args = argv;
	int nargs = argc;
	if (target[0] != '-') {
		args = malloc(sizeof *args * (size_t)argc);
		args[0] = argv[0], args[1] = argv[1];
		for (int i = 3; i < argc; i++)
			args[i - 1] = argv[i];
		nargs = argc - 1;
		args[nargs] = NULL;
	}
	int r = parse_opts(nargs, args, &o);
	if (r < 0)
		return fail(r);
	char **rest = args + optind;
	if (target[0] == '-') {
		target = rest[0];
		rest += rest[0] ? 1 : 0;
	}
	if (!target)
		return fail(vm_refuse(EINVAL, "%s: no directory or file", cmd));
	if (strcmp(cmd, "start") == 0)
		return cmd_start(target, &o);
	if (strcmp(cmd, "argv") == 0)
		return cmd_argv(target, &o);
	if (strcmp(cmd, "check-disk") == 0) {
		_cleanup_free_ char *abs = realpath(target, NULL);
		r = vm_disk_check(abs ? abs : target, o.backing);
		return r < 0 ? fail(r) : 0;
	}
	if (strcmp(cmd, "overlay") == 0) {
		_cleanup_free_ char *abs = NULL;
		char cwd[4096];
		if (rest[0] && rest[0][0] != '/' && getcwd(cwd, sizeof cwd) && asprintf(&abs, "%s/%s", cwd, rest[0]) < 0)
			abs = NULL;
		r = rest[0] ? vm_disk_overlay_create(target, abs ? abs : rest[0]) : vm_refuse(EINVAL, "overlay BASE FILE");
		return r < 0 ? fail(r) : 0;
	}
	if (strcmp(cmd, "probe") == 0) {
		struct vm_image img;
		enum vm_accel a;
		char *why = NULL;
		if ((r = vm_image_open(o.image ? o.image : "", &img)) < 0 ||
		    (r = vm_accel_choose(target, &img, o.timeout_ms == 60000 ? -1 : o.timeout_ms, &a, &why)) < 0)
			return fail(r);
		vm_image_free(&img);
		r = print_json(json_pack("{s:s, s:s}", "accel", vm_accel_name(a), "why", why ? why : ""));
		free(why);
		return r;
	}
	_cleanup_close_ int dirfd = open_dir(target);
	if (dirfd < 0)
		return fail(dirfd);
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(dirfd, &o, rest);
	if (strcmp(cmd, "meminfo") == 0)
		return cmd_meminfo(dirfd);
	if (strcmp(cmd, "wait-exit") == 0)
		return wait_exit_json(dirfd, o.timeout_ms);
	if (strcmp(cmd, "migrate-send") == 0 || strcmp(cmd, "migrate-receive") == 0)
		return cmd_migrate(dirfd, strcmp(cmd, "migrate-send") == 0, &o);
	return cmd_vm(cmd, dirfd, &o, rest);
}
