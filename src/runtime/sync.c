/* Runtime <-> init message framing over a SOCK_STREAM socketpair. */
#include "sync.h"
#include "util/err.h"
#include "util/fs.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct hdr { uint32_t type, len; };

/* Header and payload go in one sendmsg: one skb, so the reader frees it
 * once and wakes the writer's socket once (see sync_recv). */
int sync_send(int sock, uint32_t type, const void *data, size_t len, int fd)
{
	struct hdr h = { type, (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof h }, { (void *)data, len } };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	if (fd >= 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof h) {
		int r = write_all(sock, (char *)&h + n, sizeof h - (size_t)n);
		if (r < 0)
			return r;
		n = sizeof h;
	}
	size_t sent = (size_t)n - sizeof h;
	return sent < len ? write_all(sock, (const char *)data + sent, len - sent) : 0;
}

/* Wait for data with poll() rather than in recvmsg(): a task asleep in
 * recvmsg() is woken each time the peer frees an skb it had been sent
 * (the write-space wake-up shares the socket's wait queue), while poll()
 * for POLLIN ignores those. Spurious wake-ups on a busy host each cost a
 * trip through the run queue. */
static void wait_readable(int sock)
{
	struct pollfd p = { sock, POLLIN, 0 };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
}

int sync_recv(int sock, struct sync_msg *m)
{
	struct hdr h;
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct iovec iov = { &h, sizeof h };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	m->data = NULL;
	m->fd = -1;
	wait_readable(sock);
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&m->fd, CMSG_DATA(c), sizeof(int));
	if ((size_t)n < sizeof h) {
		ssize_t k = read_all(sock, (char *)&h + n, sizeof h - (size_t)n);
		if (k < 0)
			return (int)k;
		if ((size_t)k != sizeof h - (size_t)n)
			return -EPIPE;
	}
	m->type = h.type;
	m->len = h.len;
	if (h.len > (64u << 20))
		return -EMSGSIZE;
	m->data = malloc((size_t)h.len + 1);
	if (!m->data)
		return -ENOMEM;
	ssize_t k = read_all(sock, m->data, h.len);
	if (k < 0)
		return (int)k;
	if ((size_t)k != h.len)
		return -EPIPE;
	((char *)m->data)[h.len] = '\0';
	return 0;
}

int sync_expect(int sock, uint32_t want, struct sync_msg *m)
{
	int r = sync_recv(sock, m);
	if (r < 0)
		return r == -EPIPE ? err_set(0, "container init exited unexpectedly") : err_set(-r, "read from container init");
	if (m->type == SYNC_ERROR) {
		err_set(0, "%s", (char *)m->data);
		sync_msg_clear(m);
		return -EIO;
	}
	if (m->type != want) {
		uint32_t got = m->type;
		sync_msg_clear(m);
		return err_set(EPROTO, "unexpected message %u (wanted %u) from container init", got, want);
	}
	return 0;
}

void sync_msg_clear(struct sync_msg *m)
{
	free(m->data);
	m->data = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

void sync_send_error(int sock)
{
	const char *msg = err_msg();
	(void)sync_send(sock, SYNC_ERROR, msg, strlen(msg), -1);
}
