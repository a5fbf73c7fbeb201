/*
 * usage.c - see usage.h.
 *
 * A file is rated by two threads, so reading and parsing overlap with the
 * SQLite writes (the machine this targets has two cores):
 *
 *   the parse thread reads the file in batches of BATCH_RECORDS records,
 *     parses each record, finds its line in an in-memory table (loaded once
 *     per line per file through a read snapshot, which sees exactly what
 *     the write transaction started from: the writer holds the store's
 *     write lock, so nothing commits in between) and decides every bucket
 *     that does not depend on the store's memory of recordIds; then it
 *     sorts the batch's recordIds.
 *   the calling thread holds the file's write transaction: it hands the
 *     batch's distinct recordIds, in order, to usage_seen (one block row
 *     per hundred or so ids, instead of one B-tree insert per record),
 *     marks the duplicates, and walks the batch in file order to file
 *     rejections and add rated usage to the line's totals in memory.
 *
 * Two batches alternate between the threads. At the end the totals are
 * written once per line and period, and one UsageRated per line, in
 * svcContNo order (so the B-tree pages they touch are visited in order),
 * many rows per statement: the totals TOTAL_ROWS to an upsert, the events
 * through bss_store_append_many. The COMMIT leaves the WAL checkpoint to
 * the store's next commit (bss_store_commit_checkpoint_later), so the
 * report does not wait for the file's pages to be copied a second time.
 */
#include "usage.h"

#include "bss_error.h"
#include "sqlutil.h"
#include "isotime.h"
#include "jsontext.h"
#include "period.h"
#include "usage_seen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE_SCHEMA =
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
    "  total_bytes INTEGER NOT NULL DEFAULT 0,"
    "  orders_closed INTEGER NOT NULL DEFAULT 0);";

int usage_schema(sqlite3 *db, char *err)
{
    const char *const parts[] = {USAGE_SCHEMA};
    int rc = bss_sql_exec_all(db, parts, 1, "usage schema", err);
    /* A store from before the OrdersClosed barrier: its closes were
     * started without one and must not wait for it. */
    if (rc == BSS_OK)
        rc = bss_sql_add_column(db, "au_close", "orders_closed", "INTEGER NOT NULL DEFAULT 1",
                                err);
    return rc == BSS_OK ? usage_seen_schema(db, err) : rc;
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

#define HISTORY_INLINE 4

/* A line as the file sees it. The parse thread creates it and fills what
 * comes from the store; only the writer touches the totals. */
typedef struct line_state {
    char svc_cont_no[USAGE_SVC_CONT_NO_MAX + 1];
    int exists;
    char apn_cd[USAGE_APN_MAX + 1];
    status_change *history; /* inline_history when it fits there */
    size_t nhistory;
    period_total *totals;
    size_t ntotals, cap_totals;
    /* Every record of a file looks up its line, and a file's lines are far
     * more than the CPU caches hold: each separate allocation a record
     * touches is a miss to memory, so a short history lives in the line. */
    status_change inline_history[HISTORY_INLINE];
} line_state;

/* A slot keeps the line's hash beside the pointer, so a probe reads one
 * cache line and rarely touches a line_state that is not the one. */
typedef struct line_slot {
    uint64_t hash;
    line_state *line;
} line_slot;

typedef struct line_table {
    line_slot *slots;
    size_t cap, count;
} line_table;

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    /* The table uses the low bits, which FNV's multiply leaves poorly mixed
     * for keys that differ in one digit: fold the high bits in. */
    return h ^ (h >> 29) ^ (h >> 47);
}

static int table_grow(line_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 4096;
    line_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return BSS_ERR_NOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].line == NULL)
            continue;
        size_t j = t->slots[i].hash & (cap - 1);
        while (slots[j].line != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return BSS_OK;
}

static void line_free(line_state *l)
{
    if (l->history != l->inline_history)
        free(l->history);
    free(l->totals);
    free(l);
}

static void table_free(line_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].line != NULL)
            line_free(t->slots[i].line);
    free(t->slots);
}

/* Loads a line's APN and status history from the store, with one query:
 * the line's rater info joined with its history (one row with a NULL
 * status when it has none, no row when the line is unknown). */
static int load_line(sqlite3 *db, sqlite3_stmt *st, line_state *l, char *err)
{
    size_t cap = 0;
    int rc;
    sqlite3_bind_text(st, 1, l->svc_cont_no, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!l->exists) {
            l->exists = 1;
            snprintf(l->apn_cd, sizeof l->apn_cd, "%s", (const char *)sqlite3_column_text(st, 0));
        }
        if (sqlite3_column_type(st, 2) == SQLITE_NULL)
            continue;
        if (l->nhistory == cap) {
            cap = cap ? cap * 2 : 4;
            status_change *h = realloc(l->history, cap * sizeof *h);
            if (h == NULL) {
                sqlite3_reset(st);
                bss_seterr(err, "out of memory");
                return BSS_ERR_NOMEM;
            }
            l->history = h;
        }
        l->history[l->nhistory].at_ms = sqlite3_column_int64(st, 1);
        l->history[l->nhistory].active =
            strcmp((const char *)sqlite3_column_text(st, 2), "ACTIVE") == 0;
        l->nhistory++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "read rater info: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    if (l->nhistory <= HISTORY_INLINE) {
        if (l->nhistory > 0)
            memcpy(l->inline_history, l->history, l->nhistory * sizeof *l->history);
        free(l->history);
        l->history = l->inline_history;
    }
    return BSS_OK;
}

