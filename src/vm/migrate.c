/* Live migration over a file descriptor: QEMU's own stream (QMP migrate to
 * "fd:NAME" after getfd hands it the fd), so any pipe carries it — a
 * socketpair on one host, `isola migrate send | ssh host isola migrate
 * receive` between hosts. The disk is not part of the stream: both sides use
 * the same file on one host; between stores the manager copies the overlay
 * while the source is paused at the end (destination started paused). */
#include "vm/vm.h"
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/err.h"
#include <string.h>

#define FDNAME "isola-migrate"
#define STEP_MS 10000

static int setup(struct vm *v, struct qmp **ret)
{
	struct qmp *q = vm_qmp(v, STEP_MS);
	if (!q)
		return -EIO;
	json_t *caps = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "events", "state", 1);
	int r = qmp_execute(q, "migrate-set-capabilities", caps, STEP_MS, NULL);
	if (r < 0)
		return r;
	*ret = q;
	return 0;
}

static int pass_fd(struct qmp *q, int fd)
{
	/* A stale fd of that name (an earlier, failed attempt) goes first. */
	(void)qmp_execute(q, "closefd", json_pack("{s:s}", "fdname", FDNAME), STEP_MS, NULL);
	return qmp_execute_fd(q, "getfd", json_pack("{s:s}", "fdname", FDNAME), fd, STEP_MS, NULL);
}

/* The migration's state from query-migrate: 1 completed, 0 going on, <0 failed. */
static int query(struct qmp *q, const char *side, struct vm_migration_stats *stats)
{
	json_t *m = NULL;
	int r = qmp_execute(q, "query-migrate", NULL, STEP_MS, &m);
	if (r < 0)
		return r;
	const char *st = json_string_value(json_object_get(m, "status"));
	if (!st)
		st = "none";
	if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0) {
		const char *why = json_string_value(json_object_get(m, "error-desc"));
		r = vm_refuse(EIO, "migration (%s): %s%s%s", side, st, why ? ": " : "", why ? why : "");
	} else if (strcmp(st, "completed") == 0) {
		if (stats) {
			stats->total_ms = (uint64_t)json_integer_value(json_object_get(m, "total-time"));
			stats->downtime_ms = (uint64_t)json_integer_value(json_object_get(m, "downtime"));
			stats->setup_ms = (uint64_t)json_integer_value(json_object_get(m, "setup-time"));
			stats->transferred_bytes =
				(uint64_t)json_integer_value(json_object_get(json_object_get(m, "ram"), "transferred"));
		}
		r = 1;
	} else {
		r = 0;
	}
	json_decref(m);
	return r;
}

/* Until the migration completes: MIGRATION events, and query-migrate as a
 * check every half second (an event may come before we listen). */
static int wait_done(struct qmp *q, const char *side, int timeout_ms, struct vm_migration_stats *stats)
{
	long long deadline = timeout_ms < 0 ? -1 : qmp_now_ms() + timeout_ms;
	for (;;) {
		int r = query(q, side, stats);
		if (r != 0)
			return r < 0 ? r : 0;
		long long left = deadline < 0 ? 500 : deadline - qmp_now_ms();
		if (left <= 0)
			return vm_refuse(ETIMEDOUT, "migration (%s): not done within %d ms", side, timeout_ms);
		json_t *data = NULL;
		r = qmp_wait_event(q, "MIGRATION", left < 500 ? (int)left : 500, &data, NULL);
		json_decref(data);
		if (r < 0 && r != -ETIMEDOUT)
			return r;
	}
}

int vm_migrate_send(struct vm *v, int fd, int timeout_ms, struct vm_migration_stats *ret)
{
	struct qmp *q;
	int r = setup(v, &q);
	if (r < 0 || (r = pass_fd(q, fd)) < 0)
		return err_wrap(r, "migration (source)");
	if ((r = qmp_execute(q, "migrate", json_pack("{s:s}", "uri", "fd:" FDNAME), STEP_MS, NULL)) < 0)
		return err_wrap(r, "migration (source)");
	struct vm_migration_stats st = { 0 };
	r = wait_done(q, "source", timeout_ms, &st);
	if (r == -ETIMEDOUT)
		(void)qmp_execute(q, "migrate_cancel", NULL, STEP_MS, NULL);
	if (r < 0)
		return r;
	if (ret)
		*ret = st;
	return 0;
}

int vm_migrate_incoming(struct vm *v, int fd)
{
	struct qmp *q;
	int r = setup(v, &q);
	if (r < 0 || (r = pass_fd(q, fd)) < 0)
		return err_wrap(r, "migration (destination)");
	r = qmp_execute(q, "migrate-incoming", json_pack("{s:s}", "uri", "fd:" FDNAME), STEP_MS, NULL);
	return r < 0 ? err_wrap(r, "migration (destination)") : 0;
}

int vm_migrate_wait(struct vm *v, int timeout_ms)
{
	struct qmp *q = vm_qmp(v, STEP_MS);
	if (!q)
		return -EIO;
	return wait_done(q, "destination", timeout_ms, NULL);
}
