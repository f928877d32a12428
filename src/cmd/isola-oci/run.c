/* isola-oci run: create + start, then wait in the foreground. */
#include "cmd.h"
#include "sandbox/console.h"
#include "util/err.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

int run_container(struct create_opts *o, bool detach, bool keep)
{
	int r;
	int csock[2] = { -1, -1 };
	/* In the foreground we own the terminal: make a console socket pair. */
	if (!detach && !o->console_socket) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, csock) < 0)
			return fail_cmd(err_set(errno, "socketpair"));
		o->console_fd = csock[1];
	}
	/* A grandchild init (joined pid namespace) must still be ours to reap. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	sigset_t mask;
	if (!detach)
		block_forwarded_signals(&mask);
	pid_t pid;
	r = container_create(o, &pid);
	if (csock[1] >= 0) {
		close(csock[1]);
		o->console_fd = -1;
	}
	if (r < 0) {
		if (csock[0] >= 0)
			close(csock[0]);
		return fail_cmd(r);
	}
	int master = take_console_master(csock[0]);
	if ((r = container_start(g.root, o->id)) < 0) {
		fail_cmd(r);
		(void)container_delete(g.root, o->id, true);
		return 1;
	}
	if (detach)
		return 0;

	int status = foreground_wait(pid, master, &mask);
	/* --keep: left in "stopped" for the caller to inspect and delete. */
	if (!keep && container_delete(g.root, o->id, true) < 0)
		fail_cmd(-1);
	return status;
}
