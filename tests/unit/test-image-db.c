/* Unit tests of the manager's state database: creation, WAL, schema
 * version and migrations, refusal of a newer schema, busy timeout. */
#include "manager/db.h"
#include "util/err.h"
#include "util/fs.h"
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>

static int query_int(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (db_prepare(db, sql, &st) == 0 && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static const char *query_text(struct db *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;
	snprintf(buf, len, "(none)");
	if (db_prepare(db, sql, &st) == 0 && sqlite3_step(st) == SQLITE_ROW)
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

int main(void)
{
	char dir[] = "/tmp/isola-test-db.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char state[256], buf[64];
	snprintf(state, sizeof state, "%s/state/sub", dir);

	struct db *db = NULL;
	CHECK_INT(db_open(state, &db), 0);
	CHECK(db != NULL);
	if (!db)
		return unit_done("test-image-db");
	CHECK_INT(query_int(db, "PRAGMA user_version"), db_schema_version());
	CHECK(db_schema_version() >= 1);
	CHECK_STR(query_text(db, "PRAGMA journal_mode", buf, sizeof buf), "wal");
	CHECK_INT(query_int(db, "PRAGMA foreign_keys"), 1);
	CHECK_INT(query_int(db, "SELECT count(*) FROM images"), 0);

	/* aliases go with their image */
	CHECK_INT(db_begin(db), 0);
	CHECK_INT(db_exec(db, "INSERT INTO images (fingerprint, type, source, architecture, size, created_at) "
			  "VALUES ('ab', 'rootfs', '/x', 'x86_64', 1, 2)"), 0);
	CHECK_INT(db_exec(db, "INSERT INTO image_aliases (name, image_id) VALUES ('a1', 1), ('a2', 1)"), 0);
	CHECK_INT(db_commit(db), 0);
	CHECK_INT(query_int(db, "SELECT count(*) FROM image_aliases"), 2);
	int r = db_exec(db, "INSERT INTO image_aliases (name, image_id) VALUES ('a1', 1)");
	CHECK_INT(r, -EEXIST);
	CHECK_CONTAINS(err_msg(), "UNIQUE constraint failed");
	CHECK_CONTAINS(err_msg(), "isola.db");
	CHECK_INT(db_exec(db, "DELETE FROM images WHERE id = 1"), 0);
	CHECK_INT(query_int(db, "SELECT count(*) FROM image_aliases"), 0);

	/* a rolled back transaction leaves nothing */
	CHECK_INT(db_begin(db), 0);
	CHECK_INT(db_exec(db, "INSERT INTO images (fingerprint, type, source, architecture, size, created_at) "
			  "VALUES ('cd', 'rootfs', '/x', 'x86_64', 1, 2)"), 0);
	db_rollback(db);
	CHECK_INT(query_int(db, "SELECT count(*) FROM images"), 0);

	/* a second connection waits for the first one's write lock, then fails
	 * cleanly with the busy timeout shortened */
	struct db *db2 = NULL;
	CHECK_INT(db_open(state, &db2), 0);
	if (db2) {
		CHECK_INT(db_begin(db), 0);
		sqlite3_busy_timeout(db2->h, 50);
		r = db_begin(db2);
		CHECK_INT(r, -EBUSY);
		CHECK_CONTAINS(err_msg(), "begin transaction");
		db_rollback(db);
		CHECK_INT(db_begin(db2), 0);
		CHECK_INT(db_commit(db2), 0);
		db_close(db2);
	}

	/* reopening keeps the version; a newer schema than ours is refused */
	db_close(db);
	db = NULL;
	CHECK_INT(db_open(state, &db), 0);
	if (db) {
		CHECK_INT(query_int(db, "PRAGMA user_version"), db_schema_version());
		CHECK_INT(db_exec(db, "PRAGMA user_version = 999"), 0);
		db_close(db);
		db = NULL;
	}
	r = db_open(state, &db);
	CHECK(r < 0);
	CHECK_CONTAINS(err_msg(), "schema version 999 is newer");
	CHECK(db == NULL);

	/* a state directory that cannot be made */
	r = db_open("/proc/isola-no/such", &db);
	CHECK(r < 0);
	CHECK_CONTAINS(err_msg(), "state directory");

	(void)rm_rf_at(AT_FDCWD, dir);
	return unit_done("test-image-db");
}
