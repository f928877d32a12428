/* vmctl's monitor: the parent of QEMU, as isola's per-instance monitor will
 * be. It starts the VM through the library, keeps reading the serial
 * console (QEMU stalls the guest when nobody reads it) into console.log and
 * to one client of console.sock, and when QEMU exits records the wait status
 * in exit.json and removes the sockets. */
#include "vmctl.h"
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>


static void report(int fd, const char *msg)
{
	if (fd >= 0)
		(void)!write(fd, msg, strlen(msg));
}

static int listen_console(int dirfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/console.sock", dirfd);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	(void)unlinkat(dirfd, "console.sock", 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 2) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void write_exit(int dirfd, const struct vm_exit *e)
{
	json_t *o = json_pack("{s:i, s:s, s:i, s:i}", "status", e->status, "kind", vm_exit_kind_name(e->kind), "code",
			      WIFEXITED(e->status) ? WEXITSTATUS(e->status) : -1, "signal",
			      WIFSIGNALED(e->status) ? WTERMSIG(e->status) : 0);
	char *t = json_dumps(o, 0);
	if (t)
		(void)write_file_atomic_at(dirfd, "exit.json", t, strlen(t), 0644);
	free(t);
	json_decref(o);
}

void vmctl_monitor(int dirfd, const struct vm_config *c, const struct vm_start_opts *o, int report_fd)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	(void)unlinkat(dirfd, "exit.json", 0);
	int con = -1;
	struct vm *v = NULL;
	if (vm_start(c, o, &con, &v) < 0) {
		char msg[4200];
		snprintf(msg, sizeof msg, "E%s", err_msg());
		report(report_fd, msg);
		_exit(1);
	}
	vm_qmp_release(v); /* others connect to QMP; QEMU serves one client */
	pid_t pid = vm_pid(v);
	json_t *st = json_pack("{s:i, s:I, s:s, s:s, s:s}", "pid", (int)pid, "starttime",
			       (json_int_t)vm_proc_starttime(pid), "machine", vm_machine_name(c->machine), "name",
			       c->name ? c->name : "vm", "accel", vm_accel_name(c->accel));
	char *t = json_dumps(st, 0);
	json_decref(st);
	if (!t || write_file_atomic_at(dirfd, "vm.json", t, strlen(t), 0644) < 0) {
		report(report_fd, "Ecannot write vm.json");
		vm_kill(v, NULL);
		_exit(1);
	}
	free(t);
	int log = openat(dirfd, "console.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	int lsock = listen_console(dirfd), client = -1;
	report(report_fd, "OK");
	close(report_fd);
	for (;;) {
		struct pollfd p[4] = {
			{ .fd = con, .events = POLLIN },
			{ .fd = vm_pidfd(v), .events = POLLIN },
			{ .fd = lsock, .events = POLLIN },
			{ .fd = client, .events = POLLIN },
		};
		if (poll(p, 4, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			char buf[8192];
			ssize_t n = read(con, buf, sizeof buf);
			if (n > 0) {
				if (log >= 0)
					(void)write_all(log, buf, (size_t)n);
				/* A client that does not keep up is dropped: it must never
				 * stall the console, and with it the guest. */
				if (client >= 0 && send(client, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n) {
					close(client);
					client = -1;
				}
			} else if (n == 0) {
				p[0].fd = con = -1; /* QEMU closed its end: it is exiting */
			}
		}
		if (p[2].revents) {
			int nc = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
			if (nc >= 0) { /* the newest client takes the console over */
				if (client >= 0)
					close(client);
				client = nc;
			}
		}
		if (p[3].revents) {
			char buf[4096];
			ssize_t n = read(client, buf, sizeof buf);
			if (n <= 0) {
				close(client);
				client = -1;
			} else if (con >= 0) {
				(void)write_all(con, buf, (size_t)n);
			}
		}
		if (p[1].revents)
			break;
	}
	struct vm_exit e = { .status = -1 };
	(void)vm_wait_exit(v, 5000, &e);
	/* What QEMU printed last on the console. */
	char buf[8192];
	ssize_t n;
	while (con >= 0 && (n = read(con, buf, sizeof buf)) > 0)
		if (log >= 0)
			(void)write_all(log, buf, (size_t)n);
	(void)unlinkat(dirfd, VM_QMP_SOCKET, 0);
	(void)unlinkat(dirfd, VM_AGENT_SOCKET, 0);
	(void)unlinkat(dirfd, "console.sock", 0);
	write_exit(dirfd, &e);
	vm_free(v);
	_exit(0);
}
