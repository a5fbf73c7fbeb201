/*
 * test_evstore.c - the event store's contract on a real SQLite file:
 * append and load, optimistic concurrency, idempotent append, outbox and
 * inbox atomicity with the domain's own writes, durability across reopen.
 */
#include "bss_error.h"
#include "check.h"
#include "envelope.h"
#include "evstore.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static check_counts counts;

static bss_store *open_store(const char *path)
{
    bss_store *store = NULL;
    char err[BSS_ERRLEN];
    bss_store_options o = {.path = path, .source = "customer"};
    if (bss_store_open(&o, &store, err) != BSS_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(2);
    }
    return store;
}

static bss_event *make(const char *type, const char *subject, const char *data)
{
    bss_event *ev = bss_event_new(type, subject, data, NULL);
    if (ev == NULL)
        exit(2);
    return ev;
}

typedef struct collected {
    int n;
    char types[16][BSS_EVENT_TYPE_MAX + 1];
    int64_t versions[16];
    int64_t sequences[16];
} collected;

static int collect(void *ctx, const bss_event *ev)
{
    collected *c = ctx;
    if (c->n < 16) {
        snprintf(c->types[c->n], sizeof c->types[c->n], "%s", ev->type);
        c->versions[c->n] = ev->version;
        c->sequences[c->n] = ev->sequence;
    }
    c->n++;
    return 0;
}

