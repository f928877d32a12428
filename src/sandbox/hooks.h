/* OCI hooks: run a hook program with the container state on stdin,
 * honouring its timeout. */
#pragma once
#include "spec/spec.h"

/* Run every hook of one kind in order. `kind` is HOOK_*; errors read
 * "hooks.createRuntime[0] (/path): exit status 1". With keep_going (poststart,
 * poststop: the spec makes their failures warnings) every hook runs, each
 * failure is printed as a warning on stderr and the first one is returned. */
int hooks_run(const oci_spec *s, int kind, const char *state_json, bool keep_going);
