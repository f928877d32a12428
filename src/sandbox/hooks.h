/* OCI hooks: run a hook program with the container state on stdin,
 * honouring its timeout. */
#pragma once
#include "spec/spec.h"

/* Run every hook of one kind in order; stops at the first failure.
 * `kind` is HOOK_*; errors read "hooks.createRuntime[0] (/path): exit status 1". */
int hooks_run(const oci_spec *s, int kind, const char *state_json);
