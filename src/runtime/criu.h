/* Running the criu binary (from PATH) for checkpoint.c: an argv builder,
 * one run with descriptors handed over, and the error for a failed run. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "sandbox/cgroup.h"

/* argv under construction; an allocation failure sticks in .oom. */
struct strv {
	char **v; /* NULL-terminated */
	size_t n, cap;
	bool oom;
};
void strv_add(struct strv *a, const char *s);
void strv_addf(struct strv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_free(struct strv *a);

struct criu_run {
	char **argv;           /* argv[0] "criu" */
	const int *fd_map;     /* pairs (our fd, fd in criu) */
	size_t n_fd_map;
	cgroup *cg;            /* restore: run criu (and so the restored tasks) in it, and add
				* --cgroup-root for each of its hierarchies */
	const char *bind_src;  /* restore: bind this over bind_dst in a private mount namespace */
	const char *bind_dst;
	int status;            /* out: wait status */
	char *output;          /* out: what criu wrote to stdout/stderr (free it) */
};

/* Run criu to completion. Returns 0 once it ran (c->status tells how it
 * ended), or an error when it could not be started ("criu not found"). */
int criu_exec(struct criu_run *c);
/* The error for a run that did not succeed: "CRIU <what> failed (...)",
 * the last error lines of <work>/<log> (else criu's output) and, when
 * `criu check` fails as well, its result. Returns -EINVAL (err_msg set). */
int criu_failed(const char *what, const struct criu_run *c, const char *work, const char *log);
