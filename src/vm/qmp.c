/* QMP client: see qmp.h. */
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

struct qmp_event {
	char *name;
	json_t *data;
	double ts;
};

struct qmp {
	int fd;
	char *what;
	char *buf;
	size_t len, cap;
	struct qmp_event ev[QMP_MAX_EVENTS];
	unsigned ev_head, ev_count, dropped;
	qmp_event_fn fn;
	void *ud;
	long long next_id;
	json_t *greeting;
	char last_name[64];
	bool broken;
};

long long qmp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long deadline_of(int timeout_ms) { return timeout_ms < 0 ? -1 : qmp_now_ms() + timeout_ms; }
static int left_of(long long deadline)
{
	if (deadline < 0)
		return -1;
	long long l = deadline - qmp_now_ms();
	return l < 0 ? 0 : l > INT32_MAX ? INT32_MAX : (int)l;
}

void qmp_msg_clear(struct qmp_msg *m)
{
	if (!m)
		return;
	json_decref(m->root);
	memset(m, 0, sizeof *m);
	m->id = -1;
}

int qmp_msg_parse(const char *line, size_t len, struct qmp_msg *ret)
{
	json_error_t jerr;
	struct qmp_msg m = { .id = -1 };
	m.root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!m.root)
		return vm_refuse(EPROTO, "QMP message: not JSON: %s at column %d", jerr.text, jerr.column);
	if (!json_is_object(m.root)) {
		json_decref(m.root);
		return vm_refuse(EPROTO, "QMP message: not a JSON object");
	}
	json_t *id = json_object_get(m.root, "id");
	if (json_is_integer(id))
		m.id = json_integer_value(id);
	json_t *v;
	int r = 0;
	if ((v = json_object_get(m.root, "QMP"))) {
		m.kind = QMP_MSG_GREETING;
		if (!json_is_object(v))
			r = vm_refuse(EPROTO, "QMP message: greeting: \"QMP\" is not an object");
	} else if ((v = json_object_get(m.root, "return"))) {
		m.kind = QMP_MSG_RETURN;
		m.ret = v;
	} else if ((v = json_object_get(m.root, "error"))) {
		m.kind = QMP_MSG_ERROR;
		json_t *c = json_object_get(v, "class"), *d = json_object_get(v, "desc");
		if (!json_is_string(c) || !json_is_string(d))
			r = vm_refuse(EPROTO, "QMP message: error without a class and a description");
		else
			m.err_class = json_string_value(c), m.err_desc = json_string_value(d);
	} else if ((v = json_object_get(m.root, "event"))) {
		m.kind = QMP_MSG_EVENT;
		json_t *data = json_object_get(m.root, "data"), *ts = json_object_get(m.root, "timestamp");
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 63)
			r = vm_refuse(EPROTO, "QMP message: event name is not a string of 1 to 63 characters");
		else if (data && !json_is_object(data))
			r = vm_refuse(EPROTO, "QMP message: event %s: \"data\" is not an object", json_string_value(v));
		else if (!data && json_object_set_new(m.root, "data", json_object()) < 0)
			r = err_set(ENOMEM, "QMP message");
		if (r == 0) {
			m.event = json_string_value(v);
			m.data = json_object_get(m.root, "data");
			json_t *s = json_object_get(ts, "seconds"), *us = json_object_get(ts, "microseconds");
			if (json_is_integer(s) && json_is_integer(us))
				m.timestamp = (double)json_integer_value(s) + (double)json_integer_value(us) / 1e6;
		}
	} else {
		r = vm_refuse(EPROTO, "QMP message: neither a greeting, a return, an error nor an event");
	}
	if (r < 0) {
		json_decref(m.root);
		return r;
	}
	*ret = m;
	return 0;
}

static void event_push(struct qmp *q, struct qmp_msg *m)
{
	if (q->fn) {
		q->fn(m->event, m->data, m->timestamp, q->ud);
		return;
	}
	if (q->ev_count == QMP_MAX_EVENTS) { /* drop the oldest */
		struct qmp_event *o = &q->ev[q->ev_head];
		free(o->name);
		json_decref(o->data);
		q->ev_head = (q->ev_head + 1) % QMP_MAX_EVENTS;
		q->ev_count--;
		q->dropped++;
	}
	struct qmp_event *e = &q->ev[(q->ev_head + q->ev_count) % QMP_MAX_EVENTS];
	e->name = strdup(m->event);
	e->data = json_incref(m->data);
	e->ts = m->timestamp;
	if (!e->name) {
		json_decref(e->data);
		q->dropped++;
		return;
	}
	q->ev_count++;
}

/* Take the queued event at position i (0 = oldest) out of the queue. */
static struct qmp_event event_take(struct qmp *q, unsigned i)
{
	unsigned at = (q->ev_head + i) % QMP_MAX_EVENTS;
	struct qmp_event e = q->ev[at];
	for (unsigned k = i; k + 1 < q->ev_count; k++)
		q->ev[(q->ev_head + k) % QMP_MAX_EVENTS] = q->ev[(q->ev_head + k + 1) % QMP_MAX_EVENTS];
	q->ev_count--;
	return e;
}

