/* Shared between instance.c (rows, create, delete, config) and
 * instance-run.c (start, stop, the monitor side, restart). */
#pragma once
#include "instance.h"
#include "db.h"
#include "limits.h"
#include "spec/spec.h"

struct manager {
	char *state_dir;
	char *run_dir;       /* the runtime's state root (container state.json) */
	char *instances_dir; /* <state>/instances */
	char *locks_dir;     /* <state>/locks */
	struct image_store *images;
	struct db *db;       /* the image store's connection */
};

/* Take the instance's lock (flock on <state>/locks/<name>.lock, released
 * when the fd closes or the process dies). wait=false: -EBUSY when held. */
int instance_lock(struct manager *m, const char *name, bool wait, int *ret_fd);
/* The database row and configuration, status not filled. -ENOENT with
 * "instance 'x' not found". */
int instance_load(struct manager *m, const char *name, struct instance *ret);
/* Lock, load and fill the live status; on failure nothing is held. */
int instance_lock_load(struct manager *m, const char *name, int *ret_lock, struct instance *ret);
/* Fill status, pid and monitor_pid from the host. */
void instance_fill_live(struct manager *m, struct instance *in, bool lock_held);
/* UPDATE instances SET <assignments> WHERE name = ?, with integer binds. */
int instance_update(struct manager *m, const char *name, const char *assignments, int n, const int64_t *values);
char *instance_dir(const struct manager *m, const char *name);
/* Read <inst>/monitor.pid ("pid starttime") and check the process is that one. */
pid_t instance_monitor_pid(const struct manager *m, const char *name);
/* Process start time (field 22 of /proc/PID/stat), 0 when gone. */
unsigned long long proc_starttime(pid_t pid);
/* Gone or a zombie (a process nobody reaps). */
bool proc_is_zombie(pid_t pid);
/* The limits.* values of an instance's config, indexed by LIMIT_*. */
void instance_limit_values(const struct instance *in, const char *values[LIMIT__MAX]);
/* linux.resources for the instance on this host (cpuset chosen, disk device). */
int instance_resources_json(struct manager *m, const struct instance *in, json_t **ret);
/* Stop without taking the lock (delete holds it): kill everything and
 * remove the runtime state. */
int instance_kill_now(struct manager *m, const char *name);
/* Apply the instance's limits to its running cgroup after `key` changed. */
int instance_apply_limits(struct manager *m, const struct instance *in, const char *key);
/* rmdir the instances' cgroup parent on every hierarchy when it is empty. */
void instance_cgroup_parent_cleanup(const struct manager *m);
/* Wait up to timeout_ms (-1: forever) for a process (not our child) to end. */
bool instance_wait_gone(pid_t pid, int timeout_ms);

/* ---- instance-host.c: what a running instance holds of the host ---- */
/* root:<idmap_base> 0750 (privileged: root 0700). */
int instance_dir_secure(const char *dir, int64_t idmap_base);
/* Close every fd >= 3 that is not close-on-exec (the caller's). */
void instance_close_inherited_fds(void);
/* A slave mount namespace for setting the instance up, and back to the
 * host's (ret_host_ns / host_ns: an fd of the host's namespace). */
int instance_ns_enter(int *ret_host_ns);
int instance_ns_leave(int host_ns);
/* Bind LXCFS's directory at <inst_dir>/lxcfs (in the monitor's namespace). */
int instance_lxcfs_bind(const char *inst_dir);
/* The instance's cgroup <parent>/<name> (limits for payload and monitor),
 * the payload's <parent>/<name>/payload (config.json's cgroupsPath). */
char *instance_cgroup_path(const struct manager *m, const char *name);
char *instance_cgroup_payload(const struct manager *m, const char *name);
/* Create the instance's cgroup with the bundle's limits (without the CPU
 * pinning, which is the payload's) and move the caller into its monitor leaf. */
int instance_cgroup_setup(struct manager *m, const struct instance *in, const char *bundle);
/* Apply limits to the instance's cgroup (cpu.cpus and mems left out). */
int instance_cgroup_apply(struct manager *m, const char *name, const spec_resources *sr);
/* Move the caller to the root cgroup of every hierarchy. */
void instance_cgroup_leave(void);
/* rmdir the instance's cgroups (monitor, payload, itself) and the parent when empty. */
void instance_cgroup_remove(const struct manager *m, const char *name);
/* LXCFS died: restart it and mount its files again in the running instance. */
int instance_lxcfs_repair(struct manager *m, const char *name);
