/* Instances: database rows, names and configuration keys, locking, create,
 * delete, list and the live status read from the host. */
#include "instance-internal.h"
#include "idmap.h"
#include "storage.h"
#include "runtime/container.h"
#include "sandbox/selfexe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_STATE_DIR "/var/lib/isola"
#define DEFAULT_RUN_DIR "/run/isola"

static const char *const status_names[] = {
	[INSTANCE_STOPPED] = "stopped", [INSTANCE_RUNNING] = "running", [INSTANCE_FROZEN] = "frozen",
	[INSTANCE_STARTING] = "starting", [INSTANCE_STOPPING] = "stopping", [INSTANCE_BUSY] = "busy",
	[INSTANCE_BROKEN] = "broken", [INSTANCE_DEGRADED] = "degraded",
};

const char *instance_status_name(enum instance_status s)
{
	return status_names[s];
}

void instance_clear(struct instance *in)
{
	free(in->name);
	free(in->type);
	free(in->image);
	free(in->image_alias);
	free(in->op);
	if (in->command)
		for (char **p = in->command; *p; p++)
			free(*p);
	free(in->command);
	strmap_clear(&in->config);
	memset(in, 0, sizeof *in);
}

void instance_array_free(struct instance *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		instance_clear(&a[i]);
	free(a);
}

/* ---- names and configuration keys -------------------------------------- */

int instance_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return err_refuse(EINVAL, "instance name must not be empty");
	if (n > 63)
		return err_refuse(EINVAL, "instance name '%.63s...': longer than 63 characters", name);
	if (!isalpha((unsigned char)name[0]))
		return err_refuse(EINVAL, "instance name '%s': must start with a letter", name);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-')
			return err_refuse(EINVAL, "instance name '%s': only letters, digits and '-' are allowed", name);
	if (name[n - 1] == '-')
		return err_refuse(EINVAL, "instance name '%s': must not end with '-'", name);
	return 0;
}

int instance_restart_policy_parse(const char *s, int *ret_kind, int *ret_max)
{
	int kind, max = 0;
	if (!strcmp(s, "no"))
		kind = RESTART_NO;
	else if (!strcmp(s, "always"))
		kind = RESTART_ALWAYS;
	else if (!strncmp(s, "on-failure", 10) && (s[10] == 0 || s[10] == ':')) {
		kind = RESTART_ON_FAILURE;
		if (s[10] == ':') {
			char *end;
			errno = 0;
			long v = strtol(s + 11, &end, 10);
			if (!isdigit((unsigned char)s[11]) || *end || errno || v < 1 || v > 1000)
				return err_refuse(EINVAL, "boot.restart: \"%s\": the retry count after on-failure: "
					       "must be 1 to 1000", s);
			max = (int)v;
		}
	} else
		return err_refuse(EINVAL, "boot.restart: \"%s\": must be no, on-failure, on-failure:N or always", s);
	if (ret_kind)
		*ret_kind = kind;
	if (ret_max)
		*ret_max = max;
	return 0;
}

