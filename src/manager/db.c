/* The manager's state database: open, pragmas, versioned migrations. */
#include "db.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Each step brings the schema from version i to i + 1; never edit a step
 * that has been released, append a new one. */
static const char *const migrations[] = {
	/* 1: images and their aliases */
	"CREATE TABLE images ("
	"  id INTEGER PRIMARY KEY,"
	"  fingerprint TEXT NOT NULL UNIQUE,"
	"  type TEXT NOT NULL,"           /* builtin | rootfs | oci */
	"  source TEXT NOT NULL,"         /* where it was imported from */
	"  architecture TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"        /* bytes of file data in the rootfs */
	"  created_at INTEGER NOT NULL"   /* unix time */
	");"
	"CREATE TABLE image_aliases ("
	"  name TEXT PRIMARY KEY,"
	"  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE"
	");"
	"CREATE INDEX image_aliases_image ON image_aliases(image_id);",
	/* 2: instances and their configuration */
	"CREATE TABLE instances ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  type TEXT NOT NULL,"           /* container */
	"  image_id INTEGER NOT NULL REFERENCES images(id),"
	"  op TEXT NOT NULL,"             /* creating | ready | deleting */
	"  privileged INTEGER NOT NULL,"
	"  idmap_base INTEGER UNIQUE,"    /* host id of root inside; NULL when privileged */
	"  command TEXT,"                 /* JSON array, NULL: the image's /sbin/init */
	"  created_at INTEGER NOT NULL,"
	"  last_started_at INTEGER,"
	"  last_exit INTEGER,"            /* wait status */
	"  last_exit_at INTEGER,"
	"  restarts INTEGER NOT NULL DEFAULT 0,"
	"  stop_requested INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE instance_config ("
	"  instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
	"  key TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY (instance_id, key)"
	");",
};

int db_schema_version(void)
{
	return (int)ARRAY_SIZE(migrations);
}

int db_error(struct db *db, int rc, const char *what)
{
	int e = EIO;
	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: e = EBUSY; break;
	case SQLITE_CONSTRAINT: e = EEXIST; break;
	case SQLITE_NOMEM: e = ENOMEM; break;
	case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH: e = EACCES; break;
	case SQLITE_FULL: e = ENOSPC; break;
	case SQLITE_CANTOPEN: e = ENOENT; break;
	}
	err_set(0, "%s: %s: %s", db->path, what, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
	return -e;
}

int db_exec(struct db *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int e = db_error(db, rc, "query");
		err_set(0, "%s: %s", db->path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return e;
	}
	return 0;
}

int db_begin(struct db *db)
{
	int r = db_exec(db, "BEGIN IMMEDIATE");
	return r < 0 ? err_wrap(r, "begin transaction") : 0;
}

int db_commit(struct db *db)
{
	int r = db_exec(db, "COMMIT");
	if (r < 0) {
		db_rollback(db);
		return err_wrap(r, "commit");
	}
	return 0;
}

void db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL); /* best effort */
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(db->h, sql, -1, ret, NULL);
	return rc == SQLITE_OK ? 0 : db_error(db, rc, "prepare");
}

static int user_version(struct db *db, int *ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = db_prepare(db, "PRAGMA user_version", &st);
	if (r < 0)
		return r;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return db_error(db, rc, "read schema version");
	*ret = sqlite3_column_int(st, 0);
	return 0;
}

static int migrate(struct db *db)
{
	int v, r = user_version(db, &v);
	if (r < 0)
		return r;
	if (v == db_schema_version())
		return 0;
	/* Under the write lock: another command may have migrated meanwhile. */
	if ((r = db_begin(db)) < 0)
		return r;
	if ((r = user_version(db, &v)) < 0)
		goto fail;
	if (v > db_schema_version()) {
		r = err_set(EPROTO, "%s: schema version %d is newer than this isola knows (%d)",
			    db->path, v, db_schema_version());
		goto fail;
	}
	for (; v < db_schema_version(); v++) {
		if ((r = db_exec(db, migrations[v])) < 0) {
			r = err_wrap(r, "migrate schema to version %d", v + 1);
			goto fail;
		}
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
		if ((r = db_exec(db, sql)) < 0)
			goto fail;
	}
	return db_commit(db);
fail:
	db_rollback(db);
	return r;
}

int db_open(const char *state_dir, struct db **ret)
{
	int r = mkdir_p(state_dir, 0711);
	if (r < 0)
		return err_wrap(r, "state directory");
	struct db *db = calloc(1, sizeof *db);
	if (!db || asprintf(&db->path, "%s/isola.db", state_dir) < 0) {
		free(db);
		return err_set(ENOMEM, "open database");
	}
	_cleanup_db_ struct db *owned = db;
	int rc = sqlite3_open_v2(db->path, &db->h,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return db_error(db, rc, "open");
	(void)chmod(db->path, 0600); /* best effort: state may name private paths */
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	/* journal_mode answers with a row; WAL lets readers run beside a writer. */
	if ((r = db_exec(db, "PRAGMA journal_mode = WAL")) < 0 ||
	    (r = db_exec(db, "PRAGMA foreign_keys = ON")) < 0 ||
	    (r = db_exec(db, "PRAGMA synchronous = NORMAL")) < 0)
		return r;
	if ((r = migrate(db)) < 0)
		return r;
	*ret = TAKE_PTR(owned);
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	sqlite3_close(db->h);
	free(db->path);
	free(db);
}
