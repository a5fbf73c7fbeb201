/* auclose.c - see auclose.h. */
#include "auclose.h"

#include "bss_error.h"
#include "emit.h"
#include "isotime.h"
#include "period.h"
#include "sqlutil.h"
#include "usage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AWAIT_POLL_MS 20

struct au_closer {
    bss_store *store;
    int chunk;
    bss_log *log;
    bss_metrics *metrics;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int pending;
    _Atomic int stopping;
};

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char text[BSS_TIME_LEN + 8];
    if (ms > 0 && bss_time_format(ms, text, sizeof text) == BSS_OK)
        cJSON_AddStringToObject(o, name, text);
}

int au_close_status(sqlite3 *db, const char *period, cJSON **out, char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT status, requested_ms, completed_ms, line_count, moved_count,"
                           " customer_position, total_bytes, orders_closed FROM au_close"
                           " WHERE period = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    int rc = BSS_ERR_NOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "period", period);
        cJSON_AddStringToObject(o, "status", (const char *)sqlite3_column_text(st, 0));
        add_time(o, "requestedAt", sqlite3_column_int64(st, 1));
        add_time(o, "completedAt", sqlite3_column_int64(st, 2));
        cJSON_AddNumberToObject(o, "lineCount", (double)sqlite3_column_int64(st, 3));
        cJSON_AddNumberToObject(o, "movedCount", (double)sqlite3_column_int64(st, 4));
        cJSON_AddNumberToObject(o, "customerPosition", (double)sqlite3_column_int64(st, 5));
        usage_add_count(o, "totalBytes", sqlite3_column_int64(st, 6));
        cJSON_AddBoolToObject(o, "ordersClosed", sqlite3_column_int(st, 7) != 0);
        *out = o;
        rc = BSS_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int au_close_request(au_closer *c, const char *period_text, cJSON **status_json, int *created,
                     char *err)
{
    bss_period period;
    int64_t start_ms, end_ms;
    if (bss_period_parse(period_text, &period) != BSS_OK ||
        bss_period_bounds(period, &start_ms, &end_ms) != BSS_OK) {
        bss_seterr(err, "period must be YYYY-MM");
        return BSS_ERR_INVALID;
    }
    int rc = bss_store_begin(c->store, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(c->store);
    *created = 0;
    rc = au_close_status(db, period_text, status_json, err);
    if (rc == BSS_ERR_NOTFOUND) {
        if (bss_now_ms() < end_ms) {
            bss_store_rollback(c->store);
            bss_seterr(err, "period %s has not ended yet in the billing time zone", period_text);
            return BSS_ERR_CONFLICT;
        }
        int64_t position = 0;
        rc = bss_store_inbox_get(c->store, "customer", 0, &position, err);
        sqlite3_stmt *st = NULL;
        if (rc == BSS_OK &&
            sqlite3_prepare_v2(db,
                               "INSERT INTO au_close(period, status, requested_ms,"
                               " customer_position, orders_closed)"
                               " VALUES(?1, 'CLOSING', ?2, ?3, 0)",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, period_text, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, bss_now_ms());
            sqlite3_bind_int64(st, 3, position);
            rc = sqlite3_step(st) == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
        } else if (rc == BSS_OK) {
            rc = BSS_ERR_IO;
        }
        sqlite3_finalize(st);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "period", period_text);
        cJSON_AddNumberToObject(data, "customerPosition", (double)position);
        if (rc == BSS_OK)
            rc = bss_emit(c->store, NULL, "AuCloseStarted", period_text, data, err);
        cJSON_Delete(data);
        if (rc == BSS_OK)
            rc = au_close_status(db, period_text, status_json, err);
        *created = rc == BSS_OK;
    }
    if (rc != BSS_OK) {
        bss_store_rollback(c->store);
        return rc;
    }
    rc = bss_store_commit(c->store, err);
    if (rc != BSS_OK) {
        cJSON_Delete(*status_json);
        *status_json = NULL;
        return rc;
    }
    if (*created) {
        pthread_mutex_lock(&c->lock);
        c->pending = 1;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
    }
    return BSS_OK;
}

int au_close_orders_closed(sqlite3 *db, const char *period, char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sql_prepare(db, "UPDATE au_close SET orders_closed = 1 WHERE period = ?1", &st,
                        "au_close orders closed", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    return bss_sql_step_done(db, st, "au_close orders closed", NULL, err);
}

/* Lines to move: usage in the period, or ACTIVE at any moment of it. */
static const char *CANDIDATES =
    "SELECT r.svc_cont_no, r.customer_id, COALESCE(u.bytes, 0), COALESCE(u.records, 0)"
    " FROM rater_info r LEFT JOIN usage_period u"
    "   ON u.svc_cont_no = r.svc_cont_no AND u.period = ?1"
    " WHERE r.svc_cont_no > ?2 AND (u.svc_cont_no IS NOT NULL"
    "   OR EXISTS(SELECT 1 FROM line_status_history h WHERE h.svc_cont_no = r.svc_cont_no"
    "             AND h.status = 'ACTIVE' AND h.effective_ms >= ?3 AND h.effective_ms < ?4)"
    "   OR (SELECT h.status FROM line_status_history h WHERE h.svc_cont_no = r.svc_cont_no"
    "       AND h.effective_ms <= ?3 ORDER BY h.effective_ms DESC, h.id DESC LIMIT 1)"
    "      = 'ACTIVE')"
    " ORDER BY r.svc_cont_no LIMIT ?5";

/* Moves one chunk of the close of `period`. *done is set when it was the
 * last one. */
static int move_chunk(au_closer *c, const char *period, int *done, char *err)
{
    bss_period p;
    int64_t start_ms, end_ms;
    if (bss_period_parse(period, &p) != BSS_OK || bss_period_bounds(p, &start_ms, &end_ms) != BSS_OK)
        return BSS_ERR_INVALID;
    int rc = bss_store_begin(c->store, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(c->store);
    sqlite3_stmt *cur = NULL, *st = NULL;
    char cursor[64] = "";
    int64_t moved = 0, total = 0;
    if (sqlite3_prepare_v2(db, "SELECT cursor, moved_count, total_bytes FROM au_close"
                               " WHERE period = ?1 AND status = 'CLOSING' AND orders_closed",
                           -1, &cur, NULL) != SQLITE_OK) {
        bss_store_rollback(c->store);
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(cur, 1, period, -1, SQLITE_STATIC);
    if (sqlite3_step(cur) != SQLITE_ROW) {
        sqlite3_finalize(cur);
        bss_store_rollback(c->store);
        *done = 1;
        return BSS_OK; /* not closing (any more) */
    }
    snprintf(cursor, sizeof cursor, "%s", (const char *)sqlite3_column_text(cur, 0));
    moved = sqlite3_column_int64(cur, 1);
    total = sqlite3_column_int64(cur, 2);
    sqlite3_finalize(cur);

    rc = sqlite3_prepare_v2(db, CANDIDATES, -1, &st, NULL) == SQLITE_OK ? BSS_OK : BSS_ERR_IO;
    int n = 0;
    if (rc == BSS_OK) {
        sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, cursor, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, start_ms);
        sqlite3_bind_int64(st, 4, end_ms);
        sqlite3_bind_int(st, 5, c->chunk);
        while (rc == BSS_OK && sqlite3_step(st) == SQLITE_ROW) {
            const char *svc = (const char *)sqlite3_column_text(st, 0);
            int64_t bytes = sqlite3_column_int64(st, 2);
            char text[24];
            snprintf(text, sizeof text, "%lld", (long long)bytes);
            cJSON *data = cJSON_CreateObject();
            cJSON_AddStringToObject(data, "period", period);
            cJSON_AddStringToObject(data, "customerId", (const char *)sqlite3_column_text(st, 1));
            cJSON_AddStringToObject(data, "usageBytes", text);
            cJSON_AddNumberToObject(data, "records", (double)sqlite3_column_int64(st, 3));
            rc = bss_emit(c->store, NULL, "UsageMoved", svc, data, err);
            cJSON_Delete(data);
            snprintf(cursor, sizeof cursor, "%s", svc);
            total = total > INT64_MAX - bytes ? INT64_MAX : total + bytes;
            moved++;
            n++;
        }
    } else {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    *done = rc == BSS_OK && n < c->chunk;
    sqlite3_stmt *up = NULL;
    if (rc == BSS_OK &&
        sqlite3_prepare_v2(db,
                           "UPDATE au_close SET cursor = ?2, moved_count = ?3, total_bytes = ?4,"
                           " line_count = ?3, status = CASE WHEN ?5 THEN 'CLOSED' ELSE status END,"
                           " completed_ms = CASE WHEN ?5 THEN ?6 ELSE completed_ms END"
                           " WHERE period = ?1",
                           -1, &up, NULL) == SQLITE_OK) {
        sqlite3_bind_text(up, 1, period, -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 2, cursor, -1, SQLITE_STATIC);
        sqlite3_bind_int64(up, 3, moved);
        sqlite3_bind_int64(up, 4, total);
        sqlite3_bind_int(up, 5, *done);
        sqlite3_bind_int64(up, 6, bss_now_ms());
        rc = sqlite3_step(up) == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
    } else if (rc == BSS_OK) {
        rc = BSS_ERR_IO;
    }
    sqlite3_finalize(up);
    if (rc == BSS_OK && *done) {
        char text[24];
        snprintf(text, sizeof text, "%lld", (long long)total);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "period", period);
        cJSON_AddNumberToObject(data, "lineCount", (double)moved);
        cJSON_AddStringToObject(data, "totalBytes", text);
        rc = bss_emit(c->store, NULL, "AuCloseCompleted", period, data, err);
        cJSON_Delete(data);
    }
    if (rc != BSS_OK) {
        bss_store_rollback(c->store);
        return rc;
    }
    rc = bss_store_commit(c->store, err);
    if (rc == BSS_OK)
        bss_metrics_counter_add(c->metrics, "bss_au_close_lines_moved_total", NULL,
                                (uint64_t)n);
    return rc;
}

/* The oldest period CLOSING whose orders are closed into period ("" when
 * none); *awaiting is set when a CLOSING period still waits for its
 * OrdersClosed. */
static int next_closing(au_closer *c, char *period, size_t len, int *awaiting)
{
    sqlite3 *db = NULL;
    period[0] = '\0';
    *awaiting = 0;
    if (bss_store_snapshot_begin(c->store, &db, NULL) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT period, orders_closed FROM au_close"
                               " WHERE status = 'CLOSING' ORDER BY period",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (sqlite3_column_int(st, 1) == 0) {
                *awaiting = 1;
            } else if (period[0] == '\0') {
                snprintf(period, len, "%s", (const char *)sqlite3_column_text(st, 0));
            }
        }
    }
    sqlite3_finalize(st);
    bss_store_snapshot_end(c->store, db);
    return BSS_OK;
}

static void *closer_main(void *arg)
{
    au_closer *c = arg;
    while (!atomic_load(&c->stopping)) {
        char period[16];
        int awaiting = 0;
        next_closing(c, period, sizeof period, &awaiting);
        if (period[0] != '\0') {
            char err[BSS_ERRLEN] = "";
            int done = 0;
            int rc = move_chunk(c, period, &done, err);
            if (rc != BSS_OK) {
                bss_log_error(c->log, "AU close %s: %s (will retry)", period, err);
            } else {
                if (done)
                    bss_log_info(c->log, "AU close %s completed", period);
                continue;
            }
        }
        pthread_mutex_lock(&c->lock);
        if (!c->pending && !atomic_load(&c->stopping)) {
            /* The barrier arrives through the consumer, which does not wake
             * this thread: while a close waits for it, look often. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (awaiting) {
                ts.tv_nsec += AWAIT_POLL_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
            } else {
                ts.tv_sec += 1;
            }
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        }
        c->pending = 0;
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

int au_closer_start(bss_store *store, int chunk_lines, bss_log *log, bss_metrics *metrics,
                    au_closer **out, char *err)
{
    au_closer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    c->store = store;
    c->chunk = chunk_lines > 0 ? chunk_lines : 5000;
    c->log = log;
    c->metrics = metrics;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, closer_main, c) != 0) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        free(c);
        bss_seterr(err, "cannot start the AU close thread");
        return BSS_ERR;
    }
    *out = c;
    return BSS_OK;
}

void au_closer_stop(void *closer)
{
    au_closer *c = closer;
    if (c == NULL)
        return;
    atomic_store(&c->stopping, 1);
    pthread_mutex_lock(&c->lock);
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    free(c);
}
