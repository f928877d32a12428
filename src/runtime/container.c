/* The OCI container lifecycle on the runtime side: state directory, create
 * (clone + handshake with the init), start, state, kill, delete, list. */
#include "container.h"
#include "internal.h"
#include "sync.h"
#include "sandbox/cgroup.h"
#include "sandbox/hooks.h"
#include "sandbox/seccomp.h"
#include "sandbox/selfexe.h"
#include "sandbox/userns.h"
#include "util/err.h"
#include "util/log.h"
#include "util/cleanup.h"
#include "util/fs.h"
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

const char *const container_status_names[] = { "creating", "created", "running", "paused", "stopped" };

#define STATE_FILE "state.json"
#define FIFO_FILE "exec.fifo"
#define STATUS_FIFO "status.fifo"
#define CONFIG_COPY "config.json"
#define CONFIG_STAGED ".config.json.staged"

/* ---- state file ---------------------------------------------------- */

static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Field 22 (starttime); p points at the end of field 2. */
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static json_t *annotations_obj(const oci_spec *s)
{
	json_t *a = json_object();
	for (size_t i = 0; s && i < s->n_annotations; i++)
		json_object_set_new(a, s->annotations[i].key, json_string(s->annotations[i].value));
	return a;
}

char *state_json_for_hooks(const char *id, const char *status, int pid, const char *bundle, const oci_spec *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:o}", "ociVersion", ISOLA_OCI_VERSION, "id", id,
			      "status", status, "pid", pid, "bundle", bundle, "annotations", annotations_obj(s));
	char *out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

static int write_state(int dirfd, const char *id, const char *status, pid_t pid, unsigned long long starttime,
		       const char *bundle, const char *rootfs, const char *created, const char *cgpath,
		       const oci_spec *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:o}",
			      "ociVersion", ISOLA_OCI_VERSION, "id", id, "status", status, "pid", (int)pid,
			      "starttime", (json_int_t)starttime, "bundle", bundle, "rootfs", rootfs,
			      "created", created, "owner", "", "cgroup", cgpath ? cgpath : "",
			      "annotations", annotations_obj(s));
	if (!o)
		return err_set(ENOMEM, "build state");
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return err_set(ENOMEM, "build state");
	return write_file_atomic_at(dirfd, STATE_FILE, text, strlen(text), 0600);
}

static int valid_id(const char *id)
{
	if (!id || !*id)
		return err_set(0, "container id must not be empty");
	if (strlen(id) > 200 || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
		return err_set(0, "invalid container id \"%s\"", id);
	return 0;
}

static int open_state_dir(const char *root, const char *id)
{
	int r = valid_id(id);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root, id);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? err_set(ENOENT, "container \"%s\" does not exist", id)
				       : err_set(errno, "open state directory '%s'", path);
	return fd;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static int load_at(int dirfd, const char *id, container_state *st, bool with_config)
{
	memset(st, 0, sizeof *st);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file_at(dirfd, STATE_FILE, &text, &len);
	if (r < 0) {
		/* A create killed before its first state write: only the directory. */
		st->id = strdup(id);
		st->status = ST_STOPPED;
		st->bundle = strdup("");
		st->rootfs = strdup("");
		st->created = strdup("");
		st->owner = strdup("");
		st->cgroup = strdup("");
		st->annotations_json = strdup("{}");
		return r == -ENOENT ? 0 : r;
	}
	json_error_t je;
	json_t *o = json_loadb(text, len, 0, &je);
	if (!o)
		return err_set(0, "state of \"%s\" is corrupt: %s", id, je.text);
	st->id = strdup(jstr(o, "id"));
	st->bundle = strdup(jstr(o, "bundle"));
	st->rootfs = strdup(jstr(o, "rootfs"));
	st->created = strdup(jstr(o, "created"));
	st->owner = strdup(jstr(o, "owner"));
	st->cgroup = strdup(jstr(o, "cgroup"));
	st->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
	st->starttime = (unsigned long long)json_integer_value(json_object_get(o, "starttime"));
	st->annotations_json = json_dumps(json_object_get(o, "annotations"), JSON_COMPACT | JSON_ENCODE_ANY);
	bool stored_creating = !strcmp(jstr(o, "status"), "creating");
	json_decref(o);

	bool alive = st->pid > 0 && proc_starttime(st->pid) == st->starttime && st->starttime != 0;
	if (alive) {
		char state = 0, path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", (int)st->pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (n > 0) {
			buf[n] = '\0';
			char *p = strrchr(buf, ')');
			if (p && p[1])
				state = p[2];
		}
		if (state == 'Z' || state == 'X')
			alive = false;
	}
	if (!alive)
		st->status = ST_STOPPED;
	else if (stored_creating)
		st->status = ST_CREATING;
	else if (faccessat(dirfd, FIFO_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		st->status = ST_CREATED;
	else
		st->status = ST_RUNNING;
	if (st->status == ST_RUNNING && st->cgroup[0]) {
		cgroup *cg = NULL;
		if (cgroup_open(st->cgroup, &cg) == 0) {
			if (cgroup_is_frozen(cg))
				st->status = ST_PAUSED;
			cgroup_free(cg);
		}
	}
	/* Only start, delete, exec and checkpoint need the saved config. */
	if (with_config && read_file_at(dirfd, CONFIG_COPY, &st->config_copy, NULL) < 0)
		st->config_copy = NULL;
	err_clear();
	return 0;
}

int container_load(const char *root, const char *id, container_state *ret)
{
	_cleanup_close_ int dfd = open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	return load_at(dfd, id, ret, false);
}

int container_load_with_config(const char *root, const char *id, container_state *ret)
{
	_cleanup_close_ int dfd = open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	return load_at(dfd, id, ret, true);
}

void container_state_clear(container_state *st)
{
	free(st->id);
	free(st->bundle);
	free(st->rootfs);
	free(st->created);
	free(st->owner);
	free(st->cgroup);
	free(st->annotations_json);
	free(st->config_copy);
	memset(st, 0, sizeof *st);
}

char *container_state_json(const container_state *st)
{
	json_t *ann = json_loads(st->annotations_json ? st->annotations_json : "{}", 0, NULL);
	if (!json_is_object(ann)) {
		json_decref(ann);
		ann = json_object();
	}
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:o}", "ociVersion", ISOLA_OCI_VERSION,
			      "id", st->id, "pid", st->status == ST_STOPPED ? 0 : (int)st->pid,
			      "status", container_status_names[st->status], "bundle", st->bundle,
			      "rootfs", st->rootfs, "created", st->created, "owner", st->owner, "annotations", ann);
	char *out = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return out;
}

