/* A small client of QEMU's machine protocol (QMP): JSON objects, one per
 * line, over a unix stream socket. Connect and negotiate capabilities,
 * execute a command and get its "return" or its error (class and
 * description in the message), read events (queued, or dispatched to a
 * callback), pass file descriptors (SCM_RIGHTS with getfd / add-fd).
 *
 * Every wait has a deadline: a QEMU that hangs or dies never blocks the
 * caller longer than the timeout it gave. QEMU runs guest-influenced code,
 * so what it sends is bounded too: a message longer than QMP_MAX_LINE ends
 * the connection, and at most QMP_MAX_EVENTS events are queued (the oldest
 * are dropped and counted). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define QMP_MAX_LINE (1024 * 1024)
#define QMP_MAX_EVENTS 64

enum qmp_msg_kind { QMP_MSG_GREETING, QMP_MSG_RETURN, QMP_MSG_ERROR, QMP_MSG_EVENT };

/* One parsed message. `root` owns the JSON; the other pointers borrow from it. */
struct qmp_msg {
	enum qmp_msg_kind kind;
	json_t *root;
	long long id;            /* the command's "id", -1 when absent or not an integer */
	json_t *ret;             /* RETURN: the "return" value */
	const char *err_class;   /* ERROR */
	const char *err_desc;    /* ERROR */
	const char *event;       /* EVENT: its name */
	json_t *data;            /* EVENT: "data" (an object, possibly empty) */
	double timestamp;        /* EVENT: seconds */
};

/* Parse one line (without its newline). 0, or -EPROTO with a message naming
 * what is wrong ("QMP message: ..."). The caller clears a parsed message. */
int qmp_msg_parse(const char *line, size_t len, struct qmp_msg *ret);
void qmp_msg_clear(struct qmp_msg *m);

struct qmp;
typedef void (*qmp_event_fn)(const char *event, json_t *data, double timestamp, void *userdata);

/* Connect to a QMP socket, read the greeting and run qmp_capabilities.
 * `what` names the VM in messages. */
int qmp_connect(const char *path, const char *what, int timeout_ms, struct qmp **ret);
/* The same over an already connected socket (taken over; closed on error). */
int qmp_open_fd(int fd, const char *what, int timeout_ms, struct qmp **ret);
void qmp_close(struct qmp *q);

/* Execute `cmd` with `args` (an object, stolen; NULL for none) and wait for
 * its answer. On success *ret (may be NULL) gets the "return" value (a new
 * reference). An error answer gives -EIO (-EOPNOTSUPP for CommandNotFound)
 * with "QMP <cmd>: <class>: <desc>"; no answer in time -ETIMEDOUT; QEMU gone
 * -ECONNRESET. Events read meanwhile are queued or dispatched. */
int qmp_execute(struct qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **ret);
/* The same, sending `fd` with the command (SCM_RIGHTS), for getfd / add-fd. */
int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms, json_t **ret);

/* Dispatch every event to fn as it is read (queued events first). NULL
 * goes back to queueing. */
void qmp_set_event_handler(struct qmp *q, qmp_event_fn fn, void *userdata);
/* Wait for the event `name` (NULL: any event); queued events are looked at
 * first, and those of other names stay queued. *ret_data (may be NULL) gets
 * its data (a new reference), *ret_name (may be NULL) its name (static until
 * the next call on q). -ETIMEDOUT, or -ECONNRESET when QEMU goes away. */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, json_t **ret_data, const char **ret_name);
/* Read what is available without blocking and dispatch/queue its events
 * (for a caller's own poll loop on qmp_fd()). -ECONNRESET at end of file. */
int qmp_process(struct qmp *q);
int qmp_fd(const struct qmp *q);
/* Events dropped because the queue was full. */
unsigned qmp_events_dropped(const struct qmp *q);
/* The "version" object of QEMU's greeting (borrowed). */
json_t *qmp_version(const struct qmp *q);

/* Milliseconds left until a CLOCK_MONOTONIC deadline (0 when past);
 * deadline_ms(-1) is "no deadline" and ms_left then returns -1. */
long long qmp_now_ms(void);