static bool env_name_ok(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

int instance_config_key_check(const char *key)
{
	if (!strncmp(key, "limits.", 7)) {
		if (limit_key_from_name(key) < 0)
			return err_refuse(EINVAL, "%s: unknown limit (limits.cpu, limits.memory, limits.processes, "
				       "limits.disk, limits.disk.read, limits.disk.write)", key);
		return 0;
	}
	if (!strcmp(key, "boot.autostart") || !strcmp(key, "boot.restart") || !strcmp(key, "security.protect_host"))
		return 0;
	if (!strncmp(key, "environment.", 12)) {
		if (!env_name_ok(key + 12))
			return err_refuse(EINVAL, "%s: not a variable name (letters, digits, '_')", key);
		return 0;
	}
	if (!strcmp(key, "security.privileged"))
		return err_refuse(EINVAL, "security.privileged: set when the instance is created (--privileged)");
	return err_refuse(EINVAL, "%s: unknown configuration key (limits.*, boot.autostart, boot.restart, "
		       "environment.NAME, security.protect_host)", key);
}

int instance_config_check(const char *key, const char *value)
{
	int r = instance_config_key_check(key);
	if (r < 0)
		return r;
	if (!strncmp(key, "limits.", 7)) {
		int k = limit_key_from_name(key);
		r = limit_check(k, value);
		if (r == 0 && k == LIMIT_CPU) {
			long n = sysconf(_SC_NPROCESSORS_ONLN);
			if (n > 0 && limits_cpu_count(value) > (unsigned)n)
				return err_refuse(EINVAL, "limits.cpu: \"%s\": the host has %ld CPU%s", value, n,
						  n == 1 ? "" : "s");
		}
		return r;
	}
	if (!strcmp(key, "boot.autostart") || !strcmp(key, "security.protect_host")) {
		if (strcmp(value, "true") && strcmp(value, "false"))
			return err_refuse(EINVAL, "%s: \"%s\": must be true or false", key, value);
		return 0;
	}
	if (!strcmp(key, "boot.restart"))
		return instance_restart_policy_parse(value, NULL, NULL);
	if (strchr(value, '\n'))
		return err_refuse(EINVAL, "%s: the value must not contain a newline", key);
	return 0;
}

/* ---- the manager handle -------------------------------------------------- */

static void collect_leftovers(struct manager *m);

static char *run_dir_for(const char *state_dir)
{
	const char *env = getenv("ISOLA_RUN_DIR");
	char *r = NULL;
	if (env && *env)
		return strdup(env);
	if (!strcmp(state_dir, DEFAULT_STATE_DIR))
		return strdup(DEFAULT_RUN_DIR);
	return asprintf(&r, "%s/run", state_dir) < 0 ? NULL : r;
}

/* The init of an instance is exec'd from the static isola-oci installed
 * beside isola when there is one: it starts in a fraction of the time the
 * dynamically linked manager takes to load its libraries, and it is a path
 * in every mount namespace (open_tree on /proc/self/exe fails in the
 * monitor's own namespace). */
static void use_static_runtime(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
	if (n <= 0)
		return;
	path[n] = 0;
	char *slash = strrchr(path, '/');
	if (!slash)
		return;
	strcpy(slash + 1, "isola-oci");
	if (access(path, X_OK) == 0)
		selfexe_set_path(path);
}

int manager_open(const char *state_dir, struct manager **ret)
{
	struct manager *m = calloc(1, sizeof *m);
	if (!m)
		return err_set(ENOMEM, "open manager");
	int r = -ENOMEM;
	char abs[PATH_MAX];
	if (!realpath(state_dir, abs)) {
		if (errno != ENOENT || (r = mkdir_p(state_dir, 0711)) < 0 || !realpath(state_dir, abs)) {
			r = r < 0 && r != -ENOMEM ? r : err_set(errno, "state directory '%s'", state_dir);
			goto fail;
		}
	}
	if (!(m->state_dir = strdup(abs)) || !(m->run_dir = run_dir_for(abs)) ||
	    asprintf(&m->instances_dir, "%s/instances", abs) < 0 || asprintf(&m->locks_dir, "%s/locks", abs) < 0) {
		r = err_set(ENOMEM, "open manager");
		goto fail;
	}
	if ((r = image_store_open(abs, &m->images)) < 0)
		goto fail;
	use_static_runtime();
	m->db = image_store_db(m->images);
	const char *dirs[] = { m->instances_dir, m->locks_dir, m->run_dir };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if ((r = mkdir_p(dirs[i], i == 0 ? 0711 : 0700)) < 0) {
			r = err_wrap(r, "create '%s'", dirs[i]);
			goto fail;
		}
	collect_leftovers(m);
	*ret = m;
	return 0;
fail:
	manager_close(m);
	return r;
}

void manager_close(struct manager *m)
{
	if (!m)
		return;
	if (m->images)
		image_store_close(m->images);
	free(m->state_dir);
	free(m->run_dir);
	free(m->instances_dir);
	free(m->locks_dir);
	free(m);
}

struct image_store *manager_images(struct manager *m) { return m->images; }
const char *manager_state_dir(const struct manager *m) { return m->state_dir; }
const char *manager_run_dir(const struct manager *m) { return m->run_dir; }

char *instance_dir(const struct manager *m, const char *name)
{
	char *p;
	return asprintf(&p, "%s/%s", m->instances_dir, name) < 0 ? NULL : p;
}

char *instance_path(const struct manager *m, const char *name, const char *file)
{
	char *p;
	return asprintf(&p, "%s/%s/%s", m->instances_dir, name, file) < 0 ? NULL : p;
}

/* A lock file exists only while its instance does: create makes it, delete
 * removes it while holding it. A command that waited on a file that was
 * removed meanwhile finds that the path no longer leads to the inode it
 * locked, and looks again: the flock serialization holds across removals. */
static int lock_open(struct manager *m, const char *name, bool create, bool wait, int *ret_fd)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s.lock", m->locks_dir, name);
	for (;;) {
		_cleanup_close_ int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
		if (fd < 0)
			return errno == ENOENT ? -ENOENT : err_set(errno, "open lock '%s'", path);
		while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				return err_refuse(EBUSY, "instance '%s' is busy: another command works on it", name);
			return err_set(errno, "lock '%s'", path);
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*ret_fd = TAKE_FD(fd);
			return 0;
		}
	}
}

