/* The container's terminal (see console.h). */
#include "console.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

int send_fd(int sock, int fd, const char *payload)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	memset(&u, 0, sizeof u);
	struct iovec iov = { (void *)payload, strlen(payload) ? strlen(payload) : 1 };
	if (!payload[0])
		iov.iov_base = (void *)"\0";
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

int recv_fd(int sock, int *ret_fd)
{
	char data[4096];
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct iovec iov = { data, sizeof data };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
			return 0;
		}
	return -EBADMSG;
}

int console_create(const oci_spec *s, int rootfd, int console_sock, int *ret_slave)
{
	_cleanup_close_ int master = openat_in_root(rootfd, "/dev/pts/ptmx", O_RDWR | O_NOCTTY, 0);
	if (master < 0)
		master = openat_in_root(rootfd, "/dev/ptmx", O_RDWR | O_NOCTTY, 0);
	if (master < 0)
		return err_set(-master, "process.terminal: open /dev/pts/ptmx in the container (is devpts mounted?)");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return err_set(errno, "process.terminal: unlock pty");
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return err_set(errno, "process.terminal: open pty slave");
	if (s->process.console_height.has || s->process.console_width.has) {
		struct winsize ws = { .ws_row = (unsigned short)s->process.console_height.v,
				      .ws_col = (unsigned short)s->process.console_width.v };
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0) {
			close(slave);
			return err_set(errno, "process.consoleSize: set window size");
		}
	}
	int r = send_fd(console_sock, master, "/dev/ptmx");
	if (r < 0) {
		close(slave);
		return err_set(-r, "send the pty master to the console socket");
	}
	*ret_slave = slave;
	return 0;
}

int console_attach(int slave)
{
	if (setsid() < 0)
		return err_set(errno, "setsid");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return err_set(errno, "make the pty the controlling terminal");
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			return err_set(errno, "dup pty slave to %d", fd);
	return 0;
}
