/* Host side of the guest agent: see agent.h. */
#include "vm/agent.h"
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>

#define STDIN_CHUNK 32768u
#define KILL_GRACE_MS 5000

struct agent {
	int fd;
	char *what;
	bool broken;
	struct agent_reader rd;
	/* one queued frame for the exec relay (never more: backpressure) */
	uint8_t out[AGENT_HDR_SIZE + STDIN_CHUNK];
	size_t out_len, out_off;
};

static long long deadline_of(int timeout_ms) { return timeout_ms < 0 ? -1 : qmp_now_ms() + timeout_ms; }
static int left_of(long long deadline)
{
	if (deadline < 0)
		return -1;
	long long l = deadline - qmp_now_ms();
	return l < 0 ? 0 : l > INT32_MAX ? INT32_MAX : (int)l;
}

size_t agent_reader_room(struct agent_reader *r)
{
	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	return sizeof r->buf - r->len;
}

int agent_frame_validate(const struct agent_hdr *h, const uint8_t *payload)
{
	(void)payload;
	switch (h->type) {
	case AGENT_PONG:
		return h->len == 12 ? 0 : -EPROTO;
	case AGENT_STARTED:
		return h->len == 4 ? 0 : -EPROTO;
	case AGENT_STDOUT:
	case AGENT_STDERR:
		return 0;
	case AGENT_EXIT:
		return h->len == 8 ? 0 : -EPROTO;
	case AGENT_ERROR:
		return h->len >= 4 ? 0 : -EPROTO;
	case AGENT_OK:
		return h->len == 0 ? 0 : -EPROTO;
	case AGENT_MEMINFO_REPLY:
		return h->len == 24 ? 0 : -EPROTO;
	default:
		return -EPROTO;
	}
}

int agent_reader_next(struct agent_reader *r, struct agent_hdr *h, const uint8_t **payload)
{
	size_t avail = r->len - r->off;
	if (avail < AGENT_HDR_SIZE)
		return 0;
	if (agent_hdr_get(r->buf + r->off, h) < 0)
		return -EPROTO;
	if (avail < AGENT_HDR_SIZE + h->len)
		return 0;
	*payload = r->buf + r->off + AGENT_HDR_SIZE;
	if (agent_frame_validate(h, *payload) < 0)
		return -EPROTO;
	r->off += AGENT_HDR_SIZE + h->len;
	return 1;
}

/* Read once from the socket into the reader (the caller knows it is readable
 * or is willing to wait up to the deadline). */
static int sock_read(struct agent *a, long long deadline)
{
	if (a->broken)
		return vm_refuse(ECONNRESET, "agent of %s: the connection is broken", a->what);
	int r = vm_poll1(a->fd, POLLIN, left_of(deadline));
	if (r < 0)
		return err_set(-r, "agent of %s: poll", a->what);
	if (r == 0)
		return -ETIMEDOUT;
	size_t room = agent_reader_room(&a->rd);
	ssize_t n = recv(a->fd, a->rd.buf + a->rd.len, room, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		a->broken = true;
		return n == 0 ? vm_refuse(ECONNRESET, "agent of %s: the VM closed the agent's channel", a->what)
			      : err_set(errno, "agent of %s: read", a->what);
	}
	a->rd.len += (size_t)n;
	return 0;
}

static int next_frame(struct agent *a, long long deadline, struct agent_hdr *h, const uint8_t **p)
{
	for (;;) {
		int r = agent_reader_next(&a->rd, h, p);
		if (r == 1)
			return 0;
		if (r < 0) {
			a->broken = true;
			return vm_refuse(EPROTO, "agent of %s: malformed frame (type %u, %u bytes)", a->what, h->type, h->len);
		}
		if ((r = sock_read(a, deadline)) < 0)
			return r;
	}
}