static bool row_exists(struct manager *m, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (db_prepare(m->db, "SELECT 1 FROM instances WHERE name = ?", &st) < 0)
		return true; /* cannot tell: keep the lock */
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return sqlite3_step(st) != SQLITE_DONE;
}

/* Remove the lock file of `name` while holding it (fd), then release it. */
static void lock_remove(struct manager *m, const char *name, int fd)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s.lock", m->locks_dir, name);
	(void)unlink(path); /* waiters notice and look again */
	close(fd);
}

int instance_lock(struct manager *m, const char *name, bool wait, int *ret_fd)
{
	int r = lock_open(m, name, false, wait, ret_fd);
	if (r != -ENOENT)
		return r;
	/* No lock file: no such instance, or one from before lock files went
	 * with their instances. */
	if (!row_exists(m, name))
		return err_refuse(ENOENT, "instance '%s' not found", name);
	if ((r = lock_open(m, name, true, wait, ret_fd)) < 0)
		return r;
	if (!row_exists(m, name)) { /* deleted meanwhile */
		lock_remove(m, name, *ret_fd);
		return err_refuse(ENOENT, "instance '%s' not found", name);
	}
	return 0;
}

/* ---- rows ---------------------------------------------------------------- */

#define INSTANCE_COLUMNS \
	"i.id, i.name, i.type, im.fingerprint, " \
	"(SELECT name FROM image_aliases a WHERE a.image_id = im.id ORDER BY name LIMIT 1), " \
	"i.op, i.privileged, i.idmap_base, i.command, i.created_at, i.last_started_at, " \
	"i.last_exit, i.last_exit_at, i.restarts, i.stop_requested"

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

static int command_from_json(const char *text, char ***ret)
{
	json_error_t je;
	_cleanup_(json_decrefp) json_t *a = json_loads(text, 0, &je);
	if (!a || !json_is_array(a))
		return err_set(EINVAL, "instance command: not a JSON array");
	char **v = calloc(json_array_size(a) + 1, sizeof *v);
	if (!v)
		return err_set(ENOMEM, "instance command");
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!(v[i] = strdup(json_string_value(json_array_get(a, i)) ?: "")))
			return err_set(ENOMEM, "instance command");
	*ret = v;
	return 0;
}

static int load_config(struct manager *m, int64_t id, struct strmap *cfg)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, "SELECT key, value FROM instance_config WHERE instance_id = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = strmap_put(cfg, (const char *)sqlite3_column_text(st, 0),
				    (const char *)sqlite3_column_text(st, 1))) < 0)
			return err_set(ENOMEM, "instance configuration");
	return rc == SQLITE_DONE ? 0 : db_error(m->db, rc, "read instance configuration");
}

static int row_to_instance(struct manager *m, sqlite3_stmt *st, struct instance *in)
{
	memset(in, 0, sizeof *in);
	int64_t id = sqlite3_column_int64(st, 0);
	in->name = col_dup(st, 1);
	in->type = col_dup(st, 2);
	in->image = col_dup(st, 3);
	in->image_alias = col_dup(st, 4);
	in->op = col_dup(st, 5);
	in->privileged = sqlite3_column_int(st, 6) != 0;
	in->idmap_base = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 7);
	in->created_at = sqlite3_column_int64(st, 9);
	in->last_started_at = sqlite3_column_int64(st, 10);
	in->has_last_exit = sqlite3_column_type(st, 11) != SQLITE_NULL;
	in->last_exit = sqlite3_column_int(st, 11);
	in->last_exit_at = sqlite3_column_int64(st, 12);
	in->restarts = sqlite3_column_int(st, 13);
	in->stop_requested = sqlite3_column_int(st, 14) != 0;
	int r = 0;
	if (!in->name || !in->type || !in->image || !in->op)
		r = err_set(ENOMEM, "read instance");
	if (r == 0 && sqlite3_column_type(st, 8) != SQLITE_NULL)
		r = command_from_json((const char *)sqlite3_column_text(st, 8), &in->command);
	if (r == 0)
		r = load_config(m, id, &in->config);
	if (r < 0)
		instance_clear(in);
	return r;
}

int instance_load(struct manager *m, const char *name, struct instance *ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, "SELECT " INSTANCE_COLUMNS " FROM instances i JOIN images im ON im.id = i.image_id "
			   "WHERE i.name = ?", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return err_refuse(ENOENT, "instance '%s' not found", name);
	if (rc != SQLITE_ROW)
		return db_error(m->db, rc, "read instance");
	return row_to_instance(m, st, ret);
}

