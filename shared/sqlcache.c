/* sqlcache.c - see sqlcache.h. */
#include "sqlcache.h"

#include "bss_error.h"
#include "evstore.h"
#include "sqlutil.h"

#include <stdlib.h>
#include <string.h>

int bss_sqlc_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                     char *err)
{
    char why[BSS_ERRLEN] = "";
    if (bss_store_prepare_cached(db, sql, st, why) != BSS_OK) {
        bss_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
        *st = NULL;
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

void bss_sqlc_done(sqlite3_stmt *st)
{
    if (st != NULL)
        sqlite3_reset(st);
}

int bss_sqlc_fail(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err)
{
    /* The message first: resetting may replace it. */
    bss_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
    bss_sqlc_done(st);
    return BSS_ERR_IO;
}

int bss_sqlc_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, int *changed,
                       char *err)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return bss_sqlc_fail(db, st, what, err);
    if (changed != NULL)
        *changed = sqlite3_changes(db) > 0;
    sqlite3_reset(st);
    return BSS_OK;
}

int bss_sqlc_collect(sqlite3 *db, sqlite3_stmt *st, size_t elem_size,
                     int (*row)(sqlite3_stmt *st, void *elem), void (*drop)(void *elem),
                     void **items, size_t *n, const char *what, char *err)
{
    return bss_sql_collect_rows(db, st, 0, elem_size, row, drop, items, n, what, err);
}
