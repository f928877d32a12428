/* A live container's cgroup: pause, resume, update, pids, stats, events
 * (see live.h). */
#include "live.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/log.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

int container_lock_load(const char *root, const char *id, container_state *ret, int *ret_lock)
{
	container_state st;
	int r = container_load(root, id, &st); /* validates the id, names a missing container */
	if (r < 0)
		return r;
	container_state_clear(&st);
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", root, id) >= (int)sizeof path)
		return err_set(ENAMETOOLONG, "container \"%s\"", id);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? err_set(ENOENT, "container \"%s\" does not exist", id)
				       : err_set(errno, "open state directory '%s'", path);
	if (flock(fd, LOCK_EX) < 0)
		return err_set(errno, "lock container \"%s\"", id);
	/* Again under the lock: a delete may have won meanwhile. */
	if ((r = container_load(root, id, ret)) < 0)
		return r;
	*ret_lock = TAKE_FD(fd);
	return 0;
}

int container_open_cgroup(const container_state *st, cgroup **ret)
{
	if (!st->cgroup || !st->cgroup[0])
		return err_set(ENOENT, "container \"%s\" has no cgroup", st->id);
	int r = cgroup_open(st->cgroup, ret);
	return r < 0 ? err_wrap(r, "container \"%s\"", st->id) : 0;
}

static int pause_resume(const char *root, const char *id, bool pause)
{
	const char *verb = pause ? "pause" : "resume";
	_cleanup_close_ int lock = -1;
	container_state st;
	int r = container_lock_load(root, id, &st, &lock);
	if (r < 0)
		return r;
	enum container_status want = pause ? ST_RUNNING : ST_PAUSED;
	cgroup *cg = NULL;
	if (st.status != want)
		r = err_set(0, "container \"%s\" is %s, not %s: cannot %s it", id, container_status_names[st.status],
			    container_status_names[want], verb);
	else if ((r = container_open_cgroup(&st, &cg)) == 0 && (r = cgroup_freeze(cg, pause)) < 0)
		r = err_wrap(r, "%s container \"%s\"", verb, id);
	cgroup_free(cg);
	container_state_clear(&st);
	return r;
}

int container_pause(const char *root, const char *id) { return pause_resume(root, id, true); }
int container_resume(const char *root, const char *id) { return pause_resume(root, id, false); }

int container_update(const char *root, const char *id, const spec_resources *res)
{
	_cleanup_close_ int lock = -1;
	container_state st;
	cgroup *cg = NULL;
	int r = container_lock_load(root, id, &st, &lock);
	if (r < 0)
		return r;
	if (st.status == ST_STOPPED || st.status == ST_CREATING)
		r = err_set(0, "container \"%s\" is %s: cannot update it", id, container_status_names[st.status]);
	else if ((r = container_open_cgroup(&st, &cg)) == 0 && (r = cgroup_apply(cg, res)) < 0)
		r = err_wrap(r, "update container \"%s\"", id);
	cgroup_free(cg);
	container_state_clear(&st);
	return r;
}

int container_pids(const char *root, const char *id, pid_t **ret, size_t *ret_n)
{
	container_state st;
	int r = container_load(root, id, &st);
	if (r < 0)
		return r;
	cgroup *cg = NULL;
	if ((r = container_open_cgroup(&st, &cg)) == 0 && (r = cgroup_pids(cg, ret, ret_n)) < 0)
		r = err_wrap(r, "container \"%s\": processes", id);
	cgroup_free(cg);
	container_state_clear(&st);
	return r;
}

static int stats_of(cgroup *cg, const char *id, struct cgroup_stats *ret)
{
	int r = cgroup_stats(cg, ret);
	return r < 0 ? err_wrap(r, "statistics of container \"%s\"", id) : 0;
}

int container_stats(const char *root, const char *id, struct cgroup_stats *ret)
{
	container_state st;
	int r = container_load(root, id, &st);
	if (r < 0)
		return r;
	cgroup *cg = NULL;
	if (st.status == ST_STOPPED)
		r = err_set(0, "container \"%s\" is not running", id);
	else if ((r = container_open_cgroup(&st, &cg)) == 0)
		r = stats_of(cg, id, ret);
	cgroup_free(cg);
	container_state_clear(&st);
	return r;
}

static int events_loop(const char *root, cgroup *cg, const container_state *st, int64_t interval_ns,
		       container_event_fn fn, void *userdata)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : err_set(errno, "events: watch container \"%s\"", st->id);
	/* The pid may have been reused between loading the state and here. */
	container_state again;
	int r = container_load(root, st->id, &again);
	bool stopped = r < 0 || again.status == ST_STOPPED || again.pid != st->pid;
	if (r == 0)
		container_state_clear(&again);
	if (stopped)
		return 0;

	cgroup_oom_watch *oom = NULL;
	if (cgroup_oom_watch_open(cg, &oom) < 0) {
		log_warnf("events: no OOM notifications: %s", err_msg());
		err_clear();
		oom = NULL;
	}
	_cleanup_close_ int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0) {
		cgroup_oom_watch_free(oom);
		return err_set(errno, "events: timerfd");
	}
	struct itimerspec its = {
		.it_interval = { interval_ns / 1000000000, interval_ns % 1000000000 },
		.it_value = { interval_ns / 1000000000, interval_ns % 1000000000 },
	};
	timerfd_settime(tfd, 0, &its, NULL);
	bool go_on = true;
	r = 0;
	while (go_on && r >= 0) {
		struct pollfd p[3] = { { pidfd, POLLIN, 0 }, { tfd, POLLIN, 0 }, { oom ? cgroup_oom_watch_fd(oom) : -1, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = err_set(errno, "events: poll");
			break;
		}
		bool exited = p[0].revents != 0;
		if (oom && (p[2].revents || exited)) {
			bool hit = false;
			int k = cgroup_oom_watch_read(oom, &hit);
			if (hit)
				go_on = fn(&(struct container_event){ CONTAINER_EVENT_OOM, st->id, NULL }, userdata);
			if (k < 0) { /* the cgroup is gone: nothing more to report */
				if (k != -ENOENT)
					r = k;
				break;
			}
		}
		if (exited || !go_on)
			break;
		if (p[1].revents) {
			uint64_t ticks;
			(void)!read(tfd, &ticks, sizeof ticks);
			struct cgroup_stats cs;
			if (stats_of(cg, st->id, &cs) < 0) { /* as runc: report and go on */
				log_warnf("%s", err_msg());
				err_clear();
				continue;
			}
			go_on = fn(&(struct container_event){ CONTAINER_EVENT_STATS, st->id, &cs }, userdata);
			cgroup_stats_clear(&cs);
		}
	}
	cgroup_oom_watch_free(oom);
	return r < 0 ? r : 0;
}

int container_events(const char *root, const char *id, int64_t interval_ns, container_event_fn fn, void *userdata)
{
	if (interval_ns <= 0)
		return err_set(EINVAL, "events: the interval must be greater than 0");
	container_state st;
	int r = container_load(root, id, &st);
	if (r < 0)
		return r;
	cgroup *cg = NULL;
	if (st.status == ST_STOPPED)
		r = err_set(0, "container \"%s\" is not running", id);
	else if ((r = container_open_cgroup(&st, &cg)) == 0)
		r = events_loop(root, cg, &st, interval_ns, fn, userdata);
	cgroup_free(cg);
	container_state_clear(&st);
	return r;
}
