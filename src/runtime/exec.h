/* `exec`: start another process inside a created or running container. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

struct exec_opts {
	const char *root, *id;
	const char *process_file;     /* --process: an OCI process JSON, or NULL */
	char **args;                  /* NULL-terminated, used without --process */
	char **env;                   /* --env K=V, NULL-terminated or NULL */
	const char *cwd, *user;       /* --cwd, --user UID[:GID] */
	char **additional_gids;       /* --additional-gids, NULL-terminated or NULL */
	char **caps;                  /* --cap, NULL-terminated or NULL */
	int tty;                      /* -1 unset, 0/1 */
	unsigned short rows, cols;    /* the caller's terminal size for the new pty, 0: unknown */
	bool no_new_privs;
	const char *console_socket;   /* path, or NULL */
	int console_fd;               /* connected socket, or -1 */
	int preserve_fds;
};

/* Start the process; returns its host pid. The caller waits for it (it is
 * our child or, through a pid namespace, reparented to us as subreaper). */
int container_exec(const struct exec_opts *o, pid_t *ret_pid);