static int send_all(struct agent *a, const void *data, size_t len, long long deadline)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = send(a->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			int r = vm_poll1(a->fd, POLLOUT, left_of(deadline));
			if (r == 0)
				return vm_refuse(ETIMEDOUT, "agent of %s: the guest does not read its channel", a->what);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			a->broken = true;
			return err_set(errno == EPIPE ? ECONNRESET : errno, "agent of %s: write", a->what);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(struct agent *a, uint16_t type, uint32_t session, const void *data, size_t len, long long deadline)
{
	uint8_t h[AGENT_HDR_SIZE];
	agent_hdr_put(h, type, session, (uint32_t)len);
	int r = send_all(a, h, sizeof h, deadline);
	return r < 0 || len == 0 ? r : send_all(a, data, len, deadline);
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
		v = (uint32_t)qmp_now_ms() * 2654435761u ^ (uint32_t)getpid();
	return v;
}

/* A request and its answer of type `want` in the same session. */
static int request(struct agent *a, uint16_t type, const void *data, size_t len, uint16_t want, int timeout_ms,
		   uint8_t *ret, size_t ret_len, const char *what)
{
	long long deadline = deadline_of(timeout_ms);
	uint32_t sid = random_u32() | 1;
	int r = send_frame(a, type, sid, data, len, deadline);
	if (r < 0)
		return r;
	for (;;) {
		struct agent_hdr h;
		const uint8_t *p;
		if ((r = next_frame(a, deadline, &h, &p)) < 0)
			return r == -ETIMEDOUT ? vm_refuse(ETIMEDOUT, "agent of %s: no answer to %s within %d ms", a->what, what, timeout_ms) : r;
		if (h.session != sid)
			continue; /* output of another session, or a late answer */
		if (h.type == want) {
			if (ret && ret_len)
				memcpy(ret, p, ret_len < h.len ? ret_len : h.len);
			return 0;
		}
		if (h.type == AGENT_ERROR)
			return vm_refuse(EIO, "agent of %s: %s refused", a->what, what);
	}
}

int agent_open_fd(int fd, const char *what, int timeout_ms, struct agent **ret)
{
	struct agent *a = calloc(1, sizeof *a);
	if (!a) {
		close(fd);
		return err_set(ENOMEM, "agent of %s", what);
	}
	a->fd = fd;
	a->what = strdup(what ? what : "VM");
	long long deadline = deadline_of(timeout_ms);
	uint8_t nonce[8];
	uint64_t n = (uint64_t)random_u32() << 32 | random_u32();
	agent_put64(nonce, n);
	uint32_t sid = random_u32() | 1;
	int r = a->what ? send_frame(a, AGENT_PING, sid, nonce, sizeof nonce, deadline) : -ENOMEM;
	/* Until our PONG, skip whatever is there byte by byte: the tail of
	 * frames meant for an earlier connection. */
	while (r == 0) {
		struct agent_hdr h;
		const uint8_t *p;
		int k = agent_reader_next(&a->rd, &h, &p);
		if (k < 0) {
			a->rd.off++;
			continue;
		}
		if (k == 1) {
			if (h.type == AGENT_PONG && h.session == sid && agent_get64(p) == n)
				break;
			continue;
		}
		r = sock_read(a, deadline);
		if (r == -ETIMEDOUT)
			r = vm_refuse(ETIMEDOUT, "agent of %s: no answer within %d ms (is the guest up?)", a->what, timeout_ms);
	}
	if (r < 0) {
		agent_close(a);
		return r;
	}
	*ret = a;
	return 0;
}

/* Connect and resync, again and again until the deadline. With two or more
 * vCPUs under TCG, QEMU 7.2 now and then leaves a new client of a socket
 * chardev waiting unaccepted after the previous one left (seen here in about
 * 1 of 30 connections): nothing then reaches the guest, and only another
 * connection wakes QEMU's listener. So each attempt waits a second at first
 * (longer later, for a guest still booting) before the next connection. */
int agent_connect_at(int dirfd, const char *what, int timeout_ms, struct agent **ret)
{
	long long deadline = deadline_of(timeout_ms);
	int attempt = 1000;
	for (;;) {
		int fd, r = vm_socket_connect(dirfd, VM_AGENT_SOCKET, &fd);
		if (r == 0) {
			int left = left_of(deadline);
			r = agent_open_fd(fd, what, left >= 0 && left < attempt ? left : attempt, ret);
			if (r == 0)
				return 0;
		} else if (r != -EAGAIN) {
			return err_wrap(r, "agent of %s", what);
		} else {
			usleep(100000);
		}
		if ((r != -ETIMEDOUT && r != -EAGAIN) || left_of(deadline) == 0) {
			if (r == -ETIMEDOUT)
				return vm_refuse(ETIMEDOUT, "agent of %s: no answer within %d ms (is the guest up?)", what, timeout_ms);
			return r;
		}
		if (attempt < 4000)
			attempt *= 2;
	}
}

void agent_close(struct agent *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->what);
	free(a);
}

