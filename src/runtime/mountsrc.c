/* Bind sources of a container with a user namespace of its own. Its init
 * mounts them as the container's root, which on the host is an unprivileged
 * id: a source under a directory it cannot search (a podman --userns=auto
 * volume in a 0700 storage directory, a kubelet pod directory with
 * hostUsers: false) would fail with EACCES. So the runtime, still host
 * root, opens each source (O_PATH) for it, in the init's own mount
 * namespace: the fd names the init's copy of the source mount, which the
 * init may clone (open_tree needs a mount of its own namespace), and which
 * keeps the flags the user namespace locked on it (nosuid, nodev, ro).
 *
 * Host root's reach stops at symlinks: the runtime follows only those that
 * belong to it (root, or the rootless engine's root) and are not in procfs.
 * A path through any other symlink (one the container's user made in its
 * volume, /proc/self) is left to the init, which opens it with the
 * container's root's rights, as it always did: whoever controls such a
 * symlink cannot point the runtime at a file only host root may reach. */
#include "internal.h"
#include "sync.h"
#include "sandbox/rootfs.h"
#include "util/err.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/magic.h>

bool runtime_opens_mount_sources(const oci_spec *s)
{
	if (!s->linux.ns[NS_USER].present)
		return false;
	/* setns into a mount namespace needs CAP_SYS_ADMIN and CAP_SYS_CHROOT
	 * where we are: root, or root of the user namespace of a rootless
	 * engine (podman's). A runtime run by a plain user has neither, and
	 * reaches no more than the container's root would: the init opens
	 * the paths itself. */
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	uint32_t want = (1u << CAP_SYS_ADMIN) | (1u << CAP_SYS_CHROOT);
	return (d[0].effective & want) == want;
}

#define MAX_SYMLINKS 40

/* Resolve path from the root, component by component, following only the
 * symlinks we own outside procfs. Returns an O_PATH fd, -EXDEV at any other
 * symlink (the init looks the path up itself), or -errno. */
static int open_source(const char *path)
{
	char rest[PATH_MAX], tmp[PATH_MAX], target[PATH_MAX];
	if (!*path)
		return -ENOENT;
	if (path[0] != '/')
		return -EXDEV; /* relative to the init's cwd */
	if (snprintf(rest, sizeof rest, "%s", path) >= (int)sizeof rest)
		return -ENAMETOOLONG;
	int cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	unsigned links = 0;
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return cur;
		char *end = strchrnul(p, '/');
		bool last = !*end || !end[strspn(end, "/")];
		if (*end)
			*end++ = '\0';
		const char *name = p;
		p = end;
		if (!strcmp(name, "."))
			continue;
		int next = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		struct statfs sfs;
		if (next < 0 || fstat(next, &st) < 0) {
			int e = errno;
			if (next >= 0)
				close(next);
			close(cur);
			return -e;
		}
		if (!S_ISLNK(st.st_mode)) {
			close(cur);
			cur = next;
			if (!last && !S_ISDIR(st.st_mode)) {
				close(cur);
				return -ENOTDIR;
			}
			continue;
		}
		ssize_t n = -1;
		bool ours = st.st_uid == geteuid() && fstatfs(next, &sfs) == 0 && sfs.f_type != PROC_SUPER_MAGIC &&
			    ++links <= MAX_SYMLINKS && (n = readlinkat(next, "", target, sizeof target - 1)) > 0;
		close(next);
		if (!ours) {
			close(cur);
			return links > MAX_SYMLINKS ? -ELOOP : -EXDEV;
		}
		target[n] = '\0';
		if (snprintf(tmp, sizeof tmp, "%s/%s", target, p) >= (int)sizeof tmp) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(rest, tmp, sizeof rest);
		p = rest;
		if (target[0] == '/') {
			close(cur);
			if ((cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
				return -errno;
		}
	}
}

/* In the forked helper: enter mntns, open and send each source. Returns an
 * exit status: 0, or the errno that stopped it. */
static int helper(int sync, const oci_spec *s, char *const *paths, int mntns)
{
	if (setns(mntns, CLONE_NEWNS) < 0)
		return errno;
	for (size_t i = 0; i < s->n_mounts; i++) {
		if (!paths[i])
			continue;
		int fd = open_source(paths[i]);
		/* err 0 and no fd: the init looks this one up itself. */
		struct sync_mount_source ms = { (uint32_t)i, fd >= 0 || fd == -EXDEV ? 0 : -fd };
		int r = sync_send(sync, SYNC_MOUNT_SOURCE, &ms, sizeof ms, fd);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return -r;
	}
	return 0;
}

int runtime_send_mount_sources(int sync, const oci_spec *s, int mntns)
{
	if (mntns < 0)
		return err_set(EPROTO, "bind mounts: the container init sent no mount namespace");
	/* The paths are made before the fork: the helper only makes system
	 * calls (the manager calls this from a process with threads). */
	_cleanup_free_ char **paths = calloc(s->n_mounts ? s->n_mounts : 1, sizeof *paths);
	if (!paths)
		return err_set(ENOMEM, "bind mounts");
	int r = 0;
	for (size_t i = 0; i < s->n_mounts && r == 0; i++) {
		if (!rootfs_mount_is_bind(&s->mounts[i]))
			continue;
		char buf[PATH_MAX];
		rootfs_bind_source(s, &s->mounts[i], buf, sizeof buf);
		if (!(paths[i] = strdup(buf)))
			r = err_set(ENOMEM, "bind mounts");
	}
	pid_t pid = r < 0 ? -1 : fork();
	if (pid == 0)
		_exit(helper(sync, s, paths, mntns));
	if (pid < 0 && r == 0)
		r = err_set(errno, "bind mounts: fork to open their sources");
	for (size_t i = 0; i < s->n_mounts; i++)
		free(paths[i]);
	if (r < 0)
		return r;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_set(errno, "bind mounts: wait for the process opening their sources");
	if (WIFSIGNALED(st))
		return err_set(0, "bind mounts: the process opening their sources was killed by signal %d", WTERMSIG(st));
	if (WEXITSTATUS(st))
		return err_set(WEXITSTATUS(st), "bind mounts: open their sources in the container's mount namespace");
	return 0;
}
