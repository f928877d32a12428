/* User namespaces seen from an unprivileged ("rootless") runtime: telling
 * that case apart, and writing a new namespace's uid/gid maps, directly or
 * through the setuid helpers newuidmap/newgidmap (Debian: uidmap), which
 * grant the caller's /etc/subuid and /etc/subgid ranges. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "spec/spec.h"

/* true when the runtime cannot act as the host's root: a non-zero effective
 * uid, or uid 0 of a user namespace that does not map every host id (rootless
 * podman). Cached after the first call. */
bool userns_rootless(void);

/* Write /proc/PID/uid_map and gid_map of a process that sits in a new user
 * namespace. Tries the direct write first (enough for root, and for an
 * unprivileged caller mapping only its own uid/gid, after setgroups is
 * denied), then newuidmap/newgidmap. Errors name the config field and
 * include what the helper printed. */
int userns_write_maps(pid_t pid, const spec_idmap *uids, size_t n_uids, const spec_idmap *gids, size_t n_gids);
