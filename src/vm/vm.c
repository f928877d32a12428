/* A running VM: start QEMU (as our child) or open one another process
 * started, wait for its agent, power it off, kill it, pause and resume it,
 * change its balloon and disk throttling, read its usage. See vm.h. */
#include "vm/vm.h"
#include "vm/agent.h"
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define QMP_TIMEOUT_MS 10000

struct vm {
	pid_t pid;
	int pidfd;
	bool child, exited;
	int dirfd;
	enum vm_machine machine;
	char *name;
	struct qmp *qmp;
	struct vm_exit exit;
	enum vm_exit_kind asked; /* what a non-child's exit is taken for */
};

static const char *const exit_names[] = {
	[VM_EXIT_POWEROFF] = "poweroff", [VM_EXIT_CRASH] = "crash", [VM_EXIT_KILLED] = "killed", [VM_EXIT_FAILED] = "failed"
};

const char *vm_exit_kind_name(enum vm_exit_kind k) { return (unsigned)k < ARRAY_SIZE(exit_names) ? exit_names[k] : "?"; }

enum vm_exit_kind vm_exit_classify(int status)
{
	if (WIFSIGNALED(status))
		return VM_EXIT_KILLED;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return VM_EXIT_POWEROFF;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return VM_EXIT_CRASH;
	return VM_EXIT_FAILED;
}

pid_t vm_pid(const struct vm *v) { return v->pid; }
int vm_pidfd(const struct vm *v) { return v->pidfd; }

static struct vm *vm_new(int dirfd, enum vm_machine machine, const char *name)
{
	struct vm *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->pidfd = -1;
	v->machine = machine;
	v->name = strdup(name ? name : "vm");
	v->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	v->asked = VM_EXIT_POWEROFF;
	if (!v->name || v->dirfd < 0) {
		vm_free(v);
		return NULL;
	}
	return v;
}

void vm_free(struct vm *v)
{
	if (!v)
		return;
	qmp_close(v->qmp);
	if (v->pidfd >= 0)
		close(v->pidfd);
	if (v->dirfd >= 0)
		close(v->dirfd);
	free(v->name);
	free(v);
}

/* Reap (our child) or notice (another's) QEMU's exit; 1 when it exited. */
static int check_exit(struct vm *v, int timeout_ms)
{
	if (v->exited)
		return 1;
	int r = vm_poll1(v->pidfd, POLLIN, timeout_ms);
	if (r <= 0)
		return r;
	v->exited = true;
	v->exit.status = -1;
	v->exit.kind = v->asked;
	if (v->child) {
		siginfo_t si = { 0 };
		if (waitid(P_PIDFD, (id_t)v->pidfd, &si, WEXITED) == 0) {
			v->exit.status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : si.si_status & 0x7f;
			v->exit.kind = vm_exit_classify(v->exit.status);
		}
	}
	return 1;
}

/* "QEMU exited with status 1: <its last line>" */
static int exited_error(struct vm *v, int errnum, const char *during)
{
	_cleanup_free_ char *log = NULL;
	int fd = openat(v->dirfd, "qemu.log", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		log = calloc(1, 4097);
		off_t size = lseek(fd, 0, SEEK_END);
		if (log && pread(fd, log, 4096, size > 4096 ? size - 4096 : 0) < 0)
			log[0] = '\0';
		close(fd);
	}
	const char *line = vm_last_line(log);
	char how[64];
	if (v->exit.status < 0)
		snprintf(how, sizeof how, "exited");
	else if (WIFSIGNALED(v->exit.status))
		snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(v->exit.status));
	else
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(v->exit.status));
	return vm_refuse(errnum, "VM %s: QEMU %s %s%s%s", v->name, how, during, *line ? ": " : "", line);
}

