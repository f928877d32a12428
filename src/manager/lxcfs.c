/* LXCFS: start the host's daemon on first use, stop it (tests), and list the
 * files it serves for the instances' bind mounts. */
#include "lxcfs.h"
#include "sandbox/cgroup.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>

#define LXCFS_BIN "/usr/bin/lxcfs"
#define FUSE_SUPER_MAGIC 0x65735546
#define LXCFS_TIMEOUT_MS 5000
#define LOG_TAIL_LINES 3

const char *lxcfs_dir(void)
{
	const char *e = getenv("ISOLA_LXCFS_DIR");
	return e && *e ? e : LXCFS_DEFAULT_DIR;
}

/* The mount point as an absolute path (its parent resolved, the last
 * component kept as is: resolving it would stat a possibly dead FUSE root)
 * and the files next to it. */
struct lxcfs_paths {
	char dir[PATH_MAX];
	char pid[PATH_MAX];
	char log[PATH_MAX];
	char lock[PATH_MAX];
};

/* With create, the parent directories are made (0755). Without, a missing
 * parent is -ENOENT with no message: nothing can be running there. */
static int paths_init(const char *dir, bool create, struct lxcfs_paths *p)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof buf)
		return err_set(len ? ENAMETOOLONG : EINVAL, "LXCFS directory '%s'", dir);
	memcpy(buf, dir, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	char *slash = strrchr(buf, '/');
	const char *base = slash ? slash + 1 : buf;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return err_set(EINVAL, "LXCFS directory '%s': must end in a directory name", dir);
	const char *parent = ".";
	if (slash == buf)
		parent = "/";
	else if (slash) {
		*slash = '\0';
		parent = buf;
	}
	int r;
	if (create && strcmp(parent, "/") && strcmp(parent, ".") && (r = mkdir_p(parent, 0755)) < 0)
		return err_wrap(r, "LXCFS directory '%s'", dir);
	char real[PATH_MAX];
	if (!realpath(parent, real)) {
		if (!create && (errno == ENOENT || errno == ENOTDIR))
			return -ENOENT;
		return err_set(errno, "LXCFS directory '%s': resolve '%s'", dir, parent);
	}
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (!create)
			return -ENOENT;
		return err_set(ENOTDIR, "LXCFS directory '%s': parent '%s'", dir, real);
	}
	const char *sep = strcmp(real, "/") ? "/" : "";
	if ((size_t)snprintf(p->dir, sizeof p->dir, "%s%s%s", real, sep, base) >= sizeof p->dir ||
	    (size_t)snprintf(p->pid, sizeof p->pid, "%s.pid", p->dir) >= sizeof p->pid ||
	    (size_t)snprintf(p->log, sizeof p->log, "%s.log", p->dir) >= sizeof p->log ||
	    (size_t)snprintf(p->lock, sizeof p->lock, "%s.lock", p->dir) >= sizeof p->lock)
		return err_set(ENAMETOOLONG, "LXCFS directory '%s'", dir);
	return 0;
}

enum mount_state {
	MOUNT_NONE,    /* not a FUSE mount */
	MOUNT_STALE,   /* FUSE, but its daemon is gone or does not answer */
	MOUNT_WORKING, /* FUSE and proc/meminfo reads */
};

static enum mount_state mount_state(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf) < 0)
		/* A FUSE mount whose daemon died fails every call with ENOTCONN. */
		return errno == ENOTCONN || errno == ECONNABORTED ? MOUNT_STALE : MOUNT_NONE;
	if (sf.f_type != FUSE_SUPER_MAGIC)
		return MOUNT_NONE;
	char path[PATH_MAX + 16], buf[64];
	snprintf(path, sizeof path, "%s/proc/meminfo", dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return MOUNT_STALE;
	return read(fd, buf, sizeof buf) > 0 ? MOUNT_WORKING : MOUNT_STALE;
}

