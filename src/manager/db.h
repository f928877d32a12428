/* The manager's state database: <state>/isola.db (SQLite, WAL), its schema
 * and migrations, and small helpers that turn SQLite errors into err_set()
 * messages. */
#pragma once
#include <sqlite3.h>

/* How long a command waits for another one holding the write lock. */
#define DB_BUSY_TIMEOUT_MS 30000

struct db {
	sqlite3 *h;
	char *path;
};

/* Open (creating when absent) <state_dir>/isola.db and bring its schema to
 * the current version. */
int db_open(const char *state_dir, struct db **ret);
void db_close(struct db *db);
static inline void db_closep(struct db **db) { if (*db) db_close(*db); }
#define _cleanup_db_ __attribute__((cleanup(db_closep)))

/* The schema version this build writes (PRAGMA user_version). */
int db_schema_version(void);

/* Run SQL without results. */
int db_exec(struct db *db, const char *sql);
/* Write transactions take the write lock at BEGIN (IMMEDIATE), so two
 * commands serialize instead of failing half-way. */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* Prepare a statement; errors name the database. */
int db_prepare(struct db *db, const char *sql, sqlite3_stmt **ret);
static inline void db_finalizep(sqlite3_stmt **st) { if (*st) sqlite3_finalize(*st); }
#define _cleanup_stmt_ __attribute__((cleanup(db_finalizep)))
/* Record an SQLite error code as err_set() would (-errno). */
int db_error(struct db *db, int rc, const char *what);
