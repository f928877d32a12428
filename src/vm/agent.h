/* The host side of the guest agent (src/cmd/isola-agent): connect to the
 * VM's agent.sock (QEMU's end of the virtio-serial port), run a command in
 * the guest with its stdio relayed, power the guest off, read its memory
 * figures. Protocol: agent-proto.h.
 *
 * The guest is untrusted. Every frame is bounded (AGENT_MAX_PAYLOAD) and
 * read into a fixed buffer: nothing the guest sends makes the host allocate
 * more. Every wait has a deadline or ends when QEMU closes the socket; a
 * guest that floods output is relayed only as fast as the caller's fds take
 * it, and never makes the host buffer it. */
#pragma once
#include "vm/agent-proto.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent;

/* Take over a connected socket, resynchronise (PING with a random nonce,
 * everything until its PONG discarded). -ETIMEDOUT when the agent does not
 * answer in time (the guest still booting, or no agent). */
int agent_open_fd(int fd, const char *what, int timeout_ms, struct agent **ret);
/* Connect to dirfd/agent.sock and agent_open_fd(). */
int agent_connect_at(int dirfd, const char *what, int timeout_ms, struct agent **ret);
void agent_close(struct agent *a);
int agent_ping(struct agent *a, int timeout_ms);

struct agent_exec_opts {
	const char *const *argv;  /* at least one */
	const char *const *env;   /* NAME=VALUE, NULL-terminated; NULL: the agent's default PATH/HOME */
	const char *cwd;          /* NULL: / */
	bool tty;                 /* a terminal in the guest (stdout carries both outputs) */
	unsigned short rows, cols;
	int stdin_fd;             /* -1: no input (stdin closed at once) */
	int stdout_fd, stderr_fd; /* -1: discarded */
	int winch_fd;             /* readable on SIGWINCH (a signalfd): the size of stdin_fd is sent; -1 */
	int timeout_ms;           /* -1: none; else the command is killed and -ETIMEDOUT returned */
};
struct agent_status {
	int code;   /* exit code, -1 if killed by a signal */
	int signal; /* 0 if it exited */
	uint32_t pid;
};
/* Run a command; returns once it exited (0 with *ret) or failed to start
 * (-errno with the guest's reason: "exec \"nope\": No such file or directory"). */
int agent_exec(struct agent *a, const struct agent_exec_opts *o, struct agent_status *ret);
/* Ask the guest to power off (it answers, then shuts down cleanly). */
int agent_poweroff(struct agent *a, int timeout_ms);
struct agent_meminfo {
	uint64_t total_kib, free_kib, available_kib;
};
int agent_meminfo(struct agent *a, int timeout_ms, struct agent_meminfo *ret);

/* The frame reader, exposed for the fuzz test. Bytes are appended at
 * buf + len (at most sizeof buf - len); agent_reader_next takes the next
 * complete frame: 1 (h and *payload valid until the next call), 0 when more
 * bytes are needed, -EPROTO for a bad header or a payload that does not fit
 * its type (agent_frame_validate). */
struct agent_reader {
	uint8_t buf[AGENT_HDR_SIZE + AGENT_MAX_PAYLOAD];
	size_t len, off;
};
int agent_reader_next(struct agent_reader *r, struct agent_hdr *h, const uint8_t **payload);
/* A guest->host frame's payload against its type: sizes of PONG, STARTED,
 * EXIT, ERROR, MEMINFO_REPLY; host->guest types from the guest are refused. */
int agent_frame_validate(const struct agent_hdr *h, const uint8_t *payload);
/* Room left for the next read (compacts the buffer first). */
size_t agent_reader_room(struct agent_reader *r);
