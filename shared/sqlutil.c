/* sqlutil.c - see sqlutil.h. */
#include "sqlutil.h"

#include "bss_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bss_sql_exec_all(sqlite3 *db, const char *const *parts, size_t n, const char *what,
                     char *err)
{
    for (size_t i = 0; i < n; i++) {
        char *msg = NULL;
        if (sqlite3_exec(db, parts[i], NULL, NULL, &msg) != SQLITE_OK) {
            bss_seterr(err, "%s: %s", what, msg != NULL ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return BSS_ERR_IO;
        }
    }
    return BSS_OK;
}

int bss_sql_add_column(sqlite3 *db, const char *table, const char *column, const char *decl,
                       char *err)
{
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT 1 FROM pragma_table_info(%Q) WHERE name = %Q", table,
                                column);
    int rc = sql != NULL && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? BSS_OK
                                                                                   : BSS_ERR_IO;
    sqlite3_free(sql);
    int step = rc == BSS_OK ? sqlite3_step(st) : SQLITE_ERROR;
    sqlite3_finalize(st);
    if (step == SQLITE_ROW)
        return BSS_OK;
    if (step == SQLITE_DONE) {
        sql = sqlite3_mprintf("ALTER TABLE \"%w\" ADD COLUMN \"%w\" %s", table, column, decl);
        char *msg = NULL;
        rc = sql != NULL && sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK ? BSS_OK
                                                                               : BSS_ERR_IO;
        sqlite3_free(sql);
        if (rc == BSS_OK)
            return BSS_OK;
        bss_seterr(err, "%s add %s: %s", table, column, msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return BSS_ERR_IO;
    }
    bss_seterr(err, "%s add %s: %s", table, column, sqlite3_errmsg(db));
    return BSS_ERR_IO;
}

int bss_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                    char *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        bss_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
        sqlite3_finalize(*st);
        *st = NULL;
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int bss_sql_fail(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err)
{
    bss_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return BSS_ERR_IO;
}

int bss_sql_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, int *changed,
                      char *err)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return bss_sql_fail(db, st, what, err);
    if (changed != NULL)
        *changed = sqlite3_changes(db) > 0;
    sqlite3_finalize(st);
    return BSS_OK;
}

int bss_sql_row_by_key(sqlite3 *db, const char *sql, const char *key, sqlite3_stmt **st,
                       const char *what, char *err)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        bss_seterr(err, "%s prepare: %s", what, sqlite3_errmsg(db));
        sqlite3_finalize(*st);
        *st = NULL;
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(*st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(*st);
    if (rc == SQLITE_ROW)
        return BSS_OK;
    if (rc != SQLITE_DONE)
        bss_seterr(err, "%s select: %s", what, sqlite3_errmsg(db));
    sqlite3_finalize(*st);
    *st = NULL;
    return rc == SQLITE_DONE ? BSS_ERR_NOTFOUND : BSS_ERR_IO;
}

void bss_sql_copy_text(sqlite3_stmt *st, int col, char *out, size_t len)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    snprintf(out, len, "%s", s != NULL ? s : "");
}

int bss_sql_collect_rows(sqlite3 *db, sqlite3_stmt *st, int finalize, size_t elem_size,
                         int (*row)(sqlite3_stmt *st, void *elem), void (*drop)(void *elem),
                         void **items, size_t *n, const char *what, char *err)
{
    char *out = NULL;
    size_t count = 0, cap = 0;
    int step, rc = BSS_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char *grown = realloc(out, ncap * elem_size);
            if (grown == NULL) {
                rc = BSS_ERR_NOMEM;
                break;
            }
            out = grown;
            cap = ncap;
        }
        void *elem = out + count * elem_size;
        memset(elem, 0, elem_size);
        if ((rc = row(st, elem)) != BSS_OK)
            break;
        count++;
    }
    if (rc == BSS_OK && step != SQLITE_DONE) {
        /* The message first: finalizing or resetting may replace it. */
        bss_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
        rc = BSS_ERR_IO;
    }
    if (finalize)
        sqlite3_finalize(st);
    else
        sqlite3_reset(st);
    if (rc == BSS_ERR_NOMEM)
        bss_seterr(err, "%s: out of memory", what);
    if (rc != BSS_OK) {
        for (size_t i = 0; drop != NULL && i < count; i++)
            drop(out + i * elem_size);
        free(out);
        return rc;
    }
    *items = out;
    *n = count;
    return BSS_OK;
}

int bss_sql_collect(sqlite3 *db, sqlite3_stmt *st, size_t elem_size,
                    int (*row)(sqlite3_stmt *st, void *elem), void (*drop)(void *elem),
                    void **items, size_t *n, const char *what, char *err)
{
    return bss_sql_collect_rows(db, st, 1, elem_size, row, drop, items, n, what, err);
}