static int active_at(const line_state *l, int64_t ms)
{
    int active = 0;
    for (size_t i = 0; i < l->nhistory && l->history[i].at_ms <= ms; i++)
        active = l->history[i].active;
    return active;
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

/* ---- batches: what the parse thread hands the writer ------------------- */

#define BATCH_RECORDS 32768
#define NO_TEXT UINT32_MAX

/* One record of a batch. */
typedef struct parsed_record {
    long long line;
    int64_t bytes;
    line_state *line_state; /* the line, when the record is to be rated */
    const char *reason;     /* the bucket decided by parsing; NULL: rate it */
    uint32_t id_at;         /* recordId in the batch's text; NO_TEXT: none valid */
    uint32_t detail_at;     /* the rejection's detail in the text, or NO_TEXT */
    int duplicate;          /* set by the writer */
    bss_period period;
} parsed_record;

/* A recordId of the batch, for sorting. */
typedef struct id_ref {
    const char *id;
    uint32_t index; /* the record's index in the batch */
    unsigned char len;
} id_ref;

typedef struct batch {
    parsed_record *records;
    size_t count;
    char *text; /* recordIds and details, each NUL-terminated */
    size_t text_len, text_cap;
    id_ref *ids; /* the records that have a valid recordId, by (id, index) */
    size_t nids;
    int last;   /* the input ended with this batch */
    int status; /* BSS_OK, or the parse thread's error (err says what) */
    char err[BSS_ERRLEN];
    int full; /* handed to the writer and not given back yet */
} batch;

static void batch_free(batch *b)
{
    free(b->records);
    free(b->text);
    free(b->ids);
}

static int batch_alloc(batch *b)
{
    memset(b, 0, sizeof *b);
    b->records = malloc(BATCH_RECORDS * sizeof *b->records);
    b->ids = malloc(BATCH_RECORDS * sizeof *b->ids);
    b->text_cap = BATCH_RECORDS * 16;
    b->text = malloc(b->text_cap);
    return b->records && b->ids && b->text ? BSS_OK : BSS_ERR_NOMEM;
}

/* Copies s[0..n) and a NUL into the batch's text; its offset, or NO_TEXT
 * when out of memory. */
static uint32_t batch_text(batch *b, const char *s, size_t n)
{
    if (b->text_len + n + 1 > b->text_cap) {
        size_t cap = b->text_cap * 2;
        char *t = realloc(b->text, cap);
        if (t == NULL)
            return NO_TEXT;
        b->text = t;
        b->text_cap = cap;
    }
    uint32_t at = (uint32_t)b->text_len;
    memcpy(b->text + at, s, n);
    b->text[at + n] = '\0';
    b->text_len += n + 1;
    return at;
}

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = usage_seen_cmp(x->id, x->len, y->id, y->len);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* Sorts the batch's recordIds by (id, index). Files are mostly in id order
 * with a few stragglers (e.g. re-sent records), so the ids that keep the
 * order are left in place, only the others are sorted, and the two runs
 * merged: O(n) for an ordered file instead of a full sort. */
static int sort_ids(batch *b)
{
    size_t n = b->nids, kept = 0, moved = 0;
    id_ref *side = malloc((n ? n : 1) * sizeof *side);
    if (side == NULL)
        return BSS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (kept == 0 || id_ref_cmp(&b->ids[kept - 1], &b->ids[i]) < 0)
            b->ids[kept++] = b->ids[i];
        else
            side[moved++] = b->ids[i];
    }
    if (moved > 0) {
        qsort(side, moved, sizeof *side, id_ref_cmp);
        /* Merge from the back so the kept run can stay where it is. */
        size_t i = kept, j = moved, out = n;
        while (j > 0) {
            if (i > 0 && id_ref_cmp(&b->ids[i - 1], &side[j - 1]) > 0)
                b->ids[--out] = b->ids[--i];
            else
                b->ids[--out] = side[--j];
        }
    }
    free(side);
    return BSS_OK;
}

/* ---- the parse thread ---------------------------------------------------- */

/* A line of the file read and split into fields but not yet decided:
 * the parse thread runs AHEAD records ahead of its decisions, so the hash
 * slot (and then the line_state) a record needs is fetched from memory
 * while the records before it are decided. With a hundred thousand lines in
 * a file, almost every lookup is a cache miss otherwise: the slot's miss
 * alone was two thirds of the samples in the parse thread's own code. */
#define AHEAD 16

typedef struct pending {
    usage_record r;
    int parsed; /* usage_csv_parse's result */
    int too_long;
    long long line_no;
    uint64_t hash; /* of r.svc_cont_no, when parsed */
    char why[96];
} pending;