/* One complete message from the buffer: 1 and *m, 0 when none is complete. */
static int next_msg(struct qmp *q, struct qmp_msg *m)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		if (!nl) {
			if (q->len > QMP_MAX_LINE) {
				q->broken = true;
				return vm_refuse(EPROTO, "QMP of %s: a message longer than %d bytes", q->what, QMP_MAX_LINE);
			}
			return 0;
		}
		size_t n = (size_t)(nl - q->buf), skip = n + 1;
		while (n > 0 && (q->buf[n - 1] == '\r' || q->buf[n - 1] == ' '))
			n--;
		int r = n ? qmp_msg_parse(q->buf, n, m) : 1;
		memmove(q->buf, q->buf + skip, q->len - skip);
		q->len -= skip;
		if (r == 1)
			continue; /* empty line */
		if (r < 0) {
			q->broken = true;
			return err_wrap(r, "QMP of %s", q->what);
		}
		return 1;
	}
}

/* Wait until readable (up to the deadline), then read once. */
static int fill(struct qmp *q, long long deadline)
{
	if (q->broken)
		return vm_refuse(ECONNRESET, "QMP of %s: the connection is broken", q->what);
	struct pollfd p = { .fd = q->fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, left_of(deadline));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return err_set(errno, "QMP of %s: poll", q->what);
	if (r == 0)
		return -ETIMEDOUT;
	if (q->cap - q->len < 65536) {
		size_t cap = q->cap ? q->cap * 2 : 65536;
		if (cap > QMP_MAX_LINE + 65536)
			cap = QMP_MAX_LINE + 65536;
		if (cap - q->len == 0) {
			q->broken = true;
			return vm_refuse(EPROTO, "QMP of %s: a message longer than %d bytes", q->what, QMP_MAX_LINE);
		}
		char *nb = realloc(q->buf, cap);
		if (!nb)
			return err_set(ENOMEM, "QMP of %s", q->what);
		q->buf = nb;
		q->cap = cap;
	}
	ssize_t n = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		return err_set(errno, "QMP of %s: read", q->what);
	if (n == 0) {
		q->broken = true;
		return vm_refuse(ECONNRESET, "QMP of %s: QEMU closed the connection", q->what);
	}
	q->len += (size_t)n;
	return 0;
}

