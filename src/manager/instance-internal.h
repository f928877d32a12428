/* Shared between instance.c (rows, create, delete, config) and
 * instance-run.c (start, stop, the monitor side, restart). */
#pragma once
#include "instance.h"
#include "db.h"
#include "limits.h"

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