/* ---- create -------------------------------------------------------- */

static void now_rfc3339(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", ts.tv_nsec);
}

int runtime_connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		return err_set(ENAMETOOLONG, "socket path '%s'", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		return err_set(e, "connect to '%s'", path);
	}
	return fd;
}


static int child_wait_go(int sync)
{
	struct sync_msg m;
	int r = sync_recv(sync, &m);
	if (r < 0 || m.type != SYNC_MAPPED)
		return -1;
	sync_msg_clear(&m);
	return 0;
}

int runtime_join_namespaces(const oci_spec *s, const int ns_fds[NS__MAX], bool skip_mnt)
{
	/* The user namespace first: it owns the others and grants the
	 * capabilities to join them. */
	if (ns_fds[NS_USER] >= 0 && setns(ns_fds[NS_USER], CLONE_NEWUSER) < 0)
		return err_set(errno, "linux.namespaces: join user namespace '%s'", s->linux.ns[NS_USER].path);
	for (int t = 0; t < NS__MAX; t++)
		if (t != NS_USER && !(t == NS_MOUNT && skip_mnt) && ns_fds[t] >= 0 &&
		    setns(ns_fds[t], spec_ns_clone_flags[t]) < 0)
			return err_set(errno, "linux.namespaces: join %s namespace '%s'", spec_ns_names[t], s->linux.ns[t].path);
	return 0;
}

int runtime_late_namespaces(const oci_spec *s)
{
	if (s->linux.ns[NS_USER].present && setresgid(0, 0, 0) == 0)
		(void)setresuid(0, 0, 0);
	if (s->linux.ns[NS_CGROUP].present && !s->linux.ns[NS_CGROUP].path && unshare(CLONE_NEWCGROUP) < 0)
		return err_set(errno, "unshare cgroup namespace");
	if (s->linux.ns[NS_TIME].present && !s->linux.ns[NS_TIME].path &&
	    (s->linux.time_offsets[0].has || s->linux.time_offsets[1].has)) {
		if (unshare(CLONE_NEWTIME) < 0)
			return err_set(errno, "unshare time namespace");
		char buf[128];
		int n = 0;
		static const char *const clk[2] = { "monotonic", "boottime" };
		for (int i = 0; i < 2; i++)
			if (s->linux.time_offsets[i].has)
				n += snprintf(buf + n, sizeof buf - n, "%s %lld %u\n", clk[i],
					      (long long)s->linux.time_offsets[i].secs, s->linux.time_offsets[i].nanosecs);
		int r = write_file_at(AT_FDCWD, "/proc/self/timens_offsets", buf, (size_t)n);
		if (r < 0)
			return err_wrap(r, "linux.timeOffsets");
	}
	return 0;
}

/* Runs in the cloned child, still the runtime's image; ends in execveat of
 * the protected runtime binary as `isola-oci init`. Errors go to the
 * runtime over the sync socket.
 *
 * Fast path: clone3 made every namespace; once the runtime has written the
 * id maps, join the cgroup, finish and re-execute.
 * Slow path (namespaces joined by path, and exec): join the cgroup (create
 * only; exec's runtime moves its child) and re-execute at once, in
 * the host's namespaces with the host's credentials, so that the kernel
 * ties the new image to the host's user namespace; the init joins and
 * creates the namespaces afterwards (init.c, slow_enter). Joining first
 * would tie it to the container's user namespace, where the container's
 * root could ptrace it even when it is not dumpable. */
