/* The container's terminal: a pty from the container's devpts whose master
 * goes to the --console-socket over SCM_RIGHTS. */
#pragma once
#include "spec/spec.h"

/* Open a pty on the devpts at <rootfd>/dev/pts, send the master over
 * console_sock, return the slave fd (O_CLOEXEC) in *ret_slave. */
int console_create(const oci_spec *s, int rootfd, int console_sock, int *ret_slave);
/* Make the slave the controlling terminal and stdin/stdout/stderr. */
int console_attach(int slave);
/* Send one fd with a short payload over a unix socket. */
int send_fd(int sock, int fd, const char *payload);
/* Receive one fd (blocking). */
int recv_fd(int sock, int *ret_fd);
