/* Helpers shared by the files of src/vm (not part of the API). */
#pragma once
#include "vm/vm.h"
#include <stddef.h>
#include <sys/types.h>

/* Run argv (no shell) with stdin on /dev/null, collecting at most 1 MiB of
 * stdout and of stderr; kill it after timeout_ms. *ret_status: the wait
 * status. *ret_out / *ret_err may be NULL (output then discarded). */
int vm_run(char *const argv[], int timeout_ms, char **ret_out, char **ret_err, int *ret_status);
/* The last non-empty line of text (in place), for messages. */
const char *vm_last_line(char *text);
int vm_pidfd_open(pid_t pid);
int vm_pidfd_kill(int pidfd, int sig);
/* Field 22 of /proc/PID/stat, 0 when it cannot be read. */
unsigned long long vm_proc_starttime(pid_t pid);
/* Start argv as our child with the fds placed as vm_exec_qemu does.
 * *ret_pidfd gets a pidfd for it. */
int vm_spawn(char **argv, const int *from, const int *to, int nfds, int log_fd, pid_t *ret_pid, int *ret_pidfd);
/* poll() on one fd for `events` up to timeout_ms: 1 ready, 0 timeout. */
int vm_poll1(int fd, short events, int timeout_ms);
/* A refusal or a protocol failure whose message says it all: no strerror
 * suffix (err_set(0, ...)), the given errno returned. */
#define vm_refuse(errnum, ...) (err_set(0, __VA_ARGS__), -(errnum))
