/* LXCFS daemon management against the real lxcfs and FUSE: start, reuse,
 * recovery from a killed daemon, concurrent starts, stop, binds, errors. */
#include "unit.h"
#include "manager/lxcfs.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>

#define FUSE_SUPER_MAGIC 0x65735546

static char base[] = "/tmp/isola-lxcfs-test-XXXXXX";
static char dir[PATH_MAX], bad[PATH_MAX];

#define CHECK_OK(expr) do { int _r = (expr); \
	if (_r < 0) \
		fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, err_msg()); \
	CHECK_INT(_r, 0); \
} while (0)

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Alive and not a zombie waiting for init. */
static bool alive(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *stat = NULL;
	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_file_at(AT_FDCWD, path, &stat, NULL) < 0)
		return false;
	const char *end = strrchr(stat, ')');
	return end && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

static bool gone_within(pid_t pid, long ms)
{
	for (long t = 0; alive(pid); t += 10) {
		if (t >= ms)
			return false;
		sleep_ms(10);
	}
	return true;
}

static int put_file(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(errno, "create '%s'", path);
	return write_all(fd, s, strlen(s));
}

static long fs_type(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 ? (long)sf.f_type : -errno;
}

static pid_t pid_file(const char *d)
{
	char path[PATH_MAX + 8];
	_cleanup_free_ char *buf = NULL;
	snprintf(path, sizeof path, "%s.pid", d);
	if (read_file_at(AT_FDCWD, path, &buf, NULL) < 0)
		return 0;
	return (pid_t)atoi(buf);
}

/* lxcfs processes whose last argument starts with prefix (all of them when
 * kill_sig is set, after sending it); their number. */
static int lxcfs_procs(const char *prefix, bool exact, int kill_sig, pid_t *first)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	int count = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || !alive((pid_t)pid))
			continue;
		char path[64];
		_cleanup_free_ char *cmd = NULL;
		size_t len = 0;
		snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
		if (read_file_at(AT_FDCWD, path, &cmd, &len) < 0 || len == 0)
			continue;
		const char *argv0 = strrchr(cmd, '/');
		if (strcmp(argv0 ? argv0 + 1 : cmd, "lxcfs"))
			continue;
		while (len && cmd[len - 1] == '\0')
			len--;
		size_t s = len;
		while (s && cmd[s - 1] != '\0')
			s--;
		const char *last = cmd + s;
		if (exact ? strcmp(last, prefix) : strncmp(last, prefix, strlen(prefix)))
			continue;
		if (count++ == 0 && first)
			*first = (pid_t)pid;
		if (kill_sig)
			(void)kill((pid_t)pid, kill_sig);
	}
	return count;
}

/* Mounts in our namespace at path (exact) or below prefix. */
static int mounts_at(const char *path, bool below, char *ret_first, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	int n = 0;
	size_t plen = strlen(path);
	while (f && fgets(line, sizeof line, f)) {
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		if (below ? strncmp(mp, path, plen) || (mp[plen] && mp[plen] != '/') : strcmp(mp, path))
			continue;
		if (n++ == 0 && ret_first)
			snprintf(ret_first, size, "%s", mp);
	}
	return n;
}

/* Whatever happened above, leave no daemon, mount or file behind. */
static void cleanup(void)
{
	if (!*dir)
		return;
	(void)lxcfs_stop(dir);
	(void)lxcfs_stop(bad);
	if (lxcfs_procs(base, false, SIGKILL, NULL) > 0)
		fprintf(stderr, "cleanup: killed leftover lxcfs daemons under %s\n", base);
	char mp[4096];
	for (int i = 0; i < 32 && mounts_at(base, true, mp, sizeof mp) > 0; i++) {
		fprintf(stderr, "cleanup: detaching leftover mount %s\n", mp);
		if (umount2(mp, MNT_DETACH) < 0)
			break;
	}
	(void)rm_rf_at(AT_FDCWD, base);
	*dir = '\0';
}

