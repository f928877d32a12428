/* The QMP client against a fake QEMU on the other end of a socketpair (a
 * forked child playing a script): greeting and capabilities, returns matched
 * by id, errors with their class, events queued and dispatched, deadlines
 * (a silent or dead peer), oversized and malformed messages, fd passing. */
#include "unit.h"
#include "vm/qmp.h"
#include "util/err.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n"

static void say(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

/* Read one line from the client; its "id" (or -1). */
static long peer_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
		n++;
	buf[n] = '\0';
	char *id = strstr(buf, "\"id\":");
	return id ? strtol(id + 5, NULL, 10) : -1;
}

/* The fake QEMU: greeting, capabilities, then a scenario. */
static void peer(int fd, int scenario)
{
	char line[4096], out[4096];
	say(fd, GREETING);
	long id = peer_line(fd, line, sizeof line);
	snprintf(out, sizeof out, "{\"return\": {}, \"id\": %ld}\r\n", id);
	say(fd, out);
	switch (scenario) {
	case 0: /* events and a stray answer before the real one */
		id = peer_line(fd, line, sizeof line);
		say(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 5}, \"event\": \"STOP\"}\r\n");
		say(fd, "{\"return\": {\"status\": \"stale\"}, \"id\": 99999}\r\n");
		say(fd, "{\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 134217728}}\r\n");
		snprintf(out, sizeof out, "{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": %ld}\r\n", id);
		say(fd, out);
		id = peer_line(fd, line, sizeof line);
		snprintf(out, sizeof out, "{\"id\": %ld, \"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'value' expects a size\"}}\r\n", id);
		say(fd, out);
		id = peer_line(fd, line, sizeof line);
		snprintf(out, sizeof out, "{\"id\": %ld, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}}\r\n", id);
		say(fd, out);
		say(fd, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n");
		break;
	case 1: /* silent */
		peer_line(fd, line, sizeof line);
		sleep(3);
		break;
	case 2: /* dies without answering */
		peer_line(fd, line, sizeof line);
		break;
	case 3: { /* a message without end */
		peer_line(fd, line, sizeof line);
		say(fd, "{\"return\": \"");
		static char junk[65536];
		memset(junk, 'a', sizeof junk);
		for (int i = 0; i < 20; i++)
			if (write(fd, junk, sizeof junk) < 0)
				break;
		break;
	}
	case 4: /* not JSON */
		peer_line(fd, line, sizeof line);
		say(fd, "{\"return\": {]]\r\n");
		sleep(1);
		break;
	case 5: { /* getfd: the fd arrives with the command */
		char b[4096];
		struct iovec iov = { b, sizeof b - 1 };
		union {
			char c[CMSG_SPACE(sizeof(int))];
			struct cmsghdr a;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c, .msg_controllen = sizeof u.c };
		ssize_t n = recvmsg(fd, &mh, 0);
		int got = -1;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (n > 0 && c && c->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(c), sizeof got);
		if (got >= 0)
			say(got, "through the passed fd");
		b[n > 0 ? n : 0] = '\0';
		char *p = strstr(b, "\"id\":");
		snprintf(out, sizeof out, "{\"return\": {}, \"id\": %ld}\r\n", p ? strtol(p + 5, NULL, 10) : -1);
		say(fd, out);
		break;
	}
	case 6: /* a flood of events */
		for (int i = 0; i < 100; i++) {
			snprintf(out, sizeof out, "{\"event\": \"E%d\", \"data\": {\"n\": %d}}\r\n", i, i);
			say(fd, out);
		}
		peer_line(fd, line, sizeof line);
		say(fd, "{\"return\": 7, \"id\": 2}\r\n");
		break;
	}
	_exit(0);
}

static int start(int scenario, pid_t *pid, struct qmp **q, int timeout_ms)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	*pid = fork();
	if (*pid == 0) {
		close(sv[0]);
		peer(sv[1], scenario);
	}
	close(sv[1]);
	return qmp_open_fd(sv[0], "test-vm", timeout_ms, q);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int events_seen;
