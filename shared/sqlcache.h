/*
 * sqlcache.h - sqlutil.h's chores for statements that are prepared once per
 * connection and reused (bss_store_prepare_cached), for the paths that run
 * the same few statements for every event of a month end.
 *
 * Parsing a statement costs far more than running it: billing applied each
 * UsageMoved with seven prepares and spent most of its time in SQLite's
 * parser. A cached statement is handed back reset with its bindings cleared;
 * it is never finalized by its user, only reset, which every function here
 * does on every path (a read statement left unreset would keep its
 * connection's read transaction open, and a pooled reader would then show
 * an old snapshot to its next user).
 *
 * db must be one of a bss_store's connections (its write connection inside
 * the transaction, or a reader or snapshot from it): the store finalizes the
 * cached statements when it closes the connection. sql must be a fixed text,
 * and a statement must not be used again (same text, same connection) while
 * a previous use of it is still open, e.g. inside its own row loop.
 *
 * Errors follow sqlutil.h: BSS_ERR_IO with err "<what>: <SQLite's message>".
 */
#ifndef BSS_SQLCACHE_H
#define BSS_SQLCACHE_H

#include <sqlite3.h>
#include <stddef.h>

/* The cached statement for sql on db into *st (BSS_OK), or BSS_ERR_IO with
 * *st NULL and err "<what>: <message>". */
int bss_sqlc_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                     char *err);

/* Ends a use of st: resets it (NULL is fine). */
void bss_sqlc_done(sqlite3_stmt *st);

/* Reports a failed step: err "<what>: <message>", resets st, returns
 * BSS_ERR_IO. */
int bss_sqlc_fail(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err);

/* Steps st (no rows expected) to completion and resets it. changed (may be
 * NULL) is 1 when it changed a row. A failed step is bss_sqlc_fail. */
int bss_sqlc_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, int *changed,
                       char *err);

/* bss_sql_collect (sqlutil.h) for a cached statement: st is reset, never
 * finalized, in every case. */
int bss_sqlc_collect(sqlite3 *db, sqlite3_stmt *st, size_t elem_size,
                     int (*row)(sqlite3_stmt *st, void *elem), void (*drop)(void *elem),
                     void **items, size_t *n, const char *what, char *err);

#endif