static __attribute__((noreturn)) void child_main(struct child_args *a)
{
	int r = 0;
	if (a->slow) {
		/* Still the runtime's image, in the host's namespaces: the init
		 * runs in the cgroup from its first instruction. */
		if (a->join && (r = cgroup_join_self(a->join)) < 0)
			goto fail;
	} else {
		if (child_wait_go(a->sync) < 0)
			_exit(1);
		/* Before anything else and before the cgroup namespace, whose
		 * root is the cgroup we are in. */
		if (a->join && (r = cgroup_join_self(a->join)) < 0)
			goto fail;
		if ((r = runtime_late_namespaces(a->s)) < 0)
			goto fail;
	}
	/* Fast path: the init inherits the binary's handle too and drops the
	 * last reference once created, off the runtime's way (send_config). */
	int keep[] = { a->sync, a->fifo_fd, a->status_fd, a->console_fd, a->slow ? -1 : a->exe_fd };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		if (keep[i] >= 0)
			(void)fcntl(keep[i], F_SETFD, 0);
	for (int t = 0; a->slow && t < NS__MAX; t++)
		if (a->ns_fds[t] >= 0)
			(void)fcntl(a->ns_fds[t], F_SETFD, 0);
	char fdstr[16];
	snprintf(fdstr, sizeof fdstr, "%d", a->sync);
	char *argv[] = { "isola-oci", "init", fdstr, NULL };
	char *envp[] = { NULL };
	syscall(SYS_execveat, a->exe_fd, "", argv, envp, AT_EMPTY_PATH);
	r = err_set(errno, "re-exec the runtime as container init");
fail:
	sync_send_error(a->sync);
	_exit(1);
}

int runtime_fork_pidns(int sync)
{
	int gate[2];
	if (pipe2(gate, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	/* A new or joined pid namespace applies to children only. */
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(gate[0]);
		close(gate[1]);
		return err_set(e, "fork into the pid namespace");
	}
	if (pid == 0) {
		/* Wait until the parent has reported us and exited (its end of
		 * the gate closes), so that SYNC_PID is the first message the
		 * runtime reads from this side. */
		char c;
		close(gate[1]);
		while (read(gate[0], &c, 1) < 0 && errno == EINTR)
			;
		close(gate[0]);
		return 0;
	}
	close(gate[0]);
	/* Our child cannot be reaped before we exit, so the pidfd is surely
	 * its own: the runtime signals it through that, never by a pid that
	 * may have been reused. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int32_t p = pid;
	int r = sync_send(sync, SYNC_PID, &p, sizeof p, pidfd);
	_exit(r < 0 ? 1 : 0);
}

static pid_t runtime_clone_child(struct child_args *a, int clone_flags)
{
	struct clone_args ca = { .flags = (uint64_t)clone_flags, .exit_signal = SIGCHLD };
	if (a->join && a->join->v2_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)a->join->v2_fd;
	}
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0 && a->join) {
		/* The cgroup refused a new process (pids.max, a cgroup with
		 * controllers below it) or clone3 did: the runtime moves the
		 * child afterwards, and says why that fails. */
		a->join = NULL;
		ca.flags = (uint64_t)clone_flags;
		ca.cgroup = 0;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	}
	if (pid == 0)
		child_main(a);
	return pid < 0 ? -errno : pid;
}

pid_t runtime_spawn_child(struct child_args *a, int clone_flags, int *ret_sync)
{
	int sp[2];
	if ((a->exe_fd = selfexe_protected_fd()) < 0)
		return a->exe_fd;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return err_set(errno, "socketpair");
	a->sync = sp[1];
	pid_t pid = runtime_clone_child(a, clone_flags);
	close(sp[1]);
	a->sync = -1;
	if (pid < 0) {
		close(sp[0]);
		return err_set((int)-pid, "clone the container init (namespaces 0x%x)", clone_flags);
	}
	*ret_sync = sp[0];
	return pid;
}

struct create_ctx {
	int statefd;
	bool dir_made;
	char dirpath[PATH_MAX];
	cgroup *cg;
	pid_t child, init;
	int init_pidfd; /* the init when it is not our child (slow path), or -1 */
};

static void create_revert(struct create_ctx *c)
{
	if (c->init_pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, c->init_pidfd, SIGKILL, NULL, 0);
	else if (c->init > 0 && c->init == c->child)
		kill(c->init, SIGKILL); /* our child, not reaped yet: the pid is its own */
	if (c->child > 0) {
		kill(c->child, SIGKILL);
		waitpid(c->child, NULL, 0);
	}
	if (c->cg) {
		/* Processes die asynchronously: wait for the cgroup to empty. */
		for (int i = 0; i < 200 && !cgroup_is_empty(c->cg); i++) {
			cgroup_kill_all(c->cg, SIGKILL);
			usleep(5000);
		}
		(void)cgroup_destroy(c->cg);
		cgroup_free(c->cg);
		c->cg = NULL;
	}
	if (c->dir_made) {
		_cleanup_free_ char *parent = strdup(c->dirpath);
		char *slash = parent ? strrchr(parent, '/') : NULL;
		if (slash) {
			*slash = '\0';
			_cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (pfd >= 0)
				(void)rm_rf_at(pfd, slash + 1);
		}
	}
}