/* Detach every FUSE mount stacked on dir. Whatever is below stays. */
static int detach_mounts(const char *dir)
{
	for (int i = 0; i < 16 && mount_state(dir) != MOUNT_NONE; i++)
		if (umount2(dir, MNT_DETACH) < 0) {
			if (errno == EINVAL) /* not a mount point after all */
				return 0;
			return err_set(errno, "detach the LXCFS mount '%s'", dir);
		}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Alive and not a zombie: the daemon is not our child, so whoever reaps it
 * (init, a subreaper) may take a while. */
static bool pid_alive(pid_t pid)
{
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	char path[64];
	_cleanup_free_ char *stat = NULL;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int r = read_file_at(AT_FDCWD, path, &stat, NULL);
	if (r < 0)
		return r != -ENOENT && r != -ESRCH;
	const char *end = strrchr(stat, ')');
	return !(end && end[1] == ' ' && (end[2] == 'Z' || end[2] == 'X'));
}

/* Wait up to ms for pid to go; true when it went. */
static bool wait_gone(pid_t pid, long ms)
{
	long deadline = now_ms() + ms;
	while (pid_alive(pid)) {
		if (now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

/* The pid in <dir>.pid, or 0. */
static pid_t read_pid(const struct lxcfs_paths *p)
{
	_cleanup_free_ char *buf = NULL;
	if (read_file_at(AT_FDCWD, p->pid, &buf, NULL) < 0)
		return 0;
	char *end;
	errno = 0;
	long v = strtol(buf, &end, 10);
	if (errno || end == buf || v <= 1 || v > INT_MAX)
		return 0;
	return (pid_t)v;
}

/* A pid file outlives its daemon and the pid may be reused: signal only an
 * lxcfs serving this directory (argv[0] is lxcfs, the last argument dir). */
static bool pid_is_lxcfs_for(pid_t pid, const char *dir)
{
	char path[64];
	_cleanup_free_ char *cmd = NULL;
	size_t len = 0;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if (read_file_at(AT_FDCWD, path, &cmd, &len) < 0 || len == 0)
		return false;
	const char *argv0 = strrchr(cmd, '/');
	argv0 = argv0 ? argv0 + 1 : cmd;
	if (strcmp(argv0, "lxcfs"))
		return false;
	while (len > 0 && cmd[len - 1] == '\0')
		len--;
	size_t start = len;
	while (start > 0 && cmd[start - 1] != '\0')
		start--;
	return len > start && !strcmp(cmd + start, dir);
}

/* Stop the daemon <dir>.pid names: SIGTERM, SIGKILL after ms. lxcfs
 * unmounts at once on SIGTERM, but its loadavg thread takes up to 5 s more
 * to notice; once the mount is gone SIGKILL loses nothing, so it does not
 * wait for that. ms == 0: SIGKILL straight away. */
static void stop_recorded(const struct lxcfs_paths *p, long ms)
{
	pid_t pid = read_pid(p);
	if (pid <= 0 || !pid_is_lxcfs_for(pid, p->dir))
		return;
	if (ms > 0 && kill(pid, SIGTERM) == 0) {
		long deadline = now_ms() + ms, unmounted = 0;
		while (pid_alive(pid)) {
			long now = now_ms();
			if (!unmounted && mount_state(p->dir) == MOUNT_NONE)
				unmounted = now;
			if (now >= deadline || (unmounted && now - unmounted >= 200))
				break;
			sleep_ms(10);
		}
		if (!pid_alive(pid))
			return;
	}
	(void)kill(pid, SIGKILL); /* best effort: it may just have exited */
	(void)wait_gone(pid, 1000);
}

/* "line; line; line": the last lines of <dir>.log, for an error message. */
static void log_tail(const struct lxcfs_paths *p, char *out, size_t size)
{
	out[0] = '\0';
	_cleanup_close_ int fd = open(p->log, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[2048];
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)(sizeof buf - 1) : 0;
	ssize_t n = pread(fd, buf, sizeof buf - 1, from);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* Walk back over LOG_TAIL_LINES non-empty lines. */
	char *start = buf + n;
	for (int lines = 0; start > buf && lines < LOG_TAIL_LINES;) {
		while (start > buf && (start[-1] == '\n' || start[-1] == '\r'))
			start--;
		if (start == buf)
			break;
		while (start > buf && start[-1] != '\n')
			start--;
		lines++;
	}
	size_t o = 0;
	for (const char *s = start; *s && o + 3 < size; s++) {
		if (*s == '\r')
			continue;
		if (*s == '\n') {
			if (o && s[1])
				out[o++] = ';', out[o++] = ' ';
			continue;
		}
		out[o++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	}
	while (o && (out[o - 1] == ' ' || out[o - 1] == ';'))
		o--;
	out[o] = '\0';
}

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	for (int fd = lowfd; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
		(void)close(fd);
}

/* LXCFS does the work of every instance's reads, outside their cgroups: an
 * instance capped at 0.5 CPU reading /proc/meminfo in a loop kept it busy at
 * about 0.8 CPU. Its own cgroup bounds what all instances together can make
 * it spend: an eighth of the host's CPUs, at least half a CPU (a top
 * refreshing every second costs it about 1 ms). */
#define LXCFS_CGROUP "/isola-lxcfs"
#define LXCFS_CPU_PERIOD 100000

static void cgroup_procs_path(const char *root, char *buf, size_t size)
{
	if (snprintf(buf, size, "%s%s/cgroup.procs", root, LXCFS_CGROUP) >= (int)size)
		buf[0] = '\0'; /* too long: opens nothing */
}

/* The hierarchy roots: /sys/fs/cgroup on cgroup v2, each v1 mount (and the
 * hybrid cgroup2 one) below it otherwise. */
static size_t cgroup_roots(char roots[][PATH_MAX], size_t max)
{
	size_t n = 0;
	if (access("/sys/fs/cgroup/cgroup.procs", F_OK) == 0) {
		snprintf(roots[n++], PATH_MAX, "/sys/fs/cgroup");
		return n;
	}
	_cleanup_closedir_ DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max)
		if (e->d_name[0] != '.' && e->d_type == DT_DIR)
			snprintf(roots[n++], PATH_MAX, "/sys/fs/cgroup/%s", e->d_name);
	return n;
}

/* The daemon's cgroup, made and capped; the cgroup.procs files to join it,
 * opened for writing (in the root cgroups where it cannot be made). The
 * daemon serves the whole host: it must not stay in the cgroup of the
 * command that started it (an instance's monitor, when it repairs). */
static size_t open_daemon_cgroups(int fds[], size_t max)
{
	char roots[32][PATH_MAX];
	size_t nroots = cgroup_roots(roots, max < 32 ? max : 32), n = 0;
	cgroup *cg = NULL;
	bool own = cgroup_create(LXCFS_CGROUP, NULL, &cg) == 0;
	if (own) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		int64_t quota = (int64_t)(cpus > 4 ? cpus : 4) * LXCFS_CPU_PERIOD / 8;
		spec_resources r = { .present = true };
		r.cpu.quota = (opt_i64){ true, quota };
		r.cpu.period = (opt_u64){ true, LXCFS_CPU_PERIOD };
		own = cgroup_apply(cg, &r) == 0;
		cgroup_free(cg);
	}
	err_clear(); /* without its own cgroup the daemon still works */
	for (size_t i = 0; i < nroots; i++) {
		char path[PATH_MAX + 64];
		if (own)
			cgroup_procs_path(roots[i], path, sizeof path);
		else if (snprintf(path, sizeof path, "%s/cgroup.procs", roots[i]) >= (int)sizeof path)
			path[0] = '\0'; /* too long: opens nothing */
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			fds[n++] = fd;
	}
	return n;
}

/* The daemon's cgroup goes with the last daemon in it. */
static void remove_daemon_cgroups(void)
{
	char roots[32][PATH_MAX];
	size_t n = cgroup_roots(roots, 32);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof path, "%s%s", roots[i], LXCFS_CGROUP);
		(void)rmdir(path); /* busy while another daemon runs there */
	}
}

/* Start `lxcfs -f` on dir in a grandchild in a session of its own (not our
 * child, process group or session), stdin /dev/null, output in <dir>.log,
 * no other fds, in its own cgroup. Only async-signal-safe calls after
 * fork: the caller may have threads. */
static int spawn(const struct lxcfs_paths *p, pid_t *ret_pid)
{
	_cleanup_close_ int null = open("/dev/null", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (null < 0)
		return err_set(errno, "open '/dev/null'");
	_cleanup_close_ int log = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
	if (log < 0)
		return err_set(errno, "open '%s'", p->log);
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(errno, "pipe for lxcfs on '%s'", p->dir);
	_cleanup_close_ int rd = pipefd[0], wr = pipefd[1];
	char *argv[] = { LXCFS_BIN, "-f", "--enable-loadavg", "--enable-cfs", "-p", (char *)p->pid, (char *)p->dir, NULL };
	char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL };
	int roots[32];
	size_t nroots = open_daemon_cgroups(roots, ARRAY_SIZE(roots));

	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		for (size_t i = 0; i < nroots; i++)
			close(roots[i]);
		return err_set(e, "fork for lxcfs on '%s'", p->dir);
	}
	if (child == 0) {
		if (setsid() < 0)
			_exit(127);
		pid_t daemon = fork();
		if (daemon != 0) {
			/* -1 tells the parent the fork failed */
			_exit(write(wr, &daemon, sizeof daemon) == sizeof daemon ? 0 : 127);
		}
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		for (int sig = 1; sig < NSIG; sig++)
			(void)sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and RT internals refuse */
		sigset_t none;
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		for (size_t i = 0; i < nroots; i++)
			(void)!write(roots[i], "0", 1); /* best effort */
		if (dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(127);
		close_from(3);
		if (chdir("/") < 0) /* do not pin the caller's working directory */
			_exit(127);
		execve(LXCFS_BIN, argv, envp);
		static const char msg[] = "isola: cannot execute " LXCFS_BIN "\n";
		(void)!write(2, msg, sizeof msg - 1);
		_exit(127);
	}
	close(TAKE_FD(wr));
	for (size_t i = 0; i < nroots; i++)
		close(roots[i]);
	pid_t daemon = -1;
	ssize_t n;
	while ((n = read(rd, &daemon, sizeof daemon)) < 0 && errno == EINTR)
		;
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof daemon || daemon <= 0)
		return err_set(n == sizeof daemon ? EAGAIN : ECHILD, "start lxcfs on '%s'", p->dir);
	*ret_pid = daemon;
	return 0;
}

