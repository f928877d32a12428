/* Shared between the runtime side (container.c) and the init side (init.c). */
#pragma once
#include <stdint.h>
#include <limits.h>
#include <stdbool.h>
#include "spec/spec.h"

enum {
	INIT_NO_PIVOT = 1 << 0,
	INIT_WANT_HOOKS = 1 << 1,     /* ask the runtime to run prestart/createRuntime */
	INIT_USERNS = 1 << 2,         /* the container has its own user namespace */
	INIT_CGROUPNS = 1 << 3,
	INIT_SECCOMP = 1 << 4,        /* a SYNC_SECCOMP message follows */
	INIT_MOUNTNS = 1 << 5,        /* own mount namespace (else: chroot, no pivot) */
	INIT_EXEC = 1 << 6,           /* exec into a running container: no rootfs setup */
	INIT_SHARED_PIDNS = 1 << 7,   /* create into a pid namespace joined by path */
	INIT_SLOW = 1 << 8,           /* re-executed before any namespace: join/create them (slow_enter) */
	INIT_USERNS_NEW = 1 << 9,     /* slow path: unshare a user namespace, the runtime writes its maps */
	INIT_MOUNT_SOURCES = 1 << 10, /* ask the runtime to open the bind sources (SYNC_MOUNT_SOURCES) */
};

/* Fixed-size options the runtime sends to the init (SYNC_OPTS). */
struct init_opts {
	uint32_t flags;
	int32_t fifo_fd;       /* exec fifo, opened O_RDWR: `start` writes one byte */
	int32_t status_fd;     /* status fifo, O_RDWR: errors after start; closed by exec */
	int32_t console_fd;    /* connected console socket or -1 */
	int32_t preserve_fds;
	int32_t unshare_flags; /* slow path: namespaces to create after joining ns_fds */
	int32_t exe_fd;        /* fast path: the protected runtime binary we were executed
	                          from (selfexe.c), closed once created; or -1 */
	int32_t ns_fds[NS__MAX]; /* exec: namespaces the init joins after the re-exec, or -1 */
	char id[256];
	char bundle[PATH_MAX];
};

/* Build the state JSON handed to hooks and listeners. */
char *state_json_for_hooks(const char *id, const char *status, int pid, const char *bundle,
			   const oci_spec *s);

/* Everything the cloned child needs before it re-executes as the init. */
struct child_args {
	const oci_spec *s;
	int sync, exe_fd, fifo_fd, status_fd, console_fd;
	int ns_fds[NS__MAX];
	int unshare_flags;  /* namespaces the child still has to create itself */
	bool slow;          /* re-executes at once; the init joins and creates the namespaces */
	bool userns_new;
	/* Fast path: the child is cloned into the cgroup2 directory and joins
	 * the v1 hierarchies itself (cgroup.h); NULL: the runtime moves it. */
	const struct cgroup_join *join;
};

/* Open the protected handle on the runtime binary (a->exe_fd, closed by the
 * caller), make the sync socketpair and clone3 a child that joins/creates
 * namespaces and re-executes the runtime as the init (container.c). Returns
 * the child's pid and the runtime's end of the socket in *ret_sync. */
pid_t runtime_spawn_child(struct child_args *a, int clone_flags, int *ret_sync);
/* Fork into the pid namespace joined or created before: the parent sends
 * SYNC_PID (the child's host pid, and a pidfd for it) and exits; 0 is
 * returned in the child once that message is out. */
int runtime_fork_pidns(int sync);
int runtime_connect_unix(const char *path);
/* SYNC_MOUNT_SOURCES: open every bind source of s, as the runtime, in the
 * mount namespace mntns (the init's), and send each to the init as a
 * SYNC_MOUNT_SOURCE (mountsrc.c). */
int runtime_send_mount_sources(int sync, const oci_spec *s, int mntns);
/* Whether the runtime does that for s (INIT_MOUNT_SOURCES): the container
 * has a user namespace and we may enter its mount namespace. */
bool runtime_opens_mount_sources(const oci_spec *s);
/* Compile (or take from <root>/.cache/seccomp) and send SYNC_SECCOMP. */
int runtime_send_seccomp(int sync, const oci_spec *s, const char *root);
/* Hand the seccomp notify fd and the containerProcessState to listenerPath. */
int runtime_send_listener(const oci_spec *s, const char *id, const char *status, pid_t pid,
			  const char *bundle, int fd);
/* The container's saved config (state dir), or NULL. */
#include "container.h"
oci_spec *runtime_config_of(const container_state *st);

/* ---- the state directory (state.c) ---- */
#define STATE_FILE "state.json"
#define FIFO_FILE "exec.fifo"
#define STATUS_FIFO "status.fifo"
#define CONFIG_COPY "config.json"
#define CONFIG_STAGED ".config.json.staged"
/* Start time of pid in clock ticks since boot (/proc/PID/stat field 22), 0
 * if it is gone: with the pid, it names one process. */
unsigned long long runtime_proc_starttime(pid_t pid);
/* Write state.json in the state directory (temp, fsync, rename). */
int runtime_write_state(int dirfd, const char *id, const char *status, pid_t pid, unsigned long long starttime,
			const char *bundle, const char *rootfs, const char *created, const char *cgroup, const oci_spec *s);
/* A container id as runc accepts it: refused with a message otherwise. */
int runtime_valid_id(const char *id);
/* The state directory of id under root, O_DIRECTORY; a missing one is
 * "container \"ID\" does not exist". */
int runtime_open_state_dir(const char *root, const char *id);
void runtime_now_rfc3339(char *buf, size_t n);
/* Read state.json (and the saved config) from an open state directory. */
int runtime_load_at(int dirfd, const char *id, container_state *st, bool with_config);
