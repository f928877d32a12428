/* Waiting in the foreground for a container process: signals forwarded to
 * it, and its terminal (a pty master) joined to ours in raw mode. Shared by
 * isola-oci (run, exec) and isola (exec). */
#pragma once
#include <signal.h>
#include <sys/types.h>

/* Wait for pid (our child, or reparented to us as subreaper), forwarding
 * the blocked signals in *mask to it and, with a pty master, the terminal.
 * Returns the exit code to give: the status, or 128 + signal. */
int foreground_wait(pid_t pid, int master, const sigset_t *mask);
/* Block every signal that can be forwarded; *mask gets the set. */
void block_forwarded_signals(sigset_t *mask);
/* The pty master the init sent on sock (closed), or -1. */
int take_console_master(int sock);