static void test_start_and_reuse(void)
{
	CHECK_OK(lxcfs_ensure(dir));
	CHECK_INT(fs_type(dir), FUSE_SUPER_MAGIC);
	char path[PATH_MAX + 32];
	_cleanup_free_ char *meminfo = NULL;
	snprintf(path, sizeof path, "%s/proc/meminfo", dir);
	CHECK_OK(read_file_at(AT_FDCWD, path, &meminfo, NULL));
	CHECK(meminfo && !strncmp(meminfo, "MemTotal:", 9));

	pid_t pid = pid_file(dir);
	CHECK(pid > 0);
	CHECK(alive(pid));
	/* a daemon of its own: not our child, not in our process group or session */
	CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);
	CHECK(getpgid(pid) != getpgrp());
	CHECK(getsid(pid) != getsid(0));
	CHECK_INT(getsid(pid), getpgid(pid));
	CHECK(getsid(pid) != pid); /* not a session leader: it can never get a terminal */
	snprintf(path, sizeof path, "%s.log", dir);
	CHECK(access(path, F_OK) == 0);

	/* again: the running daemon is kept */
	CHECK_OK(lxcfs_ensure(dir));
	CHECK_INT(pid_file(dir), pid);
	CHECK(alive(pid));
	CHECK_INT(lxcfs_procs(dir, true, 0, NULL), 1);
	CHECK_INT(mounts_at(dir, false, NULL, 0), 1);
}

