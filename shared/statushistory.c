/* statushistory.c - see statushistory.h. */
#include "statushistory.h"

#include "bss_error.h"
#include "sqlcache.h"
#include "sqlutil.h"
#include "customer_events.h"
#include "emit.h"
#include "isotime.h"

#include <string.h>

const char BSS_STATUSHISTORY_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS line_status_history("
    " id INTEGER PRIMARY KEY,"
    " svc_cont_no TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " effective_ms INTEGER NOT NULL,"
    " effective_at TEXT NOT NULL,"
    " order_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL UNIQUE);"
    "CREATE INDEX IF NOT EXISTS line_status_history_line"
    " ON line_status_history(svc_cont_no, effective_ms, id);";

int bss_statushistory_record(sqlite3 *db, const bss_status_entry *e, int *inserted, char *err)
{
    if (e->svc_cont_no == NULL || e->status == NULL || e->effective_at == NULL ||
        e->order_id == NULL || e->event_id == NULL) {
        bss_seterr(err, "status history: entry with a NULL field");
        return BSS_ERR_INVALID;
    }
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT OR IGNORE INTO line_status_history(svc_cont_no, status,"
                         " effective_ms, effective_at, order_id, event_id)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                         &st, "status history prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, e->svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->effective_ms);
    sqlite3_bind_text(st, 4, e->effective_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->event_id, -1, SQLITE_STATIC);
    return bss_sqlc_step_done(db, st, "status history insert", inserted, err);
}

int bss_statushistory_to_json(sqlite3 *db, const char *svc_cont_no, cJSON *array, char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT status, effective_at, order_id FROM line_status_history"
                         " WHERE svc_cont_no = ?1 ORDER BY effective_ms, id",
                         &st, "status history prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(array, o) ||
            cJSON_AddStringToObject(o, "status", (const char *)sqlite3_column_text(st, 0)) == NULL ||
            cJSON_AddStringToObject(o, "effectiveAt", (const char *)sqlite3_column_text(st, 1)) ==
                NULL ||
            cJSON_AddStringToObject(o, "orderId", (const char *)sqlite3_column_text(st, 2)) == NULL) {
            bss_sqlc_done(st);
            bss_seterr(err, "status history: out of memory");
            return BSS_ERR_NOMEM;
        }
    }
    if (rc != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "status history select", err);
    bss_sqlc_done(st);
    return BSS_OK;
}

int bss_statushistory_add_view(sqlite3 *db, const char *svc_cont_no, int64_t created_ms,
                               cJSON *view, char *err)
{
    char created[BSS_TIME_LEN + 8] = "";
    bss_time_format(created_ms, created, sizeof created);
    cJSON *history = cJSON_CreateArray();
    if (history == NULL || cJSON_AddStringToObject(view, "createdAt", created) == NULL ||
        !cJSON_AddItemToObject(view, "statusHistory", history)) {
        cJSON_Delete(history);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    return bss_statushistory_to_json(db, svc_cont_no, history, err);
}

int bss_statushistory_status_at(sqlite3 *db, const char *svc_cont_no, int64_t at_ms,
                                char *status, size_t len, char *err)
{
    if (len > 0)
        status[0] = '\0';
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT status FROM line_status_history"
                         " WHERE svc_cont_no = ?1 AND effective_ms <= ?2"
                         " ORDER BY effective_ms DESC, id DESC LIMIT 1",
                         &st, "status history prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        bss_sqlc_done(st);
        return BSS_ERR_NOTFOUND;
    }
    if (rc != SQLITE_ROW)
        return bss_sqlc_fail(db, st, "status history select", err);
    const char *s = (const char *)sqlite3_column_text(st, 0);
    if (s != NULL && len > 0) {
        strncpy(status, s, len - 1);
        status[len - 1] = '\0';
    }
    bss_sqlc_done(st);
    return BSS_OK;
}

int bss_statushistory_apply(bss_store *store, const bss_event *ev, const char *recorded_type,
                            char *err)
{
    bss_cev_status_changed sc;
    int rc = bss_cev_parse_status_changed(ev, &sc, err);
    if (rc != BSS_OK)
        return rc;
    bss_status_entry e = {ev->subject, sc.to, sc.effective_ms, sc.effective_at, sc.order_id,
                          ev->id};
    int inserted = 0;
    rc = bss_statushistory_record(bss_store_db(store), &e, &inserted, err);
    if (rc != BSS_OK || !inserted)
        return rc;
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || cJSON_AddStringToObject(d, "orderId", sc.order_id) == NULL ||
        cJSON_AddStringToObject(d, "status", sc.to) == NULL ||
        cJSON_AddStringToObject(d, "effectiveAt", sc.effective_at) == NULL) {
        cJSON_Delete(d);
        bss_seterr(err, "%s: out of memory", recorded_type);
        return BSS_ERR_NOMEM;
    }
    rc = bss_emit(store, ev, recorded_type, ev->subject, d, err);
    cJSON_Delete(d);
    return rc;
}
