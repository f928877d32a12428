/* A live container's cgroup: pause, resume, update, its processes, its
 * statistics and its event stream (runc's pause/resume/update/ps/events),
 * for every front end. Each takes the state directory's lock, so that a
 * concurrent delete cannot pull the cgroup away. */
#pragma once
#include "container.h"
#include "sandbox/cgroup.h"
#include <stdbool.h>
#include <stdint.h>

/* Load the state under the lock create/start/delete take on the state
 * directory; *ret_lock is the locked directory fd (close to unlock). */
int container_lock_load(const char *root, const char *id, container_state *ret, int *ret_lock);
/* Open the cgroup recorded in the state; an error names the container. */
int container_open_cgroup(const container_state *st, cgroup **ret);

int container_pause(const char *root, const char *id);
int container_resume(const char *root, const char *id);
/* Apply res to a created, running or paused container. */
int container_update(const char *root, const char *id, const spec_resources *res);
/* Every pid in the container's cgroup (host pids), malloc'd. */
int container_pids(const char *root, const char *id, pid_t **ret, size_t *ret_n);
/* One snapshot of the cgroup's statistics (cgroup_stats_clear() it). */
int container_stats(const char *root, const char *id, struct cgroup_stats *ret);

enum container_event_type { CONTAINER_EVENT_STATS, CONTAINER_EVENT_OOM };
struct container_event {
	enum container_event_type type;
	const char *id;
	struct cgroup_stats *stats; /* CONTAINER_EVENT_STATS only */
};
/* Return false to stop watching. */
typedef bool (*container_event_fn)(const struct container_event *ev, void *userdata);
/* Until the container's init exits (or fn returns false): a stats event
 * every interval_ns (the first after one interval, as runc), an oom event
 * for each OOM kill in its cgroup. A stats snapshot that cannot be read is
 * a warning (log_warnf), not the end of the stream. */
int container_events(const char *root, const char *id, int64_t interval_ns, container_event_fn fn, void *userdata);
