/* Bind sources of a container with a user namespace of its own. Its init
 * mounts them as the container's root, which on the host is an unprivileged
 * id: a source under a directory it cannot search (a podman --userns=auto
 * volume in a 0700 storage directory, a kubelet pod directory with
 * hostUsers: false) would fail with EACCES. So the runtime, still host
 * root, opens each source (O_PATH) for it, in the init's own mount
 * namespace: the fd names the init's copy of the source mount, which the
 * init may clone (open_tree needs a mount of its own namespace), and which
 * keeps the flags the user namespace locked on it (nosuid, nodev, ro). The
 * path is looked up as the init would have: from the root of that
 * namespace, following symlinks. */
#include "internal.h"
#include "sync.h"
#include "sandbox/rootfs.h"
#include "util/err.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

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

/* In the forked helper: enter mntns, open and send each source. Returns an
 * exit status: 0, or the errno that stopped it. */
static int helper(int sync, const oci_spec *s, char *const *paths, int mntns)
{
	if (setns(mntns, CLONE_NEWNS) < 0)
		return errno;
	for (size_t i = 0; i < s->n_mounts; i++) {
		if (!paths[i])
			continue;
		int fd = open(paths[i], O_PATH | O_CLOEXEC);
		struct sync_mount_source ms = { (uint32_t)i, fd < 0 ? errno : 0 };
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
