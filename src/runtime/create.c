/* create: the state directory, the cgroup and its limits, the child, and the
 * handshake with the init until it reports the container created. */
#include "container.h"
#include "internal.h"
#include "sandbox/ns.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "sync.h"
#include "sandbox/cgroup.h"
#include "sandbox/hooks.h"
#include "sandbox/seccomp.h"
#include "sandbox/userns.h"
#include "util/log.h"
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

/* ---- create -------------------------------------------------------- */

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

	if ((r = runtime_valid_id(o->id)) < 0)
		return r;
	if (o->preserve_fds < 0 || o->preserve_fds > RUNTIME_PRESERVE_FDS_MAX)
		return err_set(EINVAL, "--preserve-fds: %d is not a count from 0 to %d", o->preserve_fds, RUNTIME_PRESERVE_FDS_MAX);
	if ((r = spec_load_bundle(o->bundle ? o->bundle : ".", &s, &raw, &rawlen)) < 0)
		return r;
	ca.s = s;
	if ((r = validate_for_runtime(s)) < 0 || (r = ns_open_paths(s, ca.ns_fds)) < 0)
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
	runtime_now_rfc3339(created, sizeof created);
	if ((r = cgroup_create(s->linux.cgroups_path, o->id, &c.cg)) < 0) {
		err_wrap(r, "linux.cgroupsPath");
		if (!rootless_cgroup_skip(r, "the container runs without its own cgroup, and no limits"))
			goto out;
	}
	if (c.cg && (r = apply_resources(c.cg, s)) < 0 &&
	    !rootless_cgroup_skip(r, "linux.resources are not applied"))
		goto out;
	if ((r = runtime_write_state(c.statefd, o->id, "creating", 0, 0, s->bundle, s->root_path, created,
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
	unsigned long long starttime = runtime_proc_starttime(c.init);
	/* Kept for start (prestart, poststart), exec, update and delete;
	 * written and synced during the handshake. */
	if (renameat(c.statefd, CONFIG_STAGED, c.statefd, CONFIG_COPY) < 0) {
		r = err_set(errno, "write '%s'", CONFIG_COPY);
		goto out;
	}
	if ((r = runtime_write_state(c.statefd, o->id, "created", c.init, starttime, s->bundle, s->root_path, created,
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
