/* Messages between the runtime process and the container init over a
 * SOCK_STREAM socketpair: a fixed header, a payload, and at most one fd. */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum sync_type {
	SYNC_CONFIG = 1,     /* runtime -> init: raw config.json */
	SYNC_OPTS,           /* runtime -> init: struct init_opts + strings */
	SYNC_MAPPED,         /* runtime -> child: id maps written, cgroup joined: go */
	SYNC_NEED_MAP,       /* child -> runtime: new user namespace, write maps (slow path) */
	SYNC_PID,            /* child -> runtime: host pid of the init (slow path) */
	SYNC_HOOKS,          /* init -> runtime: run prestart + createRuntime hooks now */
	SYNC_HOOKS_DONE,     /* runtime -> init */
	SYNC_SECCOMP,        /* runtime -> init: compiled filter blob (may be empty) */
	SYNC_LISTENER,       /* init -> runtime: seccomp listener fd attached */
	SYNC_READY,          /* init -> runtime: created, waiting for start */
	SYNC_ERROR,          /* either way: payload is the error message */
	SYNC_MOUNT_SOURCES,  /* init -> runtime: open the bind sources; fd: the init's mount namespace */
	SYNC_MOUNT_SOURCE,   /* runtime -> init: struct sync_mount_source, fd: the source (O_PATH) or none */
};

/* One bind source, in the order of mounts[] (runtime/mountsrc.c). */
struct sync_mount_source {
	uint32_t index; /* in mounts[] */
	int32_t err;    /* errno of the open; 0: the fd is attached, or with none the init opens the path */
};

struct sync_msg {
	uint32_t type;
	uint32_t len;
	void *data; /* malloc'd, NUL-terminated, NULL when len == 0 */
	int fd;     /* received fd or -1 */
};

int sync_send(int sock, uint32_t type, const void *data, size_t len, int fd);
/* Receive one message; -EPIPE on end of stream. */
int sync_recv(int sock, struct sync_msg *m);
/* Receive, failing unless the type is `want` (SYNC_ERROR becomes the error). */
int sync_expect(int sock, uint32_t want, struct sync_msg *m);
void sync_msg_clear(struct sync_msg *m);
/* Send err_msg() as SYNC_ERROR. */
void sync_send_error(int sock);