int instance_update(struct manager *m, const char *name, const char *assignments, int n, const int64_t *values)
{
	char sql[512];
	snprintf(sql, sizeof sql, "UPDATE instances SET %s WHERE name = ?%d", assignments, n + 1);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, sql, &st);
	if (r < 0)
		return r;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, values[i]);
	sqlite3_bind_text(st, n + 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? 0 : db_error(m->db, rc, "update instance");
}

bool proc_is_zombie(pid_t pid)
{
	char path[64], *buf = NULL;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_file_at(AT_FDCWD, path, &buf, NULL) < 0)
		return true;
	char *p = strrchr(buf, ')');
	bool z = !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
	free(buf);
	return z;
}

unsigned long long proc_starttime(pid_t pid)
{
	char path[64], *buf = NULL;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_file_at(AT_FDCWD, path, &buf, NULL) < 0)
		return 0;
	unsigned long long t = 0;
	char *p = strrchr(buf, ')');
	/* after "pid (comm)": state is field 3, starttime field 22 */
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			&t) != 1)
		t = 0;
	free(buf);
	return t;
}

pid_t instance_monitor_pid(const struct manager *m, const char *name)
{
	_cleanup_free_ char *path = instance_path(m, name, "monitor.pid");
	char *buf = NULL;
	if (!path || read_file_at(AT_FDCWD, path, &buf, NULL) < 0)
		return 0;
	int pid = 0;
	unsigned long long start = 0;
	/* a monitor killed by hand may stay a zombie where nobody reaps it */
	bool ok = sscanf(buf, "%d %llu", &pid, &start) == 2 && pid > 0 && proc_starttime(pid) == start &&
		  !proc_is_zombie(pid);
	free(buf);
	return ok ? pid : 0;
}

void instance_fill_live(struct manager *m, struct instance *in, bool lock_held)
{
	in->status = INSTANCE_STOPPED;
	in->pid = 0;
	in->monitor_pid = 0;
	in->problem = NULL;
	if (strcmp(in->op, "ready")) {
		int fd = -1;
		if (lock_held || instance_lock(m, in->name, false, &fd) == 0) {
			in->status = INSTANCE_BROKEN;
			if (fd >= 0)
				close(fd);
		} else
			in->status = INSTANCE_BUSY;
		err_set(0, "%s", ""); /* the lock probe's message is not an error */
		return;
	}
	container_state st;
	if (container_load(m->run_dir, in->name, &st) == 0) {
		switch (st.status) {
		case ST_RUNNING: in->status = INSTANCE_RUNNING; break;
		case ST_PAUSED: in->status = INSTANCE_FROZEN; break;
		case ST_CREATING: case ST_CREATED: in->status = INSTANCE_STARTING; break;
		case ST_STOPPED: in->status = INSTANCE_STOPPED; break;
		}
		if (in->status != INSTANCE_STOPPED)
			in->pid = st.pid;
		container_state_clear(&st);
	}
	in->monitor_pid = instance_monitor_pid(m, in->name);
	if (in->status == INSTANCE_STOPPED && in->monitor_pid > 0)
		in->status = INSTANCE_STOPPING;
	/* Running without a monitor: no console, log, sysinfo answers or
	 * restarts. Not while a command holds the lock: a start writes the
	 * monitor's pid file just after the instance runs. */
	if ((in->status == INSTANCE_RUNNING || in->status == INSTANCE_FROZEN) && in->monitor_pid == 0) {
		int fd = -1;
		if (lock_held || instance_lock(m, in->name, false, &fd) == 0) {
			in->status = INSTANCE_DEGRADED;
			in->problem = "monitor gone";
		}
		if (fd >= 0)
			close(fd);
		err_clear();
	}
}

int instance_lock_load(struct manager *m, const char *name, int *ret_lock, struct instance *ret)
{
	int lock = -1;
	int r = instance_lock(m, name, true, &lock);
	if (r < 0)
		return r;
	if ((r = instance_load(m, name, ret)) < 0) {
		if (r == -ENOENT)
			lock_remove(m, name, lock); /* left by a create killed before its row */
		else
			close(lock);
		return r;
	}
	instance_fill_live(m, ret, true);
	*ret_lock = lock;
	return 0;
}

int instance_get(struct manager *m, const char *name, struct instance *ret)
{
	int r = instance_load(m, name, ret);
	if (r < 0)
		return r;
	instance_fill_live(m, ret, false);
	return 0;
}