/* count_rows inside the caller's open transaction. */
static int64_t count_in_tx(bss_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(bss_store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int64_t count_rows(bss_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (bss_store_begin(s, NULL) != BSS_OK)
        return -1;
    if (sqlite3_prepare_v2(bss_store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    bss_store_rollback(s);
    return n;
}

static void test_append_and_load(bss_store *s)
{
    char err[BSS_ERRLEN];
    bss_event *a = make("LineOpened", "L1", "{\"productCd\":\"IOT-BASIC\"}");
    bss_event *b = make("LineSuspended", "L1", NULL);
    bss_event *batch[] = {a, b};
    CHECK(&counts, bss_store_append_tx(s, "L1", 0, batch, 2, err) == BSS_OK);
    CHECK(&counts, a->version == 1 && b->version == 2);
    CHECK(&counts, a->sequence == 1 && b->sequence == 2);
    CHECK(&counts, strcmp(a->source, "customer") == 0);

    bss_event *other = make("LineOpened", "L2", NULL);
    CHECK(&counts, bss_store_append_tx(s, "L2", 0, &other, 1, err) == BSS_OK);
    CHECK(&counts, other->sequence == 3 && other->version == 1);

    collected c = {0};
    CHECK(&counts, bss_store_load_stream(s, "L1", 0, collect, &c, err) == BSS_OK);
    CHECK(&counts, c.n == 2 && strcmp(c.types[0], "LineOpened") == 0 &&
                       strcmp(c.types[1], "LineSuspended") == 0 && c.versions[1] == 2);
    collected after = {0};
    CHECK(&counts, bss_store_load_stream(s, "L1", 1, collect, &after, err) == BSS_OK);
    CHECK(&counts, after.n == 1 && after.versions[0] == 2);

    collected from = {0};
    CHECK(&counts, bss_store_read_from(s, 1, 10, collect, &from, err) == BSS_OK);
    CHECK(&counts, from.n == 2 && from.sequences[0] == 2 && from.sequences[1] == 3);
    collected limited = {0};
    CHECK(&counts, bss_store_read_from(s, 0, 1, collect, &limited, err) == BSS_OK);
    CHECK(&counts, limited.n == 1 && limited.sequences[0] == 1);

    int64_t version = -1, head = -1;
    CHECK(&counts, bss_store_version(s, "L1", &version, err) == BSS_OK && version == 2);
    CHECK(&counts, bss_store_version(s, "nobody", &version, err) == BSS_OK && version == 0);
    CHECK(&counts, bss_store_head(s, &head, err) == BSS_OK && head == 3);
    bss_event_free(a);
    bss_event_free(b);
    bss_event_free(other);
}

static void test_conflict_writes_nothing(bss_store *s)
{
    char err[BSS_ERRLEN];
    int64_t head_before = 0, head_after = 0, backlog_before = 0, backlog_after = 0;
    bss_store_head(s, &head_before, err);
    bss_store_outbox_backlog(s, &backlog_before, err);
    bss_event *stale = make("LineResumed", "L1", NULL);
    /* L1 is at version 2: a writer that read version 1 must lose. */
    CHECK(&counts, bss_store_append_tx(s, "L1", 1, &stale, 1, err) == BSS_ERR_CONFLICT);
    CHECK(&counts, strstr(err, "version 2") != NULL);
    CHECK(&counts, stale->sequence == 0 && stale->version == 0);
    bss_store_head(s, &head_after, err);
    bss_store_outbox_backlog(s, &backlog_after, err);
    CHECK(&counts, head_after == head_before && backlog_after == backlog_before);
    /* The same event with the right expectation goes in. */
    CHECK(&counts, bss_store_append_tx(s, "L1", 2, &stale, 1, err) == BSS_OK);
    CHECK(&counts, stale->version == 3);
    bss_event *any = make("LineNoted", "L1", NULL);
    CHECK(&counts, bss_store_append_tx(s, "L1", BSS_ANY_VERSION, &any, 1, err) == BSS_OK);
    CHECK(&counts, any->version == 4);
    /* A conflict inside a transaction leaves the caller's transaction usable. */
    bss_event *late = make("LineNoted", "L1", NULL);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_append(s, "L1", 0, &late, 1, err) == BSS_ERR_CONFLICT);
    CHECK(&counts, bss_store_append(s, "L1", 4, &late, 1, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, late->version == 5);
    bss_event_free(stale);
    bss_event_free(any);
    bss_event_free(late);
}

static void test_idempotent_append(bss_store *s)
{
    char err[BSS_ERRLEN];
    bss_event *ev = make("LineOpened", "L3", NULL);
    CHECK(&counts, bss_store_append_tx(s, "L3", 0, &ev, 1, err) == BSS_OK);
    int64_t seq = ev->sequence, head = 0, head2 = 0;
    bss_store_head(s, &head, err);
    /* A retry of the same event (same id), even with a stale expectation. */
    bss_event *retry = bss_event_clone(ev);
    retry->sequence = 0;
    retry->version = 0;
    CHECK(&counts, bss_store_append_tx(s, "L3", 0, &retry, 1, err) == BSS_OK);
    CHECK(&counts, retry->sequence == seq && retry->version == 1);
    bss_store_head(s, &head2, err);
    CHECK(&counts, head2 == head);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM events WHERE subject = 'L3'") == 1);
    bss_event_free(ev);
    bss_event_free(retry);
}

static void test_outbox_atomicity(bss_store *s)
{
    char err[BSS_ERRLEN];
    sqlite3_exec(bss_store_db(s), "CREATE TABLE IF NOT EXISTS lines(no TEXT PRIMARY KEY)",
                 NULL, NULL, NULL);
    int64_t events_before = count_rows(s, "SELECT COUNT(*) FROM events");
    int64_t outbox_before = count_rows(s, "SELECT COUNT(*) FROM outbox");

    /* A transaction that writes domain state and an event, then fails. */
    bss_event *ev = make("LineOpened", "L9", NULL);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, sqlite3_exec(bss_store_db(s), "INSERT INTO lines VALUES('L9')", NULL, NULL,
                                NULL) == SQLITE_OK);
    CHECK(&counts, bss_store_append(s, "L9", 0, &ev, 1, err) == BSS_OK);
    bss_store_rollback(s);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM events") == events_before);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM outbox") == outbox_before);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM lines") == 0);

    /* The same with commit: all three are there. */
    bss_event *ok = make("LineOpened", "L9", NULL);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    sqlite3_exec(bss_store_db(s), "INSERT INTO lines VALUES('L9')", NULL, NULL, NULL);
    CHECK(&counts, bss_store_append(s, "L9", 0, &ok, 1, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM events") == events_before + 1);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM outbox") == outbox_before + 1);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM lines") == 1);

    /* Sequences stay gapless after a rollback. */
    CHECK(&counts, ok->sequence == events_before + 1);

    /* The relay's view: read in order, then ack. */
    int64_t backlog = 0;
    CHECK(&counts, bss_store_outbox_backlog(s, &backlog, err) == BSS_OK &&
                       backlog == outbox_before + 1);
    CHECK(&counts, bss_store_outbox_ack(s, ok->sequence - 1, err) == BSS_OK);
    CHECK(&counts, bss_store_outbox_backlog(s, &backlog, err) == BSS_OK && backlog == 1);
    CHECK(&counts, bss_store_outbox_ack(s, ok->sequence, err) == BSS_OK);
    CHECK(&counts, bss_store_outbox_backlog(s, &backlog, err) == BSS_OK && backlog == 0);
    bss_event_free(ev);
    bss_event_free(ok);
}

static void test_inbox(bss_store *s)
{
    char err[BSS_ERRLEN];
    int64_t pos = -1;
    CHECK(&counts, bss_store_inbox_get(s, "rater", 0, &pos, err) == BSS_OK && pos == 0);
    CHECK(&counts, bss_store_inbox_set(s, "rater", 0, 5, err) == BSS_ERR_INVALID);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_inbox_set(s, "rater", 0, 5, err) == BSS_OK);
    CHECK(&counts, bss_store_inbox_get(s, "rater", 0, &pos, err) == BSS_OK && pos == 5);
    bss_store_rollback(s);
    CHECK(&counts, bss_store_inbox_get(s, "rater", 0, &pos, err) == BSS_OK && pos == 0);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_inbox_set(s, "rater", 0, 7, err) == BSS_OK);
    CHECK(&counts, bss_store_inbox_set(s, "rater", 3, 1, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, bss_store_inbox_get(s, "rater", 0, &pos, err) == BSS_OK && pos == 7);
    CHECK(&counts, bss_store_inbox_get(s, "rater", 3, &pos, err) == BSS_OK && pos == 1);
}