static int qmp_get(struct vm *v, int timeout_ms, struct qmp **ret)
{
	if (!v->qmp) {
		if (v->exited)
			return exited_error(v, ECHILD, "");
		int fd, r = vm_socket_connect(v->dirfd, VM_QMP_SOCKET, &fd);
		if (r < 0)
			return err_wrap(r, "VM %s: QMP", v->name);
		if ((r = qmp_open_fd(fd, v->name, timeout_ms, &v->qmp)) < 0)
			return check_exit(v, 0) == 1 ? exited_error(v, ECHILD, "") : r;
	}
	*ret = v->qmp;
	return 0;
}

struct qmp *vm_qmp(struct vm *v, int timeout_ms)
{
	struct qmp *q = NULL;
	return qmp_get(v, timeout_ms, &q) < 0 ? NULL : q;
}

void vm_qmp_release(struct vm *v)
{
	qmp_close(v->qmp);
	v->qmp = NULL;
}

/* Run a QMP command; a broken connection is dropped (the next call reconnects). */
static int qmp_do(struct vm *v, const char *cmd, json_t *args, json_t **ret)
{
	struct qmp *q;
	int r = qmp_get(v, QMP_TIMEOUT_MS, &q);
	if (r < 0) {
		json_decref(args);
		return r;
	}
	r = qmp_execute(q, cmd, args, QMP_TIMEOUT_MS, ret);
	if (r == -ECONNRESET || r == -EPROTO || r == -ETIMEDOUT)
		vm_qmp_release(v);
	return r;
}

int vm_start(const struct vm_config *c, const struct vm_start_opts *o, int *console_out, struct vm **ret)
{
	const char *n = c->name ? c->name : "vm";
	int r = vm_config_check(c);
	if (r < 0)
		return r;
	if (o->check_disk && (r = vm_disk_check(c->disk, o->backing)) < 0)
		return err_wrap(r, "VM %s", n);
	_cleanup_close_ int qmp_l = -1, agent_l = -1, logfd = -1;
	int con[2] = { -1, -1 };
	if ((r = vm_sockets_create(o->dirfd, &qmp_l, &agent_l)) < 0)
		return err_wrap(r, "VM %s", n);
	if (console_out && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0) {
		r = err_set(errno, "VM %s: console socketpair", n);
		goto fail;
	}
	struct vm_fds fds = { .qmp = 3, .agent = 4, .console = con[1] >= 0 ? 5 : -1, .tap = o->tap_fd >= 0 ? 6 : -1 };
	int from[4] = { qmp_l, agent_l, con[1], o->tap_fd }, to[4] = { 3, 4, 5, 6 }, nfds = 2;
	if (con[1] >= 0)
		nfds = 3;
	if (o->tap_fd >= 0) {
		from[nfds] = o->tap_fd;
		to[nfds] = 6;
		nfds++;
	}
	char **argv = NULL;
	if ((r = vm_qemu_argv(c, &fds, &argv)) < 0)
		goto fail;
	logfd = openat(o->dirfd, "qemu.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (logfd < 0) {
		r = err_set(errno, "VM %s: qemu.log", n);
		vm_argv_free(argv);
		goto fail;
	}
	struct vm *v = vm_new(o->dirfd, c->machine, n);
	if (!v) {
		r = err_set(ENOMEM, "VM %s", n);
		vm_argv_free(argv);
		goto fail;
	}
	r = vm_spawn(argv, from, to, nfds, logfd, &v->pid, &v->pidfd);
	vm_argv_free(argv);
	if (r < 0) {
		vm_free(v);
		r = err_wrap(r, "VM %s", n);
		goto fail;
	}
	v->child = true;
	if (con[1] >= 0)
		close(con[1]);
	con[1] = -1;
	/* QEMU refusing its command line (a disk it cannot open, a device it
	 * does not know) exits at once: say why, from its log. */
	struct qmp *q;
	if ((r = qmp_get(v, QMP_TIMEOUT_MS, &q)) < 0) {
		if (check_exit(v, 2000) == 1)
			r = exited_error(v, EINVAL, "at start");
		else
			vm_kill(v, NULL);
		vm_free(v);
		goto fail;
	}
	if (console_out)
		*console_out = con[0];
	*ret = v;
	return 0;
fail:
	if (con[0] >= 0)
		close(con[0]);
	if (con[1] >= 0)
		close(con[1]);
	(void)unlinkat(o->dirfd, VM_QMP_SOCKET, 0);
	(void)unlinkat(o->dirfd, VM_AGENT_SOCKET, 0);
	return r;
}

