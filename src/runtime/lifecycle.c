/* start, kill and delete of a created or running container. */
#include "container.h"
#include "internal.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "sandbox/cgroup.h"
#include "sandbox/hooks.h"
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/nsfs.h>
#include <linux/sched.h>

oci_spec *runtime_config_of(const container_state *st)
{
	oci_spec *s = NULL;
	if (st->config_copy && spec_parse(st->config_copy, strlen(st->config_copy), "config.json", &s) < 0)
		s = NULL;
	return s;
}

static int delete_locked(const char *root, int dfd, const char *id, bool force);

int container_start(const char *root, const char *id)
{
	_cleanup_close_ int dfd = runtime_open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	if (flock(dfd, LOCK_EX) < 0)
		return err_set(errno, "lock container \"%s\"", id);
	container_state st;
	int r = runtime_load_at(dfd, id, &st, true);
	if (r < 0)
		return r;
	if (st.status != ST_CREATED) {
		r = err_set(0, "container \"%s\" is %s, not created: cannot start", id, container_status_names[st.status]);
		container_state_clear(&st);
		return r;
	}
	oci_spec *s = runtime_config_of(&st);
	if (s && s->hooks[HOOK_PRESTART].n) {
		/* runtime-tools checks the old timing: prestart runs at start,
		 * with the container "created", before the process. A failure
		 * stops the container and deletes it (lifecycle step 9). */
		_cleanup_free_ char *js = state_json_for_hooks(id, "created", st.pid, st.bundle, s);
		if ((r = hooks_run(s, HOOK_PRESTART, js, false)) < 0) {
			char msg[2048];
			snprintf(msg, sizeof msg, "%s", err_msg());
			spec_free(s);
			container_state_clear(&st);
			(void)delete_locked(root, dfd, id, true);
			return err_set(0, "%s", msg);
		}
	}
	/* Opened before the init is released: its end closes when it execs
	 * the container process, or carries the error that stopped it. */
	_cleanup_close_ int status = openat(dfd, STATUS_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	_cleanup_close_ int fifo = openat(dfd, FIFO_FILE, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fifo < 0) {
		r = err_set(errno, "container \"%s\": open exec fifo", id);
		spec_free(s);
		container_state_clear(&st);
		return r;
	}
	if (write(fifo, "0", 1) != 1) {
		r = err_set(errno, "container \"%s\": write exec fifo", id);
		spec_free(s);
		container_state_clear(&st);
		return r;
	}
	(void)unlinkat(dfd, FIFO_FILE, 0);
	if (status >= 0) {
		char msg[2048];
		ssize_t n = 0, k;
		(void)fcntl(status, F_SETFL, 0);
		while (n < (ssize_t)sizeof msg - 1 && (k = read(status, msg + n, sizeof msg - 1 - (size_t)n)) != 0) {
			if (k < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			n += k;
		}
		(void)unlinkat(dfd, STATUS_FIFO, 0);
		if (n > 0) {
			msg[n] = '\0';
			r = err_set(0, "container \"%s\": %s", id, msg);
			spec_free(s);
			container_state_clear(&st);
			return r;
		}
	}
	if (s && s->hooks[HOOK_POSTSTART].n) {
		/* The spec: failed poststart hooks are warnings, the container stays. */
		_cleanup_free_ char *js = state_json_for_hooks(id, "running", st.pid, st.bundle, s);
		(void)hooks_run(s, HOOK_POSTSTART, js, true);
	}
	spec_free(s);
	container_state_clear(&st);
	return r;
}

static int signal_init(const container_state *st, int sig)
{
	int pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
	if (pidfd < 0)
		return err_set(errno, "container \"%s\" is not running", st->id);
	/* The pid might have been reused between load and pidfd_open. */
	if (runtime_proc_starttime(st->pid) != st->starttime) {
		close(pidfd);
		return err_set(ESRCH, "container \"%s\" is not running", st->id);
	}
	int r = (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	int e = errno;
	close(pidfd);
	return r < 0 ? err_set(e, "signal container \"%s\"", st->id) : 0;
}

/* PID 1 of a pid namespace never gets a signal it has no handler for: the
 * kernel drops it. Right after `start` the container's shell may not have
 * installed its trap yet, and a signal sent then would be lost for good; one
 * sent between the trap and the command it guards is handled before the
 * command starts waiting. So during the first second after start (when
 * `start` removed the fifos, which set the state directory's mtime), a
 * signal for a pid-namespace init waits up to 200 ms for the init to settle:
 * a handler for it installed (or ignored) and the process blocked. */
static void wait_for_settled_init(const char *root, const container_state *st, int sig)
{
	if (sig == 0 || sig == SIGKILL || sig == SIGSTOP || st->status != ST_RUNNING)
		return;
	char path[PATH_MAX];
	struct stat sb;
	struct timespec now;
	snprintf(path, sizeof path, "%s/%s", root, st->id);
	if (stat(path, &sb) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0 || now.tv_sec - sb.st_mtim.tv_sec > 1)
		return;
	snprintf(path, sizeof path, "/proc/%d/status", (int)st->pid);
	for (int i = 0; i < 200; i++) {
		_cleanup_free_ char *text = NULL;
		if (read_file_at(AT_FDCWD, path, &text, NULL) < 0)
			break;
		const char *nspid = strstr(text, "\nNSpid:"), *cgt = strstr(text, "\nSigCgt:"),
			   *ign = strstr(text, "\nSigIgn:"), *state = strstr(text, "\nState:");
		if (!nspid || !cgt || !ign || !state)
			break;
		const char *eol = strchrnul(nspid + 1, '\n');
		if (eol - nspid < 3 || eol[-1] != '1' || (eol[-2] != ' ' && eol[-2] != '\t'))
			break; /* not the init of its own pid namespace: nothing is dropped */
		unsigned long long caught = strtoull(cgt + 8, NULL, 16), ignored = strtoull(ign + 8, NULL, 16);
		char st_char = state[8] == '\t' || state[8] == ' ' ? state[9] : state[8];
		bool handled = (caught | ignored) & (1ULL << (sig - 1));
		if (handled && (st_char == 'S' || st_char == 'D' || st_char == 'T'))
			break;
		usleep(1000);
	}
	err_clear();
}

int container_kill(const char *root, const char *id, int sig, bool all)
{
	container_state st;
	int r = container_load(root, id, &st);
	if (r < 0)
		return r;
	if (!all)
		wait_for_settled_init(root, &st, sig);
	if (st.status == ST_STOPPED && !all) {
		r = err_set(0, "container \"%s\" is not running", id);
	} else if (all && st.cgroup[0]) {
		cgroup *cg = NULL;
		if ((r = cgroup_open(st.cgroup, &cg)) == 0) {
			r = cgroup_kill_all(cg, sig);
			if (sig == SIGKILL || sig == SIGTERM)
				(void)cgroup_freeze(cg, false);
			cgroup_free(cg);
		}
	} else {
		r = signal_init(&st, sig);
	}
	container_state_clear(&st);
	return r;
}

static void wait_gone(pid_t pid, unsigned long long starttime)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		if (runtime_proc_starttime(pid) == starttime) {
			struct pollfd p = { pidfd, POLLIN, 0 };
			(void)poll(&p, 1, 10000);
		}
		close(pidfd);
	}
}

/* Mounts a container without its own mount namespace left in the host's:
 * everything below its rootfs, deepest first. */
static void unmount_beneath(const char *rootfs)
{
	if (!rootfs || !rootfs[0] || !strcmp(rootfs, "/"))
		return;
	char *text = NULL;
	if (read_file_at(AT_FDCWD, "/proc/self/mountinfo", &text, NULL) < 0) {
		err_clear();
		return;
	}
	size_t len = strlen(rootfs), n = 0, cap = 0;
	char **v = NULL;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char mp[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		if (strncmp(mp, rootfs, len) || (mp[len] != '/' && mp[len] != '\0'))
			continue;
		if (n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = strdup(mp);
	}
	free(text);
	while (n > 0) {
		char *mp = v[--n];
		if (mp) {
			(void)umount2(mp, MNT_DETACH); /* best effort */
			free(mp);
		}
	}
	free(v);
}

static int delete_locked(const char *root, int dfd, const char *id, bool force)
{
	container_state st;
	int r = runtime_load_at(dfd, id, &st, true);
	if (r < 0)
		return r;
	if (st.status != ST_STOPPED && !force) {
		r = err_set(0, "container \"%s\" is %s: stop it first or use --force", id, container_status_names[st.status]);
		container_state_clear(&st);
		return r;
	}
	cgroup *cg = NULL;
	if (st.cgroup[0] && cgroup_open(st.cgroup, &cg) < 0)
		cg = NULL;
	if (st.status != ST_STOPPED) {
		(void)signal_init(&st, SIGKILL);
		if (cg)
			(void)cgroup_freeze(cg, false);
		wait_gone(st.pid, st.starttime);
	}
	if (cg) {
		for (int i = 0; i < 400 && !cgroup_is_empty(cg); i++) {
			cgroup_kill_all(cg, SIGKILL);
			usleep(5000);
		}
		r = cgroup_destroy(cg);
		cgroup_free(cg);
		if (r < 0) {
			container_state_clear(&st);
			return err_wrap(r, "delete container \"%s\"", id);
		}
	}
	oci_spec *s = runtime_config_of(&st);
	if (s && !s->linux.ns[NS_MOUNT].present)
		unmount_beneath(st.rootfs);
	if (s && s->hooks[HOOK_POSTSTOP].n) {
		_cleanup_free_ char *js = state_json_for_hooks(id, "stopped", 0, st.bundle, s);
		(void)hooks_run(s, HOOK_POSTSTOP, js, true);
	}
	spec_free(s);
	container_state_clear(&st);
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || rm_rf_at(rootfd, id) < 0)
		return err_set(errno, "remove state of \"%s\"", id);
	err_clear();
	return 0;
}

int container_delete(const char *root, const char *id, bool force)
{
	_cleanup_close_ int dfd = runtime_open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	if (flock(dfd, LOCK_EX) < 0)
		return err_set(errno, "lock container \"%s\"", id);
	return delete_locked(root, dfd, id, force);
}