int agent_ping(struct agent *a, int timeout_ms)
{
	uint8_t nonce[8] = { 0 }, pong[12];
	return request(a, AGENT_PING, nonce, sizeof nonce, AGENT_PONG, timeout_ms, pong, sizeof pong, "ping");
}

int agent_poweroff(struct agent *a, int timeout_ms)
{
	return request(a, AGENT_POWEROFF, NULL, 0, AGENT_OK, timeout_ms, NULL, 0, "poweroff");
}

int agent_meminfo(struct agent *a, int timeout_ms, struct agent_meminfo *ret)
{
	uint8_t m[24];
	int r = request(a, AGENT_MEMINFO, NULL, 0, AGENT_MEMINFO_REPLY, timeout_ms, m, sizeof m, "meminfo");
	if (r < 0)
		return r;
	ret->total_kib = agent_get64(m);
	ret->free_kib = agent_get64(m + 8);
	ret->available_kib = agent_get64(m + 16);
	return 0;
}

static int exec_payload(const struct agent_exec_opts *o, uint8_t *buf, size_t cap, size_t *ret_len)
{
	agent_put32(buf, o->tty ? AGENT_EXEC_TTY : 0);
	agent_put16(buf + 4, o->rows);
	agent_put16(buf + 6, o->cols);
	size_t at = AGENT_EXEC_FIXED, count = 0;
	const char *const *lists[2] = { o->argv, o->env };
	const char tags[2] = { 'a', 'e' };
	for (int l = 0; l < 3; l++) {
		const char *one[2] = { o->cwd, NULL };
		const char *const *v = l < 2 ? lists[l] : (o->cwd ? one : NULL);
		for (size_t i = 0; v && v[i]; i++) {
			size_t n = strlen(v[i]);
			if (l == 1 && !strchr(v[i], '='))
				return vm_refuse(EINVAL, "environment entry \"%s\": not NAME=VALUE", v[i]);
			if (at + n + 2 > cap || ++count > AGENT_EXEC_MAX_STRINGS)
				return vm_refuse(E2BIG, "command, environment and directory: more than %u bytes or %u strings", AGENT_MAX_PAYLOAD,
					       AGENT_EXEC_MAX_STRINGS);
			buf[at] = (uint8_t)(l < 2 ? tags[l] : 'c');
			memcpy(buf + at + 1, v[i], n + 1);
			at += n + 2;
		}
	}
	*ret_len = at;
	return 0;
}

/* Queue one frame for the relay's non-blocking sender. */
static void queue_frame(struct agent *a, uint16_t type, uint32_t sid, const void *data, size_t len)
{
	agent_hdr_put(a->out, type, sid, (uint32_t)len);
	if (len)
		memcpy(a->out + AGENT_HDR_SIZE, data, len);
	a->out_len = AGENT_HDR_SIZE + len;
	a->out_off = 0;
}

static int flush_queued(struct agent *a)
{
	while (a->out_off < a->out_len) {
		ssize_t n = send(a->fd, a->out + a->out_off, a->out_len - a->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0) {
			a->broken = true;
			return err_set(errno == EPIPE ? ECONNRESET : errno, "agent of %s: write", a->what);
		}
		a->out_off += (size_t)n;
	}
	a->out_len = a->out_off = 0;
	return 0;
}