static int validate_for_runtime(const oci_spec *s)
{
	if (!s->process.present)
		return err_set(0, "config.json: process: required by create");
	if (s->linux.intel_rdt)
		return err_set(EOPNOTSUPP, "config.json: linux.intelRdt: Intel RDT is not supported by isola-oci");
	if (s->process.apparmor_profile) {
		char *en = NULL;
		bool on = read_file_at(AT_FDCWD, "/sys/module/apparmor/parameters/enabled", &en, NULL) == 0 && en[0] == 'Y';
		free(en);
		err_clear();
		if (!on)
			return err_set(EOPNOTSUPP, "config.json: process.apparmorProfile: AppArmor is not enabled on this host");
		return err_set(EOPNOTSUPP, "config.json: process.apparmorProfile: AppArmor profiles are not supported yet");
	}
	if (!s->linux.ns[NS_MOUNT].present && (s->root_readonly || s->linux.rootfs_propagation))
		return err_set(0, "config.json: %s: needs a mount namespace (it would change the host's mounts)",
			       s->root_readonly ? "root.readonly" : "linux.rootfsPropagation");
	if ((s->hostname || s->domainname) && !s->linux.ns[NS_UTS].present)
		return err_set(0, "config.json: hostname: setting the hostname needs a new uts namespace");
	if ((s->linux.n_uid_mappings || s->linux.n_gid_mappings) && !s->linux.ns[NS_USER].present)
		return err_set(0, "config.json: linux.uidMappings: id mappings need a user namespace");
	if (s->linux.ns[NS_USER].present && !s->linux.ns[NS_USER].path && (!s->linux.n_uid_mappings || !s->linux.n_gid_mappings))
		return err_set(0, "config.json: linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
	if ((s->linux.time_offsets[0].has || s->linux.time_offsets[1].has) &&
	    (!s->linux.ns[NS_TIME].present || s->linux.ns[NS_TIME].path))
		return err_set(0, "config.json: linux.timeOffsets: needs a new time namespace");
	for (size_t i = 0; i < s->linux.n_sysctl; i++) {
		const char *k = s->linux.sysctl[i].key;
		bool ipc = !strncmp(k, "kernel.msg", 10) || !strncmp(k, "kernel.sem", 10) ||
			   !strncmp(k, "kernel.shm", 10) || !strncmp(k, "fs.mqueue.", 10);
		bool net = !strncmp(k, "net.", 4);
		bool uts = !strcmp(k, "kernel.hostname") || !strcmp(k, "kernel.domainname");
		if ((ipc && !s->linux.ns[NS_IPC].present) || (net && !s->linux.ns[NS_NETWORK].present) ||
		    (uts && !s->linux.ns[NS_UTS].present) || (!ipc && !net && !uts))
			return err_set(0, "config.json: linux.sysctl: \"%s\" is not namespaced by the container's namespaces", k);
	}
	return 0;
}

int runtime_open_ns_paths(const oci_spec *s, int fds[NS__MAX])
{
	for (int t = 0; t < NS__MAX; t++) {
		fds[t] = -1;
		if (!s->linux.ns[t].present || !s->linux.ns[t].path)
			continue;
		fds[t] = open(s->linux.ns[t].path, O_RDONLY | O_CLOEXEC);
		if (fds[t] < 0)
			return err_set(errno, "config.json: linux.namespaces: %s namespace path '%s'", spec_ns_names[t], s->linux.ns[t].path);
		int type = ioctl(fds[t], NS_GET_NSTYPE);
		if (type >= 0 && type != spec_ns_clone_flags[t])
			return err_set(0, "config.json: linux.namespaces: '%s' is not a %s namespace", s->linux.ns[t].path, spec_ns_names[t]);
	}
	return 0;
}

int runtime_send_seccomp(int sync, const oci_spec *s, const char *root)
{
	_cleanup_free_ void *blob = NULL;
	size_t bloblen = 0;
	char cache[PATH_MAX];
	snprintf(cache, sizeof cache, "%s/.cache/seccomp", root);
	int r = seccomp_compile_cached(&s->linux.seccomp, cache, &blob, &bloblen);
	if (r < 0)
		return r;
	if ((r = sync_send(sync, SYNC_SECCOMP, blob, bloblen, -1)) < 0)
		return err_set(-r, "send the seccomp filter to the container init");
	return 0;
}

int runtime_send_listener(const oci_spec *s, const char *id, const char *status, pid_t pid,
			  const char *bundle, int fd)
{
	if (!s->linux.seccomp.listener_path || fd < 0)
		return err_set(0, "linux.seccomp.listenerPath: required for SCMP_ACT_NOTIFY");
	_cleanup_free_ char *state = state_json_for_hooks(id, status, (int)pid, bundle, s);
	json_t *js = json_pack("{s:s, s:[s], s:i, s:s, s:o}", "ociVersion", ISOLA_OCI_VERSION, "fds", "seccompFd",
			       "pid", (int)pid, "metadata",
			       s->linux.seccomp.listener_metadata ? s->linux.seccomp.listener_metadata : "",
			       "state", json_loads(state ? state : "{}", 0, NULL));
	_cleanup_free_ char *text = json_dumps(js, JSON_COMPACT);
	json_decref(js);
	if (!text)
		return err_set(ENOMEM, "seccomp listener state");
	return seccomp_send_listener(s->linux.seccomp.listener_path, text, fd);
}

/* A message to the init failed with r (its message already set): when the
 * init stopped on an error of its own (it sends it, then exits), that error
 * is the one to report, not the broken pipe our later message met. */
static int init_error_first(int sync, int r)
{
	struct sync_msg m;
	if (r != -EPIPE && r != -ECONNRESET)
		return r;
	while (sync_recv(sync, &m) == 0) {
		bool error = m.type == SYNC_ERROR;
		if (error)
			err_set(0, "%s", (char *)m.data);
		sync_msg_clear(&m);
		if (error)
			return -EIO;
	}
	return r;
}

static int send_config(int sync, const oci_spec *s, struct child_args *ca, const char *raw, size_t rawlen,
		       const struct create_opts *o)
{
	struct init_opts io = { 0 };
	io.flags = (o->no_pivot ? INIT_NO_PIVOT : 0) |
		   (s->hooks[HOOK_CREATE_RUNTIME].n ? INIT_WANT_HOOKS : 0) |
		   (s->linux.ns[NS_USER].present ? INIT_USERNS : 0) |
		   (s->linux.ns[NS_CGROUP].present ? INIT_CGROUPNS : 0) |
		   (s->linux.seccomp.present ? INIT_SECCOMP : 0) |
		   (s->linux.ns[NS_MOUNT].present ? INIT_MOUNTNS : 0) |
		   (s->linux.ns[NS_PID].path ? INIT_SHARED_PIDNS : 0) |
		   (ca->slow ? INIT_SLOW : 0) | (ca->slow && ca->userns_new ? INIT_USERNS_NEW : 0) |
		   (runtime_opens_mount_sources(s) ? INIT_MOUNT_SOURCES : 0);
	io.fifo_fd = ca->fifo_fd;
	for (int t = 0; t < NS__MAX; t++)
		io.ns_fds[t] = ca->slow ? ca->ns_fds[t] : -1;
	io.unshare_flags = ca->slow ? ca->unshare_flags : 0;
	io.status_fd = ca->status_fd;
	io.console_fd = ca->console_fd;
	/* Closing the last handle on the detached read-only mount of the
	 * binary dissolves the mount and waits for an expedited RCU grace
	 * period: the init does it after SYNC_READY, while the runtime
	 * records the state, not the runtime while the init waits for it. */
	io.exe_fd = ca->slow ? -1 : ca->exe_fd;
	io.preserve_fds = o->preserve_fds;
	snprintf(io.id, sizeof io.id, "%s", o->id);
	snprintf(io.bundle, sizeof io.bundle, "%s", s->bundle);
	int r;
	if ((r = sync_send(sync, SYNC_CONFIG, raw, rawlen, -1)) < 0 ||
	    (r = sync_send(sync, SYNC_OPTS, &io, sizeof io, -1)) < 0)
		return init_error_first(sync, err_set(-r, "send the configuration to the container init"));
	return 0;
}

/* Write and sync dirfd/name (the first half of write_file_atomic_at). */
static int stage_file(int dirfd, const char *name, const void *data, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(errno, "create '%s'", name);
	int r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	return r < 0 ? err_set(-r, "write '%s'", name) : 0;
}

/* The runtime's side of create. Fast path: the child has every namespace;
 * write its id maps, let it join the cgroup and re-execute, send it the
 * config. Slow path: the child has joined the cgroup and re-executed at
 * once and reads the config first; it asks for its id maps after unsharing
 * the user namespace, waits for the go, and reports the pid it forked into
 * the pid namespace. Where the child could not join (ca->join NULL), the
 * runtime moves it into the cgroup before the go. */
static int handshake(int sync, const oci_spec *s, struct child_args *ca, struct create_ctx *c,
		     const char *raw, size_t rawlen, const struct create_opts *o)
{
	int r;
	struct sync_msg m;
	if (ca->slow && (r = send_config(sync, s, ca, raw, rawlen, o)) < 0)
		return r;
	if (ca->slow && ca->userns_new) {
		if ((r = sync_expect(sync, SYNC_NEED_MAP, &m)) < 0)
			return r;
		sync_msg_clear(&m);
	}
	if (ca->userns_new && (r = userns_write_maps(c->child, s->linux.uid_mappings, s->linux.n_uid_mappings,
						     s->linux.gid_mappings, s->linux.n_gid_mappings)) < 0)
		return r;
	if (c->cg && !ca->join && (r = cgroup_enter(c->cg, c->child)) < 0)
		return err_wrap(r, "linux.cgroupsPath");
	if ((r = sync_send(sync, SYNC_MAPPED, NULL, 0, -1)) < 0)
		return init_error_first(sync, err_set(-r, "start the container init"));
	c->init = c->child;
	if (ca->slow && s->linux.ns[NS_PID].present) {
		if ((r = sync_expect(sync, SYNC_PID, &m)) < 0)
			return r;
		int32_t p;
		memcpy(&p, m.data, sizeof p);
		c->init = p;
		c->init_pidfd = m.fd;
		m.fd = -1;
		sync_msg_clear(&m);
		waitpid(c->child, NULL, 0);
		c->child = 0;
	}
	if (s->process.oom_score_adj.has) {
		char path[64], val[32];
		snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)c->init);
		snprintf(val, sizeof val, "%lld", (long long)s->process.oom_score_adj.v);
		if ((r = write_str(path, val)) < 0)
			return err_wrap(r, "process.oomScoreAdj");
	}
	if (!ca->slow && (r = send_config(sync, s, ca, raw, rawlen, o)) < 0)
		return r;
	if (s->linux.seccomp.present) {
		/* Compiled (or found in the cache) while the init builds the rootfs. */
		if ((r = runtime_send_seccomp(sync, s, o->root)) < 0)
			return init_error_first(sync, r);
	}
	/* Meanwhile too: the config copy, under a name nothing reads; create
	 * renames it into place once the init is ready. */
	if ((r = stage_file(c->statefd, CONFIG_STAGED, raw, rawlen)) < 0)
		return r;
	for (;;) {
		r = sync_recv(sync, &m);
		if (r < 0)
			return r == -EPIPE ? err_set(0, "container init exited during create") : err_set(-r, "read from container init");
		switch (m.type) {
		case SYNC_HOOKS: {
			_cleanup_free_ char *st = state_json_for_hooks(o->id, "creating", c->init, s->bundle, s);
			r = hooks_run(s, HOOK_CREATE_RUNTIME, st, false);
			sync_msg_clear(&m);
			if (r < 0)
				return r;
			if ((r = sync_send(sync, SYNC_HOOKS_DONE, NULL, 0, -1)) < 0)
				return err_set(-r, "resume the container init");
			break;
		}
		case SYNC_MOUNT_SOURCES:
			r = runtime_send_mount_sources(sync, s, m.fd);
			sync_msg_clear(&m);
			if (r < 0)
				return init_error_first(sync, r);
			break;
		case SYNC_LISTENER:
			r = runtime_send_listener(s, o->id, "creating", c->init, s->bundle, m.fd);
			sync_msg_clear(&m);
			if (r < 0)
				return r;
			break;
		case SYNC_READY:
			sync_msg_clear(&m);
			return 0;
		case SYNC_ERROR:
			err_set(0, "%s", (char *)m.data);
			sync_msg_clear(&m);
			return -EIO;
		default:
			sync_msg_clear(&m);
			return err_set(EPROTO, "unexpected message from container init");
		}
	}
}

