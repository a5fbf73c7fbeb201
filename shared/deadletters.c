#include "deadletters.h"

#include "bss_error.h"
#include "envelope.h"
#include "isotime.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

struct bss_deadletters {
    bss_store *store;
    bss_handler_fn handler;
    void *ctx;
};

static const char REDRIVES_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS dead_letter_redrives("
    " dead_letter_id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL)";

static int ensure_schema(bss_store *store, char *err)
{
    sqlite3 *db = bss_store_db(store);
    if (sqlite3_exec(db, REDRIVES_SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        bss_seterr(err, "dead letter re-drives: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

/* Reads the dead letter's payload and whether it was re-driven (write
 * transaction held). *payload is malloc'd. */
static int load_dead_letter(sqlite3 *db, int64_t id, char **payload, size_t *len,
                            int *redriven, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_store_prepare_cached(
        db,
        "SELECT d.payload, r.dead_letter_id IS NOT NULL FROM dead_letters d"
        " LEFT JOIN dead_letter_redrives r ON r.dead_letter_id = d.id WHERE d.id = ?1",
        &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        sqlite3_reset(st);
        return BSS_ERR_NOTFOUND;
    }
    if (step != SQLITE_ROW) {
        bss_seterr(err, "dead letter read: %s", sqlite3_errmsg(db));
        sqlite3_reset(st);
        return step == SQLITE_BUSY ? BSS_ERR_BUSY : BSS_ERR_IO;
    }
    int n = sqlite3_column_bytes(st, 0);
    *payload = malloc((size_t)n + 1);
    if (*payload == NULL) {
        sqlite3_reset(st);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    if (n > 0)
        memcpy(*payload, sqlite3_column_blob(st, 0), (size_t)n);
    (*payload)[n] = '\0';
    *len = (size_t)n;
    *redriven = sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    return BSS_OK;
}

static int record_redrive(sqlite3 *db, int64_t id, int64_t now, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_store_prepare_cached(
        db, "INSERT INTO dead_letter_redrives(dead_letter_id, time_ms) VALUES (?1, ?2)", &st,
        err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE) {
        bss_seterr(err, "dead letter re-drive record: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int bss_deadletters_redrive(bss_store *store, bss_handler_fn handler, void *ctx, int64_t id,
                            int64_t *redriven_ms, char *err)
{
    int rc = bss_store_begin(store, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(store);
    char *payload = NULL;
    size_t len = 0;
    int redriven = 0;
    bss_event *ev = NULL;
    rc = ensure_schema(store, err);
    if (rc == BSS_OK)
        rc = load_dead_letter(db, id, &payload, &len, &redriven, err);
    if (rc == BSS_OK && redriven) {
        bss_seterr(err, "dead letter %lld was re-driven before", (long long)id);
        rc = BSS_ERR_CONFLICT;
    }
    if (rc == BSS_OK && bss_event_decode(payload, len, &ev, err) != BSS_OK)
        rc = BSS_ERR_INVALID;
    if (rc == BSS_OK)
        rc = handler(ctx, store, ev, err);
    int64_t now = bss_now_ms();
    if (rc == BSS_OK)
        rc = record_redrive(db, id, now, err);
    if (rc == BSS_OK)
        rc = bss_store_commit(store, err);
    else
        bss_store_rollback(store);
    bss_event_free(ev);
    free(payload);
    if (rc == BSS_OK && redriven_ms != NULL)
        *redriven_ms = now;
    return rc;
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char text[64];
    if (ms > 0 && bss_time_format(ms, text, sizeof text) == BSS_OK)
        cJSON_AddStringToObject(o, name, text);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *row_json(sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "stream", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddNumberToObject(o, "partition", sqlite3_column_int(st, 2));
    cJSON_AddNumberToObject(o, "position", (double)sqlite3_column_int64(st, 3));
    cJSON_AddStringToObject(o, "reason", (const char *)sqlite3_column_text(st, 5));
    add_time(o, "time", sqlite3_column_int64(st, 6));
    add_time(o, "redrivenAt", sqlite3_column_int64(st, 7));
    const char *payload = (const char *)sqlite3_column_blob(st, 4);
    int n = sqlite3_column_bytes(st, 4);
    cJSON *event = payload ? cJSON_ParseWithLength(payload, (size_t)n) : NULL;
    if (event != NULL)
        cJSON_AddItemToObject(o, "event", event);
    else
        cJSON_AddNullToObject(o, "event");
    char *text = malloc((size_t)n + 1);
    if (text != NULL) {
        if (n > 0)
            memcpy(text, payload, (size_t)n);
        text[n] = '\0';
        cJSON_AddStringToObject(o, "payload", text);
        free(text);
    }
    return o;
}

static int list_handler(bss_request *req, void *ctx)
{
    bss_deadletters *dl = ctx;
    char value[32], err[BSS_ERRLEN];
    long long limit = DEFAULT_LIMIT, after = 0;
    if (bss_req_query_param(req, "limit", value, sizeof value) == BSS_OK) {
        char *end = NULL;
        limit = strtoll(value, &end, 10);
        if (end == value || *end != '\0' || limit < 1 || limit > MAX_LIMIT)
            return bss_reply_problem(req, 400, "INVALID_LIMIT", "Invalid limit",
                                     "limit must be an integer from 1 to 1000");
    }
    if (bss_req_query_param(req, "afterId", value, sizeof value) == BSS_OK) {
        char *end = NULL;
        after = strtoll(value, &end, 10);
        if (end == value || *end != '\0' || after < 0)
            return bss_reply_problem(req, 400, "INVALID_AFTER_ID", "Invalid afterId",
                                     "afterId must be a non-negative integer");
    }
    sqlite3 *db = NULL;
    if (bss_store_reader_acquire(dl->store, &db, err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_stmt *st = NULL;
    /* The re-drive table may not exist yet: read it only when it does. */
    int has_redrives = 0;
    if (bss_store_prepare_cached(db,
                                 "SELECT 1 FROM sqlite_schema WHERE type = 'table'"
                                 " AND name = 'dead_letter_redrives'",
                                 &st, err) == BSS_OK) {
        has_redrives = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
    }
    const char *sql =
        has_redrives
            ? "SELECT d.id, d.stream, d.partition, d.position, d.payload, d.reason, d.time_ms,"
              " coalesce(r.time_ms, 0) FROM dead_letters d LEFT JOIN dead_letter_redrives r"
              " ON r.dead_letter_id = d.id WHERE d.id > ?1 ORDER BY d.id LIMIT ?2"
            : "SELECT id, stream, partition, position, payload, reason, time_ms, 0"
              " FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2";
    int rc = bss_store_prepare_cached(db, sql, &st, err);
    cJSON *body = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(body, "deadLetters");
    int64_t last = 0;
    if (rc == BSS_OK) {
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, limit);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            last = sqlite3_column_int64(st, 0);
            cJSON_AddItemToArray(items, row_json(st));
        }
        if (step != SQLITE_DONE)
            rc = BSS_ERR_IO;
        sqlite3_reset(st);
    }
    bss_store_reader_release(dl->store, db);
    if (rc != BSS_OK) {
        cJSON_Delete(body);
        return rc;
    }
    if (cJSON_GetArraySize(items) == limit)
        cJSON_AddNumberToObject(body, "nextAfterId", (double)last);
    else
        cJSON_AddNullToObject(body, "nextAfterId");
    return bss_reply_json_owned(req, 200, body);
}

static int redrive_handler(bss_request *req, void *ctx)
{
    bss_deadletters *dl = ctx;
    const char *id_text = bss_req_param(req, "id");
    char *end = NULL;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    if (id_text == NULL || end == id_text || *end != '\0' || id < 1)
        return bss_reply_problem(req, 404, "DEAD_LETTER_NOT_FOUND", "No such dead letter",
                                 "dead letter ids are positive integers");
    char err[BSS_ERRLEN] = "";
    int64_t when = 0;
    int rc = bss_deadletters_redrive(dl->store, dl->handler, dl->ctx, id, &when, err);
    switch (rc) {
    case BSS_OK: {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddNumberToObject(body, "id", (double)id);
        add_time(body, "redrivenAt", when);
        bss_log_info(bss_req_log(req), "dead letter %lld re-driven", id);
        return bss_reply_json_owned(req, 200, body);
    }
    case BSS_ERR_NOTFOUND:
        return bss_reply_problemf(req, 404, "DEAD_LETTER_NOT_FOUND", "No such dead letter",
                                  "no dead letter with id %lld", id);
    case BSS_ERR_CONFLICT:
        return bss_reply_problem(req, 409, "ALREADY_REDRIVEN", "Already re-driven", err);
    case BSS_ERR_INVALID:
        return bss_reply_problem(req, 422, "REDRIVE_REJECTED", "The event is still rejected",
                                 err);
    default:
        return bss_reply_problem_h(req, 503, "STORE_BUSY", "Try again", err,
                                   "Retry-After: 1\r\n");
    }
}

int bss_deadletters_routes(bss_http *http, const char *prefix, bss_store *store,
                           bss_handler_fn handler, void *ctx, bss_deadletters **out,
                           char *err)
{
    bss_deadletters *dl = calloc(1, sizeof *dl);
    if (dl == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    dl->store = store;
    dl->handler = handler;
    dl->ctx = ctx;
    /* bss_http copies the patterns. */
    char list[128], redrive[128];
    if (snprintf(list, sizeof list, "%s/dead-letters", prefix) >= (int)sizeof list ||
        snprintf(redrive, sizeof redrive, "%s/dead-letters/{id}/redrive", prefix) >=
            (int)sizeof redrive) {
        free(dl);
        bss_seterr(err, "dead letter prefix too long");
        return BSS_ERR_INVALID;
    }
    int rc = bss_http_route(http, "GET", list, list_handler, dl);
    if (rc == BSS_OK)
        rc = bss_http_route(http, "POST", redrive, redrive_handler, dl);
    if (rc != BSS_OK) {
        free(dl);
        bss_seterr(err, "cannot route %s: %s", list, bss_strerror(rc));
        return rc;
    }
    *out = dl;
    return BSS_OK;
}

void bss_deadletters_free(bss_deadletters *dl) { free(dl); }
