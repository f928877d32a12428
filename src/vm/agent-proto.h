/* The guest agent's wire protocol, shared by the host (src/vm/agent.c) and the
 * static agent inside the guest (src/cmd/isola-agent/): framed messages over
 * the virtio-serial port "org.isola.agent". Header only and libc only, so the
 * agent can include it without any library of ours.
 *
 * A frame is a 16-byte header followed by `len` payload bytes, all integers
 * little endian:
 *     u32 magic "ISG1" | u16 type | u16 flags (0) | u32 session | u32 len
 * `len` is at most AGENT_MAX_PAYLOAD; a frame with another magic, a larger
 * length or non-zero flags is a protocol error and ends the connection.
 *
 * Sessions: the host numbers its requests (session != 0 for an exec, any
 * value for control requests); every answer carries the session of its
 * request. Several execs may run at once on one connection. When the host
 * side disconnects, the agent kills every session it was running.
 *
 * Resynchronisation: after connecting, the host sends PING with a random
 * nonce and discards whatever arrives until a PONG frame with that nonce
 * (bytes a previous connection left in flight never confuse a new one). */
#pragma once
#include <stdint.h>
#include <string.h>

#define AGENT_PORT_NAME "org.isola.agent"
#define AGENT_MAGIC 0x31475349u /* "ISG1" */
#define AGENT_HDR_SIZE 16u
#define AGENT_MAX_PAYLOAD 65536u
#define AGENT_PROTO_VERSION 1u

enum agent_type {
	/* host -> guest */
	AGENT_PING = 1,      /* u64 nonce */
	AGENT_EXEC = 2,      /* u32 flags (AGENT_EXEC_TTY), u16 rows, u16 cols, then strings (below) */
	AGENT_STDIN = 3,     /* data for the session's stdin; empty: end of input */
	AGENT_RESIZE = 4,    /* u16 rows, u16 cols (terminal sessions) */
	AGENT_SIGNAL = 5,    /* u32 signal number, sent to the session's process group */
	AGENT_POWEROFF = 6,  /* answer OK, then power the guest off cleanly */
	AGENT_MEMINFO = 7,   /* answer MEMINFO_REPLY */
	/* guest -> host */
	AGENT_PONG = 64,          /* u64 nonce, u32 protocol version */
	AGENT_STARTED = 65,       /* u32 pid of the command in the guest */
	AGENT_STDOUT = 66,        /* data (also the terminal's output) */
	AGENT_STDERR = 67,        /* data */
	AGENT_EXIT = 68,          /* i32 exit code (-1 if signalled), i32 signal (0 if exited) */
	AGENT_ERROR = 69,         /* u32 errno, then a message (not NUL-terminated) */
	AGENT_OK = 70,            /* empty */
	AGENT_MEMINFO_REPLY = 71, /* u64 MemTotal, MemFree, MemAvailable in KiB */
};

#define AGENT_EXEC_TTY 1u
/* EXEC strings: after the 8-byte fixed part, each string is one tag byte
 * ('a' argument, 'e' environment entry NAME=VALUE, 'c' working directory)
 * followed by its text and a NUL. At least one argument. */
#define AGENT_EXEC_FIXED 8u
#define AGENT_EXEC_MAX_STRINGS 4096u

static inline void agent_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void agent_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void agent_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t agent_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t agent_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t agent_get64(const uint8_t *p) { return agent_get32(p) | (uint64_t)agent_get32(p + 4) << 32; }

/* Fill a frame header. */
static inline void agent_hdr_put(uint8_t *h, uint16_t type, uint32_t session, uint32_t len)
{
	agent_put32(h, AGENT_MAGIC);
	agent_put16(h + 4, type);
	agent_put16(h + 6, 0);
	agent_put32(h + 8, session);
	agent_put32(h + 12, len);
}

struct agent_hdr {
	uint16_t type;
	uint32_t session;
	uint32_t len;
};

/* Decode and check a header: 0, or -1 when it is not a valid frame header. */
static inline int agent_hdr_get(const uint8_t *h, struct agent_hdr *out)
{
	if (agent_get32(h) != AGENT_MAGIC || agent_get16(h + 6) != 0)
		return -1;
	out->type = agent_get16(h + 4);
	out->session = agent_get32(h + 8);
	out->len = agent_get32(h + 12);
	return out->len <= AGENT_MAX_PAYLOAD ? 0 : -1;
}