/* The device rules the container gets on top of linux.resources.devices:
 * mknod of its own linux.devices (the init creates them after the rules
 * apply; runc creates them before), and the default devices, as runc and
 * crun do, so that a deny-all list still leaves /dev usable. Reading and
 * writing a linux.devices node is up to linux.resources.devices. */
static int apply_resources(cgroup *cg, const oci_spec *s)
{
	static const spec_dev_rule defaults[] = {
		{ true, 'c', -1, -1, "m" }, { true, 'b', -1, -1, "m" },
		{ true, 'c', 1, 3, "rwm" }, { true, 'c', 1, 5, "rwm" }, { true, 'c', 1, 7, "rwm" },
		{ true, 'c', 1, 8, "rwm" }, { true, 'c', 1, 9, "rwm" }, { true, 'c', 5, 0, "rwm" },
		{ true, 'c', 5, 1, "rwm" }, { true, 'c', 5, 2, "rwm" }, { true, 'c', 136, -1, "rwm" },
	};
	spec_resources res = s->linux.resources;
	if (!res.n_devices)
		return cgroup_apply(cg, &res);
	size_t n = res.n_devices + s->linux.n_devices + ARRAY_SIZE(defaults);
	_cleanup_free_ spec_dev_rule *rules = calloc(n, sizeof *rules);
	if (!rules)
		return err_set(ENOMEM, "linux.resources.devices");
	size_t k = 0;
	for (size_t i = 0; i < res.n_devices; i++)
		rules[k++] = res.devices[i];
	for (size_t i = 0; i < s->linux.n_devices; i++) {
		const spec_device *d = &s->linux.devices[i];
		if (d->type == 'p')
			continue;
		rules[k++] = (spec_dev_rule){ true, d->type == 'u' ? 'c' : d->type, d->major, d->minor, "m" };
	}
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
		rules[k++] = defaults[i];
	res.devices = rules;
	res.n_devices = k;
	return cgroup_apply(cg, &res);
}