typedef struct parser {
    usage_lines *reader;
    bss_store *store;
    sqlite3 *db; /* its read snapshot */
    sqlite3_stmt *line_query;
    line_table *lines;
    const bss_period *closed;
    size_t nclosed;
    /* The last period looked up and its bounds: records of a file mostly
     * share a month, and localtime_r is slow (glibc re-parses the zone's
     * rule string on every call for recent dates). */
    bss_period cached;
    int64_t cached_start, cached_end;
    /* read-ahead: ring[(head + i) % AHEAD] for i < count, in file order */
    pending ring[AHEAD];
    size_t head, count;
    int eof;
} parser;

typedef struct pipeline {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    batch batches[2];
    int cancel; /* the writer gave up: stop parsing */
    parser parse;
} pipeline;

static int period_of(parser *p, int64_t ms, bss_period *out)
{
    if (ms >= p->cached_start && ms < p->cached_end) {
        *out = p->cached;
        return BSS_OK;
    }
    if (bss_period_of(ms, out) != BSS_OK ||
        bss_period_bounds(*out, &p->cached_start, &p->cached_end) != BSS_OK) {
        p->cached_start = p->cached_end = 0;
        return BSS_ERR_INVALID;
    }
    p->cached = *out;
    return BSS_OK;
}

static int period_closed(const parser *p, bss_period period)
{
    for (size_t i = 0; i < p->nclosed; i++)
        if (bss_period_cmp(p->closed[i], period) == 0)
            return 1;
    return 0;
}

static int find_line(parser *p, const char *svc, uint64_t hash, line_state **out, char *err)
{
    line_table *t = p->lines;
    if ((t->count + 1) * 2 > t->cap && table_grow(t) != BSS_OK)
        return BSS_ERR_NOMEM;
    size_t j = hash & (t->cap - 1);
    while (t->slots[j].line != NULL) {
        if (t->slots[j].hash == hash && strcmp(t->slots[j].line->svc_cont_no, svc) == 0) {
            *out = t->slots[j].line;
            return BSS_OK;
        }
        j = (j + 1) & (t->cap - 1);
    }
    line_state *l = calloc(1, sizeof *l);
    if (l == NULL)
        return BSS_ERR_NOMEM;
    snprintf(l->svc_cont_no, sizeof l->svc_cont_no, "%s", svc);
    int rc = load_line(p->db, p->line_query, l, err);
    if (rc != BSS_OK) {
        line_free(l);
        return rc;
    }
    t->slots[j] = (line_slot){hash, l};
    t->count++;
    *out = l;
    return BSS_OK;
}

/* Splits one line of the file into the next pending record and starts
 * fetching its line's hash slot. */
static void read_ahead(parser *p, pending *x, const char *text, size_t len, int too_long)
{
    x->too_long = too_long;
    x->line_no = p->reader->line_no;
    if (too_long) {
        x->r.record_id[0] = '\0';
        x->parsed = BSS_ERR_INVALID;
        return;
    }
    x->parsed = usage_csv_parse(text, len, &x->r, x->why, sizeof x->why);
    if (x->parsed == BSS_OK) {
        x->hash = hash_text(x->r.svc_cont_no);
        const line_table *t = p->lines;
        if (t->cap > 0)
            __builtin_prefetch(&t->slots[x->hash & (t->cap - 1)]);
    }
}

/* The slot of a pending record is in the cache by now: starts fetching the
 * line it points to (when it is the record's; a collision only wastes the
 * prefetch). */
static void prefetch_line(const parser *p, const pending *x)
{
    const line_table *t = p->lines;
    if (x->parsed != BSS_OK || t->cap == 0)
        return;
    const line_slot *slot = &t->slots[x->hash & (t->cap - 1)];
    if (slot->line != NULL && slot->hash == x->hash) {
        __builtin_prefetch(slot->line);
        __builtin_prefetch(slot->line->inline_history);
    }
}

/* Decides a pending record into the batch's next record. */
static int parse_record(parser *p, batch *b, pending *x, char *err)
{
    parsed_record *rec = &b->records[b->count++];
    memset(rec, 0, sizeof *rec);
    rec->line = x->line_no;
    rec->id_at = rec->detail_at = NO_TEXT;
    rec->reason = "MALFORMED";
    char *why = x->why;
    if (x->too_long) {
        snprintf(why, sizeof x->why, "line longer than %d bytes", USAGE_CSV_MAX_LINE);
        rec->detail_at = batch_text(b, why, strlen(why));
        return rec->detail_at == NO_TEXT ? BSS_ERR_NOMEM : BSS_OK;
    }
    const usage_record *r = &x->r;
    int parsed = x->parsed;
    if (r->record_id[0] != '\0') {
        size_t n = strlen(r->record_id);
        rec->id_at = batch_text(b, r->record_id, n);
        if (rec->id_at == NO_TEXT)
            return BSS_ERR_NOMEM;
        b->ids[b->nids++] = (id_ref){NULL, (uint32_t)(b->count - 1), (unsigned char)n};
    }
    const char *detail = NULL;
    line_state *l = NULL;
    if (parsed != BSS_OK) {
        detail = why;
    } else {
        int rc = find_line(p, r->svc_cont_no, x->hash, &l, err);
        if (rc != BSS_OK)
            return rc;
        if (!l->exists) {
            rec->reason = "UNKNOWN_LINE";
        } else if (strcmp(l->apn_cd, r->apn_cd) != 0) {
            rec->reason = "APN_MISMATCH";
            detail = r->apn_cd;
        } else if (!active_at(l, r->usage_ms)) {
            rec->reason = "LINE_NOT_ACTIVE";
        } else if (period_of(p, r->usage_ms, &rec->period) != BSS_OK) {
            detail = "usageStart out of range";
        } else if (period_closed(p, rec->period)) {
            rec->reason = "PERIOD_CLOSED";
        } else {
            rec->reason = NULL;
            rec->line_state = l;
            rec->bytes = r->bytes;
        }
    }
    if (detail != NULL) {
        rec->detail_at = batch_text(b, detail, strlen(detail));
        if (rec->detail_at == NO_TEXT)
            return BSS_ERR_NOMEM;
    }
    return BSS_OK;
}