static void test_bad_arguments(bss_store *s)
{
    char err[BSS_ERRLEN];
    bss_event *ev = make("LineOpened", "L5", NULL);
    CHECK(&counts, bss_store_append(s, "L5", 0, &ev, 1, err) == BSS_ERR_INVALID);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_append(s, "other", 0, &ev, 1, err) == BSS_ERR_INVALID);
    CHECK(&counts, bss_store_append(s, "L5", 0, &ev, 0, err) == BSS_ERR_INVALID);
    bss_store_rollback(s);
    bss_store *bad = NULL;
    bss_store_options o = {.path = "/nonexistent-dir/x.db", .source = "customer"};
    CHECK(&counts, bss_store_open(&o, &bad, err) == BSS_ERR_IO && bad == NULL);
    bss_store_options nosource = {.path = "/tmp/x.db", .source = ""};
    CHECK(&counts, bss_store_open(&nosource, &bad, err) == BSS_ERR_INVALID);
    bss_event_free(ev);
}

/* bss_store_append_many: one event per subject (and a subject twice), in
 * one savepoint; versions follow each subject's stream, ids already stored
 * are skipped, and a failure keeps nothing of the call. */
static void test_append_many(bss_store *s)
{
    char err[BSS_ERRLEN];
    bss_event *first = make("UsageRated", "M1", "{\"n\":0}");
    CHECK(&counts, bss_store_append_tx(s, "M1", 0, &first, 1, err) == BSS_OK);
    int64_t head = 0;
    CHECK(&counts, bss_store_head(s, &head, err) == BSS_OK);
    bss_event *evs[5] = {make("UsageRated", "M1", "{\"n\":1}"),
                         make("UsageRated", "M2", "{\"n\":2}"),
                         make("UsageRated", "M2", "{\"n\":3}"),
                         make("UsageRated", "M3", "{\"n\":4}"),
                         make("UsageRated", "M1", "{\"n\":5}")};
    CHECK(&counts, bss_store_append_many(s, evs, 5, err) == BSS_ERR_INVALID); /* no txn */
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_append_many(s, evs, 0, err) == BSS_ERR_INVALID);
    CHECK(&counts, bss_store_append_many(s, evs, 5, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, evs[0]->version == 2 && evs[4]->version == 3);
    CHECK(&counts, evs[1]->version == 1 && evs[2]->version == 2 && evs[3]->version == 1);
    for (int i = 0; i < 5; i++)
        CHECK(&counts, evs[i]->sequence == head + 1 + i &&
                           strcmp(evs[i]->source, "customer") == 0);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM outbox WHERE sequence > (SELECT"
                                 " MAX(sequence) - 5 FROM events)") == 5);
    collected c = {0};
    CHECK(&counts, bss_store_load_stream(s, "M1", 0, collect, &c, err) == BSS_OK && c.n == 3);

    /* A retry of events already stored, beside a new one: only the new one
     * is written; the others get their stored sequence and version back. */
    bss_event *again[2] = {bss_event_clone(evs[1]), make("UsageRated", "M2", "{\"n\":6}")};
    again[0]->sequence = again[0]->version = 0;
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_append_many(s, again, 2, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, again[0]->sequence == evs[1]->sequence && again[0]->version == 1);
    CHECK(&counts, again[1]->version == 3 && again[1]->sequence == head + 6);

    /* An insert failing halfway (a trigger refuses subject BAD) undoes the
     * whole call but leaves the transaction and the caller's writes. */
    sqlite3 *db = NULL;
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    db = bss_store_db(s);
    CHECK(&counts, sqlite3_exec(db,
                                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events"
                                " WHEN NEW.subject = 'BAD' BEGIN SELECT RAISE(ABORT, 'no'); END;"
                                " CREATE TABLE marks(x); INSERT INTO marks VALUES(1)",
                                NULL, NULL, NULL) == SQLITE_OK);
    bss_event *bad[3] = {make("UsageRated", "M4", NULL), make("UsageRated", "BAD", NULL),
                         make("UsageRated", "M5", NULL)};
    int64_t before = count_in_tx(s, "SELECT COUNT(*) FROM events");
    CHECK(&counts, bss_store_append_many(s, bad, 3, err) != BSS_OK);
    CHECK(&counts, bad[0]->sequence == 0 && bad[0]->version == 0);
    CHECK(&counts, count_in_tx(s, "SELECT COUNT(*) FROM events") == before);
    CHECK(&counts, bss_store_append_many(s, bad, 1, err) == BSS_OK);
    CHECK(&counts, sqlite3_exec(db, "DROP TRIGGER refuse", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM events") == before + 1);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM marks") == 1);
    bss_event_free(first);
    for (int i = 0; i < 5; i++)
        bss_event_free(evs[i]);
    for (int i = 0; i < 2; i++)
        bss_event_free(again[i]);
    for (int i = 0; i < 3; i++)
        bss_event_free(bad[i]);
}