/* Unprivileged, a cgroup we may not create, or limits we may not set, are
 * skipped with a warning: limits then apply only where the cgroup (and its
 * controllers) were delegated to the user, as with cgroup v2 and systemd. */
static bool rootless_cgroup_skip(int r, const char *consequence)
{
	if (!userns_rootless() || (r != -EACCES && r != -EPERM && r != -EROFS && r != -ENOENT && r != -EOPNOTSUPP))
		return false;
	log_warnf("rootless: %s; %s", err_msg(), consequence);
	err_clear();
	return true;
}

int container_create(const struct create_opts *o, pid_t *ret_pid)
{
	int r;
	oci_spec *s = NULL;
	_cleanup_free_ char *raw = NULL;
	size_t rawlen = 0;
	struct create_ctx c = { .statefd = -1, .init_pidfd = -1 };
	struct child_args ca = { .sync = -1, .exe_fd = -1, .fifo_fd = -1, .status_fd = -1, .console_fd = o->console_fd };
	int sync = -1;
	for (int t = 0; t < NS__MAX; t++)
		ca.ns_fds[t] = -1;

	if ((r = valid_id(o->id)) < 0)
		return r;
	if (o->preserve_fds < 0 || o->preserve_fds > RUNTIME_PRESERVE_FDS_MAX)
		return err_set(EINVAL, "--preserve-fds: %d is not a count from 0 to %d", o->preserve_fds, RUNTIME_PRESERVE_FDS_MAX);
	if ((r = spec_load_bundle(o->bundle ? o->bundle : ".", &s, &raw, &rawlen)) < 0)
		return r;
	ca.s = s;
	if ((r = validate_for_runtime(s)) < 0 || (r = runtime_open_ns_paths(s, ca.ns_fds)) < 0)
		goto out;
	struct stat rst;
	if (stat(s->root_path, &rst) < 0 || !S_ISDIR(rst.st_mode)) {
		r = err_set(stat(s->root_path, &rst) < 0 ? errno : ENOTDIR, "config.json: root.path: '%s'", s->root_path);
		goto out;
	}
	if (o->console_socket && ca.console_fd < 0 && (ca.console_fd = runtime_connect_unix(o->console_socket)) < 0) {
		r = err_wrap(ca.console_fd, "--console-socket");
		goto out;
	}
	if (s->process.terminal && ca.console_fd < 0) {
		r = err_set(0, "process.terminal is true: --console-socket is required");
		goto out;
	}

	/* The state directory: mkdir is the atomic "this id is ours". */
	if ((r = mkdir_p(o->root, 0700)) < 0)
		goto out;
	snprintf(c.dirpath, sizeof c.dirpath, "%s/%s", o->root, o->id);
	if (mkdir(c.dirpath, 0700) < 0) {
		r = errno == EEXIST ? err_set(EEXIST, "container \"%s\" already exists", o->id)
				    : err_set(errno, "create state directory '%s'", c.dirpath);
		goto out;
	}
	c.dir_made = true;
	if ((c.statefd = open(c.dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = err_set(errno, "open '%s'", c.dirpath);
		goto out;
	}
	char created[64];
	now_rfc3339(created, sizeof created);
	if ((r = cgroup_create(s->linux.cgroups_path, o->id, &c.cg)) < 0) {
		err_wrap(r, "linux.cgroupsPath");
		if (!rootless_cgroup_skip(r, "the container runs without its own cgroup, and no limits"))
			goto out;
	}
	if (c.cg && (r = apply_resources(c.cg, s)) < 0 &&
	    !rootless_cgroup_skip(r, "linux.resources are not applied"))
		goto out;
	if ((r = write_state(c.statefd, o->id, "creating", 0, 0, s->bundle, s->root_path, created,
			     c.cg ? cgroup_path(c.cg) : "", s)) < 0)
		goto out;
	if (mkfifoat(c.statefd, FIFO_FILE, 0600) < 0) {
		r = err_set(errno, "create exec fifo");
		goto out;
	}
	if ((ca.fifo_fd = openat(c.statefd, FIFO_FILE, O_RDWR | O_CLOEXEC)) < 0) {
		r = err_set(errno, "open exec fifo");
		goto out;
	}
	if (mkfifoat(c.statefd, STATUS_FIFO, 0600) < 0 ||
	    (ca.status_fd = openat(c.statefd, STATUS_FIFO, O_RDWR | O_CLOEXEC)) < 0) {
		r = err_set(errno, "create status fifo");
		goto out;
	}

	int flags = 0;
	for (int t = 0; t < NS__MAX; t++) {
		if (!s->linux.ns[t].present)
			continue;
		if (s->linux.ns[t].path)
			ca.slow = true;
		else if (t != NS_CGROUP && !(t == NS_TIME && (s->linux.time_offsets[0].has || s->linux.time_offsets[1].has)))
			flags |= spec_ns_clone_flags[t];
	}
	ca.userns_new = s->linux.ns[NS_USER].present && !s->linux.ns[NS_USER].path;
	if (ca.slow) {
		ca.unshare_flags = flags & ~CLONE_NEWUSER;
		flags = 0;
	}
	/* The child joins the cgroup itself (cgroup.h). Where the files
	 * cannot be opened (a delegated cgroup), the runtime moves it. */
	cgroup_join join = CGROUP_JOIN_INIT;
	if (c.cg) {
		if (cgroup_join_open(c.cg, &join) == 0)
			ca.join = &join;
		err_clear();
	}
	pid_t pid = runtime_spawn_child(&ca, flags, &sync);
	/* The child has its copies; ca.join stays set: the child joins. */
	cgroup_join_close(&join);
	if (pid < 0) {
		r = (int)pid;
		goto out;
	}
	if (!ca.slow && ca.exe_fd >= 0) {
		/* Not the last reference: the child keeps its copy (send_config). */
		close(ca.exe_fd);
		ca.exe_fd = -1;
	}
	c.child = pid;
	if ((r = handshake(sync, s, &ca, &c, raw, rawlen, o)) < 0)
		goto out;
	unsigned long long starttime = proc_starttime(c.init);
	/* Kept for start (prestart, poststart), exec, update and delete;
	 * written and synced during the handshake. */
	if (renameat(c.statefd, CONFIG_STAGED, c.statefd, CONFIG_COPY) < 0) {
		r = err_set(errno, "write '%s'", CONFIG_COPY);
		goto out;
	}
	if ((r = write_state(c.statefd, o->id, "created", c.init, starttime, s->bundle, s->root_path, created,
			     c.cg ? cgroup_path(c.cg) : "", s)) < 0)
		goto out;
	if (o->pid_file) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "%d", (int)c.init);
		_cleanup_free_ char *dir = strdup(o->pid_file);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		const char *name = slash ? slash + 1 : o->pid_file;
		if (slash)
			*slash = '\0';
		_cleanup_close_ int dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || (r = write_file_atomic_at(dfd, name, buf, (size_t)n, 0644)) < 0) {
			r = dfd < 0 ? err_set(errno, "--pid-file '%s'", o->pid_file) : err_wrap(r, "--pid-file");
			goto out;
		}
	}
	*ret_pid = c.init;
	c.child = 0; /* keep: the init lives on */
	c.init = 0;
	c.dir_made = false;
	cgroup_free(c.cg);
	c.cg = NULL;
	r = 0;
