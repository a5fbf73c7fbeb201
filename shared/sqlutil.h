/*
 * sqlutil.h - the few SQLite chores every service's tables repeat:
 * running a schema made of several parts, reporting a failed statement in
 * the project's error convention (bss_error.h), running a write to
 * completion, looking one row up by its key, and copying a text column
 * into a fixed buffer.
 *
 * Every function here fills err as "<what>: <SQLite's message>", so the
 * caller names the table or step ("charge_info insert", "billing schema")
 * and the reader of a log line knows where it failed.
 */
#ifndef BSS_SQLUTIL_H
#define BSS_SQLUTIL_H

#include <sqlite3.h>
#include <stddef.h>

/* Runs the n SQL texts of parts in order on db (each may hold several
 * statements, e.g. CREATE TABLE IF NOT EXISTS ...; CREATE INDEX ...).
 * Stops at the first failure: BSS_ERR_IO with err "<what>: <message>".
 * Returns BSS_OK when all ran. What ran before a failure stays done unless
 * the caller's transaction is rolled back. */
int bss_sql_exec_all(sqlite3 *db, const char *const *parts, size_t n, const char *what,
                     char *err);

/* Adds column `column` (declared as `decl`, e.g. "INTEGER NOT NULL
 * DEFAULT 0") to `table` unless it has it: how a store written by an older
 * version gains a column that CREATE TABLE IF NOT EXISTS cannot add.
 * BSS_OK, or BSS_ERR_IO with err "<table> add <column>: <message>". */
int bss_sql_add_column(sqlite3 *db, const char *table, const char *column, const char *decl,
                       char *err);

/* Prepares sql on db into *st. On failure sets *st to NULL, fills err with
 * "<what>: <message>" and returns BSS_ERR_IO; else BSS_OK. */
int bss_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                    char *err);

/* Reports a failed prepare or step: fills err with "<what>: <message>" (the
 * message of db's last error), finalizes st (NULL is fine) and returns
 * BSS_ERR_IO, so a caller can `return bss_sql_fail(db, st, "x insert", err);`. */
int bss_sql_fail(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err);

/* Steps st, a statement that returns no row (INSERT, UPDATE, DELETE), to
 * completion and finalizes it. changed (may be NULL) is set to 1 when it
 * changed a row, else 0 (an INSERT OR IGNORE that ignored, an UPDATE that
 * matched nothing). A failed step is bss_sql_fail(db, st, what, err). */
int bss_sql_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, int *changed,
                      char *err);

/* Looks up one row by key: prepares sql (a SELECT with the one parameter
 * ?1), binds key as text and steps. Returns BSS_OK with *st on the row
 * (read its columns, then sqlite3_finalize it), BSS_ERR_NOTFOUND when
 * there is none (*st finalized and NULL), or BSS_ERR_IO (*st finalized and
 * NULL) with err "<what> prepare: <message>" or "<what> select:
 * <message>". */
int bss_sql_row_by_key(sqlite3 *db, const char *sql, const char *key, sqlite3_stmt **st,
                       const char *what, char *err);

/* Copies text column col of st's current row into out (len >= 1 bytes),
 * truncated and NUL-terminated; NULL reads as "". */
void bss_sql_copy_text(sqlite3_stmt *st, int col, char *out, size_t len);

/* Steps the bound statement st to its end, turning each row into one
 * element of a growing array: row(st, elem) fills a zeroed element of
 * elem_size bytes and returns BSS_OK, or BSS_ERR_NOMEM. st is finalized in
 * every case. Returns BSS_OK with *items a malloc'd array of *n elements
 * (NULL when there are none); or BSS_ERR_NOMEM / a bss_sql_fail error
 * naming `what`, after calling drop (may be NULL) on every element filled so
 * far and freeing the array: nothing is kept. */
int bss_sql_collect(sqlite3 *db, sqlite3_stmt *st, size_t elem_size,
                    int (*row)(sqlite3_stmt *st, void *elem), void (*drop)(void *elem),
                    void **items, size_t *n, const char *what, char *err);

/* bss_sql_collect's loop, for a statement that is either finalized at the
 * end (finalize = 1) or only reset because it is cached and reused
 * (finalize = 0, see sqlcache.h). */
int bss_sql_collect_rows(sqlite3 *db, sqlite3_stmt *st, int finalize, size_t elem_size,
                         int (*row)(sqlite3_stmt *st, void *elem), void (*drop)(void *elem),
                         void **items, size_t *n, const char *what, char *err);

#endif