/* Fills b with the next records of the file. */
static void fill_batch(parser *p, batch *b)
{
    b->count = b->nids = b->text_len = 0;
    b->last = 0;
    b->status = BSS_OK;
    b->err[0] = '\0';
    while (b->count < BATCH_RECORDS) {
        if (!p->eof && p->count < AHEAD) {
            const char *text;
            size_t len;
            int too_long;
            int got = usage_lines_next(p->reader, &text, &len, &too_long);
            if (got < 0) {
                bss_seterr(b->err, "reading the file failed");
                b->status = BSS_ERR_IO;
                return;
            }
            if (got == 0) {
                p->eof = 1;
            } else {
                read_ahead(p, &p->ring[(p->head + p->count) % AHEAD], text, len, too_long);
                p->count++;
            }
            continue;
        }
        if (p->count == 0) {
            b->last = 1;
            break;
        }
        if (p->count > AHEAD / 2)
            prefetch_line(p, &p->ring[(p->head + AHEAD / 2) % AHEAD]);
        pending *x = &p->ring[p->head];
        p->head = (p->head + 1) % AHEAD;
        p->count--;
        b->status = parse_record(p, b, x, b->err);
        if (b->status != BSS_OK) {
            if (b->status == BSS_ERR_NOMEM)
                bss_seterr(b->err, "out of memory");
            return;
        }
    }
    for (size_t i = 0; i < b->nids; i++)
        b->ids[i].id = b->text + b->records[b->ids[i].index].id_at;
    if (sort_ids(b) != BSS_OK) {
        bss_seterr(b->err, "out of memory");
        b->status = BSS_ERR_NOMEM;
    }
}

static int parser_open(parser *p, char *err)
{
    int rc = bss_store_snapshot_begin(p->store, &p->db, err);
    if (rc != BSS_OK)
        return rc;
    return bss_store_prepare_cached(p->db,
                                    "SELECT r.apn_cd, h.effective_ms, h.status FROM rater_info r"
                                    " LEFT JOIN line_status_history h"
                                    " ON h.svc_cont_no = r.svc_cont_no"
                                    " WHERE r.svc_cont_no = ?1 ORDER BY h.effective_ms, h.id",
                                    &p->line_query, err);
}

static void parser_close(parser *p)
{
    sqlite3_reset(p->line_query); /* the pool's connection keeps it for the next file */
    p->line_query = NULL;
    if (p->db != NULL)
        bss_store_snapshot_end(p->store, p->db);
    p->db = NULL;
}

static void *parse_thread(void *arg)
{
    pipeline *pl = arg;
    char err[BSS_ERRLEN] = "";
    int opened = parser_open(&pl->parse, err);
    for (int k = 0;; k ^= 1) {
        batch *b = &pl->batches[k];
        pthread_mutex_lock(&pl->lock);
        while (b->full && !pl->cancel)
            pthread_cond_wait(&pl->changed, &pl->lock);
        int cancel = pl->cancel;
        pthread_mutex_unlock(&pl->lock);
        if (cancel)
            break;
        if (opened == BSS_OK) {
            fill_batch(&pl->parse, b);
        } else {
            b->status = opened;
            snprintf(b->err, sizeof b->err, "%s", err);
        }
        int done = b->last || b->status != BSS_OK;
        pthread_mutex_lock(&pl->lock);
        b->full = 1;
        pthread_cond_broadcast(&pl->changed);
        pthread_mutex_unlock(&pl->lock);
        if (done)
            break;
    }
    parser_close(&pl->parse);
    return NULL;
}

/* ---- the writer ------------------------------------------------------------ */

typedef struct ingest {
    bss_store *store;
    sqlite3 *db;
    sqlite3_stmt *reject;
    usage_seen *seen;
    usage_report *report;
    /* scratch for one batch's distinct recordIds */
    const char **ids;
    unsigned char *lens, *fresh;
    uint32_t *first_of; /* the record each distinct id first appears in */
} ingest;

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

/* Marks the batch's duplicates: a recordId the store knew, or one seen
 * earlier in the batch; remembers the others. */