out:
	if (r < 0)
		create_revert(&c);
	if (sync >= 0)
		close(sync);
	if (ca.fifo_fd >= 0)
		close(ca.fifo_fd);
	if (ca.status_fd >= 0)
		close(ca.status_fd);
	if (ca.exe_fd >= 0)
		close(ca.exe_fd);
	if (ca.console_fd >= 0 && ca.console_fd != o->console_fd)
		close(ca.console_fd);
	for (int t = 0; t < NS__MAX; t++)
		if (ca.ns_fds[t] >= 0)
			close(ca.ns_fds[t]);
	if (c.statefd >= 0)
		close(c.statefd);
	if (c.init_pidfd >= 0)
		close(c.init_pidfd);
	spec_free(s);
	return r;
}

/* ---- start / kill / delete ----------------------------------------- */

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
	_cleanup_close_ int dfd = open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	if (flock(dfd, LOCK_EX) < 0)
		return err_set(errno, "lock container \"%s\"", id);
	container_state st;
	int r = load_at(dfd, id, &st, true);
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
	if (proc_starttime(st->pid) != st->starttime) {
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
		if (proc_starttime(pid) == starttime) {
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
	int r = load_at(dfd, id, &st, true);
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
	_cleanup_close_ int dfd = open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	if (flock(dfd, LOCK_EX) < 0)
		return err_set(errno, "lock container \"%s\"", id);
	return delete_locked(root, dfd, id, force);
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int container_list_ids(const char *root, char ***ret)
{
	size_t n = 0, cap = 16;
	char **v = calloc(cap, sizeof *v);
	if (!v)
		return -ENOMEM;
	DIR *d = opendir(root);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.' || e->d_type != DT_DIR)
				continue;
			if (n + 2 > cap) {
				char **nv = realloc(v, (cap *= 2) * sizeof *v);
				if (!nv)
					break;
				v = nv;
			}
			v[n++] = strdup(e->d_name);
		}
		closedir(d);
	}
	v[n] = NULL;
	qsort(v, n, sizeof *v, cmpstr);
	*ret = v;
	return 0;
}

/* ---- restore (runtime/checkpoint.c) --------------------------------- */

int container_restore_cgroup(const oci_spec *s, const char *id, cgroup **ret)
{
	cgroup *cg = NULL;
	int r = cgroup_create(s->linux.cgroups_path, id, &cg);
	if (r < 0)
		return err_wrap(r, "linux.cgroupsPath");
	if ((r = apply_resources(cg, s)) < 0) {
		(void)cgroup_destroy(cg);
		cgroup_free(cg);
		return r;
	}
	*ret = cg;
	return 0;
}

int container_write_restored_state(const char *root, const char *id, pid_t pid, const oci_spec *s,
				   const char *raw, size_t rawlen, const char *cgpath)
{
	_cleanup_close_ int dfd = open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	int r = write_file_atomic_at(dfd, CONFIG_COPY, raw, rawlen, 0600);
	if (r < 0)
		return r;
	char created[64];
	now_rfc3339(created, sizeof created);
	return write_state(dfd, id, "running", pid, proc_starttime(pid), s->bundle, s->root_path, created, cgpath, s);
}