static void on_event(const char *name, json_t *data, double ts, void *ud)
{
	(void)data, (void)ts;
	if (strncmp(name, "E", 1) == 0)
		(*(int *)ud)++;
	events_seen++;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	pid_t pid;
	struct qmp *q = NULL;

	/* returns, errors and events */
	CHECK_INT(start(0, &pid, &q, 5000), 0);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(qmp_version(q), "qemu"), "major")), 7);
	json_t *ret = NULL;
	CHECK_INT(qmp_execute(q, "query-status", NULL, 5000, &ret), 0);
	CHECK_STR(json_string_value(json_object_get(ret, "status")), "paused");
	json_decref(ret);
	CHECK_INT(qmp_execute(q, "balloon", json_pack("{s:s}", "value", "x"), 5000, NULL), -EIO);
	CHECK_CONTAINS(err_msg(), "QMP balloon on test-vm: GenericError: Parameter 'value' expects a size");
	CHECK_INT(qmp_execute(q, "nope", NULL, 5000, NULL), -EOPNOTSUPP);
	CHECK_CONTAINS(err_msg(), "CommandNotFound");
	json_t *data = NULL;
	const char *name = NULL;
	/* named wait skips (and keeps) the others */
	CHECK_INT(qmp_wait_event(q, "SHUTDOWN", 5000, &data, &name), 0);
	CHECK_STR(name, "SHUTDOWN");
	CHECK_STR(json_string_value(json_object_get(data, "reason")), "guest-shutdown");
	json_decref(data);
	CHECK_INT(qmp_wait_event(q, NULL, 1000, NULL, &name), 0);
	CHECK_STR(name, "STOP");
	CHECK_INT(qmp_wait_event(q, "BALLOON_CHANGE", 1000, &data, NULL), 0);
	CHECK_INT(json_integer_value(json_object_get(data, "actual")), 134217728);
	json_decref(data);
	/* the peer is gone now */
	CHECK_INT(qmp_wait_event(q, NULL, 2000, NULL, NULL), -ECONNRESET);
	qmp_close(q);
	reap(pid);

	/* a silent QEMU: the deadline holds */
	CHECK_INT(start(1, &pid, &q, 5000), 0);
	long long t0 = qmp_now_ms();
	CHECK_INT(qmp_execute(q, "query-status", NULL, 300, NULL), -ETIMEDOUT);
	CHECK(qmp_now_ms() - t0 < 2500);
	CHECK_CONTAINS(err_msg(), "no answer within 300 ms");
	qmp_close(q);
	reap(pid);

	/* a dead QEMU */
	CHECK_INT(start(2, &pid, &q, 5000), 0);
	CHECK_INT(qmp_execute(q, "query-status", NULL, 5000, NULL), -ECONNRESET);
	CHECK_CONTAINS(err_msg(), "QEMU closed the connection");
	qmp_close(q);
	reap(pid);

	/* a message that never ends is refused at the bound */
	CHECK_INT(start(3, &pid, &q, 5000), 0);
	CHECK_INT(qmp_execute(q, "query-status", NULL, 10000, NULL), -EPROTO);
	CHECK_CONTAINS(err_msg(), "longer than");
	qmp_close(q);
	reap(pid);

	/* malformed JSON */
	CHECK_INT(start(4, &pid, &q, 5000), 0);
	CHECK_INT(qmp_execute(q, "query-status", NULL, 5000, NULL), -EPROTO);
	CHECK_CONTAINS(err_msg(), "not JSON");
	qmp_close(q);
	reap(pid);

	/* fd passing */
	int p[2];
	CHECK_INT(pipe2(p, O_CLOEXEC), 0);
	CHECK_INT(start(5, &pid, &q, 5000), 0);
	CHECK_INT(qmp_execute_fd(q, "getfd", json_pack("{s:s}", "fdname", "x"), p[1], 5000, NULL), 0);
	close(p[1]);
	char buf[64] = "";
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	CHECK_STR(buf, "through the passed fd");
	close(p[0]);
	qmp_close(q);
	reap(pid);

	/* a flood of events: the queue keeps the newest QMP_MAX_EVENTS */
	CHECK_INT(start(6, &pid, &q, 5000), 0);
	ret = NULL;
	CHECK_INT(qmp_execute(q, "query-x", NULL, 5000, &ret), 0);
	CHECK_INT(json_integer_value(ret), 7);
	json_decref(ret);
	CHECK_INT(qmp_events_dropped(q), 100 - QMP_MAX_EVENTS);
	CHECK_INT(qmp_wait_event(q, NULL, 1000, NULL, &name), 0);
	char first[16];
	snprintf(first, sizeof first, "E%d", 100 - QMP_MAX_EVENTS);
	CHECK_STR(name, first);
	int counted = 0;
	qmp_set_event_handler(q, on_event, &counted); /* the rest is dispatched at once */
	CHECK_INT(counted, QMP_MAX_EVENTS - 1);
	qmp_close(q);
	reap(pid);

	/* no greeting at all */
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	CHECK_INT(qmp_open_fd(sv[0], "mute", 200, &q), -ETIMEDOUT);
	CHECK_CONTAINS(err_msg(), "no greeting");
	close(sv[1]);

	/* the message parser on its own */
	struct qmp_msg m;
	const char *ok[] = { "{\"return\": [1, 2]}", "{\"event\": \"RESUME\"}", "{\"QMP\": {}}",
			     "{\"error\": {\"class\": \"X\", \"desc\": \"y\"}, \"id\": 3}" };
	for (size_t i = 0; i < 4; i++) {
		CHECK_INT(qmp_msg_parse(ok[i], strlen(ok[i]), &m), 0);
		qmp_msg_clear(&m);
	}
	const char *bad[] = { "[]", "{\"event\": 5}", "{\"error\": {\"class\": 1}}", "{\"other\": 1}",
			      "{\"return\": 1, \"return\": 2}", "{\"event\": \"X\", \"data\": []}" };
	for (size_t i = 0; i < 6; i++) {
		CHECK_INT(qmp_msg_parse(bad[i], strlen(bad[i]), &m), -EPROTO);
		CHECK_CONTAINS(err_msg(), "QMP message");
	}
	return unit_done("test-vm-qmp");
}