/* Wait for the new daemon to serve dir; on failure kill it and quote its log. */
static int wait_ready(const struct lxcfs_paths *p, pid_t pid)
{
	long deadline = now_ms() + LXCFS_TIMEOUT_MS, delay = 5;
	bool exited = false;
	for (;;) {
		if (mount_state(p->dir) == MOUNT_WORKING)
			return 0;
		if (!pid_alive(pid)) {
			exited = true;
			break;
		}
		if (now_ms() >= deadline)
			break;
		sleep_ms(delay);
		if (delay < 50)
			delay *= 2;
	}
	if (!exited) {
		(void)kill(pid, SIGKILL); /* best effort: it may exit on its own meanwhile */
		(void)wait_gone(pid, 1000);
	}
	(void)detach_mounts(p->dir); /* best effort: the error below matters more */
	(void)unlink(p->pid);
	char tail[1024];
	log_tail(p, tail, sizeof tail);
	if (exited) {
		(void)err_set(0, "lxcfs exited before serving '%s'; %s ends: %s", p->dir, p->log,
			      *tail ? tail : "(empty)");
		return -EIO;
	}
	(void)err_set(0, "lxcfs did not serve '%s' within %d s; %s ends: %s", p->dir, LXCFS_TIMEOUT_MS / 1000,
		      p->log, *tail ? tail : "(empty)");
	return -ETIMEDOUT;
}

