/* Rootless detection and uid/gid map writing, directly or through
 * newuidmap/newgidmap (see userns.h). */
#include "userns.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

bool userns_rootless(void)
{
	static int cached = -1;
	if (cached >= 0)
		return cached;
	if (geteuid() != 0)
		return (cached = 1);
	_cleanup_free_ char *map = NULL;
	if (read_file_at(AT_FDCWD, "/proc/self/uid_map", &map, NULL) < 0) {
		err_clear();
		return (cached = 0); /* no /proc: assume the host's root */
	}
	/* The initial namespace maps all 2^32-1 ids onto themselves. */
	unsigned long inside, outside, count;
	bool full = sscanf(map, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 && outside == 0 &&
		    count == 4294967295UL;
	return (cached = !full);
}

static int format_map(const spec_idmap *m, size_t n, char **ret, size_t *ret_len)
{
	size_t cap = n * 36 + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* -errno of the write, without recording an error. */
static int write_proc(pid_t pid, const char *file, const char *data, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, data, len);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/* First executable `name` in $PATH, then the usual system directories
 * (conmon and the containerd shim may run us with a short PATH). */
static bool find_helper(const char *name, char out[PATH_MAX])
{
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof dirs, "%s%s/usr/bin:/bin:/usr/sbin:/sbin", env ? env : "", env && *env ? ":" : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/')
			continue; /* a relative PATH entry would depend on our cwd */
		snprintf(out, PATH_MAX, "%s/%s", d, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* Run `helper PID inside outside count...`; its output becomes part of the error. */
static int run_helper(const char *helper, const char *field, pid_t pid, const spec_idmap *m, size_t n)
{
	char exe[PATH_MAX];
	if (!find_helper(helper, exe))
		return err_set(ENOENT, "%s: mapping more than the caller's own id needs %s (Debian package uidmap), "
			       "not found in $PATH or /usr/bin", field, helper);
	_cleanup_free_ char **argv = calloc(3 * n + 3, sizeof *argv);
	_cleanup_free_ char *nums = malloc((3 * n + 1) * 12);
	if (!argv || !nums)
		return err_set(ENOMEM, "%s", field);
	size_t k = 0, off = 0;
	argv[k++] = (char *)helper;
	argv[k++] = nums + off;
	off += (size_t)sprintf(nums + off, "%d", (int)pid) + 1;
	for (size_t i = 0; i < n; i++) {
		unsigned v[3] = { m[i].container_id, m[i].host_id, m[i].size };
		for (int j = 0; j < 3; j++) {
			argv[k++] = nums + off;
			off += (size_t)sprintf(nums + off, "%u", v[j]) + 1;
		}
	}
	argv[k] = NULL;

	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(errno, "%s: pipe for %s", field, helper);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
	pid_t child;
	int e = posix_spawn(&child, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (e != 0) {
		close(p[0]);
		return err_set(e, "%s: run %s", field, exe);
	}
	char out[1024];
	ssize_t len = read_all(p[0], out, sizeof out - 1);
	close(p[0]);
	out[len > 0 ? len : 0] = '\0';
	for (size_t i = strlen(out); i > 0 && (out[i - 1] == '\n' || out[i - 1] == ' '); i--)
		out[i - 1] = '\0';
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return err_set(errno, "%s: wait for %s", field, helper);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	for (size_t i = 0; i + 1 < off; i++)
		if (!nums[i])
			nums[i] = ' '; /* the arguments, as one string for the message */
	return err_set(EPERM, "%s: %s %s failed (%s %d)%s%s", field, exe, nums,
		       WIFEXITED(status) ? "exit status" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out[0] ? ": " : "", out);
}

static int write_one(pid_t pid, bool uid, const spec_idmap *m, size_t n)
{
	const char *file = uid ? "uid_map" : "gid_map";
	const char *field = uid ? "linux.uidMappings" : "linux.gidMappings";
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (format_map(m, n, &buf, &len) < 0)
		return err_set(ENOMEM, "%s", field);
	int r = write_proc(pid, file, buf, len);
	if (r == 0)
		return 0;
	if (r != -EPERM)
		return err_set(-r, "%s: write /proc/%d/%s", field, (int)pid, file);
	/* Unprivileged and mapping only our own gid: the kernel allows that
	 * once setgroups(2) is disabled in the namespace. */
	if (!uid && n == 1 && m[0].size == 1 && m[0].host_id == getegid() &&
	    write_proc(pid, "setgroups", "deny", 4) == 0 && write_proc(pid, file, buf, len) == 0)
		return 0;
	/* Anything else an unprivileged caller may map comes from its
	 * /etc/subuid or /etc/subgid ranges, granted by the setuid helpers. */
	return run_helper(uid ? "newuidmap" : "newgidmap", field, pid, m, n);
}

int userns_write_maps(pid_t pid, const spec_idmap *uids, size_t n_uids, const spec_idmap *gids, size_t n_gids)
{
	int r = write_one(pid, true, uids, n_uids);
	return r < 0 ? r : write_one(pid, false, gids, n_gids);
}