int vm_open(int dirfd, pid_t pid, unsigned long long starttime, enum vm_machine machine, const char *name, struct vm **ret)
{
	const char *n = name ? name : "vm";
	struct vm *v = vm_new(dirfd, machine, n);
	if (!v)
		return err_set(ENOMEM, "VM %s", n);
	v->pid = pid;
	v->pidfd = vm_pidfd_open(pid);
	if (v->pidfd < 0) {
		int e = errno;
		vm_free(v);
		return err_set(e == ESRCH ? ESRCH : e, "VM %s: QEMU process %d", n, (int)pid);
	}
	/* The pidfd pins the process; its start time tells it from a reused pid. */
	if (starttime && vm_proc_starttime(pid) != starttime) {
		vm_free(v);
		return vm_refuse(ESRCH, "VM %s: QEMU process %d is gone (the pid belongs to another process)", n, (int)pid);
	}
	*ret = v;
	return 0;
}

int vm_wait_ready(struct vm *v, int timeout_ms)
{
	struct agent *a = NULL;
	int r = agent_connect_at(v->dirfd, v->name, timeout_ms, &a);
	if (r == 0) {
		agent_close(a);
		return 0;
	}
	if (check_exit(v, 200) == 1)
		return exited_error(v, ECHILD, "before the guest was up");
	return err_wrap(r, "VM %s: waiting for the guest agent", v->name);
}

int vm_wait_exit(struct vm *v, int timeout_ms, struct vm_exit *ret)
{
	int r = check_exit(v, timeout_ms);
	if (r < 0)
		return err_set(-r, "VM %s: waiting for QEMU", v->name);
	if (r == 0)
		return vm_refuse(ETIMEDOUT, "VM %s: QEMU still runs after %d ms", v->name, timeout_ms);
	vm_qmp_release(v);
	if (ret)
		*ret = v->exit;
	return 0;
}

int vm_kill(struct vm *v, struct vm_exit *ret)
{
	if (check_exit(v, 0) == 0) {
		v->asked = VM_EXIT_KILLED;
		if (vm_pidfd_kill(v->pidfd, SIGKILL) < 0 && errno != ESRCH)
			return err_set(errno, "VM %s: kill QEMU", v->name);
	}
	return vm_wait_exit(v, 5000, ret);
}

int vm_status(struct vm *v, char *buf, size_t len)
{
	json_t *st = NULL;
	int r = qmp_do(v, "query-status", NULL, &st);
	if (r < 0)
		return r;
	const char *s = json_string_value(json_object_get(st, "status"));
	snprintf(buf, len, "%s", s ? s : "unknown");
	json_decref(st);
	return 0;
}

int vm_stop(struct vm *v, int timeout_ms, struct vm_exit *ret)
{
	if (check_exit(v, 0) == 1)
		return vm_wait_exit(v, 0, ret);
	char st[32] = "";
	if (vm_status(v, st, sizeof st) == 0 && strcmp(st, "paused") == 0)
		(void)qmp_do(v, "cont", NULL, NULL); /* a paused guest cannot shut down */
	bool asked = false;
	if (v->machine == VM_MACHINE_MICROVM) {
		/* The agent first: it works before ACPI is up and whatever init the
		 * guest runs. Busy with another client, or absent: ACPI. */
		struct agent *a = NULL;
		if (agent_connect_at(v->dirfd, v->name, 2000, &a) == 0 && agent_poweroff(a, 2000) == 0)
			asked = true;
		agent_close(a);
	}
	if (!asked)
		(void)qmp_do(v, "system_powerdown", NULL, NULL);
	v->asked = VM_EXIT_POWEROFF;
	if (vm_wait_exit(v, timeout_ms, ret) == 0)
		return 0;
	/* Not down in time: QEMU quits at once (its disks are flushed). */
	v->asked = VM_EXIT_KILLED;
	(void)qmp_do(v, "quit", NULL, NULL);
	if (vm_wait_exit(v, 2000, ret) == 0)
		return 0;
	return vm_kill(v, ret);
}

