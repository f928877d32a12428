/* Seccomp: compile the OCI seccomp object to classic BPF with libseccomp in
 * the runtime, install it in the container init just before exec. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <linux/filter.h>
#include "spec/spec.h"

typedef struct {
	struct sock_filter *filter; /* malloc'd */
	unsigned short len;
	unsigned flags;          /* SECCOMP_FILTER_FLAG_* to pass at install time */
	bool needs_listener;     /* some action is SCMP_ACT_NOTIFY */
} seccomp_prog;

/* Build the filter. Unknown syscall names on this architecture are skipped
 * (debug log), as runc does. Errors name the JSON path
 * ("linux.seccomp.syscalls[3].action: unknown action ..."). */
int seccomp_compile(const spec_seccomp *s, seccomp_prog *ret);
void seccomp_prog_free(seccomp_prog *p);
/* Put the ENOSYS stub in front of `p`, libseccomp's program for `s` with
 * default action `def` (seccomp-enosys.c): when the default refuses (errno
 * other than ENOSYS, kill, trap), syscall numbers above the highest one the
 * profile names on an architecture fail with ENOSYS, as under runc, so that
 * libc falls back from syscalls newer than the profile. No-op otherwise. */
int seccomp_enosys_stub(const spec_seccomp *s, uint32_t def, seccomp_prog *p);
/* Serialise to / from a byte blob (to hand a compiled program to the init or
 * to cache it). */
int seccomp_prog_to_blob(const seccomp_prog *p, void **ret, size_t *len);
int seccomp_prog_from_blob(const void *blob, size_t len, seccomp_prog *ret);
/* Install in the calling thread via seccomp(2). If needs_listener, adds
 * SECCOMP_FILTER_FLAG_NEW_LISTENER and returns the listener fd in
 * *ret_listener (else -1). */
int seccomp_install(const seccomp_prog *p, int *ret_listener);
/* Connect to listenerPath (SOCK_STREAM unix socket) and send the OCI
 * containerProcessState JSON `state` with the listener fd (SCM_RIGHTS). */
int seccomp_send_listener(const char *listener_path, const char *state, int listener_fd);
/* seccomp_compile + seccomp_prog_to_blob, through a cache in cache_dir
 * (created if missing; NULL disables it). Entries are keyed by the full
 * canonical form of the filter and the libseccomp version. */
int seccomp_compile_cached(const spec_seccomp *s, const char *cache_dir, void **ret, size_t *len);
