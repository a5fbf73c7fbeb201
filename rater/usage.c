/*
 * usage.c - see usage.h.
 *
 * The hot loop does one SQLite statement per record (remembering its
 * recordId); everything else it needs about a line (APN, status history,
 * running totals) is loaded once per file into an in-memory table keyed by
 * svcContNo, and the totals are written back once per line at the end.
 */
#include "usage.h"

#include "bss_error.h"
#include "sqlutil.h"
#include "emit.h"
#include "isotime.h"
#include "period.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE_SCHEMA =
    "CREATE TABLE IF NOT EXISTS usage_seen("
    "  record_id TEXT PRIMARY KEY, file_id INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS usage_period("
    "  svc_cont_no TEXT NOT NULL, period TEXT NOT NULL, bytes INTEGER NOT NULL,"
    "  records INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(svc_cont_no, period)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS usage_file("
    "  file_id INTEGER PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL,"
    "  received_ms INTEGER NOT NULL, records INTEGER NOT NULL DEFAULT 0,"
    "  rated INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,"
    "  rejected INTEGER NOT NULL DEFAULT 0, spool_size INTEGER NOT NULL DEFAULT 0,"
    "  spool_mtime_ns INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS usage_file_by_name ON usage_file(name, file_id);"
    "CREATE TABLE IF NOT EXISTS usage_rejection("
    "  file_id INTEGER NOT NULL, line INTEGER NOT NULL, record_id TEXT NOT NULL,"
    "  reason TEXT NOT NULL, detail TEXT NOT NULL,"
    "  PRIMARY KEY(file_id, line)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS au_close("
    "  period TEXT PRIMARY KEY, status TEXT NOT NULL, requested_ms INTEGER NOT NULL,"
    "  completed_ms INTEGER, line_count INTEGER NOT NULL DEFAULT 0,"
    "  moved_count INTEGER NOT NULL DEFAULT 0, cursor TEXT NOT NULL DEFAULT '',"
    "  customer_position INTEGER NOT NULL DEFAULT 0,"
    "  total_bytes INTEGER NOT NULL DEFAULT 0);";

int usage_schema(sqlite3 *db, char *err)
{
    const char *const parts[] = {USAGE_SCHEMA};
    return bss_sql_exec_all(db, parts, 1, "usage schema", err);
}

int usage_file_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > USAGE_FILE_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void usage_add_count(cJSON *obj, const char *name, int64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)value);
    cJSON_AddRawToObject(obj, name, text);
}

/* ---- what a file needs to know about its lines ------------------------ */

typedef struct status_change {
    int64_t at_ms;
    int active;
} status_change;

typedef struct period_total {
    bss_period period;
    int64_t bytes;
    int64_t records;
} period_total;

typedef struct line_state {
    char svc_cont_no[USAGE_SVC_CONT_NO_MAX + 1];
    int exists;
    char apn_cd[USAGE_APN_MAX + 1];
    status_change *history;
    size_t nhistory;
    period_total *totals;
    size_t ntotals, cap_totals;
} line_state;

typedef struct line_table {
    line_state **slots;
    size_t cap, count;
} line_table;

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int table_grow(line_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 4096;
    line_state **slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return BSS_ERR_NOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] == NULL)
            continue;
        size_t j = hash_text(t->slots[i]->svc_cont_no) & (cap - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return BSS_OK;
}

static void table_free(line_table *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] != NULL) {
            free(t->slots[i]->history);
            free(t->slots[i]->totals);
            free(t->slots[i]);
        }
    }
    free(t->slots);
}

