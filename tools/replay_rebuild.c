/*
 * replay_rebuild.c - see replay_rebuild.h.
 *
 * The pipeline: the reader thread fills batches (events copied out of the
 * log with their data in the batch's own arena) and queues them; the main
 * thread applies them and hands each batch back. QUEUE_BATCHES batches exist
 * in all, so the reader runs at most that far ahead and memory stays fixed.
 * The batch that ends a stream carries the positions reached, which the
 * applier records in the inbox once everything before it is applied.
 */
#include "replay_rebuild.h"

#include "bss_error.h"
#include "isotime.h"
#include "mypage/projection.h"
#include "replay_kafka.h"
#include "replay_log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NEED_SAVEPOINTS 1 /* attempt_rebuild: a rejection in the fast path */
#define BATCH_EVENTS 512
#define BATCH_ARENA (256 * 1024) /* data bytes per batch; grown for a bigger event */
#define QUEUE_BATCHES 8

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

static double cpu_seconds(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- the queue between reader and applier ---- */

typedef struct batch {
    size_t count;
    bss_event events[BATCH_EVENTS];
    char *arena;
    size_t used, cap;
    size_t stream;        /* index into mypage_projection_streams */
    int stream_done;      /* the stream's last batch: `reached` is set */
    replay_marks reached;
    int failed;           /* the reader failed: rc and err */
    int rc;
    char err[BSS_ERRLEN];
} batch;

typedef struct pipeline {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    batch *full[QUEUE_BATCHES]; /* ring, oldest at full_head */
    size_t full_head, full_count;
    batch *spare[QUEUE_BATCHES];
    size_t nspare;
    int cancel; /* the applier stopped: the reader ends */

    /* the reader's inputs and outputs (its own until joined) */
    size_t first_stream, end_stream; /* mypage_projection_streams[first..end) */
    const replay_source *src;
    const replay_positions *up_to;
    FILE *diag;
    char location[REPLAY_MAX_STREAMS][1024]; /* set before a stream's first batch */
    size_t skipped;
    int64_t duplicates;
    double read_cpu;
} pipeline;

/* The reader's next empty batch; NULL once cancelled. */
static batch *take_spare(pipeline *pl)
{
    pthread_mutex_lock(&pl->lock);
    while (pl->nspare == 0 && !pl->cancel)
        pthread_cond_wait(&pl->changed, &pl->lock);
    batch *b = pl->cancel ? NULL : pl->spare[--pl->nspare];
    pthread_mutex_unlock(&pl->lock);
    if (b != NULL) {
        b->count = b->used = 0;
        b->stream_done = b->failed = 0;
        b->reached.n = 0;
    }
    return b;
}

static void push_full(pipeline *pl, batch *b)
{
    pthread_mutex_lock(&pl->lock);
    pl->full[(pl->full_head + pl->full_count++) % QUEUE_BATCHES] = b;
    pthread_cond_broadcast(&pl->changed);
    pthread_mutex_unlock(&pl->lock);
}

static batch *take_full(pipeline *pl)
{
    pthread_mutex_lock(&pl->lock);
    while (pl->full_count == 0)
        pthread_cond_wait(&pl->changed, &pl->lock);
    batch *b = pl->full[pl->full_head];
    pl->full_head = (pl->full_head + 1) % QUEUE_BATCHES;
    pl->full_count--;
    pthread_mutex_unlock(&pl->lock);
    return b;
}

static void give_back(pipeline *pl, batch *b)
{
    pthread_mutex_lock(&pl->lock);
    pl->spare[pl->nspare++] = b;
    pthread_cond_broadcast(&pl->changed);
    pthread_mutex_unlock(&pl->lock);
}

/* ---- the reader ---- */

static const replay_marks NOTHING = {0};

static const replay_marks *limit_for(const replay_positions *up_to, const char *stream)
{
    if (up_to == NULL)
        return NULL;
    for (size_t i = 0; i < up_to->n; i++)
        if (strcmp(up_to->stream[i], stream) == 0)
            return &up_to->marks[i];
    return &NOTHING; /* a stream the positions do not know: nothing of it */
}

/* Copies an event and its data into b; 0, or 1 when b has no room left
 * (b empty: the arena grew to fit, or could not: BSS_ERR_NOMEM). */
static int batch_add(batch *b, const bss_event *ev)
{
    size_t len = strlen(ev->data) + 1;
    if (b->count == BATCH_EVENTS || (b->used + len > b->cap && b->count > 0))
        return 1;
    if (len > b->cap) {
        char *grown = realloc(b->arena, len);
        if (grown == NULL)
            return BSS_ERR_NOMEM;
        b->arena = grown;
        b->cap = len;
    }
    bss_event *copy = &b->events[b->count++];
    memcpy(copy, ev, sizeof *copy);
    copy->data = memcpy(b->arena + b->used, ev->data, len);
    b->used += len;
    return 0;
}

/* Reads stream s into batches; *b is the batch being filled (replaced as
 * they fill up; NULL when cancelled). */
static int read_stream(pipeline *pl, size_t s, batch **b, replay_item *item, char *err)
{
    const char *stream = mypage_projection_streams[s];
    replay_filter f;
    replay_filter_init(&f);
    f.types = mypage_projection_types;
    f.up_to = limit_for(pl->up_to, stream);
    replay_log *log = NULL;
    int rc = replay_log_open(pl->src, stream, &f, &log, err);
    if (rc == BSS_ERR_NOTFOUND)
        return BSS_OK; /* a service that never ran has no events to give */
    if (rc != BSS_OK)
        return rc;
    snprintf(pl->location[s], sizeof pl->location[s], "%s", log->location);
    (*b)->stream = s;
    while (rc == BSS_OK) {
        int step = replay_log_next(log, item, err);
        if (step == BSS_ERR_NOTFOUND)
            break;
        if (step != BSS_OK) {
            rc = step;
            break;
        }
        if (!item->ok) {
            replay_report_corrupt(pl->diag, log, item);
            pl->skipped++;
            continue;
        }
        int full = batch_add(*b, &item->event);
        if (full == 1) {
            push_full(pl, *b);
            if ((*b = take_spare(pl)) == NULL)
                break;
            (*b)->stream = s;
            full = batch_add(*b, &item->event);
        }
        if (full != 0) {
            bss_seterr(err, "out of memory");
            rc = BSS_ERR_NOMEM;
        }
    }
    if (rc == BSS_OK && *b != NULL)
        (*b)->reached = log->reached;
    pl->duplicates += replay_kafka_duplicates(log);
    replay_log_close(log);
    return rc;
}

static void *reader_main(void *arg)
{
    pipeline *pl = arg;
    replay_item *item = malloc(sizeof *item);
    batch *b = take_spare(pl);
    for (size_t s = pl->first_stream; b != NULL && s < pl->end_stream; s++) {
        b->stream = s;
        char err[BSS_ERRLEN] = "out of memory";
        int rc = item != NULL ? read_stream(pl, s, &b, item, err) : BSS_ERR_NOMEM;
        if (b == NULL)
            break; /* cancelled */
        if (rc != BSS_OK) {
            snprintf(b->err, sizeof b->err, "%s", err);
            b->failed = 1;
            b->rc = rc;
            push_full(pl, b);
            b = NULL;
            break;
        }
        b->stream_done = 1;
        push_full(pl, b);
        b = s + 1 < pl->end_stream ? take_spare(pl) : NULL;
    }
    if (b != NULL)
        give_back(pl, b);
    free(item);
    pl->read_cpu = cpu_seconds(RUSAGE_THREAD);
    return NULL;
}

/* ---- the applier ---- */

/* One rebuild into one file: of every stream (the sequential rebuild) or
 * of one (a part of the parallel rebuild). */
typedef struct part_job {
    const replay_source *src;
    const replay_positions *up_to;
    FILE *diag;
    size_t first_stream, end_stream;
    char path[1200];
    replay_rebuild_stats stats;
    int rc;
    char err[BSS_ERRLEN];
} part_job;

typedef struct applier {
    sqlite3 *db;
    mypage_projection *proj;
    sqlite3_stmt *inbox;
    int careful;
    replay_rebuild_stats *stats;
    FILE *diag;
} applier;

static int apply_batch(applier *a, const pipeline *pl, const batch *b, char *err)
{
    char why[BSS_ERRLEN];
    int rc = BSS_OK;
    for (size_t i = 0; rc == BSS_OK && i < b->count; i++) {
        const bss_event *ev = &b->events[i];
        if (a->careful && exec(a->db, "SAVEPOINT replay_event", err) != BSS_OK)
            return BSS_ERR_IO;
        int applied = mypage_projection_apply_with(a->proj, ev, why);
        if (applied == BSS_ERR_INVALID && !a->careful) {
            rc = NEED_SAVEPOINTS;
        } else if (applied == BSS_ERR_INVALID) {
            fprintf(a->diag,
                    "bssiot-replay: event rejected by the projection: %s %s, source %s,"
                    " sequence %lld (%s): %s\n",
                    pl->src->kafka_brokers ? "topic" : "db", pl->location[b->stream],
                    ev->source, (long long)ev->sequence, ev->type, why);
            a->stats->rejected++;
            rc = exec(a->db, "ROLLBACK TO replay_event; RELEASE replay_event", err);
        } else if (applied != BSS_OK) {
            bss_seterr(err, "apply %s #%lld: %s", ev->source, (long long)ev->sequence, why);
            rc = BSS_ERR_IO;
        } else {
            a->stats->applied++;
            if (a->careful)
                rc = exec(a->db, "RELEASE replay_event", err);
        }
    }
    if (rc != BSS_OK || !b->stream_done)
        return rc;
    /* The stream is complete: its positions, as a service's inbox has them. */
    for (size_t i = 0; rc == BSS_OK && i < b->reached.n; i++) {
        if (b->reached.position[i] <= 0)
            continue;
        a->stats->logged += b->reached.position[i];
        sqlite3_bind_text(a->inbox, 1, mypage_projection_streams[b->stream], -1, SQLITE_STATIC);
        sqlite3_bind_int(a->inbox, 2, b->reached.partition[i]);
        sqlite3_bind_int64(a->inbox, 3, b->reached.position[i]);
        if (sqlite3_step(a->inbox) != SQLITE_DONE) {
            bss_seterr(err, "record position: %s", sqlite3_errmsg(a->db));
            rc = BSS_ERR_IO;
        }
        sqlite3_reset(a->inbox);
    }
    return rc;
}

/* Runs the reader and applies what it reads until every stream is done or
 * something fails; the reader is joined before returning. */
static int run_pipeline(applier *a, const part_job *job, char *err)
{
    pipeline *pl = calloc(1, sizeof *pl);
    batch *batches = calloc(QUEUE_BATCHES, sizeof *batches);
    int rc = pl != NULL && batches != NULL ? BSS_OK : BSS_ERR_NOMEM;
    for (size_t i = 0; rc == BSS_OK && i < QUEUE_BATCHES; i++) {
        batches[i].cap = BATCH_ARENA;
        if ((batches[i].arena = malloc(BATCH_ARENA)) == NULL)
            rc = BSS_ERR_NOMEM;
        else
            pl->spare[pl->nspare++] = &batches[i];
    }
    pthread_t reader;
    int started = 0;
    if (rc == BSS_OK) {
        pthread_mutex_init(&pl->lock, NULL);
        pthread_cond_init(&pl->changed, NULL);
        pl->src = job->src;
        pl->up_to = job->up_to;
        pl->first_stream = job->first_stream;
        pl->end_stream = job->end_stream;
        pl->diag = a->diag;
        started = pthread_create(&reader, NULL, reader_main, pl) == 0;
        if (!started) {
            bss_seterr(err, "cannot start the reader thread");
            rc = BSS_ERR_IO;
        }
    } else {
        bss_seterr(err, "out of memory");
    }
    size_t streams_done = 0;
    while (started && rc == BSS_OK && streams_done < job->end_stream - job->first_stream) {
        batch *b = take_full(pl);
        if (b->failed) {
            rc = b->rc;
            bss_seterr(err, "%s", b->err);
        } else {
            rc = apply_batch(a, pl, b, err);
            streams_done += b->stream_done;
        }
        give_back(pl, b);
    }
    if (started) {
        pthread_mutex_lock(&pl->lock);
        pl->cancel = 1;
        pthread_cond_broadcast(&pl->changed);
        pthread_mutex_unlock(&pl->lock);
        pthread_join(reader, NULL);
        pthread_cond_destroy(&pl->changed);
        pthread_mutex_destroy(&pl->lock);
        a->stats->skipped += pl->skipped;
        a->stats->duplicates += pl->duplicates;
        a->stats->read_cpu_seconds += pl->read_cpu;
    }
    for (size_t i = 0; batches != NULL && i < QUEUE_BATCHES; i++)
        free(batches[i].arena);
    free(batches);
    free(pl);
    return rc;
}

static int attempt_rebuild(sqlite3 *db, part_job *job, int careful, char *err)
{
    replay_rebuild_stats *stats = &job->stats;
    double apply_cpu_start = cpu_seconds(RUSAGE_THREAD);
    int rc = exec(db, "BEGIN", err);
    if (rc == BSS_OK)
        rc = mypage_projection_schema(db, err);
    if (rc == BSS_OK)
        rc = exec(db,
                  "CREATE TABLE IF NOT EXISTS inbox(stream TEXT NOT NULL,"
                  " partition INTEGER NOT NULL, position INTEGER NOT NULL,"
                  " PRIMARY KEY(stream, partition)) WITHOUT ROWID",
                  err);
    applier a = {db, NULL, NULL, careful, stats, job->diag};
    if (rc == BSS_OK)
        rc = mypage_projection_open(db, &a.proj, err);
    if (rc == BSS_OK &&
        sqlite3_prepare_v2(db,
                           "INSERT INTO inbox(stream, partition, position) VALUES(?1, ?2, ?3)",
                           -1, &a.inbox, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        rc = BSS_ERR_IO;
    }
    if (rc == BSS_OK)
        rc = run_pipeline(&a, job, err);
    sqlite3_finalize(a.inbox);
    mypage_projection_close(a.proj);
    if (rc == BSS_OK)
        rc = exec(db, "COMMIT", err);
    stats->apply_cpu_seconds += cpu_seconds(RUSAGE_THREAD) - apply_cpu_start;
    return rc;
}

/* Opens the throwaway file at tmp (created afresh unless `existing`): no
 * durability needed until renamed. The fast pass runs without a journal;
 * the careful pass needs one in memory for ROLLBACK TO. */
static int open_scratch(const char *tmp, int careful, int existing, sqlite3 **db, char *err)
{
    if (!existing)
        unlink(tmp);
    if (sqlite3_open_v2(tmp, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        bss_seterr(err, "create %s: %s", tmp, *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return BSS_ERR_IO;
    }
    /* More lookaside slots: the applier's statements allocate many small
     * values per event, served from there instead of malloc. */
    sqlite3_db_config(*db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 2048);
    return exec(*db,
                careful ? "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;"
                          " PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-262144;"
                          " PRAGMA temp_store=MEMORY"
                        : "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                          " PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-262144;"
                          " PRAGMA temp_store=MEMORY",
                err);
}

/* Builds job's file from its streams: the fast pass, and when the
 * projection rejected an event, the careful pass on a fresh file. The file
 * is complete and closed when this returns BSS_OK; removed otherwise. */
static int build_part(part_job *job)
{
    int rc = BSS_OK;
    sqlite3 *db = NULL;
    for (int careful = 0; careful <= 1; careful++) {
        if (careful) {
            /* Without a journal the fast pass cannot be rolled back: start
             * over on a fresh file. */
            sqlite3_close(db);
            db = NULL;
            memset(&job->stats, 0, sizeof job->stats);
        }
        rc = open_scratch(job->path, careful, 0, &db, job->err);
        if (rc == BSS_OK)
            rc = attempt_rebuild(db, job, careful, job->err);
        if (rc != NEED_SAVEPOINTS)
            break;
    }
    if (db != NULL && sqlite3_close(db) != SQLITE_OK && rc == BSS_OK) {
        bss_seterr(job->err, "close %s", job->path);
        rc = BSS_ERR_IO;
    }
    if (rc != BSS_OK)
        unlink(job->path);
    return rc;
}

static void *part_main(void *arg)
{
    part_job *job = arg;
    job->rc = build_part(job);
    return NULL;
}

#define NOT_DISJOINT 2 /* merge_parts: two parts wrote the same table */

/* Copies the tables of every part but `base` into base's file. Each table
 * must come from one part only: the projection's contract (every table has
 * one owner stream) makes that so, and checking it here means a projection
 * that ever breaks it gets the sequential rebuild, never a wrong merge. */
static int merge_parts(part_job *jobs, size_t n, size_t base, char *err)
{
    sqlite3 *db = NULL;
    int rc = open_scratch(jobs[base].path, 0, 1, &db, err);
    if (rc == BSS_OK)
        rc = exec(db, "PRAGMA locking_mode=NORMAL", err); /* ATTACH needs no lock of ours */
    for (size_t i = 0; rc == BSS_OK && i < n; i++) {
        if (i == base)
            continue;
        char *sql = sqlite3_mprintf("ATTACH %Q AS part", jobs[i].path);
        rc = sql != NULL ? exec(db, sql, err) : BSS_ERR_NOMEM;
        sqlite3_free(sql);
        if (rc == BSS_OK)
            rc = exec(db, "BEGIN", err);
        for (size_t t = 0; rc == BSS_OK; t++) {
            const char *table = mypage_projection_tables[t].name;
            if (table == NULL)
                table = "inbox"; /* last: the positions, one row per stream and partition */
            sqlite3_stmt *st = NULL;
            char *both = sqlite3_mprintf("SELECT EXISTS(SELECT 1 FROM main.\"%w\")"
                                         " AND EXISTS(SELECT 1 FROM part.\"%w\")",
                                         table, table);
            if (both == NULL || sqlite3_prepare_v2(db, both, -1, &st, NULL) != SQLITE_OK ||
                sqlite3_step(st) != SQLITE_ROW) {
                bss_seterr(err, "merge %s: %s", table, sqlite3_errmsg(db));
                rc = BSS_ERR_IO;
            } else if (sqlite3_column_int(st, 0) && strcmp(table, "inbox") != 0) {
                rc = NOT_DISJOINT;
            }
            sqlite3_finalize(st);
            sqlite3_free(both);
            char *copy = rc == BSS_OK ? sqlite3_mprintf("INSERT INTO main.\"%w\" SELECT * FROM"
                                                        " part.\"%w\"", table, table)
                                      : NULL;
            if (rc == BSS_OK)
                rc = copy != NULL ? exec(db, copy, err) : BSS_ERR_NOMEM;
            sqlite3_free(copy);
            if (mypage_projection_tables[t].name == NULL)
                break;
        }
        if (rc == BSS_OK)
            rc = exec(db, "COMMIT", err);
        else
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_exec(db, "DETACH part", NULL, NULL, NULL);
    }
    if (rc == BSS_ERR_NOMEM)
        bss_seterr(err, "out of memory");
    if (db != NULL && sqlite3_close(db) != SQLITE_OK && rc == BSS_OK) {
        bss_seterr(err, "close %s", jobs[base].path);
        rc = BSS_ERR_IO;
    }
    return rc;
}

static void add_stats(replay_rebuild_stats *sum, const replay_rebuild_stats *part)
{
    sum->logged += part->logged;
    sum->applied += part->applied;
    sum->skipped += part->skipped;
    sum->rejected += part->rejected;
    sum->duplicates += part->duplicates;
    sum->read_cpu_seconds += part->read_cpu_seconds;
    sum->apply_cpu_seconds += part->apply_cpu_seconds;
}

/* The parallel rebuild: every stream into a file of its own at once, each
 * with its reader and applier, then merged into the part that applied the
 * most (the least to copy). BSS_OK with that part's path in built
 * (builtlen bytes), NOT_DISJOINT, or an error with err filled. */
static int build_parallel(const replay_source *src, const char *tmp,
                          const replay_positions *up_to, replay_rebuild_stats *stats,
                          FILE *diag, char *built, size_t builtlen, char *err)
{
    part_job jobs[REPLAY_MAX_STREAMS];
    pthread_t threads[REPLAY_MAX_STREAMS];
    size_t n = mypage_projection_nstreams;
    if (n > REPLAY_MAX_STREAMS) {
        bss_seterr(err, "the projection has more streams than a rebuild handles");
        return BSS_ERR_INVALID;
    }
    int started[REPLAY_MAX_STREAMS] = {0};
    for (size_t s = 0; s < n; s++) {
        part_job *job = &jobs[s];
        memset(job, 0, sizeof *job);
        job->src = src;
        job->up_to = up_to;
        job->diag = diag;
        job->first_stream = s;
        job->end_stream = s + 1;
        snprintf(job->path, sizeof job->path, "%s.%s", tmp, mypage_projection_streams[s]);
        started[s] = pthread_create(&threads[s], NULL, part_main, job) == 0;
        if (!started[s]) {
            job->rc = BSS_ERR_IO;
            bss_seterr(job->err, "cannot start a rebuild thread");
        }
    }
    int rc = BSS_OK;
    size_t base = 0;
    for (size_t s = 0; s < n; s++) {
        if (started[s])
            pthread_join(threads[s], NULL);
        if (jobs[s].rc != BSS_OK && rc == BSS_OK) {
            rc = jobs[s].rc;
            bss_seterr(err, "%s", jobs[s].err);
        }
        add_stats(stats, &jobs[s].stats);
        if (jobs[s].stats.applied > jobs[base].stats.applied)
            base = s;
    }
    int64_t merge_started = bss_monotonic_ns();
    if (rc == BSS_OK)
        rc = merge_parts(jobs, n, base, err);
    stats->merge_seconds = (double)(bss_monotonic_ns() - merge_started) / 1e9;
    for (size_t s = 0; s < n; s++)
        if (rc != BSS_OK || s != base)
            unlink(jobs[s].path);
    snprintf(built, builtlen, "%s", rc == BSS_OK ? jobs[base].path : "");
    return rc;
}

int replay_rebuild_mypage(const replay_source *src, const char *out_path,
                          const replay_positions *up_to, replay_rebuild_stats *stats,
                          FILE *diag, char *err)
{
    memset(stats, 0, sizeof *stats);
    char tmp[1100];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out_path, (long)getpid()) >= sizeof tmp) {
        bss_seterr(err, "output path too long");
        return BSS_ERR_INVALID;
    }
    int64_t started = bss_monotonic_ns();
    double cpu_start = cpu_seconds(RUSAGE_SELF);
    char built[1200] = "";
    int rc = build_parallel(src, tmp, up_to, stats, diag, built, sizeof built, err);
    if (rc == NOT_DISJOINT) {
        part_job *job = calloc(1, sizeof *job);
        rc = job != NULL ? BSS_OK : BSS_ERR_NOMEM;
        if (rc == BSS_OK) {
            *job = (part_job){src, up_to, diag, 0, mypage_projection_nstreams, "", {0}, 0, ""};
            snprintf(job->path, sizeof job->path, "%s", tmp);
            memset(stats, 0, sizeof *stats);
            rc = build_part(job);
            add_stats(stats, &job->stats);
            bss_seterr(err, "%s", job->err);
            snprintf(built, sizeof built, "%s", tmp);
        } else {
            bss_seterr(err, "out of memory");
        }
        free(job);
    }
    if (rc == BSS_OK && rename(built, out_path) != 0) {
        bss_seterr(err, "rename %s to %s failed", built, out_path);
        rc = BSS_ERR_IO;
    }
    if (rc != BSS_OK && built[0] != '\0')
        unlink(built);
    stats->seconds = (double)(bss_monotonic_ns() - started) / 1e9;
    stats->cpu_seconds = cpu_seconds(RUSAGE_SELF) - cpu_start;
    return rc;
}

/* ---- verify ---- */

static int read_positions(sqlite3 *db, const char *path, replay_positions *out, char *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT partition, position FROM inbox WHERE stream = ?1"
                           " AND position > 0 ORDER BY partition",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "%s has no inbox table: %s", path, sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    int rc = BSS_OK;
    for (size_t s = 0; rc == BSS_OK && s < mypage_projection_nstreams && s < REPLAY_MAX_STREAMS;
         s++) {
        snprintf(out->stream[s], sizeof out->stream[s], "%s", mypage_projection_streams[s]);
        out->n = s + 1;
        replay_marks *m = &out->marks[s];
        sqlite3_bind_text(st, 1, mypage_projection_streams[s], -1, SQLITE_STATIC);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && m->n < REPLAY_MAX_PARTITIONS) {
            m->partition[m->n] = sqlite3_column_int(st, 0);
            m->position[m->n++] = sqlite3_column_int64(st, 1);
        }
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            bss_seterr(err, "read inbox of %s: %s", path, sqlite3_errmsg(db));
            rc = BSS_ERR_IO;
        }
        sqlite3_reset(st);
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
        if (rows->n > 1) /* an empty table has no array at all */
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
        /* Every partition either side names; both lists are short. */
        const replay_marks *l = &live.positions.marks[s], *r = &rebuilt.positions.marks[s];
        for (size_t side = 0; side < 2; side++) {
            const replay_marks *m = side == 0 ? l : r;
            for (size_t i = 0; i < m->n; i++) {
                int32_t p = m->partition[i];
                if (side == 1 && replay_marks_get(l, p) != 0)
                    continue; /* compared from the live side */
                int64_t at_live = replay_marks_get(l, p), at_rebuilt = replay_marks_get(r, p);
                if (at_live == at_rebuilt)
                    continue;
                fprintf(out,
                        "positions differ: live has applied %s partition %d up to %lld, the"
                        " rebuild up to %lld (compare a rebuild made at the live positions:"
                        " verify without --rebuilt)\n",
                        live.positions.stream[s], (int)p, (long long)at_live,
                        (long long)at_rebuilt);
                (*differences)++;
            }
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
