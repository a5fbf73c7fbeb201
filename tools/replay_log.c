/*
 * replay_log.c - see replay_log.h. The SQLite backend, and what every
 * backend shares.
 */
#include "replay_log.h"

#include "bss_error.h"
#include "replay_event.h"
#include "replay_kafka.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const replay_known_sources[] = {"customer", "rater", "billing", "settlement",
                                            "mypage"};
const size_t replay_known_nsources = sizeof replay_known_sources / sizeof replay_known_sources[0];

typedef struct sqlite_log {
    replay_log base; /* first, so a replay_log * is a sqlite_log * */
    sqlite3 *db;
    sqlite3_stmt *st;
    char *data_buf;
    size_t data_cap;
} sqlite_log;

int64_t replay_marks_get(const replay_marks *m, int32_t partition)
{
    for (size_t i = 0; m != NULL && i < m->n; i++)
        if (m->partition[i] == partition)
            return m->position[i];
    return 0;
}

void replay_filter_init(replay_filter *f)
{
    memset(f, 0, sizeof *f);
    f->since_ms = INT64_MIN;
    f->until_ms = INT64_MAX;
    f->after_sequence = 0;
    f->up_to_sequence = INT64_MAX;
}

int replay_store_path(const char *data_dir, const char *source, char *out, size_t outlen)
{
    char key[BSS_EVENT_SOURCE_MAX + 16];
    int n = snprintf(key, sizeof key, "BSS_%s_DB", source);
    for (int i = 0; i < n && (size_t)i < sizeof key; i++)
        key[i] = key[i] == '-' ? '_' : (char)toupper((unsigned char)key[i]);
    const char *configured = getenv(key);
    int len = (configured != NULL && configured[0] != '\0')
                  ? snprintf(out, outlen, "%s", configured)
                  : snprintf(out, outlen, "%s/%s.db", data_dir, source);
    return (len > 0 && (size_t)len < outlen) ? BSS_OK : BSS_ERR_INVALID;
}

int replay_open_readonly(const char *path, sqlite3 **db, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        bss_seterr(err, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? BSS_ERR_NOTFOUND : BSS_ERR_IO;
    }
    /* A URI so that mode=ro applies; the path's own '%', '?' and '#' must
     * not be read as URI syntax. */
    size_t n = strlen(path);
    char *uri = malloc(n * 3 + 16);
    if (uri == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    char *w = uri + sprintf(uri, "file:");
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7f)
            w += sprintf(w, "%%%02X", c);
        else
            *w++ = (char)c;
    }
    strcpy(w, "?mode=ro");
    sqlite3 *handle = NULL;
    /* One thread per connection: no need for SQLite's per-call mutex. */
    int rc = sqlite3_open_v2(uri, &handle,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    free(uri);
    if (rc != SQLITE_OK) {
        bss_seterr(err, "open %s: %s", path,
                   handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc));
        sqlite3_close(handle);
        return BSS_ERR_IO;
    }
    sqlite3_busy_timeout(handle, 5000);
    /* Reading a whole log: map it rather than copy every page through read(). */
    sqlite3_exec(handle, "PRAGMA mmap_size=1073741824", NULL, NULL, NULL);
    *db = handle;
    return BSS_OK;
}

static replay_text column_text(sqlite3_stmt *st, int col)
{
    replay_text t = {NULL, 0};
    if (sqlite3_column_type(st, col) != SQLITE_NULL) {
        t.text = (const char *)sqlite3_column_text(st, col);
        t.len = t.text ? (size_t)sqlite3_column_bytes(st, col) : 0;
    }
    return t;
}

