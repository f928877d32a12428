/* Shared between the runtime side (container.c) and the init side (init.c). */
#pragma once
#include <stdint.h>
#include <limits.h>
#include "spec/spec.h"

enum {
	INIT_NO_PIVOT = 1 << 0,
	INIT_WANT_HOOKS = 1 << 1,     /* ask the runtime to run prestart/createRuntime */
	INIT_USERNS = 1 << 2,         /* the container has its own user namespace */
	INIT_CGROUPNS = 1 << 3,
	INIT_SECCOMP = 1 << 4,        /* a SYNC_SECCOMP message follows */
	INIT_MOUNTNS = 1 << 5,        /* own mount namespace (else: chroot, no pivot) */
};

/* Fixed-size options the runtime sends to the init (SYNC_OPTS). */
struct init_opts {
	uint32_t flags;
	int32_t fifo_fd;       /* exec fifo, opened O_RDWR: `start` writes one byte */
	int32_t status_fd;     /* status fifo, O_RDWR: errors after start; closed by exec */
	int32_t console_fd;    /* connected console socket or -1 */
	int32_t preserve_fds;
	int32_t host_pid;      /* the init's pid as the runtime sees it */
	char id[256];
	char bundle[PATH_MAX];
};

/* Build the state JSON handed to hooks and listeners. */
char *state_json_for_hooks(const char *id, const char *status, int pid, const char *bundle,
			   const oci_spec *s);
