/*
 * replay_rebuild.c - see replay_rebuild.h.
 */
#include "replay_rebuild.h"

#include "bss_error.h"
#include "isotime.h"
#include "mypage/projection.h"
#include "replay_log.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEED_SAVEPOINTS 1 /* attempt_rebuild: a rejection in the fast path */

static int exec(sqlite3 *db, const char *sql, char *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        bss_seterr(err, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

static int64_t limit_for(const replay_positions *up_to, const char *stream)
{
    if (up_to == NULL)
        return INT64_MAX;
    for (size_t i = 0; i < up_to->n; i++)
        if (strcmp(up_to->stream[i], stream) == 0)
            return up_to->position[i];
    return 0; /* a stream the positions do not know: nothing of it */
}

/* Applies one stream's log; *last gets the last sequence read. */
static int apply_stream(sqlite3 *db, mypage_projection *proj, const char *data_dir,
                        const char *stream, int64_t limit, int careful, int64_t *last,
                        replay_rebuild_stats *stats, FILE *diag, char *err)
{
    char path[1024];
    *last = 0;
    if (replay_store_path(data_dir, stream, path, sizeof path) != BSS_OK) {
        bss_seterr(err, "store path of %s is too long", stream);
        return BSS_ERR_INVALID;
    }
    replay_filter f;
    replay_filter_init(&f);
    f.up_to_sequence = limit;
    replay_log *log = NULL;
    int rc = replay_log_open_sqlite(path, stream, &f, &log, err);
    if (rc == BSS_ERR_NOTFOUND)
        return BSS_OK; /* a service that never ran has no events to give */
    if (rc != BSS_OK)
        return rc;
    replay_item *item = malloc(sizeof *item);
    if (item == NULL) {
        replay_log_close(log);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    char why[BSS_ERRLEN];
    while (rc == BSS_OK) {
        int step = replay_log_next(log, item, err);
        if (step == BSS_ERR_NOTFOUND)
            break;
        if (step != BSS_OK) {
            rc = step;
            break;
        }
        *last = item->sequence;
        if (!item->ok) {
            replay_report_corrupt(diag, log, item);
            stats->skipped++;
            continue;
        }
        if (careful && exec(db, "SAVEPOINT replay_event", err) != BSS_OK) {
            rc = BSS_ERR_IO;
            break;
        }
        int applied = mypage_projection_apply_with(proj, &item->event, why);
        if (applied == BSS_ERR_INVALID && !careful) {
            rc = NEED_SAVEPOINTS;
        } else if (applied == BSS_ERR_INVALID) {
            fprintf(diag,
                    "bssiot-replay: event rejected by the projection: db %s, source %s,"
                    " sequence %lld (%s): %s\n",
                    path, stream, (long long)item->sequence, item->event.type, why);
            stats->rejected++;
            rc = exec(db, "ROLLBACK TO replay_event; RELEASE replay_event", err);
        } else if (applied != BSS_OK) {
            bss_seterr(err, "apply %s #%lld: %s", stream, (long long)item->sequence, why);
            rc = BSS_ERR_IO;
        } else {
            stats->applied++;
            if (careful)
                rc = exec(db, "RELEASE replay_event", err);
        }
    }
    free(item);
    replay_log_close(log);
    return rc;
}

static int attempt_rebuild(sqlite3 *db, const char *data_dir, const replay_positions *up_to,
                           int careful, replay_rebuild_stats *stats, FILE *diag, char *err)
{
    int rc = exec(db, "BEGIN", err);
    if (rc == BSS_OK)
        rc = mypage_projection_schema(db, err);
    if (rc == BSS_OK)
        rc = exec(db,
                  "CREATE TABLE IF NOT EXISTS inbox(stream TEXT NOT NULL,"
                  " partition INTEGER NOT NULL, position INTEGER NOT NULL,"
                  " PRIMARY KEY(stream, partition)) WITHOUT ROWID",
                  err);
    mypage_projection *proj = NULL;
    if (rc == BSS_OK)
        rc = mypage_projection_open(db, &proj, err);
    sqlite3_stmt *inbox = NULL;
    if (rc == BSS_OK &&
        sqlite3_prepare_v2(db, "INSERT INTO inbox(stream, partition, position) VALUES(?1, 0, ?2)",
                           -1, &inbox, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        rc = BSS_ERR_IO;
    }
    for (size_t s = 0; rc == BSS_OK && s < mypage_projection_nstreams; s++) {
        const char *stream = mypage_projection_streams[s];
        int64_t last = 0;
        rc = apply_stream(db, proj, data_dir, stream, limit_for(up_to, stream), careful, &last,
                          stats, diag, err);
        if (rc == BSS_OK) {
            sqlite3_bind_text(inbox, 1, stream, -1, SQLITE_STATIC);
            sqlite3_bind_int64(inbox, 2, last);
            if (sqlite3_step(inbox) != SQLITE_DONE) {
                bss_seterr(err, "record position: %s", sqlite3_errmsg(db));
                rc = BSS_ERR_IO;
            }
            sqlite3_reset(inbox);
        }
    }
    sqlite3_finalize(inbox);
    mypage_projection_close(proj);
    if (rc == BSS_OK)
        rc = exec(db, "COMMIT", err);
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int replay_rebuild_mypage(const char *data_dir, const char *out_path,
                          const replay_positions *up_to, replay_rebuild_stats *stats,
                          FILE *diag, char *err)
{
    memset(stats, 0, sizeof *stats);
    char tmp[1100];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out_path, (long)getpid()) >= sizeof tmp) {
        bss_seterr(err, "output path too long");
        return BSS_ERR_INVALID;
    }
    unlink(tmp);
    int64_t started = bss_monotonic_ns();
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        bss_seterr(err, "create %s: %s", tmp, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return BSS_ERR_IO;
    }
    /* A throwaway until renamed: no durability needed, only rollback (the
     * memory journal keeps ROLLBACK TO working for the careful pass). */
    int rc = exec(db, "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;"
                      " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY", err);
    if (rc == BSS_OK)
        rc = attempt_rebuild(db, data_dir, up_to, 0, stats, diag, err);
    if (rc == NEED_SAVEPOINTS) {
        memset(stats, 0, sizeof *stats);
        rc = attempt_rebuild(db, data_dir, up_to, 1, stats, diag, err);
    }
    if (sqlite3_close(db) != SQLITE_OK && rc == BSS_OK) {
        bss_seterr(err, "close %s", tmp);
        rc = BSS_ERR_IO;
    }
    if (rc == BSS_OK && rename(tmp, out_path) != 0) {
        bss_seterr(err, "rename %s to %s failed", tmp, out_path);
        rc = BSS_ERR_IO;
    }
    if (rc != BSS_OK)
        unlink(tmp);
    stats->seconds = (double)(bss_monotonic_ns() - started) / 1e9;
    return rc;
}

/* ---- verify ---- */

static int read_positions(sqlite3 *db, const char *path, replay_positions *out, char *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT position FROM inbox WHERE stream = ?1 AND partition = 0",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "%s has no inbox table: %s", path, sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    int rc = BSS_OK;
    for (size_t s = 0; s < mypage_projection_nstreams && s < REPLAY_MAX_STREAMS; s++) {
        snprintf(out->stream[s], sizeof out->stream[s], "%s", mypage_projection_streams[s]);
        sqlite3_bind_text(st, 1, mypage_projection_streams[s], -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        out->position[s] = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            bss_seterr(err, "read inbox of %s: %s", path, sqlite3_errmsg(db));
            rc = BSS_ERR_IO;
        }
        sqlite3_reset(st);
        out->n = s + 1;
    }
    sqlite3_finalize(st);
    return rc;
}

int replay_live_positions(const char *live_path, replay_positions *out, char *err)
{
    sqlite3 *db = NULL;
    int rc = replay_open_readonly(live_path, &db, err);
    if (rc == BSS_OK)
        rc = read_positions(db, live_path, out, err);
    sqlite3_close(db);
    return rc;
}

/* One store's tables as sorted row texts, read in one read transaction. */
typedef struct table_rows {
    char **rows;
    size_t n, cap;
} table_rows;

typedef struct store_dump {
    replay_positions positions;
    table_rows tables[16];
    size_t ntables;
} store_dump;

static void dump_free(store_dump *d)
{
    for (size_t t = 0; t < d->ntables; t++) {
        for (size_t i = 0; i < d->tables[t].n; i++)
            free(d->tables[t].rows[i]);
        free(d->tables[t].rows);
    }
    memset(d, 0, sizeof *d);
}

/* "(v1, v2, ...)" with SQL-ish literals, so a difference in type shows. */
static char *row_text(sqlite3_stmt *st)
{
    size_t cap = 256, n = 0;
    char *out = malloc(cap);
    int cols = sqlite3_column_count(st);
    for (int c = 0; out != NULL && c < cols; c++) {
        const unsigned char *text = NULL;
        size_t need = 64;
        int type = sqlite3_column_type(st, c);
        if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
            text = sqlite3_column_text(st, c);
            need += (size_t)sqlite3_column_bytes(st, c) * 2 + 4;
        }
        if (n + need >= cap) {
            while (n + need >= cap)
                cap *= 2;
            char *grown = realloc(out, cap);
            if (grown == NULL) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        n += (size_t)snprintf(out + n, cap - n, c == 0 ? "(" : ", ");
        switch (type) {
        case SQLITE_NULL:
            n += (size_t)snprintf(out + n, cap - n, "NULL");
            break;
        case SQLITE_INTEGER:
            n += (size_t)snprintf(out + n, cap - n, "%lld",
                                  (long long)sqlite3_column_int64(st, c));
            break;
        case SQLITE_FLOAT:
            n += (size_t)snprintf(out + n, cap - n, "%.17g", sqlite3_column_double(st, c));
            break;
        default:
            out[n++] = '\'';
            for (const unsigned char *p = text; p && *p; p++) {
                if (*p == '\'')
                    out[n++] = '\'';
                out[n++] = (char)*p;
            }
            out[n++] = '\'';
            out[n] = '\0';
            break;
        }
    }
    if (out != NULL && cols == 0)
        snprintf(out, cap, "()");
    else if (out != NULL)
        snprintf(out + n, cap - n, ")");
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dump_store(const char *path, store_dump *d, char *err)
{
    memset(d, 0, sizeof *d);
    sqlite3 *db = NULL;
    int rc = replay_open_readonly(path, &db, err);
    if (rc != BSS_OK)
        return rc;
    /* One read transaction: positions and tables from the same commit. */
    rc = exec(db, "BEGIN", err);
    if (rc == BSS_OK)
        rc = read_positions(db, path, &d->positions, err);
    for (size_t t = 0; rc == BSS_OK && mypage_projection_tables[t].name != NULL && t < 16; t++) {
        table_rows *rows = &d->tables[t];
        d->ntables = t + 1;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, mypage_projection_tables[t].dump_sql, -1, &st, NULL) !=
            SQLITE_OK) {
            bss_seterr(err, "dump %s of %s: %s", mypage_projection_tables[t].name, path,
                       sqlite3_errmsg(db));
            rc = BSS_ERR_IO;
            break;
        }
        int step;
        while (rc == BSS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
            if (rows->n == rows->cap) {
                size_t cap = rows->cap ? rows->cap * 2 : 256;
                char **grown = realloc(rows->rows, cap * sizeof *grown);
                if (grown == NULL) {
                    rc = BSS_ERR_NOMEM;
                    break;
                }
                rows->rows = grown;
                rows->cap = cap;
            }
            if ((rows->rows[rows->n] = row_text(st)) == NULL)
                rc = BSS_ERR_NOMEM;
            else
                rows->n++;
        }
        if (rc == BSS_OK && step != SQLITE_DONE) {
            bss_seterr(err, "dump %s of %s: %s", mypage_projection_tables[t].name, path,
                       sqlite3_errmsg(db));
            rc = BSS_ERR_IO;
        }
        if (rc == BSS_ERR_NOMEM)
            bss_seterr(err, "out of memory");
        sqlite3_finalize(st);
        qsort(rows->rows, rows->n, sizeof *rows->rows, cmp_str);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc != BSS_OK)
        dump_free(d);
    return rc;
}

int replay_verify_mypage(const char *live_path, const char *rebuilt_path, FILE *out,
                         size_t *differences, char *err)
{
    store_dump live, rebuilt;
    *differences = 0;
    int rc = dump_store(live_path, &live, err);
    if (rc != BSS_OK)
        return rc;
    rc = dump_store(rebuilt_path, &rebuilt, err);
    if (rc != BSS_OK) {
        dump_free(&live);
        return rc;
    }
    for (size_t s = 0; s < live.positions.n; s++) {
        if (live.positions.position[s] != rebuilt.positions.position[s]) {
            fprintf(out,
                    "positions differ: live has applied %s up to %lld, the rebuild up to %lld"
                    " (compare a rebuild made at the live positions: verify without --rebuilt)\n",
                    live.positions.stream[s], (long long)live.positions.position[s],
                    (long long)rebuilt.positions.position[s]);
            (*differences)++;
        }
    }
    for (size_t t = 0; t < live.ntables; t++) {
        const table_rows *a = &live.tables[t], *b = &rebuilt.tables[t];
        const char *name = mypage_projection_tables[t].name;
        size_t i = 0, j = 0;
        while (i < a->n || j < b->n) {
            int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->rows[i], b->rows[j]);
            if (c == 0) {
                i++;
                j++;
                continue;
            }
            if (c < 0)
                fprintf(out, "%s: only in live:    %s\n", name, a->rows[i++]);
            else
                fprintf(out, "%s: only in rebuilt: %s\n", name, b->rows[j++]);
            (*differences)++;
        }
        fprintf(out, "%s: %zu rows live, %zu rebuilt\n", name, a->n, b->n);
    }
    dump_free(&live);
    dump_free(&rebuilt);
    return BSS_OK;
}