static void test_binds(void)
{
	static const char *const want[][2] = {
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
	struct lxcfs_bind *b = NULL;
	size_t n = 0;
	CHECK_OK(lxcfs_binds(dir, &b, &n));
	CHECK_INT(n, ARRAY_SIZE(want));
	for (size_t i = 0; b && i < n && i < ARRAY_SIZE(want); i++) {
		CHECK_STR(b[i].source, want[i][0]);
		CHECK_STR(b[i].target, want[i][1]);
	}
	free(b);

	/* a plain directory, even with the files in it, gives nothing */
	char plain[PATH_MAX];
	snprintf(plain, sizeof plain, "%s/plain/proc", base);
	CHECK_OK(mkdir_p(plain, 0755));
	snprintf(plain, sizeof plain, "%s/plain/proc/meminfo", base);
	CHECK_OK(put_file(plain, "MemTotal: 1 kB\n"));
	snprintf(plain, sizeof plain, "%s/plain", base);
	b = NULL;
	n = 99;
	CHECK_OK(lxcfs_binds(plain, &b, &n));
	CHECK_INT(n, 0);
	free(b);
}

static void test_recover_killed(void)
{
	pid_t old = pid_file(dir);
	CHECK(old > 0 && kill(old, SIGKILL) == 0);
	CHECK(gone_within(old, 5000));
	long stale = fs_type(dir); /* the daemon's end of the FUSE connection is gone */
	CHECK(stale == -ENOTCONN || stale == -ECONNABORTED);

	CHECK_OK(lxcfs_ensure(dir));
	pid_t pid = pid_file(dir);
	CHECK(pid > 0 && pid != old);
	CHECK(alive(pid));
	CHECK_INT(fs_type(dir), FUSE_SUPER_MAGIC);
	char path[PATH_MAX + 32];
	_cleanup_free_ char *meminfo = NULL;
	snprintf(path, sizeof path, "%s/proc/meminfo", dir);
	CHECK_OK(read_file_at(AT_FDCWD, path, &meminfo, NULL));
	CHECK(meminfo && !strncmp(meminfo, "MemTotal:", 9));
	CHECK_INT(lxcfs_procs(dir, true, 0, NULL), 1);
	CHECK_INT(mounts_at(dir, false, NULL, 0), 1); /* the stale one was detached */
}

static void test_stop(void)
{
	pid_t pid = pid_file(dir);
	CHECK(pid > 0);
	CHECK_OK(lxcfs_stop(dir));
	CHECK(fs_type(dir) != FUSE_SUPER_MAGIC);
	CHECK(fs_type(dir) > 0);
	CHECK(gone_within(pid, 1000));
	CHECK_INT(pid_file(dir), 0);
	CHECK_INT(mounts_at(dir, false, NULL, 0), 0);
	CHECK_INT(lxcfs_procs(dir, true, 0, NULL), 0);
	/* nothing running: still fine */
	CHECK_OK(lxcfs_stop(dir));
	char never[PATH_MAX];
	snprintf(never, sizeof never, "%s/no/such/lxcfs", base);
	CHECK_OK(lxcfs_stop(never));
}

/* Several commands at once start one daemon. */
static void test_concurrent(void)
{
	enum { N = 4 };
	pid_t kids[N];
	for (int i = 0; i < N; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			int r = lxcfs_ensure(dir);
			if (r < 0)
				fprintf(stderr, "child %d: %s\n", i, err_msg());
			fflush(NULL);
			_exit(r < 0 ? 1 : 0);
		}
		CHECK(kids[i] > 0);
	}
	for (int i = 0; i < N; i++) {
		int status = -1;
		if (kids[i] > 0)
			CHECK(waitpid(kids[i], &status, 0) == kids[i] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	pid_t first = 0;
	CHECK_INT(lxcfs_procs(dir, true, 0, &first), 1);
	CHECK_INT(pid_file(dir), first);
	CHECK_INT(mounts_at(dir, false, NULL, 0), 1);
	CHECK_INT(fs_type(dir), FUSE_SUPER_MAGIC);
	CHECK_OK(lxcfs_stop(dir));
	CHECK_INT(lxcfs_procs(dir, true, 0, NULL), 0);
	CHECK_INT(mounts_at(dir, false, NULL, 0), 0);
}

static void test_errors(void)
{
	/* the parent is a regular file */
	char file[PATH_MAX], path[PATH_MAX + 16];
	snprintf(file, sizeof file, "%s/file", base);
	CHECK_OK(put_file(file, "x"));
	snprintf(path, sizeof path, "%s/lxcfs", file);
	err_clear();
	CHECK_INT(lxcfs_ensure(path), -ENOTDIR);
	CHECK_CONTAINS(err_msg(), path);
	snprintf(path, sizeof path, "%s/sub/lxcfs", file);
	CHECK(lxcfs_ensure(path) < 0);
	CHECK_CONTAINS(err_msg(), path);

	/* lxcfs that cannot start (its pid file is a directory): the error
	 * quotes its log and nothing stays behind */
	char pidpath[PATH_MAX + 8];
	snprintf(pidpath, sizeof pidpath, "%s.pid", bad);
	CHECK_OK(mkdir_p(pidpath, 0755));
	err_clear();
	CHECK(lxcfs_ensure(bad) < 0);
	CHECK_CONTAINS(err_msg(), bad);
	CHECK_CONTAINS(err_msg(), ".log ends: ");
	CHECK_INT(lxcfs_procs(bad, true, 0, NULL), 0);
	CHECK_INT(mounts_at(bad, false, NULL, 0), 0);
	CHECK(fs_type(bad) != FUSE_SUPER_MAGIC);
	(void)rmdir(pidpath);
}

/* A relative path names the same daemon as the absolute one. */
static void test_relative(void)
{
	char cwd[PATH_MAX], abs[PATH_MAX];
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK_INT(chdir(base), 0);
	snprintf(abs, sizeof abs, "%s/rel/lxcfs", base);
	CHECK_OK(lxcfs_ensure("rel/lxcfs/"));
	CHECK_INT(fs_type(abs), FUSE_SUPER_MAGIC);
	pid_t pid = pid_file(abs);
	CHECK(pid > 0);
	CHECK_INT(lxcfs_procs(abs, true, 0, NULL), 1);
	char dcwd[64], target[PATH_MAX] = "";
	snprintf(dcwd, sizeof dcwd, "/proc/%d/cwd", (int)pid);
	CHECK(readlink(dcwd, target, sizeof target - 1) > 0);
	CHECK_STR(target, "/"); /* the daemon does not pin the caller's directory */
	CHECK_OK(lxcfs_ensure(abs));
	CHECK_INT(pid_file(abs), pid);
	CHECK_OK(lxcfs_stop("./rel/lxcfs"));
	CHECK(gone_within(pid, 1000));
	CHECK_INT(mounts_at(abs, false, NULL, 0), 0);
	CHECK_INT(chdir(cwd), 0);
}

int main(void)
{
	const char *why = access("/dev/fuse", R_OK | W_OK) ? "/dev/fuse is not available"
			  : access("/usr/bin/lxcfs", X_OK)  ? "/usr/bin/lxcfs is not installed (Debian package lxcfs)"
							     : NULL;
	if (why) {
		printf("test-manager-lxcfs: skipped: %s\n", why);
		return 0;
	}
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	/* parents are created as needed */
	snprintf(dir, sizeof dir, "%s/run/isola/lxcfs", base);
	snprintf(bad, sizeof bad, "%s/bad", base);
	atexit(cleanup);

	test_start_and_reuse();
	test_binds();
	test_recover_killed();
	test_stop();
	test_concurrent();
	test_errors();
	test_relative();

	char kept[PATH_MAX];
	snprintf(kept, sizeof kept, "%s", base);
	cleanup();
	CHECK(access(kept, F_OK) < 0 && errno == ENOENT);
	CHECK_INT(mounts_at(kept, true, NULL, 0), 0);
	CHECK_INT(lxcfs_procs(kept, false, 0, NULL), 0);
	return unit_done("test-manager-lxcfs");
}