static int mark_duplicates(ingest *in, batch *b, char *err)
{
    size_t distinct = 0;
    for (size_t i = 0; i < b->nids; i++) {
        const id_ref *x = &b->ids[i];
        if (distinct > 0 &&
            usage_seen_cmp(in->ids[distinct - 1], in->lens[distinct - 1], x->id, x->len) == 0) {
            b->records[x->index].duplicate = 1; /* again in this batch */
            continue;
        }
        in->ids[distinct] = x->id;
        in->lens[distinct] = x->len;
        in->first_of[distinct++] = x->index;
    }
    int rc = usage_seen_add_sorted(in->seen, in->ids, in->lens, distinct, in->fresh, err);
    for (size_t i = 0; rc == BSS_OK && i < distinct; i++)
        if (!in->fresh[i])
            b->records[in->first_of[i]].duplicate = 1;
    return rc;
}

static int rate_batch(ingest *in, batch *b, char *err)
{
    int rc = mark_duplicates(in, b, err);
    usage_report *r = in->report;
    for (size_t i = 0; rc == BSS_OK && i < b->count; i++) {
        const parsed_record *rec = &b->records[i];
        const char *id = rec->id_at == NO_TEXT ? "" : b->text + rec->id_at;
        const char *detail = rec->detail_at == NO_TEXT ? NULL : b->text + rec->detail_at;
        r->records++;
        if (rec->duplicate) {
            rc = reject(in, rec->line, id, "DUPLICATE", NULL, err);
        } else if (rec->reason != NULL) {
            rc = reject(in, rec->line, id, rec->reason, detail, err);
        } else {
            rc = add_usage(rec->line_state, rec->period, rec->bytes);
            if (rc == BSS_ERR_INVALID)
                rc = reject(in, rec->line, id, "MALFORMED",
                            "bytes would overflow the line's 64-bit total", err);
            else if (rc == BSS_OK)
                r->rated++;
            else
                bss_seterr(err, "out of memory");
        }
    }
    return rc;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp((*(line_state *const *)a)->svc_cont_no, (*(line_state *const *)b)->svc_cont_no);
}

/* UsageRated's data, built as text: the file's name is [A-Za-z0-9._-]
 * (usage_file_name_valid), so it needs no escaping; the rest are numbers. */
static int usage_rated_data(bss_jtext *t, const line_state *l, const usage_report *r)
{
    char part[160];
    bss_jtext_reset(t);
    bss_jtext_raw(t, "{\"periods\":[", 12);
    for (size_t k = 0; k < l->ntotals; k++) {
        char period[BSS_PERIOD_LEN + 1];
        bss_period_format(l->totals[k].period, period, sizeof period);
        int n = snprintf(part, sizeof part, "%s{\"period\":\"%s\",\"bytes\":\"%lld\",\"records\":%lld}",
                         k ? "," : "", period, (long long)l->totals[k].bytes,
                         (long long)l->totals[k].records);
        bss_jtext_raw(t, part, (size_t)n);
    }
    bss_jtext_raw(t, "],\"fileName\":\"", 14);
    bss_jtext_str(t, r->file_name);
    int n = snprintf(part, sizeof part, "\",\"fileId\":%lld}", (long long)r->file_id);
    bss_jtext_raw(t, part, (size_t)n);
    return t->failed ? BSS_ERR_NOMEM : BSS_OK;
}

/* ---- totals and events, once per line --------------------------------- */

/* The UsageRated events are built (data text, id, JSON checks) on a thread
 * of their own, a chunk of lines ahead of the writer, which only appends
 * them: bss_event_new is a fifth of the writer's time at the end of a file
 * otherwise, while the parse thread has nothing left to do. */
#define EVENT_CHUNK 512
#define EVENT_CHUNKS 4

typedef struct event_chunk {
    bss_event *events[EVENT_CHUNK];
    size_t count;
    int ready; /* built and not yet taken by the writer */
    int status;
    char err[BSS_ERRLEN];
} event_chunk;

typedef struct event_builder {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    line_state *const *lines;
    size_t nlines;
    const usage_report *report;
    event_chunk chunks[EVENT_CHUNKS];
    int cancel; /* the writer gave up */
} event_builder;

static void free_chunk(event_chunk *c)
{
    for (size_t i = 0; i < c->count; i++)
        bss_event_free(c->events[i]);
    c->count = 0;
}

static int build_chunk(event_builder *b, event_chunk *c, size_t from)
{
    bss_jtext data = {0};
    size_t to = from + EVENT_CHUNK < b->nlines ? from + EVENT_CHUNK : b->nlines;
    int rc = BSS_OK;
    free_chunk(c); /* the events the writer appended from it last time */
    for (size_t i = from; rc == BSS_OK && i < to; i++) {
        if (usage_rated_data(&data, b->lines[i], b->report) != BSS_OK) {
            bss_seterr(c->err, "out of memory");
            rc = BSS_ERR_NOMEM;
            break;
        }
        bss_event *ev = bss_event_new("UsageRated", b->lines[i]->svc_cont_no, data.s, c->err);
        if (ev == NULL)
            rc = BSS_ERR_INVALID;
        else
            c->events[c->count++] = ev;
    }
    free(data.s);
    return rc;
}

