/* The container process's identity and limits: user and groups,
 * capabilities, rlimits, no_new_privs, oom_score_adj, scheduling. */
#pragma once
#include "spec/spec.h"

/* Drop the bounding set, switch to process.user, then set the effective,
 * permitted, inheritable and ambient sets. */
int process_set_user_and_caps(const oci_spec *s, bool userns);
int process_set_rlimits(const oci_spec *s);
/* Scheduler, I/O priority, personality (before exec). */
int process_set_sched(const oci_spec *s);
/* Find args[0] in the container's PATH; *ret malloc'd. Runs after pivot_root. */
int process_find_executable(const oci_spec *s, char **ret);
/* Value of PATH in a NULL-terminated env array, or the default. */
const char *process_env_path(char *const *env);
/* process.env with HOME added from the container's /etc/passwd for
 * process.user.uid ("/" when it has none), as runc does, when the config
 * does not set it; *ret is NULL when process.env already has HOME, else a
 * malloc'd array whose strings are process.env's plus one malloc'd HOME=.
 * Runs inside the container's root. */
int process_env(const oci_spec *s, char ***ret);