static int send_all(struct qmp *q, const char *data, size_t len, int fd, long long deadline)
{
	bool fd_sent = fd < 0;
	while (len > 0) {
		struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (!fd_sent) {
			mh.msg_control = u.buf;
			mh.msg_controllen = sizeof u.buf;
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof fd);
		}
		ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = q->fd, .events = POLLOUT };
			int r = poll(&p, 1, left_of(deadline));
			if (r == 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			q->broken = true;
			return err_set(errno == EPIPE ? ECONNRESET : errno, "QMP of %s: write", q->what);
		}
		fd_sent = true;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int greet(struct qmp *q, int timeout_ms)
{
	long long deadline = deadline_of(timeout_ms);
	struct qmp_msg m;
	int r;
	while ((r = next_msg(q, &m)) == 0) {
		r = fill(q, deadline);
		if (r == -ETIMEDOUT)
			return vm_refuse(ETIMEDOUT, "QMP of %s: no greeting from QEMU within %d ms", q->what, timeout_ms);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (m.kind != QMP_MSG_GREETING) {
		qmp_msg_clear(&m);
		return vm_refuse(EPROTO, "QMP of %s: the first message is not QEMU's greeting", q->what);
	}
	q->greeting = json_incref(json_object_get(m.root, "QMP"));
	qmp_msg_clear(&m);
	return qmp_execute(q, "qmp_capabilities", NULL, left_of(deadline), NULL);
}

int qmp_open_fd(int fd, const char *what, int timeout_ms, struct qmp **ret)
{
	struct qmp *q = calloc(1, sizeof *q);
	if (!q) {
		close(fd);
		return err_set(ENOMEM, "QMP of %s", what);
	}
	q->fd = fd;
	q->what = strdup(what ? what : "QEMU");
	q->next_id = 1;
	int r = q->what ? greet(q, timeout_ms) : err_set(ENOMEM, "QMP");
	if (r < 0) {
		qmp_close(q);
		return r;
	}
	*ret = q;
	return 0;
}

int qmp_connect(const char *path, const char *what, int timeout_ms, struct qmp **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		return err_set(ENAMETOOLONG, "QMP of %s: socket path %s", what, path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(errno, "QMP of %s: socket", what);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return err_set(errno, "QMP of %s: connect to %s", what, path);
	return qmp_open_fd(TAKE_FD(fd), what, timeout_ms, ret);
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	while (q->ev_count) {
		struct qmp_event e = event_take(q, 0);
		free(e.name);
		json_decref(e.data);
	}
	json_decref(q->greeting);
	free(q->buf);
	free(q->what);
	free(q);
}

int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms, json_t **ret)
{
	long long deadline = deadline_of(timeout_ms);
	long long id = q->next_id++;
	json_t *o = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	if (!o || (args && json_object_set_new(o, "arguments", args) < 0)) {
		json_decref(o);
		return err_set(ENOMEM, "QMP %s on %s", cmd, q->what);
	}
	args = NULL;
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return err_set(ENOMEM, "QMP %s on %s", cmd, q->what);
	size_t tl = strlen(text);
	text[tl] = '\n'; /* json_dumps left room for its NUL; it is not sent */
	int r = send_all(q, text, tl + 1, fd, deadline);
	if (r == -ETIMEDOUT)
		return vm_refuse(ETIMEDOUT, "QMP %s on %s: QEMU does not read its socket (%d ms)", cmd, q->what, timeout_ms);
	if (r < 0)
		return err_wrap(r, "QMP %s", cmd);
	for (;;) {
		struct qmp_msg m;
		while ((r = next_msg(q, &m)) == 0) {
			r = fill(q, deadline);
			if (r == -ETIMEDOUT)
				return vm_refuse(ETIMEDOUT, "QMP %s on %s: no answer within %d ms", cmd, q->what, timeout_ms);
			if (r < 0)
				return err_wrap(r, "QMP %s", cmd);
		}
		if (r < 0)
			return err_wrap(r, "QMP %s", cmd);
		if (m.kind == QMP_MSG_EVENT) {
			event_push(q, &m);
		} else if (m.id == id && m.kind == QMP_MSG_RETURN) {
			if (ret)
				*ret = json_incref(m.ret);
			qmp_msg_clear(&m);
			return 0;
		} else if (m.id == id && m.kind == QMP_MSG_ERROR) {
			int e = strcmp(m.err_class, "CommandNotFound") == 0 ? EOPNOTSUPP : EIO;
			r = err_set(0, "QMP %s on %s: %s: %.512s", cmd, q->what, m.err_class, m.err_desc);
			qmp_msg_clear(&m);
			return -e;
		}
		/* A late answer to a command that timed out, or a stray greeting. */
		qmp_msg_clear(&m);
	}
}

int qmp_execute(struct qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **ret)
{
	return qmp_execute_fd(q, cmd, args, -1, timeout_ms, ret);
}

void qmp_set_event_handler(struct qmp *q, qmp_event_fn fn, void *userdata)
{
	q->fn = fn;
	q->ud = userdata;
	while (fn && q->ev_count) {
		struct qmp_event e = event_take(q, 0);
		fn(e.name, e.data, e.ts, userdata);
		free(e.name);
		json_decref(e.data);
	}
}

static int take_event(struct qmp *q, const char *name, json_t **ret_data, const char **ret_name)
{
	for (unsigned i = 0; i < q->ev_count; i++) {
		struct qmp_event *e = &q->ev[(q->ev_head + i) % QMP_MAX_EVENTS];
		if (name && strcmp(e->name, name) != 0)
			continue;
		struct qmp_event t = event_take(q, i);
		snprintf(q->last_name, sizeof q->last_name, "%s", t.name);
		if (ret_name)
			*ret_name = q->last_name;
		if (ret_data)
			*ret_data = t.data;
		else
			json_decref(t.data);
		free(t.name);
		return 1;
	}
	return 0;
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, json_t **ret_data, const char **ret_name)
{
	long long deadline = deadline_of(timeout_ms);
	for (;;) {
		if (take_event(q, name, ret_data, ret_name))
			return 0;
		struct qmp_msg m;
		int r;
		while ((r = next_msg(q, &m)) == 1) {
			if (m.kind == QMP_MSG_EVENT)
				event_push(q, &m);
			qmp_msg_clear(&m);
		}
		if (r < 0)
			return r;
		if (take_event(q, name, ret_data, ret_name))
			return 0;
		r = fill(q, deadline);
		if (r == -ETIMEDOUT)
			return vm_refuse(ETIMEDOUT, "QMP of %s: no %s event within %d ms", q->what, name ? name : "", timeout_ms);
		if (r < 0)
			return r;
	}
}

int qmp_process(struct qmp *q)
{
	int r = fill(q, 0);
	if (r < 0 && r != -ETIMEDOUT)
		return r;
	struct qmp_msg m;
	while ((r = next_msg(q, &m)) == 1) {
		if (m.kind == QMP_MSG_EVENT)
			event_push(q, &m);
		qmp_msg_clear(&m);
	}
	return r;
}

int qmp_fd(const struct qmp *q) { return q->fd; }
unsigned qmp_events_dropped(const struct qmp *q) { return q->dropped; }
json_t *qmp_version(const struct qmp *q) { return json_object_get(q->greeting, "version"); }