static void *build_thread(void *arg)
{
    event_builder *b = arg;
    for (size_t k = 0; k * EVENT_CHUNK < b->nlines; k++) {
        event_chunk *c = &b->chunks[k % EVENT_CHUNKS];
        pthread_mutex_lock(&b->lock);
        while (c->ready && !b->cancel)
            pthread_cond_wait(&b->changed, &b->lock);
        int cancel = b->cancel;
        pthread_mutex_unlock(&b->lock);
        if (cancel)
            break;
        c->status = build_chunk(b, c, k * EVENT_CHUNK);
        pthread_mutex_lock(&b->lock);
        c->ready = 1;
        pthread_cond_broadcast(&b->changed);
        pthread_mutex_unlock(&b->lock);
        if (c->status != BSS_OK)
            break;
    }
    return NULL;
}


/* The totals are upserted TOTAL_ROWS rows per statement: a statement per
 * (line, period) cost more in its fixed part (cursors opened and closed,
 * the VDBE program started) than in the B-tree work. */
#define TOTAL_ROWS 64
#define TOTAL_UPSERT(values)                                                     \
    "INSERT INTO usage_period(svc_cont_no, period, bytes, records, updated_ms)" \
    " VALUES" values " ON CONFLICT(svc_cont_no, period) DO UPDATE"              \
    " SET bytes = bytes + excluded.bytes, records = records + excluded.records,"  \
    " updated_ms = excluded.updated_ms"

typedef struct totals_writer {
    sqlite3 *db;
    sqlite3_stmt *one, *many;
    int64_t now;
    size_t count; /* rows waiting for the next multi-row upsert */
    const line_state *line[TOTAL_ROWS];
    size_t total[TOTAL_ROWS]; /* index in line->totals */
    char period[TOTAL_ROWS][BSS_PERIOD_LEN + 1];
} totals_writer;

static int totals_open(totals_writer *w, sqlite3 *db, char *err)
{
    memset(w, 0, sizeof *w);
    w->db = db;
    w->now = bss_now_ms();
    char values[TOTAL_ROWS * 12 + 1];
    size_t n = 0;
    for (int i = 0; i < TOTAL_ROWS; i++)
        n += (size_t)snprintf(values + n, sizeof values - n, "%s(?,?,?,?,?)", i ? "," : "");
    char sql[sizeof values + 300];
    snprintf(sql, sizeof sql, TOTAL_UPSERT("%s"), values);
    int rc = bss_store_prepare_cached(db, TOTAL_UPSERT("(?,?,?,?,?)"), &w->one, err);
    return rc == BSS_OK ? bss_store_prepare_cached(db, sql, &w->many, err) : rc;
}

static void totals_close(totals_writer *w)
{
    sqlite3_reset(w->one);
    sqlite3_reset(w->many);
}

/* Upserts rows [from, to) of the waiting ones with st, which has (to -
 * from) rows of parameters. */