/* Output to the caller's fd; a closed reader (EPIPE) turns it off. */
static void relay_out(int *fd, const uint8_t *p, size_t len)
{
	while (*fd >= 0 && len > 0) {
		ssize_t n = write(*fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			vm_poll1(*fd, POLLOUT, -1);
			continue;
		}
		if (n < 0) {
			*fd = -1;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

int agent_exec(struct agent *a, const struct agent_exec_opts *o, struct agent_status *ret)
{
	if (!o->argv || !o->argv[0])
		return vm_refuse(EINVAL, "exec in %s: no command", a->what);
	_cleanup_free_ uint8_t *pl = malloc(AGENT_MAX_PAYLOAD);
	size_t len = 0;
	if (!pl)
		return err_set(ENOMEM, "exec in %s", a->what);
	int r = exec_payload(o, pl, AGENT_MAX_PAYLOAD, &len);
	if (r < 0)
		return err_wrap(r, "exec in %s", a->what);
	long long deadline = deadline_of(o->timeout_ms), kill_deadline = -1;
	uint32_t sid = random_u32() | 1;
	if ((r = send_frame(a, AGENT_EXEC, sid, pl, len, deadline_of(o->timeout_ms < 0 ? 30000 : o->timeout_ms))) < 0)
		return r;
	int in = o->stdin_fd, out = o->stdout_fd, errfd = o->stderr_fd;
	bool in_open = in >= 0;
	if (!in_open)
		queue_frame(a, AGENT_STDIN, sid, NULL, 0);
	struct agent_status st = { .code = -1 };
	for (;;) {
		if (deadline >= 0 && kill_deadline < 0 && left_of(deadline) == 0 && a->out_len == 0) {
			uint8_t sig[4];
			agent_put32(sig, SIGKILL);
			queue_frame(a, AGENT_SIGNAL, sid, sig, sizeof sig);
			kill_deadline = deadline_of(KILL_GRACE_MS);
		}
		if (kill_deadline >= 0 && left_of(kill_deadline) == 0)
			return vm_refuse(ETIMEDOUT, "exec in %s: \"%s\" did not end after its timeout", a->what, o->argv[0]);
		struct pollfd p[3] = {
			{ .fd = a->fd, .events = POLLIN | (a->out_len ? POLLOUT : 0) },
			{ .fd = in_open && a->out_len == 0 ? in : -1, .events = POLLIN },
			{ .fd = o->winch_fd >= 0 && a->out_len == 0 ? o->winch_fd : -1, .events = POLLIN },
		};
		int wait = kill_deadline >= 0 ? left_of(kill_deadline) : left_of(deadline);
		if (poll(p, 3, wait) < 0 && errno != EINTR)
			return err_set(errno, "exec in %s: poll", a->what);
		if (p[0].revents & POLLOUT && (r = flush_queued(a)) < 0)
			return r;
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if ((r = sock_read(a, 0)) < 0 && r != -ETIMEDOUT)
				return err_wrap(r, "exec in %s", a->what);
			struct agent_hdr h;
			const uint8_t *f;
			while ((r = agent_reader_next(&a->rd, &h, &f)) == 1) {
				if (h.session != sid)
					continue;
				if (h.type == AGENT_STARTED)
					st.pid = agent_get32(f);
				else if (h.type == AGENT_STDOUT)
					relay_out(&out, f, h.len);
				else if (h.type == AGENT_STDERR)
					relay_out(&errfd, f, h.len);
				else if (h.type == AGENT_EXIT) {
					st.code = (int32_t)agent_get32(f);
					st.signal = (int32_t)agent_get32(f + 4);
					if (st.signal < 0 || st.signal > 64 || (st.signal == 0 && (st.code < 0 || st.code > 255)))
						return vm_refuse(EPROTO, "agent of %s: impossible exit status %d/%d", a->what, st.code, st.signal);
					if (kill_deadline >= 0)
						return vm_refuse(ETIMEDOUT, "exec in %s: \"%s\" killed after %d ms", a->what, o->argv[0], o->timeout_ms);
					*ret = st;
					return 0;
				} else if (h.type == AGENT_ERROR) {
					char msg[256];
					size_t k = 0;
					for (size_t i = 4; i < h.len && k < sizeof msg - 1; i++)
						msg[k++] = f[i] >= 32 && f[i] < 127 ? (char)f[i] : '?';
					msg[k] = '\0';
					uint32_t e = agent_get32(f);
					return err_set(0, "exec in %s: %s", a->what, msg), -(int)(e > 0 && e < 4096 ? e : EIO);
				}
			}
			if (r < 0) {
				a->broken = true;
				return vm_refuse(EPROTO, "agent of %s: malformed frame (type %u, %u bytes)", a->what, h.type, h.len);
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t buf[STDIN_CHUNK];
			ssize_t n = read(in, buf, sizeof buf);
			if (n > 0) {
				queue_frame(a, AGENT_STDIN, sid, buf, (size_t)n);
			} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				in_open = false;
				queue_frame(a, AGENT_STDIN, sid, NULL, 0);
			}
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(o->winch_fd, &si, sizeof si) == (ssize_t)sizeof si)
				;
			struct winsize ws;
			if (o->tty && in >= 0 && ioctl(in, TIOCGWINSZ, &ws) == 0) {
				uint8_t m[4];
				agent_put16(m, ws.ws_row);
				agent_put16(m + 2, ws.ws_col);
				queue_frame(a, AGENT_RESIZE, sid, m, sizeof m);
			}
		}
		if (a->out_len && (r = flush_queued(a)) < 0)
			return r;
	}
}