int instance_list(struct manager *m, struct instance **ret, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, "SELECT " INSTANCE_COLUMNS " FROM instances i JOIN images im ON im.id = i.image_id "
			   "ORDER BY i.name", &st);
	if (r < 0)
		return r;
	struct instance *v = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct instance *nv = realloc(v, (n + 1) * sizeof *v);
		if (!nv) {
			instance_array_free(v, n);
			return err_set(ENOMEM, "list instances");
		}
		v = nv;
		if ((r = row_to_instance(m, st, &v[n])) < 0) {
			instance_array_free(v, n);
			return r;
		}
		instance_fill_live(m, &v[n], false);
		n++;
	}
	if (rc != SQLITE_DONE) {
		instance_array_free(v, n);
		return db_error(m->db, rc, "list instances");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- create -------------------------------------------------------------- */

/* A registry entry of this store is in use while its row exists with that
 * range, or without one yet (a create records its range right after). */
static bool idmap_row_in_use(void *ctx, const char *name, int64_t base)
{
	struct manager *m = ctx;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (db_prepare(m->db, "SELECT idmap_base FROM instances WHERE name = ?", &st) < 0) {
		err_clear();
		return true; /* when in doubt, keep it */
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return false;
	return rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL || sqlite3_column_int64(st, 0) == base;
}

/* A host-wide free range (idmap.h), recorded in the row. */
static int allocate_idmap(struct manager *m, const char *name, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, "SELECT idmap_base FROM instances WHERE idmap_base IS NOT NULL", &st);
	if (r < 0)
		return r;
	_cleanup_free_ struct idmap_range *own = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct idmap_range *nv = realloc(own, (n + 1) * sizeof *nv);
		if (!nv)
			return err_set(ENOMEM, "allocate an id range");
		own = nv;
		own[n++] = (struct idmap_range){ sqlite3_column_int64(st, 0), IDMAP_RANGE };
	}
	if (rc != SQLITE_DONE)
		return db_error(m->db, rc, "allocate an id range");
	int64_t base;
	if ((r = idmap_reserve(m->state_dir, name, IDMAP_RANGE, own, n, idmap_row_in_use, m, &base)) < 0)
		return r;
	int64_t v[] = { base };
	if ((r = instance_update(m, name, "idmap_base = ?1", 1, v)) < 0) {
		char *saved = strdup(err_msg());
		(void)idmap_release(m->state_dir, name);
		err_set(0, "%s", saved ? saved : "allocate an id range");
		free(saved);
		return r;
	}
	*ret = base;
	return 0;
}