static int sqlite_next(replay_log *base, replay_item *item, char *err)
{
    sqlite_log *log = (sqlite_log *)base;
    int step = sqlite3_step(log->st);
    if (step == SQLITE_DONE)
        return BSS_ERR_NOTFOUND;
    if (step != SQLITE_ROW) {
        bss_seterr(err, "read %s: %s", base->location, sqlite3_errmsg(log->db));
        return BSS_ERR_IO;
    }
    replay_row row;
    row.sequence = sqlite3_column_int64(log->st, 0);
    row.id = column_text(log->st, 1);
    row.type = column_text(log->st, 2);
    row.subject = column_text(log->st, 3);
    row.version = sqlite3_column_int64(log->st, 4);
    row.time_ms = sqlite3_column_int64(log->st, 5);
    row.correlation_id = column_text(log->st, 6);
    row.causation_id = column_text(log->st, 7);
    row.data = column_text(log->st, 8);
    row.defects = 0;
    if (sqlite3_column_type(log->st, 4) != SQLITE_INTEGER)
        row.defects |= REPLAY_ROW_BAD_VERSION;
    if (sqlite3_column_type(log->st, 5) != SQLITE_INTEGER)
        row.defects |= REPLAY_ROW_BAD_TIME;
    if (row.data.len >= log->data_cap && row.data.len <= BSS_EVENT_MAX_BYTES) {
        size_t cap = log->data_cap * 2;
        while (cap <= row.data.len)
            cap *= 2;
        char *grown = realloc(log->data_buf, cap);
        if (grown == NULL) {
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
        log->data_buf = grown;
        log->data_cap = cap;
    }
    item->sequence = row.sequence;
    item->reason[0] = '\0';
    item->where[0] = '\0';
    item->ok = replay_event_from_row(&row, base->source, &item->event, log->data_buf,
                                     log->data_cap, item->reason) == BSS_OK;
    return BSS_OK;
}

static void sqlite_close(replay_log *base)
{
    sqlite_log *log = (sqlite_log *)base;
    sqlite3_finalize(log->st);
    if (log->db != NULL && !sqlite3_get_autocommit(log->db))
        sqlite3_exec(log->db, "COMMIT", NULL, NULL, NULL); /* ends the read snapshot */
    sqlite3_close(log->db);
    free(log->data_buf);
    free(log);
}

static const replay_log_ops SQLITE_OPS = {sqlite_next, sqlite_close};

/* The query for f; its parameters are bound in the same order by bind(). */
static char *build_query(const replay_filter *f)
{
    size_t ntypes = 0;
    while (f->types != NULL && f->types[ntypes] != NULL)
        ntypes++;
    size_t cap = 512 + f->nmentions * 64 + ntypes * 4;
    char *sql = malloc(cap);
    if (sql == NULL)
        return NULL;
    size_t n = (size_t)snprintf(sql, cap,
                                "SELECT sequence, id, type, subject, version, time_ms,"
                                " correlation_id, causation_id, data FROM events"
                                " WHERE sequence > ? AND sequence <= ?");
    if (f->type != NULL)
        n += (size_t)snprintf(sql + n, cap - n, " AND type = ?");
    if (ntypes > 0) {
        n += (size_t)snprintf(sql + n, cap - n, " AND type IN (");
        for (size_t i = 0; i < ntypes; i++)
            n += (size_t)snprintf(sql + n, cap - n, i ? ",?" : "?");
        n += (size_t)snprintf(sql + n, cap - n, ")");
    }
    if (f->subject != NULL)
        n += (size_t)snprintf(sql + n, cap - n, " AND subject = ?");
    if (f->since_ms != INT64_MIN || f->until_ms != INT64_MAX)
        n += (size_t)snprintf(sql + n, cap - n, " AND time_ms BETWEEN ? AND ?");
    if (f->nmentions > 0) {
        n += (size_t)snprintf(sql + n, cap - n, " AND (subject IN (");
        for (size_t i = 0; i < f->nmentions; i++)
            n += (size_t)snprintf(sql + n, cap - n, i ? ",?" : "?");
        n += (size_t)snprintf(sql + n, cap - n, ")");
        for (size_t i = 0; i < f->nmentions; i++)
            n += (size_t)snprintf(sql + n, cap - n, " OR instr(data, ?) > 0");
        n += (size_t)snprintf(sql + n, cap - n, ")");
    }
    snprintf(sql + n, cap - n, " ORDER BY sequence");
    return sql;
}

/* The last sequence f lets a reader reach: its own bound and, when it
 * bounds positions, the one of partition 0 (the only one a log has). */
static int64_t sequence_bound(const replay_filter *f)
{
    int64_t bound = f->up_to_sequence;
    if (f->up_to != NULL && replay_marks_get(f->up_to, 0) < bound)
        bound = replay_marks_get(f->up_to, 0);
    return bound;
}

static int bind(sqlite3_stmt *st, const replay_filter *f)
{
    int i = 1;
    sqlite3_bind_int64(st, i++, f->after_sequence);
    sqlite3_bind_int64(st, i++, sequence_bound(f));
    if (f->type != NULL)
        sqlite3_bind_text(st, i++, f->type, -1, SQLITE_TRANSIENT);
    for (size_t t = 0; f->types != NULL && f->types[t] != NULL; t++)
        sqlite3_bind_text(st, i++, f->types[t], -1, SQLITE_STATIC);
    if (f->subject != NULL)
        sqlite3_bind_text(st, i++, f->subject, -1, SQLITE_TRANSIENT);
    if (f->since_ms != INT64_MIN || f->until_ms != INT64_MAX) {
        sqlite3_bind_int64(st, i++, f->since_ms);
        sqlite3_bind_int64(st, i++, f->until_ms);
    }
    for (size_t m = 0; m < f->nmentions; m++)
        sqlite3_bind_text(st, i++, f->mentions[m], -1, SQLITE_TRANSIENT);
    for (size_t m = 0; m < f->nmentions; m++) {
        char *quoted = replay_json_quote(f->mentions[m]);
        if (quoted == NULL)
            return BSS_ERR_NOMEM;
        sqlite3_bind_text(st, i++, quoted, -1, SQLITE_TRANSIENT);
        free(quoted);
    }
    return BSS_OK;
}

/* log->reached: the last sequence within f's sequence bounds, in the read
 * transaction's snapshot (the first read of it fixes the snapshot, and the
 * prepared iteration has not stepped yet). */
static int read_reached(sqlite_log *log, const replay_filter *f, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = BSS_ERR_IO;
    if (sqlite3_prepare_v2(log->db,
                           "SELECT MAX(sequence) FROM events WHERE sequence > ?1 AND sequence <= ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, f->after_sequence);
        sqlite3_bind_int64(st, 2, sequence_bound(f));
        if (sqlite3_step(st) == SQLITE_ROW) {
            log->base.reached.n = 1;
            log->base.reached.partition[0] = 0;
            log->base.reached.position[0] = sqlite3_column_int64(st, 0); /* NULL: 0 */
            rc = BSS_OK;
        }
    }
    if (rc != BSS_OK)
        bss_seterr(err, "read %s: %s", log->base.location, sqlite3_errmsg(log->db));
    sqlite3_finalize(st);
    return rc;
}

int replay_log_open_sqlite(const char *path, const char *source, const replay_filter *f,
                           replay_log **out, char *err)
{
    if (strlen(source) > BSS_EVENT_SOURCE_MAX || strlen(path) >= sizeof((replay_log *)0)->location) {
        bss_seterr(err, "source name or path too long");
        return BSS_ERR_INVALID;
    }
    sqlite_log *log = calloc(1, sizeof *log);
    if (log == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    log->base.ops = &SQLITE_OPS;
    snprintf(log->base.source, sizeof log->base.source, "%s", source);
    snprintf(log->base.location, sizeof log->base.location, "%s", path);
    log->data_cap = 4096;
    log->data_buf = malloc(log->data_cap);
    int rc = log->data_buf ? replay_open_readonly(path, &log->db, err) : BSS_ERR_NOMEM;
    /* One read transaction for the whole iteration and the reached
     * position: both from the same snapshot of the log. */
    if (rc == BSS_OK && sqlite3_exec(log->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        bss_seterr(err, "read %s: %s", path, sqlite3_errmsg(log->db));
        rc = BSS_ERR_IO;
    }
    char *sql = rc == BSS_OK ? build_query(f) : NULL;
    if (rc == BSS_OK && sql == NULL)
        rc = BSS_ERR_NOMEM;
    if (rc == BSS_OK && sqlite3_prepare_v2(log->db, sql, -1, &log->st, NULL) != SQLITE_OK) {
        bss_seterr(err, "%s is not a bssiot store: %s", path, sqlite3_errmsg(log->db));
        rc = BSS_ERR_IO;
    }
    free(sql);
    if (rc == BSS_OK)
        rc = bind(log->st, f);
    if (rc == BSS_OK)
        rc = read_reached(log, f, err);
    if (rc == BSS_ERR_NOMEM)
        bss_seterr(err, "out of memory");
    if (rc != BSS_OK) {
        sqlite_close(&log->base);
        return rc;
    }
    *out = &log->base;
    return BSS_OK;
}

int replay_log_open(const replay_source *src, const char *source, const replay_filter *f,
                    replay_log **out, char *err)
{
    if (src->kafka_brokers != NULL)
        return replay_kafka_open(src, source, f, out, err);
    char path[1024];
    if (replay_store_path(src->data_dir, source, path, sizeof path) != BSS_OK) {
        bss_seterr(err, "store path of %s is too long", source);
        return BSS_ERR_INVALID;
    }
    return replay_log_open_sqlite(path, source, f, out, err);
}

/* Whether data holds value as a JSON string literal (the SQL's instr). */
static int data_quotes(const char *data, const char *value)
{
    char *quoted = replay_json_quote(value);
    int found = quoted != NULL && data != NULL && strstr(data, quoted) != NULL;
    free(quoted);
    return found;
}

int replay_filter_matches(const replay_filter *f, const bss_event *ev)
{
    if (ev->sequence <= f->after_sequence || ev->sequence > f->up_to_sequence)
        return 0;
    if (ev->time_ms < f->since_ms || ev->time_ms > f->until_ms)
        return 0;
    if (f->type != NULL && strcmp(ev->type, f->type) != 0)
        return 0;
    if (f->subject != NULL && strcmp(ev->subject, f->subject) != 0)
        return 0;
    if (f->types != NULL) {
        size_t t = 0;
        while (f->types[t] != NULL && strcmp(f->types[t], ev->type) != 0)
            t++;
        if (f->types[t] == NULL)
            return 0;
    }
    if (f->nmentions == 0)
        return 1;
    for (size_t m = 0; m < f->nmentions; m++)
        if (strcmp(ev->subject, f->mentions[m]) == 0 || data_quotes(ev->data, f->mentions[m]))
            return 1;
    return 0;
}

int replay_log_next(replay_log *log, replay_item *item, char *err)
{
    return log->ops->next(log, item, err);
}

void replay_report_corrupt(FILE *diag, const replay_log *log, const replay_item *item)
{
    if (item->where[0] != '\0')
        fprintf(diag,
                "bssiot-replay: skipped a corrupt event: topic %s %s, source %s, sequence %lld:"
                " %s\n",
                log->location, item->where, log->source, (long long)item->sequence,
                item->reason);
    else
        fprintf(diag,
                "bssiot-replay: skipped a corrupt event: db %s, source %s, sequence %lld: %s\n",
                log->location, log->source, (long long)item->sequence, item->reason);
}

void replay_log_close(replay_log *log)
{
    if (log != NULL)
        log->ops->close(log);
}
