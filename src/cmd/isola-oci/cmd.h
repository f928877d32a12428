/* Shared between the isola-oci command files. */
#pragma once
#include <stdbool.h>
#include "runtime/container.h"

struct globals {
	const char *root, *log, *log_format;
	bool debug;
};
extern struct globals g;

int fail_cmd(int r);
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void debugf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int parse_signal(const char *s);
/* `run`: create + start, then (unless detached) wait, forwarding signals and
 * the terminal, delete, and exit with the container's status. */
int run_container(struct create_opts *o, bool detach, bool keep);
#include "runtime/foreground.h"
int cmd_exec(int argc, char **argv);
/* cmd-resources.c: pause, resume, update, ps; cmd-events.c: events (runc
 * 1.1 flags and output formats). */
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
/* --preserve-fds N for create, run and exec alike (usage error otherwise). */
int parse_preserve_fds(const char *cmd, const char *arg, int *ret);
int cmd_update(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_events(int argc, char **argv);
/* cmd-checkpoint.c: checkpoint and restore through CRIU (runc's flags). */
int cmd_checkpoint(int argc, char **argv);
int cmd_restore(int argc, char **argv);
