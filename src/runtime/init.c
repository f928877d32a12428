/* The container init: runs inside the new namespaces after the runtime
 * re-executed itself from a read-only handle (selfexe.c), builds the
 * container's view, waits on the exec fifo and finally execs the user
 * process. */
#include "container.h"
#include "internal.h"
#include "sandbox/ns.h"
#include "sync.h"
#include "sandbox/rootfs.h"
#include "sandbox/process.h"
#include "sandbox/console.h"
#include "sandbox/hooks.h"
#include "sandbox/seccomp.h"
#include "sandbox/userns.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/close_range.h>

static int apply_sysctl(const oci_spec *s)
{
	for (size_t i = 0; i < s->linux.n_sysctl; i++) {
		char path[512];
		int n = snprintf(path, sizeof path, "/proc/sys/");
		for (const char *k = s->linux.sysctl[i].key; *k && n < (int)sizeof path - 1; k++)
			path[n++] = *k == '.' ? '/' : *k;
		path[n] = '\0';
		int r = write_str(path, s->linux.sysctl[i].value);
		if (r < 0)
			return err_wrap(r, "linux.sysctl: %s", s->linux.sysctl[i].key);
	}
	return 0;
}

static int set_names(const oci_spec *s)
{
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return err_set(errno, "hostname: sethostname(\"%s\")", s->hostname);
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		return err_set(errno, "domainname: setdomainname(\"%s\")", s->domainname);
	return 0;
}