int vm_pause(struct vm *v) { return qmp_do(v, "stop", NULL, NULL); }
int vm_resume(struct vm *v) { return qmp_do(v, "cont", NULL, NULL); }

int vm_set_memory(struct vm *v, uint64_t bytes)
{
	json_t *sum = NULL;
	int r = qmp_do(v, "query-memory-size-summary", NULL, &sum);
	if (r < 0)
		return r;
	uint64_t base = (uint64_t)json_integer_value(json_object_get(sum, "base-memory"));
	json_decref(sum);
	if (bytes < VM_MIN_MEMORY)
		return vm_refuse(EINVAL, "VM %s: memory %" PRIu64 " MiB is below the minimum of %llu MiB", v->name, bytes >> 20,
			       VM_MIN_MEMORY >> 20);
	if (base && bytes > base)
		return vm_refuse(EINVAL, "VM %s: memory %" PRIu64 " MiB is more than the %" PRIu64 " MiB it was started with (the new size applies at the next start)",
			       v->name, bytes >> 20, base >> 20);
	return qmp_do(v, "balloon", json_pack("{s:I}", "value", (json_int_t)bytes), NULL);
}

int vm_set_throttle(struct vm *v, const struct vm_throttle *t)
{
	const uint64_t lim = (uint64_t)1 << 50; /* QEMU's THROTTLE_VALUE_MAX is 1e15 */
	if (t->bps_read > lim || t->bps_write > lim || t->iops_read > lim || t->iops_write > lim)
		return vm_refuse(EINVAL, "VM %s: disk throttle above %" PRIu64, v->name, lim);
	json_t *args = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "id", "vda", "bps", (json_int_t)0, "bps_rd",
				 (json_int_t)t->bps_read, "bps_wr", (json_int_t)t->bps_write, "iops", (json_int_t)0, "iops_rd",
				 (json_int_t)t->iops_read, "iops_wr", (json_int_t)t->iops_write);
	return qmp_do(v, "block_set_io_throttle", args, NULL);
}

int vm_get_throttle(struct vm *v, struct vm_throttle *ret)
{
	json_t *blocks = NULL;
	int r = qmp_do(v, "query-block", NULL, &blocks);
	if (r < 0)
		return r;
	size_t i;
	json_t *b;
	r = vm_refuse(ENODEV, "VM %s: query-block: no root disk", v->name);
	json_array_foreach(blocks, i, b)
	{
		const char *dev = json_string_value(json_object_get(b, "device"));
		json_t *in = json_object_get(b, "inserted");
		if (!dev || strcmp(dev, "root") != 0 || !in)
			continue;
		ret->bps_read = (uint64_t)json_integer_value(json_object_get(in, "bps_rd"));
		ret->bps_write = (uint64_t)json_integer_value(json_object_get(in, "bps_wr"));
		ret->iops_read = (uint64_t)json_integer_value(json_object_get(in, "iops_rd"));
		ret->iops_write = (uint64_t)json_integer_value(json_object_get(in, "iops_wr"));
		r = 0;
	}
	json_decref(blocks);
	return r;
}

static uint64_t proc_rss(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			return strtoull(line + 6, NULL, 10) * 1024;
	return 0;
}

int vm_usage(struct vm *v, const char *disk, struct vm_usage *ret)
{
	struct vm_usage u = { 0 };
	struct stat st;
	if (disk && stat(disk, &st) == 0)
		u.disk_bytes = (uint64_t)st.st_blocks * 512;
	json_t *b = NULL;
	if (qmp_do(v, "query-balloon", NULL, &b) == 0)
		u.balloon_bytes = (uint64_t)json_integer_value(json_object_get(b, "actual"));
	json_decref(b);
	u.rss_bytes = proc_rss(v->pid);
	*ret = u;
	return 0;
}