/* Loads a line's APN and status history from the store. */
static int load_line(sqlite3 *db, sqlite3_stmt *info, sqlite3_stmt *hist, line_state *l,
                     char *err)
{
    sqlite3_bind_text(info, 1, l->svc_cont_no, -1, SQLITE_STATIC);
    int rc = sqlite3_step(info);
    if (rc == SQLITE_ROW) {
        l->exists = 1;
        snprintf(l->apn_cd, sizeof l->apn_cd, "%s", (const char *)sqlite3_column_text(info, 0));
    }
    sqlite3_reset(info);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        bss_seterr(err, "read rater info: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    if (!l->exists)
        return BSS_OK;
    size_t cap = 0;
    sqlite3_bind_text(hist, 1, l->svc_cont_no, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(hist)) == SQLITE_ROW) {
        if (l->nhistory == cap) {
            cap = cap ? cap * 2 : 4;
            status_change *h = realloc(l->history, cap * sizeof *h);
            if (h == NULL) {
                sqlite3_reset(hist);
                return BSS_ERR_NOMEM;
            }
            l->history = h;
        }
        l->history[l->nhistory].at_ms = sqlite3_column_int64(hist, 0);
        l->history[l->nhistory].active =
            strcmp((const char *)sqlite3_column_text(hist, 1), "ACTIVE") == 0;
        l->nhistory++;
    }
    sqlite3_reset(hist);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "read status history: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

/* ---- the ingest ---------------------------------------------------------- */

typedef struct ingest {
    bss_store *store;
    sqlite3 *db;
    sqlite3_stmt *seen, *reject, *info, *hist;
    line_table lines;
    bss_period *closed;
    size_t nclosed;
    usage_report *report;
    /* The last period looked up and its bounds: records of a file mostly
     * share a month, and localtime_r is slow (glibc re-parses the zone's
     * rule string on every call for recent dates). */
    bss_period cached;
    int64_t cached_start, cached_end;
} ingest;

static int period_of(ingest *in, int64_t ms, bss_period *out)
{
    if (ms >= in->cached_start && ms < in->cached_end) {
        *out = in->cached;
        return BSS_OK;
    }
    if (bss_period_of(ms, out) != BSS_OK ||
        bss_period_bounds(*out, &in->cached_start, &in->cached_end) != BSS_OK) {
        in->cached_start = in->cached_end = 0;
        return BSS_ERR_INVALID;
    }
    in->cached = *out;
    return BSS_OK;
}

static int prepare(ingest *in, const char *sql, sqlite3_stmt **st, char *err)
{
    return bss_sql_prepare(in->db, sql, st, "prepare", err);
}

static int find_line(ingest *in, const char *svc, line_state **out, char *err)
{
    if ((in->lines.count + 1) * 2 > in->lines.cap && table_grow(&in->lines) != BSS_OK)
        return BSS_ERR_NOMEM;
    size_t j = hash_text(svc) & (in->lines.cap - 1);
    while (in->lines.slots[j] != NULL) {
        if (strcmp(in->lines.slots[j]->svc_cont_no, svc) == 0) {
            *out = in->lines.slots[j];
            return BSS_OK;
        }
        j = (j + 1) & (in->lines.cap - 1);
    }
    line_state *l = calloc(1, sizeof *l);
    if (l == NULL)
        return BSS_ERR_NOMEM;
    snprintf(l->svc_cont_no, sizeof l->svc_cont_no, "%s", svc);
    int rc = load_line(in->db, in->info, in->hist, l, err);
    if (rc != BSS_OK) {
        free(l->history);
        free(l);
        return rc;
    }
    in->lines.slots[j] = l;
    in->lines.count++;
    *out = l;
    return BSS_OK;
}

static int active_at(const line_state *l, int64_t ms)
{
    int active = 0;
    for (size_t i = 0; i < l->nhistory && l->history[i].at_ms <= ms; i++)
        active = l->history[i].active;
    return active;
}

static int period_closed(const ingest *in, bss_period p)
{
    for (size_t i = 0; i < in->nclosed; i++)
        if (bss_period_cmp(in->closed[i], p) == 0)
            return 1;
    return 0;
}

static int load_closed(ingest *in, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(in, "SELECT period FROM au_close", &st, err);
    if (rc != BSS_OK)
        return rc;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        bss_period p;
        if (bss_period_parse((const char *)sqlite3_column_text(st, 0), &p) != BSS_OK)
            continue;
        if (in->nclosed == cap) {
            cap = cap ? cap * 2 : 16;
            bss_period *c = realloc(in->closed, cap * sizeof *c);
            if (c == NULL) {
                sqlite3_finalize(st);
                return BSS_ERR_NOMEM;
            }
            in->closed = c;
        }
        in->closed[in->nclosed++] = p;
    }
    sqlite3_finalize(st);
    return BSS_OK;
}