static int wait_for_start(int fifo_fd)
{
	char c;
	ssize_t n;
	do
		n = read(fifo_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return err_set(n < 0 ? errno : EPIPE, "wait for start on the exec fifo");
	return 0;
}

/* createContainer / startContainer run in the container's namespaces, so
 * the pid they are told is the one seen there. */
static int run_container_hooks(const oci_spec *s, int kind, const struct init_opts *o, const char *status)
{
	if (!s->hooks[kind].n)
		return 0;
	_cleanup_free_ char *st = state_json_for_hooks(o->id, status, (int)getpid(), o->bundle, s);
	return hooks_run(s, kind, st ? st : "{}", false);
}

/* Mark the preserved fds inheritable and everything else above them
 * close-on-exec: no host fd reaches the container process. */
static int seal_fds(int preserve)
{
	unsigned first = 3 + (unsigned)preserve;
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return err_set(errno, "close_range");
	for (int fd = 3; fd < (int)first; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			(void)fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	return 0;
}

/* The runtime sends the seccomp program while we build the rootfs; it may
 * arrive before an answer we wait for. */
static struct sync_msg stashed_seccomp = { .fd = -1 };

static int expect_stashing(int sync, uint32_t want, struct sync_msg *m)
{
	for (;;) {
		int r = sync_recv(sync, m);
		if (r < 0)
			return r == -EPIPE ? err_set(0, "the runtime went away") : err_set(-r, "read from the runtime");
		if (m->type == SYNC_SECCOMP && want != SYNC_SECCOMP && !stashed_seccomp.data) {
			stashed_seccomp = *m;
			continue;
		}
		if (m->type == want)
			return 0;
		if (m->type == SYNC_ERROR)
			r = err_set(0, "%s", (char *)m->data);
		else
			r = err_set(EPROTO, "unexpected message %u from the runtime", m->type);
		sync_msg_clear(m);
		return r;
	}
}

static int wait_mapped(int sync);

/* Slow path (namespaces joined by path, and exec). This process is the
 * runtime re-executed in the host's namespaces, so its image belongs to the
 * host's user namespace (non-dumpable, it cannot be ptraced from a user
 * namespace below). Join the namespaces given by path, user namespace
 * first; create the rest (a new user namespace gets its id maps from the
 * runtime); wait for the go (by then we are in the cgroup: joined before
 * the re-exec, or moved by the runtime); then fork into the pid
 * namespace. exec joins the container's mount namespace before that fork:
 * by the time any process of the container can see this one, its root and
 * cwd are the container's and it holds no host fd but its stdio and the
 * sync socket. */
static int slow_enter(int sync, const oci_spec *s, struct init_opts *o)
{
	bool exec = o->flags & INIT_EXEC;
	int r = ns_join(s, o->ns_fds, exec);
	if (r < 0)
		return r;
	if (o->flags & INIT_USERNS_NEW) {
		if (unshare(CLONE_NEWUSER) < 0)
			return err_set(errno, "unshare user namespace");
		if ((r = sync_send(sync, SYNC_NEED_MAP, NULL, 0, -1)) < 0)
			return err_set(-r, "ask the runtime for the id maps");
		if ((r = wait_mapped(sync)) < 0)
			return r;
	}
	if (o->unshare_flags && unshare(o->unshare_flags) < 0)
		return err_set(errno, "unshare namespaces 0x%x", (unsigned)o->unshare_flags);
	if (!(o->flags & INIT_USERNS_NEW) && (r = wait_mapped(sync)) < 0)
		return r;
	if (exec && o->ns_fds[NS_MOUNT] >= 0 && setns(o->ns_fds[NS_MOUNT], CLONE_NEWNS) < 0)
		return err_set(errno, "join the container's mount namespace");
	for (int t = 0; t < NS__MAX; t++)
		if (o->ns_fds[t] >= 0) {
			close(o->ns_fds[t]);
			o->ns_fds[t] = -1;
		}
	if (s->linux.ns[NS_PID].present && (r = runtime_fork_pidns(sync)) < 0)
		return r;
	return ns_create_late(s);
}

static int wait_mapped(int sync)
{
	struct sync_msg m;
	int r = expect_stashing(sync, SYNC_MAPPED, &m);
	if (r < 0)
		return r;
	sync_msg_clear(&m);
	return 0;
}

/* With a user namespace of its own the container's root may not reach a
 * bind source: the runtime opens them in our mount namespace (mountsrc.c)
 * and rootfs_mount_all mounts from those fds. */
static int receive_mount_sources(int sync, const oci_spec *s, rootfs_mounts *mm)
{
	size_t want = 0;
	for (size_t i = 0; i < s->n_mounts; i++)
		want += rootfs_mount_is_bind(&s->mounts[i]);
	if (!want)
		return 0;
	_cleanup_close_ int ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return err_set(errno, "open our mount namespace");
	int r = sync_send(sync, SYNC_MOUNT_SOURCES, NULL, 0, ns);
	if (r < 0)
		return err_set(-r, "ask the runtime for the bind mount sources");
	for (size_t k = 0; k < want; k++) {
		struct sync_msg m;
		struct sync_mount_source ms;
		if ((r = expect_stashing(sync, SYNC_MOUNT_SOURCE, &m)) < 0)
			return r;
		if (m.len == sizeof ms)
			memcpy(&ms, m.data, sizeof ms);
		if (m.len != sizeof ms || ms.index >= s->n_mounts || !rootfs_mount_is_bind(&s->mounts[ms.index]) ||
		    mm->source[ms.index] >= 0 || mm->source_err[ms.index] || (ms.err && m.fd >= 0)) {
			sync_msg_clear(&m);
			return err_set(EPROTO, "bad bind mount source from the runtime");
		}
		mm->source[ms.index] = m.fd;
		mm->source_err[ms.index] = ms.err;
		m.fd = -1;
		sync_msg_clear(&m);
	}
	return 0;
}

/* create: the container's root file system, its devices and terminal,
 * the createRuntime and createContainer hooks, pivot_root, sysctls and
 * names. *ret_slave: the pty slave when process.terminal. */
static int setup_container(int sync, oci_spec *s, const struct init_opts *o, int *ret_slave)
{
	int r;
	/* In a user namespace, ours or the one a rootless runtime runs in
	 * (podman's), devices cannot be created and sysfs may not mount. */
	bool userns = (o->flags & INIT_USERNS) || userns_rootless();
	_cleanup_close_ int rootfd = -1;
	_cleanup_close_ int slave = -1;
	_cleanup_(rootfs_mounts_clear) rootfs_mounts mm = { 0 };
	if ((r = rootfs_prepare(s, o->flags & INIT_MOUNTNS, &rootfd)) < 0)
		return r;
	if ((r = rootfs_mounts_init(&mm, s->n_mounts)) < 0)
		return r;
	if ((o->flags & INIT_MOUNT_SOURCES) && (r = receive_mount_sources(sync, s, &mm)) < 0)
		return r;
	if ((r = rootfs_mount_all(s, rootfd, userns, o->flags & INIT_CGROUPNS, &mm)) < 0)
		return r;
	char slave_path[64] = "";
	if (s->process.terminal) {
		if (o->console_fd < 0)
			return err_set(0, "process.terminal is true but no console socket was given (--console-socket)");
		if ((r = console_create(s, rootfd, o->console_fd, &slave)) < 0)
			return r;
		snprintf(slave_path, sizeof slave_path, "/proc/self/fd/%d", slave);
		close(o->console_fd);
	}
	if ((r = rootfs_devices(s, rootfd, userns, slave >= 0 ? slave_path : NULL)) < 0)
		return r;
	if (o->flags & INIT_WANT_HOOKS) {
		if ((r = sync_send(sync, SYNC_HOOKS, NULL, 0, -1)) < 0)
			return err_set(-r, "ask the runtime to run hooks");
		struct sync_msg m;
		if ((r = expect_stashing(sync, SYNC_HOOKS_DONE, &m)) < 0)
			return r;
		sync_msg_clear(&m);
	}
	/* createContainer hooks run in the rootfs, as under runc: hooks that
	 * use relative paths find the container's files. */
	if (s->hooks[HOOK_CREATE_CONTAINER].n && fchdir(rootfd) < 0)
		return err_set(errno, "chdir into root.path '%s'", s->root_path);
	if ((r = run_container_hooks(s, HOOK_CREATE_CONTAINER, o, "creating")) < 0)
		return r;
	if ((r = rootfs_pivot(s, rootfd, o->flags & INIT_NO_PIVOT, o->flags & INIT_MOUNTNS)) < 0)
		return r;
	if ((r = apply_sysctl(s)) < 0 || (r = set_names(s)) < 0)
		return r;
	if ((r = rootfs_finalize(s, &mm)) < 0)
		return r;
	if (s->process.cwd) {
		struct stat st;
		if (stat(s->process.cwd, &st) < 0 && mkdir_p(s->process.cwd, 0755) < 0)
			return err_wrap(-ENOENT, "process.cwd");
	}
	*ret_slave = TAKE_FD(slave);
	return 0;
}

/* exec: already in the container's namespaces (slow_enter), / is its
 * root; only a terminal to make. */
static int setup_exec(oci_spec *s, const struct init_opts *o, int *ret_slave)
{
	if (!s->process.terminal)
		return 0;
	if (o->console_fd < 0)
		return err_set(0, "process.terminal is true but no console socket was given (--console-socket)");
	_cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set(errno, "open /");
	int r = console_create(s, rootfd, o->console_fd, ret_slave);
	if (r < 0)
		return r;
	close(o->console_fd);
	return 0;
}

/* Both: rlimits, scheduling, the compiled seccomp filter (loaded later),
 * and the process's session: the terminal as its controlling terminal, or
 * a session of its own. */
static int setup_process(int sync, oci_spec *s, const struct init_opts *o, int slave, seccomp_prog *prog,
			 bool *prog_loaded)
{
	int r;
	if ((r = process_set_rlimits(s)) < 0 || (r = process_set_sched(s)) < 0)
		return r;
	if (o->flags & INIT_SECCOMP) {
		struct sync_msg m;
		if (stashed_seccomp.data) {
			m = stashed_seccomp;
			stashed_seccomp.data = NULL;
		} else if ((r = expect_stashing(sync, SYNC_SECCOMP, &m)) < 0) {
			return r;
		}
		r = seccomp_prog_from_blob(m.data, m.len, prog);
		sync_msg_clear(&m);
		if (r < 0)
			return r;
		*prog_loaded = true;
	}
	if (slave >= 0) {
		if ((r = console_attach(slave)) < 0)
			return r;
		/* The process must be able to reopen its own terminal (gpg,
		 * script, password prompts): the pty is its user's, in the
		 * group devpts gave it (gid= of the mount, tty). */
		if (fchown(slave, s->process.uid, (gid_t)-1) < 0)
			return err_set(errno, "process.terminal: give the pty to uid %u", (unsigned)s->process.uid);
	} else if (setsid() < 0) {
		/* Its own session, as with a terminal (CRIU refuses a session
		 * leader outside the pid namespace). For exec, the caller's
		 * terminal must not stay its controlling terminal: TIOCSTI on
		 * it would type into the admin's shell. */
		return err_set(errno, "setsid");
	}
	return 0;
}

static int init_setup(int sync, oci_spec *s, const struct init_opts *o, seccomp_prog *prog, bool *prog_loaded)
{
	_cleanup_close_ int slave = -1;
	int r = (o->flags & INIT_EXEC) ? setup_exec(s, o, &slave) : setup_container(sync, s, o, &slave);
	return r < 0 ? r : setup_process(sync, s, o, slave, prog, prog_loaded);
}

/* chdir into process.cwd. A cwd reached through a leaked fd would lie
 * outside the root (CVE-2024-21626): the kernel then reports it
 * unreachable. With ret_done, a refused chdir is left for a second try as
 * the container's user (*ret_done false); without it, it is an error. */
static int enter_cwd(const char *cwd, bool *ret_done)
{
	if (chdir(cwd) < 0) {
		if (ret_done && (errno == EACCES || errno == EPERM)) {
			*ret_done = false;
			return 0;
		}
		return err_set(errno, "process.cwd: chdir '%s'", cwd);
	}
	char buf[PATH_MAX];
	errno = 0;
	if (!getcwd(buf, sizeof buf) || buf[0] != '/')
		return err_set(errno ? errno : EPERM, "process.cwd: '%s' is outside the container", cwd);
	if (ret_done)
		*ret_done = true;
	return 0;
}

/* Load the seccomp filter; a listener fd (SCMP_ACT_NOTIFY) goes to the
 * runtime before create or exec returns. */
static int install_filter(int sync, seccomp_prog *prog)
{
	if (!prog->needs_listener)
		return seccomp_install(prog, NULL);
	int lfd = -1;
	int r = seccomp_install(prog, &lfd);
	if (r < 0)
		return r;
	r = sync_send(sync, SYNC_LISTENER, NULL, 0, lfd);
	close(lfd);
	return r < 0 ? err_set(-r, "send the seccomp listener to the runtime") : 0;
}

int container_init_main(int sync)
{
	struct sync_msg cfg = { 0 }, om = { 0 };
	struct init_opts o = { .fifo_fd = -1, .status_fd = -1, .console_fd = -1, .exe_fd = -1 };
	_cleanup_free_ char *exe = NULL;
	char **env = NULL; /* process.env + HOME; lives until execve */
	oci_spec *s = NULL;
	seccomp_prog prog = { 0 };
	bool prog_loaded = false;
	int r;

	/* The runtime may have blocked or ignored signals (run forwards them);
	 * the container process starts with defaults. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if ((r = sync_expect(sync, SYNC_CONFIG, &cfg)) < 0 || (r = sync_expect(sync, SYNC_OPTS, &om)) < 0)
		goto fail;
	if (om.len != sizeof o) {
		r = err_set(EPROTO, "bad init options");
		goto fail;
	}
	memcpy(&o, om.data, sizeof o);
	if (o.flags & INIT_SLOW)
		o.exe_fd = -1; /* only the fast path hands the binary's handle on */
	/* Inherited across the re-exec; hooks run from here must not keep them. */
	int mine[] = { sync, o.fifo_fd, o.status_fd, o.console_fd, o.exe_fd };
	for (size_t i = 0; i < ARRAY_SIZE(mine); i++)
		if (mine[i] >= 0)
			(void)fcntl(mine[i], F_SETFD, FD_CLOEXEC);
	for (int t = 0; t < NS__MAX; t++)
		if (o.ns_fds[t] >= 0)
			(void)fcntl(o.ns_fds[t], F_SETFD, FD_CLOEXEC);
	if ((r = spec_parse(cfg.data, cfg.len, "config.json", &s)) < 0)
		goto fail;
	if (s->root_path && s->root_path[0] != '/') {
		char *abs;
		if (asprintf(&abs, "%s/%s", o.bundle, s->root_path) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		free(s->root_path);
		s->root_path = abs;
	}
	if (!s->bundle)
		s->bundle = strdup(o.bundle);
	/* exec: the container's process.oomScoreAdj, not the caller's (a
	 * kubelet's containerd runs at -999). Set here, on the host's /proc,
	 * and inherited by the fork into the pid namespace. */
	if ((o.flags & INIT_EXEC) && s->process.oom_score_adj.has) {
		char val[32];
		snprintf(val, sizeof val, "%lld", (long long)s->process.oom_score_adj.v);
		if ((r = write_str("/proc/self/oom_score_adj", val)) < 0) {
			err_wrap(r, "process.oomScoreAdj");
			goto fail;
		}
	}
	/* exec, or create into a pid namespace joined by path: processes of
	 * the container will see this one (after slow_enter's fork) before it
	 * runs the container's command. Non-dumpable, with an image that
	 * belongs to the host's user namespace, it cannot be ptraced by them
	 * nor its /proc/PID/{root,cwd,fd,mem,environ} opened. */
	if ((o.flags & (INIT_EXEC | INIT_SHARED_PIDNS)) && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r = err_set(errno, "prctl(PR_SET_DUMPABLE)");
		goto fail;
	}
	if ((o.flags & INIT_SLOW) && (r = slow_enter(sync, s, &o)) < 0)
		goto fail;
	if ((r = init_setup(sync, s, &o, &prog, &prog_loaded)) < 0)
		goto fail;
	if ((r = process_find_executable(s, &exe)) < 0 || (r = process_env(s, &env)) < 0)
		goto fail;
	if (s->process.umask.has)
		umask((mode_t)s->process.umask.v);
	/* Before the filter goes in: profiles need not allow close_range. */
	if ((r = seal_fds(o.preserve_fds)) < 0)
		goto fail;
	/* The working directory is entered while still privileged, so that
	 * a user may start in a directory only root can search (runc does
	 * the same); where root cannot enter it (root_squash), it is tried
	 * again as the user. */
	const char *cwd = s->process.cwd ? s->process.cwd : "/";
	bool cwd_done = false;
	if ((r = enter_cwd(cwd, &cwd_done)) < 0)
		goto fail;
	bool nnp = s->process.no_new_privileges;
	/* Without no_new_privs the filter needs CAP_SYS_ADMIN: it goes in
	 * before the capabilities go; with it, as late as possible, so that
	 * the profile need allow only what runs after it. */
	if (prog_loaded && !nnp) {
		if ((r = install_filter(sync, &prog)) < 0)
			goto fail;
		prog_loaded = false;
	}
	if ((r = process_set_user_and_caps(s, o.flags & INIT_USERNS)) < 0)
		goto fail;
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = err_set(errno, "process.noNewPrivileges");
		goto fail;
	}
	if (!cwd_done && (r = enter_cwd(cwd, NULL)) < 0)
		goto fail;
	if (prog_loaded && (r = install_filter(sync, &prog)) < 0)
		goto fail;
	if (!(o.flags & INIT_EXEC)) {
		if ((r = sync_send(sync, SYNC_READY, NULL, 0, -1)) < 0) {
			r = err_set(-r, "tell the runtime the container is created");
			goto fail;
		}
		close(sync);
		sync = -1;
		/* The runtime records the state meanwhile (container.c, send_config). */
		if (o.exe_fd >= 0)
			close(o.exe_fd);
		o.exe_fd = -1;
		sync_msg_clear(&cfg);
		sync_msg_clear(&om);
		/* Created: everything below runs after `start`. */
		if ((r = wait_for_start(o.fifo_fd)) < 0)
			goto fail;
		close(o.fifo_fd);
		if ((r = run_container_hooks(s, HOOK_START_CONTAINER, &o, "created")) < 0)
			goto fail;
	}
	/* exec: the sync socket closes at execve, which tells the runtime. */
	char *empty_env[] = { NULL };
	execve(exe, s->process.args, env ? env : s->process.env ? s->process.env : empty_env);
	r = err_set(errno, "exec '%s'", exe);
fail:
	if (sync >= 0) {
		sync_send_error(sync);
	} else {
		/* After start: `start` reads this from the status fifo. */
		const char *msg = err_msg();
		if (o.status_fd < 0 || write(o.status_fd, msg, strlen(msg)) < 0)
			fprintf(stderr, "isola-oci init: %s\n", msg);
	}
	_exit(127);
}