/* Serialize check-and-start and stop between commands: flock on <dir>.lock,
 * released when the returned fd is closed. */
static int lock_dir(const struct lxcfs_paths *p)
{
	_cleanup_close_ int fd = open(p->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(errno, "open '%s'", p->lock);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return err_set(errno, "lock '%s'", p->lock);
	return TAKE_FD(fd);
}

int lxcfs_ensure(const char *dir)
{
	struct lxcfs_paths p;
	int r = paths_init(dir, true, &p);
	if (r < 0)
		return r;
	if (mount_state(p.dir) == MOUNT_WORKING)
		return 0;
	if (access(LXCFS_BIN, X_OK) < 0)
		return err_set(ENOENT, "LXCFS directory '%s': lxcfs is not installed (Debian package lxcfs): %s",
			       p.dir, LXCFS_BIN);
	_cleanup_close_ int lock = lock_dir(&p);
	if (lock < 0)
		return lock;
	if (mount_state(p.dir) == MOUNT_WORKING)
		return 0; /* another command started it while we waited for the lock */
	/* A daemon that hangs, or a mount whose daemon died (reads fail with
	 * ENOTCONN): clear both before starting afresh. */
	stop_recorded(&p, 0);
	if ((r = detach_mounts(p.dir)) < 0)
		return r;
	if (mkdir(p.dir, 0755) < 0 && errno != EEXIST)
		return err_set(errno, "LXCFS directory '%s': mkdir", p.dir);
	pid_t pid = -1;
	if ((r = spawn(&p, &pid)) < 0)
		return r;
	return wait_ready(&p, pid);
}

int lxcfs_pid_path(const char *dir, char *buf, size_t size)
{
	struct lxcfs_paths p;
	int r = paths_init(dir, false, &p);
	if (r < 0)
		return r == -ENOENT ? err_set(ENOENT, "LXCFS directory '%s': no parent directory", dir) : r;
	if ((size_t)snprintf(buf, size, "%s", p.pid) >= size)
		return err_set(ENAMETOOLONG, "LXCFS directory '%s'", dir);
	return 0;
}

int lxcfs_stop(const char *dir)
{
	struct lxcfs_paths p;
	int r = paths_init(dir, false, &p);
	if (r == -ENOENT)
		return 0; /* no parent directory, nothing can run there */
	if (r < 0)
		return r;
	_cleanup_close_ int lock = lock_dir(&p);
	if (lock < 0)
		return lock;
	stop_recorded(&p, LXCFS_TIMEOUT_MS);
	remove_daemon_cgroups();
	if ((r = detach_mounts(p.dir)) < 0)
		return r;
	if (unlink(p.pid) < 0 && errno != ENOENT)
		return err_set(errno, "remove '%s'", p.pid);
	return 0;
}

static const struct lxcfs_bind bind_table[] = {
	{ "proc/cpuinfo", "/proc/cpuinfo" },
	{ "proc/diskstats", "/proc/diskstats" },
	{ "proc/loadavg", "/proc/loadavg" },
	{ "proc/meminfo", "/proc/meminfo" },
	{ "proc/stat", "/proc/stat" },
	{ "proc/swaps", "/proc/swaps" },
	{ "proc/uptime", "/proc/uptime" },
	{ "proc/slabinfo", "/proc/slabinfo" },
	{ "sys/devices/system/cpu/online", "/sys/devices/system/cpu/online" },
};

/* Only from a FUSE mount: files someone left in a plain directory must not
 * end up over an instance's /proc. No mount, no binds (not an error). */
int lxcfs_binds(const char *dir, struct lxcfs_bind **ret, size_t *ret_n)
{
	_cleanup_free_ struct lxcfs_bind *v = calloc(ARRAY_SIZE(bind_table), sizeof *v);
	if (!v)
		return err_set(ENOMEM, "LXCFS directory '%s': binds", dir);
	size_t n = 0;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct statfs sf;
	if (dfd >= 0 && fstatfs(dfd, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC)
		for (size_t i = 0; i < ARRAY_SIZE(bind_table); i++)
			if (faccessat(dfd, bind_table[i].source, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				v[n++] = bind_table[i];
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* ---- repair: LXCFS's files mounted again in a running instance ---------------- */

#define REBIND_TIMEOUT_MS 5000

/* In the instance's mount namespace (a child that joined it): the mounts on
 * target whose FUSE connection is dead (ENOTCONN) are detached and the new
 * daemon's file (tree, a detached mount) goes there. The parent directory
 * must still be the proc or sys file system the init mounted: a tenant's
 * own mount there (its FUSE server, say) is left alone. Returns 1 when
 * repaired, 0 when there was nothing to do. */
static int rebind_one(const char *target, int tree)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", target);
	*strrchr(parent, '/') = '\0';
	struct statfs sf;
	if (statfs(parent, &sf) < 0 || (sf.f_type != PROC_SUPER_MAGIC && sf.f_type != SYSFS_MAGIC))
		return -ENOTDIR;
	int dead = 0;
	for (int i = 0; i < 16; i++) {
		if (statfs(target, &sf) == 0 || (errno != ENOTCONN && errno != ECONNABORTED))
			break;
		if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return -errno;
		dead++;
	}
	if (!dead)
		return 0;
	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	return 1;
}

int lxcfs_rebind(const char *dir, pid_t init, unsigned *ret_repaired)
{
	struct lxcfs_bind *binds = NULL;
	size_t n = 0;
	int r = lxcfs_binds(dir, &binds, &n);
	if (r < 0)
		return r;
	_cleanup_free_ struct lxcfs_bind *b = binds;
	_cleanup_free_ int *trees = calloc(n ? n : 1, sizeof *trees);
	if (!trees)
		return err_set(ENOMEM, "LXCFS repair");
	for (size_t i = 0; i < n; i++)
		trees[i] = -1;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)init);
	_cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0) {
		r = err_set(errno, "LXCFS repair: open %s", path);
		goto out;
	}
	/* The new daemon's files, cloned here where the host's path is open to us. */
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, b[i].source);
		trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (trees[i] < 0) {
			r = err_set(errno, "LXCFS repair: open_tree '%s'", path);
			goto out;
		}
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = err_set(errno, "LXCFS repair: pipe");
		goto out;
	}
	pid_t child = fork();
	if (child < 0) {
		r = err_set(errno, "LXCFS repair: fork");
		close(pfd[0]);
		close(pfd[1]);
		goto out;
	}
	if (child == 0) {
		/* Nothing of the host goes in but the trees: the child holds no
		 * other fd that matters and only touches paths there. */
		int res[2] = { 0, 0 }; /* repaired, first error */
		if (setns(ns, CLONE_NEWNS) < 0)
			res[1] = -errno;
		for (size_t i = 0; i < n && !res[1]; i++) {
			int k = rebind_one(b[i].target, trees[i]);
			if (k > 0)
				res[0]++;
			else if (k < 0 && k != -ENOTDIR)
				res[1] = k;
		}
		_exit(write(pfd[1], res, sizeof res) == sizeof res ? 0 : 1);
	}
	close(pfd[1]);
	int res[2] = { 0, -EIO };
	struct pollfd p = { pfd[0], POLLIN, 0 };
	int ready;
	while ((ready = poll(&p, 1, REBIND_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (ready <= 0) /* stuck on a path of the instance's */
		(void)kill(child, SIGKILL);
	else if (read(pfd[0], res, sizeof res) != sizeof res)
		res[1] = -EIO;
	close(pfd[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (ready <= 0)
		r = err_set(ETIMEDOUT, "LXCFS repair in the namespace of pid %d", (int)init);
	else if (res[1] < 0)
		r = err_set(-res[1], "LXCFS repair in the namespace of pid %d", (int)init);
	else if (ret_repaired)
		*ret_repaired = (unsigned)res[0];
out:
	for (size_t i = 0; i < n; i++)
		if (trees[i] >= 0)
			close(trees[i]);
	return r;
}