/* append_many past MANY_ROWS (64) events, the multi-row path: subjects
 * repeated inside a run and across runs, a subject with earlier events;
 * then a run holding an event already stored, which goes one by one. */
static void test_append_many_runs(bss_store *s)
{
    char err[BSS_ERRLEN];
    enum { N = 150, SUBJECTS = 60 };
    bss_event *first = make("UsageRated", "R0", NULL);
    CHECK(&counts, bss_store_append_tx(s, "R0", 0, &first, 1, err) == BSS_OK);
    int64_t head = 0;
    CHECK(&counts, bss_store_head(s, &head, err) == BSS_OK);
    bss_event *evs[N];
    char subject[16];
    for (int i = 0; i < N; i++) {
        snprintf(subject, sizeof subject, "R%d", (i * 7) % SUBJECTS);
        evs[i] = make("UsageRated", subject, NULL);
    }
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_append_many(s, evs, N, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    int64_t next[SUBJECTS] = {0};
    next[0] = 1; /* R0's first event */
    int ok = 1;
    for (int i = 0; i < N; i++) {
        int k = (i * 7) % SUBJECTS;
        ok = ok && evs[i]->version == ++next[k] && evs[i]->sequence == head + 1 + i;
    }
    CHECK(&counts, ok);
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM outbox o JOIN events e USING(sequence)"
                                 " WHERE e.type = 'UsageRated' AND e.subject LIKE 'R%'") ==
                       N + 1);
    collected c = {0};
    CHECK(&counts, bss_store_load_stream(s, "R0", 0, collect, &c, err) == BSS_OK &&
                       c.n == 1 + (N + SUBJECTS - 1) / SUBJECTS &&
                       c.versions[c.n - 1] == c.n);

    bss_event *again[70];
    for (int i = 0; i < 70; i++)
        again[i] = make("UsageRated", "R1", NULL);
    bss_event_free(again[10]);
    again[10] = bss_event_clone(evs[3]);
    again[10]->sequence = again[10]->version = 0;
    int64_t r1 = 0;
    CHECK(&counts, bss_store_version(s, "R1", &r1, err) == BSS_OK);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    CHECK(&counts, bss_store_append_many(s, again, 70, err) == BSS_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    CHECK(&counts, again[10]->sequence == evs[3]->sequence &&
                       again[10]->version == evs[3]->version);
    CHECK(&counts, again[0]->version == r1 + 1 && again[69]->version == r1 + 69 &&
                       again[69]->sequence == head + N + 69);
    bss_event_free(first);
    for (int i = 0; i < N; i++)
        bss_event_free(evs[i]);
    for (int i = 0; i < 70; i++)
        bss_event_free(again[i]);
}

