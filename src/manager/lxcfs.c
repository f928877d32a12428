/* LXCFS: start the daemon on first use, find its files for the instances. */
#include "lxcfs.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>

#define LXCFS_BIN "/usr/bin/lxcfs"
#define FUSE_MAGIC 0x65735546
#define READY_TIMEOUT_MS 5000

const char *lxcfs_dir(void)
{
	const char *e = getenv("ISOLA_LXCFS_DIR");
	return e && *e ? e : LXCFS_DEFAULT_DIR;
}

static bool is_fuse(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && sf.f_type == FUSE_MAGIC;
}

/* Mounted and answering. */
static bool works(const char *dir)
{
	if (!is_fuse(dir))
		return false;
	char path[4096], buf[64];
	snprintf(path, sizeof path, "%s/proc/meminfo", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	return n > 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static pid_t read_pid(const char *dir)
{
	char path[4096], *buf = NULL;
	snprintf(path, sizeof path, "%s.pid", dir);
	if (read_file_at(AT_FDCWD, path, &buf, NULL) < 0)
		return 0;
	pid_t pid = (pid_t)atoi(buf);
	free(buf);
	return pid > 0 ? pid : 0;
}

/* The last lines of <dir>.log, for an error message. */
static void log_tail(const char *dir, char *out, size_t len)
{
	char path[4096], *buf = NULL;
	size_t n = 0;
	out[0] = 0;
	snprintf(path, sizeof path, "%s.log", dir);
	if (read_file_at(AT_FDCWD, path, &buf, &n) < 0)
		return;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	const char *start = n > len - 1 ? buf + n - (len - 1) : buf;
	snprintf(out, len, "%s", start);
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
	free(buf);
}

/* Double fork: lxcfs runs in its own session, not as our child. */
static int spawn(const char *dir)
{
	char pidfile[4096], logfile[4096];
	snprintf(pidfile, sizeof pidfile, "%s.pid", dir);
	snprintf(logfile, sizeof logfile, "%s.log", dir);
	pid_t child = fork();
	if (child < 0)
		return err_set(errno, "fork for lxcfs");
	if (child == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		int in = open("/dev/null", O_RDONLY);
		int out = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
		if (in < 0 || out < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *argv[] = { LXCFS_BIN, "-f", "--enable-loadavg", "--enable-cfs", "-p", pidfile, (char *)dir, NULL };
		char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		execve(LXCFS_BIN, argv, envp);
		_exit(127);
	}
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

int lxcfs_ensure(const char *dir)
{
	if (works(dir))
		return 0;
	if (access(LXCFS_BIN, X_OK) < 0)
		return err_set(ENOENT, "lxcfs is not installed (Debian package lxcfs): %s", LXCFS_BIN);
	int r = mkdir_p(dir, 0755);
	if (r < 0)
		return err_wrap(r, "LXCFS directory '%s'", dir);
	char lockpath[4096];
	snprintf(lockpath, sizeof lockpath, "%s.lock", dir);
	_cleanup_close_ int lock = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0)
		return err_set(errno, "open '%s'", lockpath);
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			return err_set(errno, "lock '%s'", lockpath);
	if (works(dir))
		return 0; /* started by another command meanwhile */
	/* A daemon that died leaves a mount that answers ENOTCONN. */
	if (is_fuse(dir) && umount2(dir, MNT_DETACH) < 0)
		return err_set(errno, "detach the stale LXCFS mount '%s'", dir);
	pid_t old = read_pid(dir);
	if (old > 0)
		(void)kill(old, SIGKILL); /* best effort: a daemon that does not answer */
	if ((r = spawn(dir)) < 0)
		return r;
	for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 20) {
		if (works(dir))
			return 0;
		sleep_ms(20);
	}
	pid_t pid = read_pid(dir);
	if (pid > 0)
		(void)kill(pid, SIGKILL);
	char tail[400];
	log_tail(dir, tail, sizeof tail);
	return err_set(ETIMEDOUT, "lxcfs did not come up on '%s' within %d s: %s", dir, READY_TIMEOUT_MS / 1000,
		       *tail ? tail : "(no output)");
}

int lxcfs_stop(const char *dir)
{
	pid_t pid = read_pid(dir);
	if (pid > 0 && kill(pid, SIGTERM) == 0) {
		int waited = 0;
		while (kill(pid, 0) == 0 && waited < READY_TIMEOUT_MS) {
			sleep_ms(20);
			waited += 20;
		}
		if (waited >= READY_TIMEOUT_MS)
			(void)kill(pid, SIGKILL);
	}
	if (is_fuse(dir) && umount2(dir, MNT_DETACH) < 0)
		return err_set(errno, "unmount '%s'", dir);
	char path[4096];
	snprintf(path, sizeof path, "%s.pid", dir);
	(void)unlink(path);
	return 0;
}

static const struct lxcfs_bind table[] = {
	{ "proc/cpuinfo", "/proc/cpuinfo" },   { "proc/diskstats", "/proc/diskstats" },
	{ "proc/loadavg", "/proc/loadavg" },   { "proc/meminfo", "/proc/meminfo" },
	{ "proc/stat", "/proc/stat" },         { "proc/swaps", "/proc/swaps" },
	{ "proc/uptime", "/proc/uptime" },     { "proc/slabinfo", "/proc/slabinfo" },
	{ "sys/devices/system/cpu/online", "/sys/devices/system/cpu/online" },
};

int lxcfs_binds(const char *dir, struct lxcfs_bind **ret, size_t *ret_n)
{
	struct lxcfs_bind *v = calloc(sizeof table / sizeof *table, sizeof *v);
	if (!v)
		return err_set(ENOMEM, "lxcfs");
	size_t n = 0;
	_cleanup_close_ int dfd = is_fuse(dir) ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	for (size_t i = 0; dfd >= 0 && i < sizeof table / sizeof *table; i++)
		if (faccessat(dfd, table[i].source, F_OK, 0) == 0)
			v[n++] = table[i];
	*ret = v;
	*ret_n = n;
	return 0;
}