static int totals_step(totals_writer *w, sqlite3_stmt *st, size_t from, size_t to, char *err)
{
    for (size_t i = from; i < to; i++) {
        const line_state *l = w->line[i];
        const period_total *t = &l->totals[w->total[i]];
        int k = (int)(i - from) * 5;
        sqlite3_bind_text(st, k + 1, l->svc_cont_no, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k + 2, w->period[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, k + 3, t->bytes);
        sqlite3_bind_int64(st, k + 4, t->records);
        sqlite3_bind_int64(st, k + 5, w->now);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "usage totals: %s", sqlite3_errmsg(w->db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

/* Writes the rows still waiting, one statement each. */
static int totals_flush(totals_writer *w, char *err)
{
    int rc = BSS_OK;
    for (size_t i = 0; rc == BSS_OK && i < w->count; i++)
        rc = totals_step(w, w->one, i, i + 1, err);
    w->count = 0;
    return rc;
}

/* Queues a line's totals, writing every TOTAL_ROWS of them. */
static int write_totals(totals_writer *w, const line_state *l, char *err)
{
    for (size_t k = 0; k < l->ntotals; k++) {
        w->line[w->count] = l;
        w->total[w->count] = k;
        bss_period_format(l->totals[k].period, w->period[w->count], sizeof w->period[0]);
        if (++w->count == TOTAL_ROWS) {
            int rc = totals_step(w, w->many, 0, TOTAL_ROWS, err);
            w->count = 0;
            if (rc != BSS_OK)
                return rc;
        }
    }
    return BSS_OK;
}

/* The writer's side: totals, then the chunk's events, chunk by chunk. */
static int write_lines(event_builder *b, totals_writer *w, bss_store *store, char *err)
{
    int rc = BSS_OK;
    for (size_t k = 0; rc == BSS_OK && k * EVENT_CHUNK < b->nlines; k++) {
        event_chunk *c = &b->chunks[k % EVENT_CHUNKS];
        pthread_mutex_lock(&b->lock);
        while (!c->ready)
            pthread_cond_wait(&b->changed, &b->lock);
        pthread_mutex_unlock(&b->lock);
        if (c->status != BSS_OK) {
            rc = c->status;
            snprintf(err, BSS_ERRLEN, "%s", c->err);
        }
        for (size_t i = 0; rc == BSS_OK && i < c->count; i++)
            rc = write_totals(w, b->lines[k * EVENT_CHUNK + i], err);
        /* One call for the chunk's events (a line each): a savepoint per
         * event was a third of the cost of appending it. */
        if (rc == BSS_OK && c->count > 0)
            rc = bss_store_append_many(store, c->events, c->count, err);
        /* The builder frees the chunk's events when it fills it again (or
         * flush_totals at the end): off the writer, the bottleneck here. */
        pthread_mutex_lock(&b->lock);
        c->ready = 0;
        if (rc != BSS_OK)
            b->cancel = 1;
        pthread_cond_broadcast(&b->changed);
        pthread_mutex_unlock(&b->lock);
    }
    return rc == BSS_OK ? totals_flush(w, err) : rc;
}

/* Writes each touched line's totals and its UsageRated event, in
 * svcContNo order. */
static int flush_totals(ingest *in, line_table *lines, char *err)
{
    size_t n = 0;
    line_state **touched = malloc((lines->count ? lines->count : 1) * sizeof *touched);
    if (touched == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    for (size_t i = 0; i < lines->cap; i++)
        if (lines->slots[i].line != NULL && lines->slots[i].line->ntotals > 0)
            touched[n++] = lines->slots[i].line;
    qsort(touched, n, sizeof *touched, line_cmp);
    totals_writer *w = malloc(sizeof *w);
    if (w == NULL) {
        free(touched);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int rc = totals_open(w, in->db, err);
    event_builder *b = calloc(1, sizeof *b); /* 17 KB: not on a worker's stack */
    if (rc == BSS_OK && b == NULL) {
        bss_seterr(err, "out of memory");
        rc = BSS_ERR_NOMEM;
    }
    pthread_t thread;
    if (rc == BSS_OK && n > 0) {
        b->lines = touched;
        b->nlines = n;
        b->report = in->report;
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->changed, NULL);
        if (pthread_create(&thread, NULL, build_thread, b) != 0) {
            bss_seterr(err, "cannot start the event builder thread");
            rc = BSS_ERR;
        } else {
            rc = write_lines(b, w, in->store, err);
            pthread_join(thread, NULL);
        }
        for (size_t k = 0; k < EVENT_CHUNKS; k++)
            free_chunk(&b->chunks[k]);
        pthread_cond_destroy(&b->changed);
        pthread_mutex_destroy(&b->lock);
    }
    free(b);
    totals_close(w);
    free(w);
    free(touched);
    return rc;
}

static int start_file(ingest *in, const char *name, const usage_origin *origin, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_store_prepare_cached(in->db,
                                      "INSERT INTO usage_file(name, source, received_ms,"
                                      " spool_size, spool_mtime_ns) VALUES(?1, ?2, ?3, ?4, ?5)",
                                      &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, origin->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, in->report->received_ms);
    sqlite3_bind_int64(st, 4, origin->size);
    sqlite3_bind_int64(st, 5, origin->mtime_ns);
    rc = sqlite3_step(st) == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
    sqlite3_reset(st);
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
    int rc = bss_store_prepare_cached(in->db,
                                      "UPDATE usage_file SET records = ?2, rated = ?3,"
                                      " duplicates = ?4, rejected = ?5 WHERE file_id = ?1",
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
    sqlite3_reset(st);
    if (rc != BSS_OK)
        bss_seterr(err, "finish file: %s", sqlite3_errmsg(in->db));
    return rc;
}

/* The periods AU close has started or finished for: they take no usage. */
static int load_closed(sqlite3 *db, bss_period **out, size_t *count, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_store_prepare_cached(db, "SELECT period FROM au_close", &st, err);
    if (rc != BSS_OK)
        return rc;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        bss_period p;
        if (bss_period_parse((const char *)sqlite3_column_text(st, 0), &p) != BSS_OK)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            bss_period *c = realloc(*out, cap * sizeof *c);
            if (c == NULL) {
                sqlite3_reset(st);
                bss_seterr(err, "out of memory");
                return BSS_ERR_NOMEM;
            }
            *out = c;
        }
        (*out)[(*count)++] = p;
    }
    sqlite3_reset(st);
    return BSS_OK;
}

/* Runs the two threads over the file's records (see the top of the file). */
static int run_pipeline(ingest *in, pipeline *pl, char *err)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, parse_thread, pl) != 0) {
        bss_seterr(err, "cannot start the parse thread");
        return BSS_ERR;
    }
    int rc = BSS_OK;
    for (int k = 0;; k ^= 1) {
        batch *b = &pl->batches[k];
        pthread_mutex_lock(&pl->lock);
        while (!b->full)
            pthread_cond_wait(&pl->changed, &pl->lock);
        pthread_mutex_unlock(&pl->lock);
        if (b->status != BSS_OK) {
            rc = b->status;
            snprintf(err, BSS_ERRLEN, "%s", b->err);
        } else {
            rc = rate_batch(in, b, err);
        }
        int last = b->last;
        pthread_mutex_lock(&pl->lock);
        b->full = 0;
        if (rc != BSS_OK)
            pl->cancel = 1;
        pthread_cond_broadcast(&pl->changed);
        pthread_mutex_unlock(&pl->lock);
        if (rc != BSS_OK || last)
            break;
    }
    pthread_join(thread, NULL);
    return rc;
}

static int run_file(ingest *in, usage_lines *reader, const char *name,
                    const usage_origin *origin, char *err)
{
    /* On the heap, as flush_totals' structures: this runs on a civetweb
     * worker, whose stack is 100 KB in Debian's build. */
    pipeline *pl = calloc(1, sizeof *pl);
    line_table lines = {0};
    bss_period *closed = NULL;
    size_t nclosed = 0;
    int rc = load_closed(in->db, &closed, &nclosed, err);
    if (rc == BSS_OK)
        rc = start_file(in, name, origin, err);
    if (rc == BSS_OK)
        rc = bss_store_prepare_cached(in->db,
                                      "INSERT INTO usage_rejection(file_id, line, record_id,"
                                      " reason, detail) VALUES(?1, ?2, ?3, ?4, ?5)",
                                      &in->reject, err);
    if (rc == BSS_OK)
        rc = usage_seen_open(in->db, &in->seen, err);
    in->ids = malloc(BATCH_RECORDS * sizeof *in->ids);
    in->lens = malloc(BATCH_RECORDS);
    in->fresh = malloc(BATCH_RECORDS);
    in->first_of = malloc(BATCH_RECORDS * sizeof *in->first_of);
    int allocated = pl != NULL && batch_alloc(&pl->batches[0]) == BSS_OK &&
                    batch_alloc(&pl->batches[1]) == BSS_OK && in->ids && in->lens &&
                    in->fresh && in->first_of;
    if (rc == BSS_OK && !allocated) {
        bss_seterr(err, "out of memory");
        rc = BSS_ERR_NOMEM;
    }
    if (rc == BSS_OK) {
        pl->parse = (parser){.reader = reader, .store = in->store, .lines = &lines,
                            .closed = closed, .nclosed = nclosed};
        pthread_mutex_init(&pl->lock, NULL);
        pthread_cond_init(&pl->changed, NULL);
        int64_t started = bss_monotonic_ms();
        rc = run_pipeline(in, pl, err);
        in->report->records_ms = bss_monotonic_ms() - started;
        pthread_cond_destroy(&pl->changed);
        pthread_mutex_destroy(&pl->lock);
    }
    if (rc == BSS_OK) {
        int64_t started = bss_monotonic_ms();
        rc = flush_totals(in, &lines, err);
        in->report->totals_ms = bss_monotonic_ms() - started;
    }
    if (rc == BSS_OK)
        rc = finish_file(in, err);
    if (pl != NULL) {
        batch_free(&pl->batches[0]);
        batch_free(&pl->batches[1]);
        free(pl);
    }
    free(in->ids);
    free(in->lens);
    free(in->fresh);
    free(in->first_of);
    usage_seen_close(in->seen);
    sqlite3_reset(in->reject);
    table_free(&lines);
    free(closed);
    return rc;
}

/* A file's transaction touches far more pages than SQLite's default cache
 * (2 MB) holds: the events' indexes, the totals, the id blocks. Pages pushed
 * out of the cache mid-transaction are written to the WAL and then written
 * again when they change once more, so the file's transaction gets a large
 * cache of its own, given back after the commit. */
#define FILE_CACHE_KIB (64 * 1024)

/* ...but only a file large enough to push pages out of the default cache
 * gets it. The pages a raised cache held are 4 KB blocks freed in the middle
 * of malloc's heap when it is lowered again, which glibc cannot give back:
 * raised for every small file, the rater's RSS grew under steady load
 * (bench/soak.py, 50-record files: +10.8 % in 6 minutes with the raise,
 * +2.6 % without). A file of unknown length is taken as large. */
#define FILE_CACHE_MIN_BYTES (4 * 1024 * 1024)

/* Sets the connection's page cache to kib KiB (a negative cache_size, as
 * SQLite counts it) or, for a non-negative previous value, restores it; the
 * previous setting, as PRAGMA cache_size reports it. */
static int set_cache_size(sqlite3 *db, int value)
{
    int previous = -2000; /* SQLite's default */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA cache_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        previous = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = %d", value);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
    return previous;
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
        int large = origin->file_bytes == 0 || origin->file_bytes >= FILE_CACHE_MIN_BYTES;
        int cache = large ? set_cache_size(in.db, -FILE_CACHE_KIB) : 0;
        rc = run_file(&in, &reader, file_name, origin, err);
        /* Given back while the transaction still holds the connection: the
         * moment it ends another thread may use it. A smaller cache only
         * drops clean pages; the dirty ones stay until the COMMIT. */
        if (large)
            set_cache_size(in.db, cache);
        int64_t committing = bss_monotonic_ms();
        /* The file's pages (tens of MB for a million records) are copied
         * into the database file by the next commit on the store, not
         * before the report: they are durable in the WAL already. */
        if (rc == BSS_OK)
            rc = bss_store_commit_checkpoint_later(store, err);
        else
            bss_store_rollback(store);
        report->commit_ms = bss_monotonic_ms() - committing;
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