static long long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    fseek(f, 0, SEEK_END);
    long long n = ftell(f);
    fclose(f);
    return n;
}

/* bss_store_commit_checkpoint_later: the commit is there for everyone at
 * once, its pages stay in the WAL (the database file does not grow), and
 * the next plain commit checkpoints them. */
static void test_commit_checkpoint_later(bss_store *s, const char *path)
{
    char err[BSS_ERRLEN];
    sqlite3 *db = NULL;
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    db = bss_store_db(s);
    CHECK(&counts, sqlite3_exec(db, "CREATE TABLE big(x BLOB)", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(&counts, bss_store_commit(s, err) == BSS_OK);
    long long before = file_size(path);
    CHECK(&counts, bss_store_begin(s, err) == BSS_OK);
    /* 8 MB: about 2,000 pages, past the autocheckpoint's 1,000 */
    CHECK(&counts, sqlite3_exec(bss_store_db(s),
                                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                                " WHERE i < 2000) INSERT INTO big SELECT randomblob(4000) FROM n",
                                NULL, NULL, NULL) == SQLITE_OK);
    bss_event *ev = make("Big", "B1", NULL);
    CHECK(&counts, bss_store_append(s, "B1", 0, &ev, 1, err) == BSS_OK);
    CHECK(&counts, bss_store_commit_checkpoint_later(s, err) == BSS_OK);
    CHECK(&counts, !bss_store_in_transaction(s));
    CHECK(&counts, count_rows(s, "SELECT COUNT(*) FROM big") == 2000);
    CHECK(&counts, file_size(path) < before + 1000000);
    bss_event *next = make("Small", "B1", NULL);
    CHECK(&counts, bss_store_append_tx(s, "B1", 1, &next, 1, err) == BSS_OK);
    CHECK(&counts, file_size(path) > before + 8000000);
    bss_event_free(ev);
    bss_event_free(next);
}


/* The pool's readers are opened with the store and are all it ever keeps
 * (issue 9's soak counts descriptors): reading adds no descriptor, a read
 * that finds the pool lent out waits for a reader to come back, and one
 * that waits in vain (a thread holding every reader and asking for more)
 * gets a connection of its own instead of waiting forever. */
typedef struct late_release {
    bss_store *store;
    sqlite3 *db;
} late_release;

/* Gives the reader back as soon as it runs: the acquire racing it either
 * finds the reader back or waits for it, well inside its 200 ms. */
static void *release_later(void *arg)
{
    late_release *l = arg;
    bss_store_reader_release(l->store, l->db);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void test_reader_pool_is_fixed(const char *dir)
{
    char path[160], err[BSS_ERRLEN];
    snprintf(path, sizeof path, "%s/pool.db", dir);
    int before = tu_open_fds();
    bss_store *s = open_store(path);
    int opened = tu_open_fds();
    CHECK(&counts, opened >= before + 3 + 2 * 4); /* writer: db, wal, shm; 4 readers */
    sqlite3 *db[5] = {0};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            CHECK(&counts, bss_store_reader_acquire(s, &db[i], err) == BSS_OK);
            CHECK(&counts, sqlite3_exec(db[i], "SELECT COUNT(*) FROM events", NULL, NULL, NULL) ==
                               SQLITE_OK);
        }
        CHECK(&counts, tu_open_fds() == opened);
        for (int i = 0; i < 4; i++)
            bss_store_reader_release(s, db[i]);
        CHECK(&counts, tu_open_fds() == opened);
    }

    /* All four lent out: the next read waits for the one given back. */
    for (int i = 0; i < 4; i++)
        CHECK(&counts, bss_store_reader_acquire(s, &db[i], err) == BSS_OK);
    late_release late = {s, db[3]};
    pthread_t thread;
    CHECK(&counts, pthread_create(&thread, NULL, release_later, &late) == 0);
    CHECK(&counts, bss_store_reader_acquire(s, &db[4], err) == BSS_OK);
    pthread_join(thread, NULL);
    CHECK(&counts, db[4] == db[3]);
    CHECK(&counts, tu_open_fds() == opened);

    /* Nobody gives one back: after the wait, a connection of its own. */
    double started = now_s();
    sqlite3 *extra = NULL;
    CHECK(&counts, bss_store_reader_acquire(s, &extra, err) == BSS_OK);
    CHECK(&counts, now_s() - started >= 0.15);
    CHECK(&counts, extra != NULL && extra != db[0] && extra != db[1] && extra != db[2] &&
                       extra != db[4]);
    CHECK(&counts, sqlite3_exec(extra, "SELECT COUNT(*) FROM events", NULL, NULL, NULL) ==
                       SQLITE_OK);
    bss_store_reader_release(s, extra);
    for (int i = 0; i < 3; i++)
        bss_store_reader_release(s, db[i]);
    bss_store_reader_release(s, db[4]);
    bss_store_close(s);
    CHECK(&counts, tu_open_fds() == before);
}

int main(void)
{
    char dir[] = "/tmp/bss-evstore-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    char path[128];
    snprintf(path, sizeof path, "%s/customer.db", dir);
    bss_store *s = open_store(path);
    test_append_and_load(s);
    test_conflict_writes_nothing(s);
    test_idempotent_append(s);
    test_outbox_atomicity(s);
    test_inbox(s);
    test_bad_arguments(s);
    bss_store_close(s);

    /* Everything committed is there after reopening the file. */
    s = open_store(path);
    int64_t head = 0, version = 0;
    CHECK(&counts, bss_store_head(s, &head, NULL) == BSS_OK && head == 8);
    CHECK(&counts, bss_store_version(s, "L1", &version, NULL) == BSS_OK && version == 5);
    test_append_many(s);
    test_append_many_runs(s);
    test_commit_checkpoint_later(s, path);
    bss_store_close(s);
    test_reader_pool_is_fixed(dir);

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE(&counts);
}
