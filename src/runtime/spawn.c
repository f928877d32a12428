/* The child of create and exec: clone3 with the namespaces (fast path) or
 * nothing (slow path), and the re-execution of the runtime binary from its
 * read-only handle as the container init (see the comment on child_main). */
#include "container.h"
#include "internal.h"
#include "sandbox/ns.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "sync.h"
#include "sandbox/cgroup.h"
#include "sandbox/selfexe.h"
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
		if ((r = ns_create_late(a->s)) < 0)
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