static int insert_row(struct manager *m, const struct instance_create_opts *o, int64_t image_id, int64_t base,
		      int64_t *ret_id)
{
	_cleanup_free_ char *cmd = NULL;
	if (o->command) {
		json_t *a = json_array();
		for (char **p = o->command; *p; p++)
			json_array_append_new(a, json_string(*p));
		cmd = json_dumps(a, JSON_COMPACT);
		json_decref(a);
		if (!cmd)
			return err_set(EINVAL, "command: arguments must be UTF-8");
	}
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, "INSERT INTO instances (name, type, image_id, op, privileged, idmap_base, command, "
			   "created_at) VALUES (?, 'container', ?, 'creating', ?, ?, ?, ?)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, image_id);
	sqlite3_bind_int(st, 3, o->privileged);
	if (base >= 0)
		sqlite3_bind_int64(st, 4, base);
	else
		sqlite3_bind_null(st, 4);
	if (cmd)
		sqlite3_bind_text(st, 5, cmd, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
	int rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return err_refuse(EEXIST, "instance '%s' already exists", o->name);
	if (rc != SQLITE_DONE)
		return db_error(m->db, rc, "add instance");
	*ret_id = sqlite3_last_insert_rowid(m->db->h);
	return 0;
}

static int put_config(struct manager *m, int64_t id, const char *key, const char *value)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(m->db, "INSERT OR REPLACE INTO instance_config (instance_id, key, value) VALUES (?, ?, ?)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? 0 : db_error(m->db, rc, "set configuration");
}

/* "key=value" -> key and value (pointers into a copy in *buf). */
static int split_kv(const char *kv, char **buf, char **key, char **value)
{
	if (!(*buf = strdup(kv)))
		return err_set(ENOMEM, "configuration");
	char *eq = strchr(*buf, '=');
	if (!eq || eq == *buf)
		return err_refuse(EINVAL, "configuration \"%s\": expected KEY=VALUE", kv);
	*eq = 0;
	*key = *buf;
	*value = eq + 1;
	return 0;
}

static int create_locked(struct manager *m, const struct instance_create_opts *o, int64_t image_id,
			 const char *rootfs, const char *dir, const char *disk);
static int remove_dir(struct manager *m, const char *name);

int instance_create(struct manager *m, const struct instance_create_opts *o)
{
	int r = instance_name_check(o->name);
	if (r < 0)
		return r;
	if (o->command && !o->command[0])
		return err_refuse(EINVAL, "command: must not be empty");
	const char *disk = NULL;
	for (char **p = o->config; p && *p; p++) {
		_cleanup_free_ char *buf = NULL;
		char *k, *v;
		if ((r = split_kv(*p, &buf, &k, &v)) < 0 || (r = instance_config_check(k, v)) < 0)
			return r;
		if (!strcmp(k, "security.protect_host") && !o->privileged)
			return err_refuse(EINVAL, "security.protect_host: only for --privileged instances");
		if (limit_key_from_name(k) == LIMIT_DISK)
			disk = *p + (v - buf);
	}
	struct image_info img;
	int64_t image_id;
	if ((r = image_resolve_id(m->images, o->image, &img, &image_id)) < 0)
		return r;
	_cleanup_free_ char *rootfs = NULL;
	r = image_rootfs_path(m->images, img.fingerprint, &rootfs);
	image_info_clear(&img);
	if (r < 0)
		return r;
	_cleanup_close_ int lock = -1;
	_cleanup_free_ char *dir = instance_dir(m, o->name);
	if (!dir)
		return err_set(ENOMEM, "create instance");
	if ((r = lock_open(m, o->name, true, true, &lock)) < 0)
		return r;
	if ((r = create_locked(m, o, image_id, rootfs, dir, disk)) < 0 && !row_exists(m, o->name))
		lock_remove(m, o->name, TAKE_FD(lock));
	return r;
}

static int create_locked(struct manager *m, const struct instance_create_opts *o, int64_t image_id,
			 const char *rootfs, const char *dir, const char *disk)
{
	int r;
	/* 1: the row, marked "creating", with its configuration; then its
	 * host-wide id range (a killed create leaves a row that delete, which
	 * releases the range, finds). */
	int64_t id = 0, base = -1;
	if ((r = db_begin(m->db)) < 0)
		return r;
	if ((r = insert_row(m, o, image_id, -1, &id)) < 0)
		goto rollback;
	for (char **p = o->config; p && *p; p++) {
		_cleanup_free_ char *buf = NULL;
		char *k, *v;
		if ((r = split_kv(*p, &buf, &k, &v)) < 0 || (r = put_config(m, id, k, v)) < 0)
			goto rollback;
	}
	if ((r = db_commit(m->db)) < 0)
		return r;

	/* 2: the directory and the storage; a failure removes both, the range and the row. */
	(void)remove_dir(m, o->name); /* left by an interrupted create of the same name whose row is gone */
	uint64_t bytes = 0;
	r = o->privileged ? 0 : allocate_idmap(m, o->name, &base);
	if (r == 0 && mkdir(dir, 0700) < 0)
		r = err_set(errno, "mkdir '%s'", dir);
	if (r == 0 && (r = instance_dir_secure(dir, base)) == 0)
		r = storage_create(dir, rootfs, base);
	if (r == 0 && disk && (r = limit_disk_bytes(disk, &bytes)) == 0)
		r = storage_disk_create(dir, bytes);
	if (r == 0)
		r = instance_update(m, o->name, "op = 'ready'", 0, NULL);
	if (r < 0) {
		char *saved = strdup(err_msg());
		(void)remove_dir(m, o->name); /* best effort: undo */
		if (base >= 0)
			(void)idmap_release(m->state_dir, o->name);
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		if (db_prepare(m->db, "DELETE FROM instances WHERE id = ?", &st) == 0) {
			sqlite3_bind_int64(st, 1, id);
			(void)sqlite3_step(st);
		}
		err_set(0, "%s", saved ? saved : "create instance");
		free(saved);
	}
	return r;
rollback:
	db_rollback(m->db);
	return r;
}

/* ---- delete -------------------------------------------------------------- */

/* An instance directory is first renamed to .trash-<name>-<pid>-<start
 * time of that process>, then removed: a removal killed half-way leaves a
 * trash directory whose owner is gone, which the next command collects. */
static int trash_name(const char *name, char *buf, size_t len)
{
	pid_t self = getpid();
	int n = snprintf(buf, len, ".trash-%s-%d-%llu", name, (int)self, proc_starttime(self));
	return n > 0 && (size_t)n < len ? 0 : err_set(ENAMETOOLONG, "trash name for '%s'", name);
}

/* Give back the quota and remove instances/<name> (now a trash entry). */
static int remove_trash(struct manager *m, int dfd, const char *trash)
{
	char what[PATH_MAX];
	snprintf(what, sizeof what, "%s/%s", m->instances_dir, trash);
	storage_disk_release(dfd, trash);
	return storage_tree_remove(dfd, trash, what);
}

/* Remove the directory of an instance (gone from the host meanwhile). */
static int remove_dir(struct manager *m, const char *name)
{
	_cleanup_close_ int dfd = open(m->instances_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char trash[NAME_MAX + 1];
	int r;
	if (dfd < 0)
		return err_set(errno, "open '%s'", m->instances_dir);
	if ((r = trash_name(name, trash, sizeof trash)) < 0)
		return r;
	if (renameat(dfd, name, dfd, trash) < 0)
		return errno == ENOENT ? 0 : err_set(errno, "rename '%s/%s'", m->instances_dir, name);
	return remove_trash(m, dfd, trash);
}

/* Is the trash entry's owner (.trash-<name>-<pid>-<start time>) still at
 * work? Its name back in *ret_name. */
static bool trash_owner_alive(const char *entry, char *ret_name, size_t len)
{
	const char *body = entry + strlen(".trash-");
	const char *d2 = strrchr(body, '-');
	if (!d2 || d2 == body)
		return false;
	const char *d1 = d2 - 1;
	while (d1 > body && *d1 != '-')
		d1--;
	char *end;
	unsigned long long start = strtoull(d2 + 1, &end, 10);
	long pid = d1 > body ? strtol(d1 + 1, NULL, 10) : 0;
	if (d1 > body && *end == 0 && pid > 0 && d1 + 1 < d2) {
		snprintf(ret_name, len, "%.*s", (int)(d1 - body), body);
		return proc_starttime((pid_t)pid) == start;
	}
	/* .trash-<name>-<pid> of older versions: alive while that pid is */
	snprintf(ret_name, len, "%.*s", (int)(d2 - body), body);
	pid = strtol(d2 + 1, &end, 10);
	return *end == 0 && pid > 0 && proc_starttime((pid_t)pid) != 0;
}

/* Does the trash entry have mounts under it in our mount namespace (we are
 * an instance's monitor, whose overlay is still there)? Not ours to remove. */
static bool trash_has_mounts(int dfd, const char *entry)
{
	static const char *const points[] = { "rootfs", "lower", "disk" };
	struct stat top, st;
	if (fstatat(dfd, entry, &top, AT_SYMLINK_NOFOLLOW) < 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		char path[NAME_MAX + 16];
		snprintf(path, sizeof path, "%s/%s", entry, points[i]);
		if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev != top.st_dev)
			return true;
	}
	return false;
}

/* Leftovers of killed commands: trash whose owner is gone (claimed first by
 * renaming it, so that two collectors never work on one), and lock files
 * without an instance that nobody holds. Best effort. */
static void collect_leftovers(struct manager *m)
{
	_cleanup_close_ int dfd = open(m->instances_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dfd >= 0 ? opendir(m->instances_dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char name[NAME_MAX + 1], mine[NAME_MAX + 1];
		if (strncmp(e->d_name, ".trash-", 7) || trash_owner_alive(e->d_name, name, sizeof name) ||
		    trash_has_mounts(dfd, e->d_name))
			continue;
		if (trash_name(name, mine, sizeof mine) == 0 && renameat(dfd, e->d_name, dfd, mine) == 0)
			(void)remove_trash(m, dfd, mine); /* best effort: ours is collected after us otherwise */
	}
	_cleanup_closedir_ DIR *l = opendir(m->locks_dir);
	while (l && (e = readdir(l))) {
		size_t n = strlen(e->d_name);
		if (n < 6 || strcmp(e->d_name + n - 5, ".lock") || e->d_name[0] == '.')
			continue;
		char name[NAME_MAX + 1];
		snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
		int fd = -1;
		if (row_exists(m, name) || lock_open(m, name, false, false, &fd) < 0)
			continue;
		if (!row_exists(m, name))
			lock_remove(m, name, fd);
		else
			close(fd);
	}
	err_set(0, "%s", ""); /* what was left alone is not an error */
}

int instance_delete(struct manager *m, const char *name, bool force)
{
	_cleanup_close_ int lock = -1;
	struct instance in;
	int r = instance_lock_load(m, name, &lock, &in);
	if (r < 0)
		return r;
	pid_t mon = in.monitor_pid;
	bool live = in.status == INSTANCE_RUNNING || in.status == INSTANCE_FROZEN || in.status == INSTANCE_STARTING ||
		    in.status == INSTANCE_DEGRADED;
	enum instance_status status = in.status;
	instance_clear(&in);
	if (live && !force)
		return err_refuse(EBUSY, "instance '%s' is %s: stop it first, or delete --force", name,
				  status == INSTANCE_DEGRADED ? "degraded (monitor gone)" : "running");
	/* From here on every step can be repeated: a delete killed half-way
	 * leaves the row "deleting" and the next delete finishes the job. */
	if ((r = instance_update(m, name, "op = 'deleting', stop_requested = 1", 0, NULL)) < 0)
		return r;
	if ((r = instance_kill_now(m, name)) < 0)
		return r;
	if ((r = remove_dir(m, name)) < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if ((r = db_prepare(m->db, "DELETE FROM instances WHERE name = ?", &st)) < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return db_error(m->db, rc, "delete instance");
	/* The host ids go back once nothing of the instance holds them. */
	if ((r = idmap_release(m->state_dir, name)) < 0)
		return err_wrap(r, "instance '%s' is deleted, but its host ids stay reserved until the next create "
				"takes them back", name);
	instance_cgroup_parent_cleanup(m);
	/* The monitor's exit handler needs the lock, then finds the row gone:
	 * return once it has, so that no process of the instance outlives us. */
	lock_remove(m, name, TAKE_FD(lock));
	if (mon > 0)
		(void)instance_wait_gone(mon, 10000);
	instance_cgroup_remove(m, name); /* the monitor's leaf too, now that it is gone */
	return 0;
}

/* ---- configuration -------------------------------------------------------- */

/* limits.disk: the storage first, so that a size it refuses is not recorded. */
static int disk_change(struct manager *m, const struct instance *in, const char *value)
{
	uint64_t bytes = 0;
	int r;
	if (value && (r = limit_disk_bytes(value, &bytes)) < 0)
		return r;
	if (in->status != INSTANCE_STOPPED && in->status != INSTANCE_RUNNING && in->status != INSTANCE_FROZEN)
		return err_refuse(EBUSY, "limits.disk: instance '%s' is %s: the disk limit changes on a stopped or "
				  "running instance", in->name, instance_status_name(in->status));
	_cleanup_free_ char *dir = instance_dir(m, in->name);
	if (!dir)
		return err_set(ENOMEM, "limits.disk");
	bool live = in->status == INSTANCE_RUNNING || in->status == INSTANCE_FROZEN;
	return storage_disk_resize(dir, bytes, live ? in->monitor_pid : 0);
}

static int config_change(struct manager *m, const char *name, const char *key, const char *value)
{
	int r;
	if ((r = value ? instance_config_check(key, value) : instance_config_key_check(key)) < 0)
		return r;
	_cleanup_close_ int lock = -1;
	struct instance in;
	if ((r = instance_lock_load(m, name, &lock, &in)) < 0)
		return r;
	if (!strcmp(key, "security.protect_host") && !in.privileged) {
		instance_clear(&in);
		return err_refuse(EINVAL, "security.protect_host: only for --privileged instances");
	}
	bool changed = value || strmap_has(&in.config, key);
	if (value)
		r = strmap_put(&in.config, key, value);
	else if (strmap_has(&in.config, key))
		r = strmap_put(&in.config, key, NULL);
	if (r == 0 && changed && limit_key_from_name(key) == LIMIT_DISK)
		r = disk_change(m, &in, value);
	/* Limits apply live: the cgroup first, then the row, so that a
	 * limit the kernel refuses is not recorded. */
	else if (r == 0 && !strncmp(key, "limits.", 7) &&
	    (in.status == INSTANCE_RUNNING || in.status == INSTANCE_FROZEN)) {
		if (!value)
			(void)strmap_put(&in.config, key, NULL);
		r = instance_apply_limits(m, &in, key);
	}
	instance_clear(&in);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (value)
		r = db_prepare(m->db, "INSERT OR REPLACE INTO instance_config (instance_id, key, value) "
			       "SELECT id, ?2, ?3 FROM instances WHERE name = ?1", &st);
	else
		r = db_prepare(m->db, "DELETE FROM instance_config WHERE key = ?2 AND instance_id = "
			       "(SELECT id FROM instances WHERE name = ?1)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? 0 : db_error(m->db, rc, "set configuration");
}

int instance_config_set(struct manager *m, const char *name, const char *key, const char *value)
{
	return config_change(m, name, key, value);
}

int instance_config_unset(struct manager *m, const char *name, const char *key)
{
	return config_change(m, name, key, NULL);
}

void instance_limit_values(const struct instance *in, const char *values[LIMIT__MAX])
{
	for (int k = 0; k < LIMIT__MAX; k++)
		values[k] = strmap_get(&in->config, limit_key_name(k));
}