/* Files a record that was not rated. */
static int reject(ingest *in, long long line, const char *record_id, const char *reason,
                  const char *detail, char *err)
{
    usage_report *r = in->report;
    if (strcmp(reason, "DUPLICATE") == 0)
        r->duplicates++;
    else
        r->rejected++;
    if (r->nfirst < USAGE_REPORT_BODY_REJECTIONS) {
        usage_rejection *x = &r->first[r->nfirst++];
        x->line = line;
        snprintf(x->record_id, sizeof x->record_id, "%s", record_id);
        x->reason = reason;
        snprintf(x->detail, sizeof x->detail, "%s", detail ? detail : "");
    }
    sqlite3_bind_int64(in->reject, 1, r->file_id);
    sqlite3_bind_int64(in->reject, 2, line);
    sqlite3_bind_text(in->reject, 3, record_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(in->reject, 4, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(in->reject, 5, detail ? detail : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(in->reject);
    sqlite3_reset(in->reject);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "store rejection: %s", sqlite3_errmsg(in->db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

/* Remembers the recordId; 1 when it is new, 0 when seen before, <0 error. */
static int remember(ingest *in, const char *record_id, char *err)
{
    sqlite3_bind_text(in->seen, 1, record_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(in->seen, 2, in->report->file_id);
    int rc = sqlite3_step(in->seen);
    sqlite3_reset(in->seen);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "remember record: %s", sqlite3_errmsg(in->db));
        return BSS_ERR_IO;
    }
    return sqlite3_changes(in->db) == 1;
}

static int add_usage(line_state *l, bss_period p, int64_t bytes)
{
    for (size_t i = 0; i < l->ntotals; i++) {
        if (bss_period_cmp(l->totals[i].period, p) == 0) {
            if (l->totals[i].bytes > INT64_MAX - bytes)
                return BSS_ERR_INVALID;
            l->totals[i].bytes += bytes;
            l->totals[i].records++;
            return BSS_OK;
        }
    }
    if (l->ntotals == l->cap_totals) {
        size_t cap = l->cap_totals ? l->cap_totals * 2 : 2;
        period_total *t = realloc(l->totals, cap * sizeof *t);
        if (t == NULL)
            return BSS_ERR_NOMEM;
        l->totals = t;
        l->cap_totals = cap;
    }
    period_total *t = &l->totals[l->ntotals++];
    t->period = p;
    t->bytes = bytes;
    t->records = 1;
    return BSS_OK;
}

static int rate_record(ingest *in, const char *text, size_t len, int too_long, long long line,
                       char *err)
{
    usage_record rec;
    char why[96];
    in->report->records++;
    if (too_long)
        return reject(in, line, "", "MALFORMED", "line longer than 4096 bytes", err);
    int parsed = usage_csv_parse(text, len, &rec, why, sizeof why);
    if (rec.record_id[0] != '\0') {
        int fresh = remember(in, rec.record_id, err);
        if (fresh < 0)
            return fresh;
        if (!fresh)
            return reject(in, line, rec.record_id, "DUPLICATE", NULL, err);
    }
    if (parsed != BSS_OK)
        return reject(in, line, rec.record_id, "MALFORMED", why, err);
    line_state *l = NULL;
    int rc = find_line(in, rec.svc_cont_no, &l, err);
    if (rc != BSS_OK)
        return rc;
    if (!l->exists)
        return reject(in, line, rec.record_id, "UNKNOWN_LINE", NULL, err);
    if (strcmp(l->apn_cd, rec.apn_cd) != 0)
        return reject(in, line, rec.record_id, "APN_MISMATCH", rec.apn_cd, err);
    if (!active_at(l, rec.usage_ms))
        return reject(in, line, rec.record_id, "LINE_NOT_ACTIVE", NULL, err);
    bss_period p;
    if (period_of(in, rec.usage_ms, &p) != BSS_OK)
        return reject(in, line, rec.record_id, "MALFORMED", "usageStart out of range", err);
    if (period_closed(in, p))
        return reject(in, line, rec.record_id, "PERIOD_CLOSED", NULL, err);
    rc = add_usage(l, p, rec.bytes);
    if (rc == BSS_ERR_INVALID)
        return reject(in, line, rec.record_id, "MALFORMED",
                      "bytes would overflow the line's 64-bit total", err);
    if (rc != BSS_OK)
        return rc;
    in->report->rated++;
    return BSS_OK;
}

/* Writes each touched line's totals and its UsageRated event. */
static int flush_totals(ingest *in, char *err)
{
    sqlite3_stmt *up = NULL;
    int rc = prepare(in,
                     "INSERT INTO usage_period(svc_cont_no, period, bytes, records, updated_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(svc_cont_no, period) DO UPDATE"
                     " SET bytes = bytes + excluded.bytes, records = records + excluded.records,"
                     " updated_ms = excluded.updated_ms",
                     &up, err);
    int64_t now = bss_now_ms();
    for (size_t i = 0; rc == BSS_OK && i < in->lines.cap; i++) {
        line_state *l = in->lines.slots[i];
        if (l == NULL || l->ntotals == 0)
            continue;
        cJSON *data = cJSON_CreateObject();
        cJSON *periods = cJSON_AddArrayToObject(data, "periods");
        cJSON_AddStringToObject(data, "fileName", in->report->file_name);
        cJSON_AddNumberToObject(data, "fileId", (double)in->report->file_id);
        for (size_t k = 0; rc == BSS_OK && k < l->ntotals; k++) {
            char period[BSS_PERIOD_LEN + 1], bytes[24];
            bss_period_format(l->totals[k].period, period, sizeof period);
            snprintf(bytes, sizeof bytes, "%lld", (long long)l->totals[k].bytes);
            sqlite3_bind_text(up, 1, l->svc_cont_no, -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 2, period, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(up, 3, l->totals[k].bytes);
            sqlite3_bind_int64(up, 4, l->totals[k].records);
            sqlite3_bind_int64(up, 5, now);
            if (sqlite3_step(up) != SQLITE_DONE) {
                bss_seterr(err, "usage totals: %s", sqlite3_errmsg(in->db));
                rc = BSS_ERR_IO;
            }
            sqlite3_reset(up);
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "period", period);
            cJSON_AddStringToObject(item, "bytes", bytes);
            cJSON_AddNumberToObject(item, "records", (double)l->totals[k].records);
            cJSON_AddItemToArray(periods, item);
        }
        if (rc == BSS_OK)
            rc = bss_emit(in->store, NULL, "UsageRated", l->svc_cont_no, data, err);
        cJSON_Delete(data);
    }
    sqlite3_finalize(up);
    return rc;
}

static int start_file(ingest *in, const char *name, const usage_origin *origin, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(in,
                     "INSERT INTO usage_file(name, source, received_ms, spool_size,"
                     " spool_mtime_ns) VALUES(?1, ?2, ?3, ?4, ?5)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, origin->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, in->report->received_ms);
    sqlite3_bind_int64(st, 4, origin->size);
    sqlite3_bind_int64(st, 5, origin->mtime_ns);
    rc = sqlite3_step(st) == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
    sqlite3_finalize(st);
    if (rc != BSS_OK) {
        bss_seterr(err, "record file: %s", sqlite3_errmsg(in->db));
        return rc;
    }
    in->report->file_id = sqlite3_last_insert_rowid(in->db);
    return BSS_OK;
}

static int finish_file(ingest *in, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(in,
                     "UPDATE usage_file SET records = ?2, rated = ?3, duplicates = ?4,"
                     " rejected = ?5 WHERE file_id = ?1",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    const usage_report *r = in->report;
    sqlite3_bind_int64(st, 1, r->file_id);
    sqlite3_bind_int64(st, 2, r->records);
    sqlite3_bind_int64(st, 3, r->rated);
    sqlite3_bind_int64(st, 4, r->duplicates);
    sqlite3_bind_int64(st, 5, r->rejected);
    rc = sqlite3_step(st) == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
    sqlite3_finalize(st);
    if (rc != BSS_OK)
        bss_seterr(err, "finish file: %s", sqlite3_errmsg(in->db));
    return rc;
}

static int run_file(ingest *in, usage_lines *reader, const char *name,
                    const usage_origin *origin, char *err)
{
    int rc = load_closed(in, err);
    if (rc == BSS_OK)
        rc = start_file(in, name, origin, err);
    if (rc == BSS_OK)
        rc = prepare(in, "INSERT INTO usage_seen(record_id, file_id) VALUES(?1, ?2)"
                         " ON CONFLICT(record_id) DO NOTHING",
                     &in->seen, err);
    if (rc == BSS_OK)
        rc = prepare(in, "INSERT INTO usage_rejection(file_id, line, record_id, reason, detail)"
                         " VALUES(?1, ?2, ?3, ?4, ?5)",
                     &in->reject, err);
    if (rc == BSS_OK)
        rc = prepare(in, "SELECT apn_cd FROM rater_info WHERE svc_cont_no = ?1", &in->info, err);
    if (rc == BSS_OK)
        rc = prepare(in, "SELECT effective_ms, status FROM line_status_history"
                         " WHERE svc_cont_no = ?1 ORDER BY effective_ms, id",
                     &in->hist, err);
    const char *text;
    size_t len;
    int too_long, got;
    while (rc == BSS_OK && (got = usage_lines_next(reader, &text, &len, &too_long)) == 1)
        rc = rate_record(in, text, len, too_long, reader->line_no, err);
    if (rc == BSS_OK && got < 0) {
        bss_seterr(err, "reading the file failed");
        rc = BSS_ERR_IO;
    }
    if (rc == BSS_OK)
        rc = flush_totals(in, err);
    if (rc == BSS_OK)
        rc = finish_file(in, err);
    sqlite3_finalize(in->seen);
    sqlite3_finalize(in->reject);
    sqlite3_finalize(in->info);
    sqlite3_finalize(in->hist);
    return rc;
}

int usage_ingest(bss_store *store, const char *file_name, const usage_origin *origin,
                 usage_read_fn read, void *ctx, usage_report *report, char *err)
{
    memset(report, 0, sizeof *report);
    snprintf(report->file_name, sizeof report->file_name, "%s", file_name);
    report->received_ms = bss_now_ms();
    usage_lines reader;
    if (usage_lines_init(&reader, read, ctx) != BSS_OK) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    const char *text;
    size_t len;
    int too_long;
    int got = usage_lines_next(&reader, &text, &len, &too_long);
    int rc = BSS_OK;
    if (got < 0) {
        bss_seterr(err, "reading the file failed");
        rc = BSS_ERR_IO;
    } else if (got == 1 && (too_long || reader.line_no != 1 || !usage_csv_is_header(text, len))) {
        bss_seterr(err, "the first line must be the header recordId,svcContNo,apnCd,usageStart,bytes");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = bss_store_begin(store, err);
    if (rc == BSS_OK) {
        ingest in = {.store = store, .db = bss_store_db(store), .report = report};
        rc = run_file(&in, &reader, file_name, origin, err);
        table_free(&in.lines);
        free(in.closed);
        if (rc == BSS_OK)
            rc = bss_store_commit(store, err);
        else
            bss_store_rollback(store);
    }
    usage_lines_free(&reader);
    return rc;
}

/* ---- reports and totals ------------------------------------------------ */

static void add_time(cJSON *obj, const char *name, int64_t ms)
{
    char text[BSS_TIME_LEN + 8];
    if (bss_time_format(ms, text, sizeof text) == BSS_OK)
        cJSON_AddStringToObject(obj, name, text);
}

static cJSON *rejection_json(long long line, const char *record_id, const char *reason,
                             const char *detail)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "line", (double)line);
    cJSON_AddStringToObject(x, "recordId", record_id);
    cJSON_AddStringToObject(x, "reason", reason);
    if (detail != NULL && detail[0] != '\0')
        cJSON_AddStringToObject(x, "detail", detail);
    return x;
}

static cJSON *report_head(const char *name, int64_t file_id, int64_t received_ms,
                          long long records, long long rated, long long duplicates,
                          long long rejected)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "fileName", name);
    cJSON_AddNumberToObject(o, "fileId", (double)file_id);
    add_time(o, "receivedAt", received_ms);
    cJSON_AddNumberToObject(o, "records", (double)records);
    cJSON_AddNumberToObject(o, "rated", (double)rated);
    cJSON_AddNumberToObject(o, "duplicates", (double)duplicates);
    cJSON_AddNumberToObject(o, "rejected", (double)rejected);
    return o;
}

cJSON *usage_report_json(const usage_report *r, size_t max_rejections)
{
    cJSON *o = report_head(r->file_name, r->file_id, r->received_ms, r->records, r->rated,
                           r->duplicates, r->rejected);
    cJSON *list = cJSON_AddArrayToObject(o, "rejections");
    for (size_t i = 0; i < r->nfirst && i < max_rejections; i++)
        cJSON_AddItemToArray(list, rejection_json(r->first[i].line, r->first[i].record_id,
                                                  r->first[i].reason, r->first[i].detail));
    cJSON_AddBoolToObject(o, "rejectionsTruncated",
                          (long long)cJSON_GetArraySize(list) < r->duplicates + r->rejected);
    return o;
}

/* Builds the full stored report of file_id. */
static int load_report(sqlite3 *db, sqlite3_stmt *head, cJSON **out, char *err)
{
    int64_t file_id = sqlite3_column_int64(head, 0);
    cJSON *o = report_head((const char *)sqlite3_column_text(head, 1), file_id,
                           sqlite3_column_int64(head, 2), sqlite3_column_int64(head, 3),
                           sqlite3_column_int64(head, 4), sqlite3_column_int64(head, 5),
                           sqlite3_column_int64(head, 6));
    cJSON *list = cJSON_AddArrayToObject(o, "rejections");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT line, record_id, reason, detail FROM usage_rejection"
                           " WHERE file_id = ?1 ORDER BY line",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        cJSON_Delete(o);
        return BSS_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, file_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(list, rejection_json(sqlite3_column_int64(st, 0),
                                                  (const char *)sqlite3_column_text(st, 1),
                                                  (const char *)sqlite3_column_text(st, 2),
                                                  (const char *)sqlite3_column_text(st, 3)));
    sqlite3_finalize(st);
    cJSON_AddBoolToObject(o, "rejectionsTruncated", 0);
    *out = o;
    return BSS_OK;
}

static int find_report(sqlite3 *db, const char *sql, const char *name, int64_t size,
                       int64_t mtime_ns, cJSON **out, char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 3) {
        sqlite3_bind_int64(st, 2, size);
        sqlite3_bind_int64(st, 3, mtime_ns);
    }
    int rc = sqlite3_step(st) == SQLITE_ROW ? load_report(db, st, out, err) : BSS_ERR_NOTFOUND;
    sqlite3_finalize(st);
    return rc;
}

#define REPORT_HEAD_COLUMNS "file_id, name, received_ms, records, rated, duplicates, rejected"

int usage_report_load(sqlite3 *db, const char *name, cJSON **out, char *err)
{
    return find_report(db,
                       "SELECT " REPORT_HEAD_COLUMNS " FROM usage_file WHERE name = ?1"
                       " ORDER BY file_id DESC LIMIT 1",
                       name, 0, 0, out, err);
}

int usage_report_find_spooled(sqlite3 *db, const char *name, int64_t size, int64_t mtime_ns,
                              cJSON **out, char *err)
{
    return find_report(db,
                       "SELECT " REPORT_HEAD_COLUMNS " FROM usage_file WHERE name = ?1"
                       " AND source = 'spool' AND spool_size = ?2 AND spool_mtime_ns = ?3"
                       " ORDER BY file_id DESC LIMIT 1",
                       name, size, mtime_ns, out, err);
}

static cJSON *period_json(const char *svc, const char *period, int64_t bytes, int64_t records,
                          int closed)
{
    cJSON *o = cJSON_CreateObject();
    if (svc != NULL)
        cJSON_AddStringToObject(o, "svcContNo", svc);
    cJSON_AddStringToObject(o, "period", period);
    usage_add_count(o, "bytes", bytes);
    cJSON_AddNumberToObject(o, "records", (double)records);
    cJSON_AddBoolToObject(o, "closed", closed);
    return o;
}

int usage_periods_json(sqlite3 *db, const char *svc_cont_no, cJSON **out, char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT u.period, u.bytes, u.records, c.period IS NOT NULL"
                           " FROM usage_period u LEFT JOIN au_close c ON c.period = u.period"
                           " WHERE u.svc_cont_no = ?1 ORDER BY u.period DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    cJSON *list = cJSON_CreateArray();
    while (sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(list, period_json(NULL, (const char *)sqlite3_column_text(st, 0),
                                               sqlite3_column_int64(st, 1),
                                               sqlite3_column_int64(st, 2),
                                               sqlite3_column_int(st, 3)));
    sqlite3_finalize(st);
    *out = list;
    return BSS_OK;
}

int usage_period_json(sqlite3 *db, const char *svc_cont_no, const char *period, cJSON **out,
                      char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT COALESCE((SELECT bytes FROM usage_period WHERE svc_cont_no = ?1"
                           " AND period = ?2), 0), COALESCE((SELECT records FROM usage_period"
                           " WHERE svc_cont_no = ?1 AND period = ?2), 0),"
                           " EXISTS(SELECT 1 FROM au_close WHERE period = ?2)",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    int rc = BSS_ERR_IO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = period_json(svc_cont_no, period, sqlite3_column_int64(st, 0),
                           sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2));
        rc = BSS_OK;
    } else {
        bss_seterr(err, "read usage: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}
