/* cgroup manager: one interface over cgroup v1 (legacy), hybrid and v2
 * (unified) hosts, chosen at run time from /proc/self/mountinfo. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "spec/spec.h"

enum cgroup_mode { CGROUP_LEGACY, CGROUP_HYBRID, CGROUP_UNIFIED };

typedef struct cgroup cgroup; /* opaque */

/* Detect the host layout (cached after the first call). */
enum cgroup_mode cgroup_mode(void);

/* Create the container's cgroup in every mounted hierarchy (each v1 controller
 * hierarchy plus, on hybrid hosts, the unified one). `path` is
 * linux.cgroupsPath: absolute paths are relative to each hierarchy's root,
 * relative ones to the calling process's own cgroup; NULL means "/<id>".
 * Already-existing directories are reused (shared cgroups). On failure,
 * everything this call created is removed again. */
int cgroup_create(const char *path, const char *id, cgroup **ret);
/* Re-open an existing container cgroup from the string cgroup_path() gave. */
int cgroup_open(const char *saved, cgroup **ret);
/* A string that cgroup_open() accepts (stored in state.json). */
const char *cgroup_path(const cgroup *cg);
/* Move pid into the container cgroup in every hierarchy. */
int cgroup_enter(cgroup *cg, pid_t pid);
/* Apply linux.resources; errors name the field ("linux.resources.memory.limit: ..."). */
int cgroup_apply(cgroup *cg, const spec_resources *r);
/* Send sig to every process in the cgroup (kill --all). */
int cgroup_kill_all(cgroup *cg, int sig);
/* PIDs in the cgroup (host PIDs); *ret malloc'd. */
int cgroup_pids(cgroup *cg, pid_t **ret, size_t *n);
/* true if the cgroup has no process left. */
bool cgroup_is_empty(cgroup *cg);
/* Freeze (pause) / thaw (resume). */
int cgroup_freeze(cgroup *cg, bool frozen);
bool cgroup_is_frozen(cgroup *cg);
/* Remove the container cgroup directories everywhere (children first); only
 * directories this container created are removed. Processes must be gone. */
int cgroup_destroy(cgroup *cg);
void cgroup_free(cgroup *cg);

/* Inside the container's mount namespace (before pivot_root): mount the
 * cgroup filesystem for an OCI mount of type "cgroup" at `target` (a path,
 * typically /proc/self/fd/N of the resolved directory). `flags` are the
 * mount's MS_* flags (ro, nosuid, ...). With a cgroup namespace the real
 * cgroup filesystem is mounted; without, the container's own cgroup
 * directories are bind-mounted. On v1 a tmpfs holds one directory per
 * hierarchy (and the usual cpu,cpuacct symlinks). */
int cgroup_mount_in_container(const char *target, unsigned long flags, bool cgroupns);
