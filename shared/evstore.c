/*
 * evstore.c - see evstore.h.
 *
 * One write connection guarded by `write_lock`, whose holder is recorded in
 * `writer` so that reads from inside the transaction use it too; a pool of
 * read connections for everything else. Hot statements are prepared once.
 */
#include "evstore.h"

#include "bss_error.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The read connections of the pool, all opened with the store. A reader
 * costs two descriptors (the file and its WAL), its schema, its cached
 * statements and up to READER_CACHE_KIB of pages. The pool used to open one
 * whenever more reads than ever before ran at once and keep it (up to 32,
 * civetweb's worker count), so a service's descriptors and memory grew for
 * minutes under steady load, each new reader filling a cache of its own
 * (bench/soak.py). More concurrent reads do not run faster on the two
 * cores this targets: a read that finds the pool's readers all lent out
 * waits for one. A connection of its own, closed when given back, is only
 * for a read that waited READER_WAIT_MS in vain: a thread already holding
 * a reader may ask for another (a callback of bss_store_read_* reading
 * again), and every reader could be held so. Closing such a connection
 * does not always give its descriptor back at once: while others hold
 * locks on the file SQLite keeps it for the next connection it opens. */
#define READ_POOL_SIZE 4
#define READER_WAIT_MS 200
/* Most units of work one group commit holds: bounds how long the first
 * member of a group waits for its answer. */
#define GROUP_MAX 64

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS events("
    "  sequence INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  correlation_id TEXT NOT NULL DEFAULT '',"
    "  causation_id TEXT NOT NULL DEFAULT '',"
    "  data TEXT NOT NULL,"
    "  UNIQUE(subject, version));"
    "CREATE TABLE IF NOT EXISTS outbox(sequence INTEGER PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS inbox("
    "  stream TEXT NOT NULL, partition INTEGER NOT NULL, position INTEGER NOT NULL,"
    "  PRIMARY KEY(stream, partition)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS dead_letters("
    "  id INTEGER PRIMARY KEY, stream TEXT NOT NULL, partition INTEGER NOT NULL,"
    "  position INTEGER NOT NULL, payload BLOB, reason TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS store_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);";

#define EVENT_COLUMNS \
    "sequence, id, type, subject, version, time_ms, correlation_id, causation_id, data"

/* Every statement of the write path, prepared once on the write connection
 * (SQLITE_PREPARE_PERSISTENT): re-parsing even "COMMIT" on every call was a
 * third of the cost of a begin. */
enum {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_APPEND_SAVEPOINT,
    STMT_APPEND_RELEASE,
    STMT_APPEND_ROLLBACK_TO,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_FIND_ID,
    STMT_VERSION,
    STMT_INSERT_EVENT,
    STMT_INSERT_EVENT_NEW,
    STMT_INSERT_OUTBOX,
    STMT_INBOX_GET,
    STMT_INBOX_SET,
    STMT_OUTBOX_ACK,
    STMT_DEAD_LETTER,
    STMT_GROUP_SAVEPOINT,
    STMT_GROUP_RELEASE,
    STMT_GROUP_ROLLBACK_TO,
    STMT_MAX_SEQUENCE,
    STMT_OUTBOX_RANGE,
    STMT_COUNT
};

static const char *STMT_SQL[STMT_COUNT] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT bss_append",
    "RELEASE bss_append",
    "ROLLBACK TO bss_append",
    "SAVEPOINT bss_savepoint",
    "RELEASE bss_savepoint",
    "ROLLBACK TO bss_savepoint",
    "SELECT sequence, version FROM events WHERE id = ?1",
    "SELECT COALESCE(MAX(version), 0) FROM events WHERE subject = ?1",
    "INSERT INTO events(id, type, subject, version, time_ms, correlation_id,"
    " causation_id, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "INSERT INTO events(id, type, subject, version, time_ms, correlation_id,"
    " causation_id, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(id) DO NOTHING",
    "INSERT INTO outbox(sequence) VALUES(?1)",
    "SELECT position FROM inbox WHERE stream = ?1 AND partition = ?2",
    "INSERT INTO inbox(stream, partition, position) VALUES(?1, ?2, ?3)"
    " ON CONFLICT(stream, partition) DO UPDATE SET position = excluded.position",
    "DELETE FROM outbox WHERE sequence <= ?1",
    "INSERT INTO dead_letters(stream, partition, position, payload, reason, time_ms)"
    " VALUES(?1, ?2, ?3, ?4, ?5, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
    "SAVEPOINT bss_group",
    "RELEASE bss_group",
    "ROLLBACK TO bss_group",
    "SELECT COALESCE(MAX(sequence), 0) FROM events",
    "INSERT INTO outbox(sequence) SELECT sequence FROM events"
    " WHERE sequence > ?1 AND sequence <= ?2",
};

/* bss_store_append_many writes full runs of MANY_ROWS events with one
 * statement for their subjects' versions and one for the rows (their
 * outbox rows with STMT_OUTBOX_RANGE): per row, a statement's fixed cost
 * (cursors opened and closed on the table and each index) was more than
 * the B-tree work itself. */
#define MANY_ROWS 64
#define EVENT_BINDS 8
/* append_run's answer when a run must go one by one instead */
#define RUN_ONE_BY_ONE 1

/* One unit of work waiting for the COMMIT of its group. Lives on the
 * waiting thread's stack; the thread that commits fills rc/err and sets
 * done under commit_lock, and never touches it afterwards. */
struct group_member {
    struct group_member *next;
    int done;
    int rc;
    char err[BSS_ERRLEN];
};

struct bss_store {
    char *path;
    char source[BSS_EVENT_SOURCE_MAX + 1];
    int synchronous_full;
    int busy_timeout_ms;

    pthread_mutex_t write_lock;
    _Atomic pthread_t writer;   /* read by other threads in holds_transaction */
    _Atomic int in_transaction;
    int appended_in_transaction;
    sqlite3 *wdb;
    sqlite3_stmt *stmt[STMT_COUNT];
    sqlite3_stmt *many_versions, *many_events; /* prepared on first use */

    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;           /* a reader came back to the pool */
    sqlite3 *readers[READ_POOL_SIZE];   /* the pool's connections */
    sqlite3 *pool[READ_POOL_SIZE];      /* those not lent out */
    int pool_count;

    pthread_mutex_t commit_lock;
    pthread_cond_t commit_cond;
    uint64_t commit_generation;
    int closing;

    /* Group commit. group_open: the write transaction holds grouped units
     * of work not yet committed (their threads wait in group_members).
     * in_unit: the lock holder runs a grouped unit now. Both only change
     * under write_lock. group_waiting counts threads queued in
     * bss_store_group_begin, read by the holder to decide whether to hand
     * the transaction on or commit it. group_cond (with commit_lock) wakes
     * members once their group committed. */
    int group_open;
    int in_unit;
    int unit_savepoint; /* the current unit runs in a savepoint (see group_begin) */
    int group_count;
    struct group_member *group_members;
    _Atomic int group_waiting;
    pthread_cond_t group_cond;

    bss_store_txn_end_fn txn_end;
    void *txn_end_ctx;
};

/* Closes a connection of the store, finalizing the statements cached on it
 * (bss_store_prepare_cached) first: sqlite3_close refuses to close a
 * connection with live statements. */
static void close_connection(sqlite3 *db)
{
    if (db == NULL)
        return;
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Page cache of a read connection, KiB. SQLite's default (2000 KiB) is
 * per connection and fills as the store grows, so a service with a handful
 * of readers (the pool, the catch-up feed) kept up to 10 MB of pages it
 * reads again rarely: point lookups and the newest events, which the OS's
 * page cache holds anyway. The write connection keeps the default. */
#define READER_CACHE_KIB 512

static int open_connection(const bss_store *s, sqlite3 **out, char *err);

static int open_reader(const bss_store *s, sqlite3 **out, char *err)
{
    int rc = open_connection(s, out, err);
    if (rc != BSS_OK)
        return rc;
    char pragma[48];
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%d", READER_CACHE_KIB);
    if (sqlite3_exec(*out, pragma, NULL, NULL, NULL) != SQLITE_OK) {
        bss_seterr(err, "configure %s: %s", s->path, sqlite3_errmsg(*out));
        close_connection(*out);
        *out = NULL;
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

static int open_connection(const bss_store *s, sqlite3 **out, char *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(s->path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        bss_seterr(err, "open %s: %s", s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return BSS_ERR_IO;
    }
    sqlite3_busy_timeout(db, s->busy_timeout_ms);
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;",
             s->synchronous_full ? "FULL" : "NORMAL");
    char *msg = NULL;
    if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        bss_seterr(err, "configure %s: %s", s->path, msg ? msg : "?");
        sqlite3_free(msg);
        close_connection(db);
        return BSS_ERR_IO;
    }
    *out = db;
    return BSS_OK;
}

int bss_store_open(const bss_store_options *opts, bss_store **out, char *err)
{
    if (opts == NULL || opts->path == NULL || opts->source == NULL ||
        opts->source[0] == '\0' || strlen(opts->source) > BSS_EVENT_SOURCE_MAX) {
        bss_seterr(err, "store needs a path and a source of 1..%d bytes", BSS_EVENT_SOURCE_MAX);
        return BSS_ERR_INVALID;
    }
    bss_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(opts->path)) == NULL) {
        free(s);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    snprintf(s->source, sizeof s->source, "%s", opts->source);
    s->synchronous_full = opts->synchronous_full;
    s->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_mutex_init(&s->commit_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->commit_cond, &attr);
    pthread_cond_init(&s->pool_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&s->group_cond, NULL);

    int rc = open_connection(s, &s->wdb, err);
    if (rc == BSS_OK) {
        char *msg = NULL;
        if (sqlite3_exec(s->wdb, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
            bss_seterr(err, "create schema in %s: %s", s->path, msg ? msg : "?");
            rc = BSS_ERR_IO;
        }
        sqlite3_free(msg);
    }
    for (int i = 0; rc == BSS_OK && i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(s->wdb, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->stmt[i], NULL) != SQLITE_OK) {
            bss_seterr(err, "prepare: %s", sqlite3_errmsg(s->wdb));
            rc = BSS_ERR_IO;
        }
    }
    for (int i = 0; rc == BSS_OK && i < READ_POOL_SIZE; i++) {
        rc = open_reader(s, &s->readers[i], err);
        if (rc == BSS_OK)
            s->pool[s->pool_count++] = s->readers[i];
    }
    if (rc != BSS_OK) {
        bss_store_close(s);
        return rc;
    }
    *out = s;
    return BSS_OK;
}

void bss_store_close(bss_store *s)
{
    if (s == NULL)
        return;
    bss_store_wake_all(s);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_finalize(s->many_versions);
    sqlite3_finalize(s->many_events);
    close_connection(s->wdb);
    for (int i = 0; i < READ_POOL_SIZE; i++)
        close_connection(s->readers[i]);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cond);
    pthread_mutex_destroy(&s->commit_lock);
    pthread_cond_destroy(&s->commit_cond);
    pthread_cond_destroy(&s->group_cond);
    free(s->path);
    free(s);
}

const char *bss_store_source(const bss_store *s) { return s->source; }

static int holds_transaction(bss_store *s)
{
    /* Only the writer sets these, under write_lock; any other thread reads a
     * pthread_t that cannot be its own, so the answer is right for it too. */
    return s->in_transaction && pthread_equal(s->writer, pthread_self());
}

/* Steps a statement that returns no row and resets it; the step's code. */
static int exec_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

/* Wakes the threads waiting in bss_store_wait_commit (called after a
 * commit that appended events, without write_lock). */
static void announce_commit(bss_store *s)
{
    pthread_mutex_lock(&s->commit_lock);
    s->commit_generation++;
    pthread_cond_broadcast(&s->commit_cond);
    pthread_mutex_unlock(&s->commit_lock);
}

/* With write_lock held: commits the open group (every waiting unit's work)
 * and hands each member its outcome. After a failed COMMIT the whole
 * transaction is rolled back and every member gets the error: a unit is
 * answered as kept only when the COMMIT that contains it succeeded. */
static void group_flush(bss_store *s)
{
    if (!s->group_open)
        return;
    int rc = BSS_OK;
    char err[BSS_ERRLEN] = "";
    int step = exec_stmt(s->stmt[STMT_COMMIT]);
    if (step != SQLITE_DONE) {
        bss_seterr(err, "commit: %s", sqlite3_errmsg(s->wdb));
        if (!sqlite3_get_autocommit(s->wdb))
            exec_stmt(s->stmt[STMT_ROLLBACK]);
        rc = (step & 0xff) == SQLITE_BUSY ? BSS_ERR_BUSY : BSS_ERR_IO;
    }
    int notify = rc == BSS_OK && s->appended_in_transaction;
    if (s->txn_end != NULL)
        s->txn_end(s->txn_end_ctx, rc == BSS_OK);
    struct group_member *m = s->group_members;
    s->group_members = NULL;
    s->group_count = 0;
    s->group_open = 0;
    s->appended_in_transaction = 0;
    pthread_mutex_lock(&s->commit_lock);
    for (; m != NULL; m = m->next) {
        m->rc = rc;
        memcpy(m->err, err, sizeof err);
        m->done = 1;
    }
    if (notify)
        s->commit_generation++;
    pthread_cond_broadcast(&s->commit_cond);
    pthread_cond_broadcast(&s->group_cond);
    pthread_mutex_unlock(&s->commit_lock);
}

/* With write_lock held: a BEGIN that failed. Another process holds the
 * file (BUSY after the busy timeout): the lock is let go and the caller
 * pauses a moment before it returns, because the mutex is not fair and a
 * background thread retrying at once (the consumer, the relay) would
 * otherwise take it again before a queued request thread wakes up: that
 * request would wait for the file far longer than one busy timeout instead
 * of getting its 503. */
static int begin_failed(bss_store *s, int rc, char *err)
{
    bss_seterr(err, "begin: %s", sqlite3_errmsg(s->wdb));
    pthread_mutex_unlock(&s->write_lock);
    if ((rc & 0xff) != SQLITE_BUSY)
        return BSS_ERR_IO;
    struct timespec pause = {0, 20 * 1000000L};
    nanosleep(&pause, NULL);
    return BSS_ERR_BUSY;
}

int bss_store_begin(bss_store *s, char *err)
{
    pthread_mutex_lock(&s->write_lock);
    group_flush(s); /* a plain transaction never shares the group's */
    int rc = exec_stmt(s->stmt[STMT_BEGIN]);
    if (rc != SQLITE_DONE)
        return begin_failed(s, rc, err);
    s->writer = pthread_self();
    s->in_transaction = 1;
    s->appended_in_transaction = 0;
    return BSS_OK;
}

sqlite3 *bss_store_db(bss_store *s) { return s->wdb; }

static void end_transaction(bss_store *s, int committed)
{
    if (s->txn_end != NULL)
        s->txn_end(s->txn_end_ctx, committed);
    int notify = committed && s->appended_in_transaction;
    s->in_transaction = 0;
    s->appended_in_transaction = 0;
    pthread_mutex_unlock(&s->write_lock);
    if (notify)
        announce_commit(s);
}

/* With write_lock held and the unit's savepoint ended: lets go of the
 * write connection. The open group goes on to a thread queued in
 * bss_store_group_begin when there is one (it will commit it or hand it
 * on in turn) and the group is not full; otherwise it is committed now. */
static void group_pass_on(bss_store *s)
{
    s->in_unit = 0;
    s->in_transaction = 0;
    if (s->group_open && (atomic_load(&s->group_waiting) == 0 || s->group_count >= GROUP_MAX))
        group_flush(s);
    pthread_mutex_unlock(&s->write_lock);
}

int bss_store_group_begin(bss_store *s, char *err)
{
    atomic_fetch_add(&s->group_waiting, 1);
    pthread_mutex_lock(&s->write_lock);
    atomic_fetch_sub(&s->group_waiting, 1);
    if (!s->group_open) {
        int rc = exec_stmt(s->stmt[STMT_BEGIN]);
        if (rc != SQLITE_DONE)
            return begin_failed(s, rc, err);
        s->group_open = 1;
        s->appended_in_transaction = 0;
    }
    /* The first unit of a group needs no savepoint: if it fails, nobody
     * else's work is in the transaction and all of it can go. Only units
     * joining a group that already holds others' work pay for one (SQLite
     * journals every page a savepoint's work touches). */
    s->unit_savepoint = s->group_count > 0;
    if (s->unit_savepoint && exec_stmt(s->stmt[STMT_GROUP_SAVEPOINT]) != SQLITE_DONE) {
        bss_seterr(err, "savepoint: %s", sqlite3_errmsg(s->wdb));
        if (s->group_count == 0) { /* nobody else's work: drop the transaction */
            if (!sqlite3_get_autocommit(s->wdb))
                exec_stmt(s->stmt[STMT_ROLLBACK]);
            s->group_open = 0;
        }
        group_pass_on(s);
        return BSS_ERR_IO;
    }
    s->writer = pthread_self();
    s->in_transaction = 1;
    s->in_unit = 1;
    return BSS_OK;
}

/* Undoes the current unit's savepoint (the rest of the group stays). */
static void unit_undo(bss_store *s)
{
    if (s->unit_savepoint) {
        exec_stmt(s->stmt[STMT_GROUP_ROLLBACK_TO]);
        exec_stmt(s->stmt[STMT_GROUP_RELEASE]);
    }
    if (s->group_count == 0 && !sqlite3_get_autocommit(s->wdb)) {
        /* Nobody else's work in it: end the transaction rather than commit
         * an empty one. */
        exec_stmt(s->stmt[STMT_ROLLBACK]);
        s->group_open = 0;
        if (s->txn_end != NULL)
            s->txn_end(s->txn_end_ctx, 0);
    } else if (sqlite3_get_autocommit(s->wdb)) {
        /* SQLite ended the transaction itself (some errors roll it all back):
         * whatever members it held are lost; group_flush tells them. */
        s->group_open = s->group_count > 0;
    }
}

int bss_store_group_commit(bss_store *s, char *err)
{
    if (!s->in_unit || !holds_transaction(s)) {
        bss_seterr(err, "group commit outside a grouped unit of work");
        return BSS_ERR_INVALID;
    }
    if (s->unit_savepoint && exec_stmt(s->stmt[STMT_GROUP_RELEASE]) != SQLITE_DONE) {
        bss_seterr(err, "release: %s", sqlite3_errmsg(s->wdb));
        unit_undo(s);
        group_pass_on(s);
        return BSS_ERR_IO;
    }
    /* The member stays on this stack until group_flush has set done (and
     * taken it off the list), which is what the wait below waits for. */
    struct group_member self = {s->group_members, 0, BSS_OK, ""};
    // cppcheck-suppress autoVariables
    s->group_members = &self;
    s->group_count++;
    group_pass_on(s);
    pthread_mutex_lock(&s->commit_lock);
    while (!self.done)
        pthread_cond_wait(&s->group_cond, &s->commit_lock);
    pthread_mutex_unlock(&s->commit_lock);
    if (self.rc != BSS_OK)
        bss_seterr(err, "%s", self.err);
    return self.rc;
}

void bss_store_group_rollback(bss_store *s)
{
    if (!s->in_unit || !holds_transaction(s))
        return;
    unit_undo(s);
    group_pass_on(s);
}

/* SQLite's default wal_autocheckpoint, which the store keeps: a commit that
 * leaves the WAL at this many pages or more checkpoints it. */
#define WAL_AUTOCHECKPOINT_PAGES 1000

static int commit(bss_store *s, int defer_checkpoint, char *err)
{
    if (s->in_unit && holds_transaction(s))
        return bss_store_group_commit(s, err);
    if (defer_checkpoint)
        sqlite3_wal_autocheckpoint(s->wdb, 0);
    int rc = exec_stmt(s->stmt[STMT_COMMIT]);
    /* Restored while write_lock is still held: the next commit, whoever
     * makes it, checkpoints as usual. */
    if (defer_checkpoint)
        sqlite3_wal_autocheckpoint(s->wdb, WAL_AUTOCHECKPOINT_PAGES);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "commit: %s", sqlite3_errmsg(s->wdb));
        if (!sqlite3_get_autocommit(s->wdb))
            exec_stmt(s->stmt[STMT_ROLLBACK]);
        end_transaction(s, 0);
        return (rc & 0xff) == SQLITE_BUSY ? BSS_ERR_BUSY : BSS_ERR_IO;
    }
    end_transaction(s, 1);
    return BSS_OK;
}

int bss_store_commit(bss_store *s, char *err) { return commit(s, 0, err); }

int bss_store_commit_checkpoint_later(bss_store *s, char *err) { return commit(s, 1, err); }

void bss_store_rollback(bss_store *s)
{
    if (s->in_unit && holds_transaction(s)) {
        bss_store_group_rollback(s);
        return;
    }
    if (!sqlite3_get_autocommit(s->wdb))
        exec_stmt(s->stmt[STMT_ROLLBACK]);
    end_transaction(s, 0);
}

int bss_store_in_transaction(bss_store *s) { return holds_transaction(s); }

void bss_store_on_txn_end(bss_store *s, bss_store_txn_end_fn fn, void *ctx)
{
    s->txn_end = fn;
    s->txn_end_ctx = ctx;
}

int bss_store_savepoint(bss_store *s, char *err)
{
    if (!holds_transaction(s)) {
        bss_seterr(err, "savepoint outside a transaction");
        return BSS_ERR_INVALID;
    }
    if (exec_stmt(s->stmt[STMT_SAVEPOINT]) != SQLITE_DONE) {
        bss_seterr(err, "savepoint: %s", sqlite3_errmsg(s->wdb));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int bss_store_savepoint_release(bss_store *s, char *err)
{
    if (exec_stmt(s->stmt[STMT_RELEASE]) != SQLITE_DONE) {
        bss_seterr(err, "release savepoint: %s", sqlite3_errmsg(s->wdb));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int bss_store_savepoint_rollback(bss_store *s)
{
    int rc = exec_stmt(s->stmt[STMT_ROLLBACK_TO]);
    int rc2 = exec_stmt(s->stmt[STMT_RELEASE]);
    return rc == SQLITE_DONE && rc2 == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
}

static int step_error(sqlite3 *db, const char *what, char *err)
{
    int code = sqlite3_extended_errcode(db);
    bss_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
    if ((code & 0xff) == SQLITE_CONSTRAINT)
        return BSS_ERR_CONFLICT;
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
        return BSS_ERR_BUSY;
    return BSS_ERR_IO;
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
    sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

/* Looks the event id up; 1 found (sequence/version filled), 0 not, <0 error. */
static int find_event_id(bss_store *s, bss_event *ev, char *err)
{
    sqlite3_stmt *st = s->stmt[STMT_FIND_ID];
    bind_text(st, 1, ev->id);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        ev->sequence = sqlite3_column_int64(st, 0);
        ev->version = sqlite3_column_int64(st, 1);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = step_error(s->wdb, "find event", err);
    }
    sqlite3_reset(st);
    return found;
}

static int current_version(bss_store *s, const char *subject, int64_t *version, char *err)
{
    sqlite3_stmt *st = s->stmt[STMT_VERSION];
    bind_text(st, 1, subject);
    int rc = sqlite3_step(st);
    int result = BSS_OK;
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(st, 0);
    else
        result = step_error(s->wdb, "read version", err);
    sqlite3_reset(st);
    return result;
}

/* Writes ev and its outbox row. With if_new, an id already stored writes
 * nothing and sets *inserted to 0 instead of failing. */
static int write_event(bss_store *s, bss_event *ev, int if_new, int *inserted, char *err)
{
    sqlite3_stmt *st = s->stmt[if_new ? STMT_INSERT_EVENT_NEW : STMT_INSERT_EVENT];
    bind_text(st, 1, ev->id);
    bind_text(st, 2, ev->type);
    bind_text(st, 3, ev->subject);
    sqlite3_bind_int64(st, 4, ev->version);
    sqlite3_bind_int64(st, 5, ev->time_ms);
    bind_text(st, 6, ev->correlation_id);
    bind_text(st, 7, ev->causation_id);
    bind_text(st, 8, ev->data ? ev->data : "{}");
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return step_error(s->wdb, "append event", err);
    *inserted = !if_new || sqlite3_changes(s->wdb) > 0;
    if (!*inserted)
        return BSS_OK;
    ev->sequence = sqlite3_last_insert_rowid(s->wdb);

    st = s->stmt[STMT_INSERT_OUTBOX];
    sqlite3_bind_int64(st, 1, ev->sequence);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return step_error(s->wdb, "append outbox", err);
    return BSS_OK;
}

/* bss_store_append; without a savepoint when the caller rolls the whole
 * transaction back on any error anyway (append_tx). */
static int append(bss_store *s, const char *subject, int64_t expected_version,
                  bss_event *const *events, size_t n, int use_savepoint, char *err)
{
    if (!holds_transaction(s)) {
        bss_seterr(err, "append outside a transaction");
        return BSS_ERR_INVALID;
    }
    if (subject == NULL || n == 0 || events == NULL) {
        bss_seterr(err, "append needs a subject and at least one event");
        return BSS_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(events[i]->subject, subject) != 0) {
            bss_seterr(err, "event %s is about %s, not %s", events[i]->id,
                       events[i]->subject, subject);
            return BSS_ERR_INVALID;
        }
    }
    if (use_savepoint && exec_stmt(s->stmt[STMT_APPEND_SAVEPOINT]) != SQLITE_DONE)
        return step_error(s->wdb, "savepoint", err);

    int64_t version = 0;
    int rc = current_version(s, subject, &version, err);
    int checked = 0;
    for (size_t i = 0; rc == BSS_OK && i < n; i++) {
        bss_event *ev = events[i];
        int found = find_event_id(s, ev, err);
        if (found < 0) {
            rc = found;
            break;
        }
        if (found)
            continue;
        if (!checked && expected_version != BSS_ANY_VERSION && version != expected_version) {
            bss_seterr(err, "%s is at version %lld, not %lld", subject, (long long)version,
                       (long long)expected_version);
            rc = BSS_ERR_CONFLICT;
            break;
        }
        checked = 1;
        snprintf(ev->source, sizeof ev->source, "%s", s->source);
        ev->version = ++version;
        int inserted;
        rc = write_event(s, ev, 0, &inserted, err);
        if (rc == BSS_OK)
            s->appended_in_transaction = 1;
    }
    if (rc != BSS_OK) {
        if (use_savepoint)
            exec_stmt(s->stmt[STMT_APPEND_ROLLBACK_TO]);
        for (size_t i = 0; i < n; i++) {
            events[i]->sequence = 0;
            events[i]->version = 0;
        }
    }
    if (use_savepoint)
        exec_stmt(s->stmt[STMT_APPEND_RELEASE]);
    return rc;
}

int bss_store_append(bss_store *s, const char *subject, int64_t expected_version,
                     bss_event *const *events, size_t n, char *err)
{
    return append(s, subject, expected_version, events, n, 1, err);
}

/* Prepares the MANY_ROWS statements of append_many once. */
static int prepare_many(bss_store *s, char *err)
{
    if (s->many_events != NULL)
        return BSS_OK;
    char *versions = malloc(128 + MANY_ROWS * 6);
    char *rows = malloc(256 + MANY_ROWS * (EVENT_BINDS * 6 + 4));
    int rc = versions && rows ? BSS_OK : BSS_ERR_NOMEM;
    if (rc == BSS_OK) {
        size_t n = (size_t)sprintf(versions, "SELECT subject, MAX(version) FROM events"
                                             " WHERE subject IN (");
        for (int i = 0; i < MANY_ROWS; i++)
            n += (size_t)sprintf(versions + n, "%s?%d", i ? "," : "", i + 1);
        sprintf(versions + n, ") GROUP BY subject");
        n = (size_t)sprintf(rows, "INSERT INTO events(id, type, subject, version, time_ms,"
                                  " correlation_id, causation_id, data) VALUES");
        for (int i = 0; i < MANY_ROWS; i++)
            n += (size_t)sprintf(rows + n, "%s(?,?,?,?,?,?,?,?)", i ? "," : "");
        if (sqlite3_prepare_v3(s->wdb, versions, -1, SQLITE_PREPARE_PERSISTENT,
                               &s->many_versions, NULL) != SQLITE_OK ||
            sqlite3_prepare_v3(s->wdb, rows, -1, SQLITE_PREPARE_PERSISTENT, &s->many_events,
                               NULL) != SQLITE_OK) {
            bss_seterr(err, "prepare: %s", sqlite3_errmsg(s->wdb));
            sqlite3_finalize(s->many_versions);
            s->many_versions = NULL;
            rc = BSS_ERR_IO;
        }
    } else {
        bss_seterr(err, "out of memory");
    }
    free(versions);
    free(rows);
    return rc;
}

typedef struct run_entry {
    bss_event *ev;
    int index; /* in the run */
} run_entry;

/* By subject, then by place in the run. */
static int run_entry_cmp(const void *a, const void *b)
{
    const run_entry *x = a, *y = b;
    int c = strcmp(x->ev->subject, y->ev->subject);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* Appends events[0..MANY_ROWS) with the multi-row statements. Returns
 * BSS_OK; RUN_ONE_BY_ONE when they cannot go this way (an id already stored, or the
 * rows did not get consecutive sequences): the caller undoes the call's
 * work and appends one by one; < 0 on error. */
static int append_run(bss_store *s, bss_event *const *events, char *err)
{
    sqlite3_stmt *st = s->many_versions;
    for (int i = 0; i < MANY_ROWS; i++)
        bind_text(st, i + 1, events[i]->subject);
    /* The run in subject order (then array order), to walk beside the
     * query's rows, which come in subject order too (BINARY collation, as
     * strcmp): each event's version follows the stored one or the one of
     * the same subject's event just before it in the run. */
    run_entry order[MANY_ROWS];
    for (int i = 0; i < MANY_ROWS; i++)
        order[i] = (run_entry){events[i], i};
    qsort(order, MANY_ROWS, sizeof *order, run_entry_cmp);
    int rc;
    int k = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *subject = (const char *)sqlite3_column_text(st, 0);
        int64_t stored = sqlite3_column_int64(st, 1);
        for (; k < MANY_ROWS && strcmp(order[k].ev->subject, subject) <= 0; k++)
            order[k].ev->version = strcmp(order[k].ev->subject, subject) == 0 ? stored : 0;
    }
    for (; k < MANY_ROWS; k++)
        order[k].ev->version = 0;
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return step_error(s->wdb, "read versions", err);
    for (int i = 0; i < MANY_ROWS; i++) {
        bss_event *ev = order[i].ev;
        if (i > 0 && strcmp(order[i - 1].ev->subject, ev->subject) == 0)
            ev->version = order[i - 1].ev->version + 1;
        else
            ev->version++;
    }
    st = s->stmt[STMT_MAX_SEQUENCE];
    rc = sqlite3_step(st);
    int64_t last = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return step_error(s->wdb, "read head", err);
    st = s->many_events;
    for (int i = 0; i < MANY_ROWS; i++) {
        const bss_event *ev = events[i];
        int base = i * EVENT_BINDS;
        bind_text(st, base + 1, ev->id);
        bind_text(st, base + 2, ev->type);
        bind_text(st, base + 3, ev->subject);
        sqlite3_bind_int64(st, base + 4, ev->version);
        sqlite3_bind_int64(st, base + 5, ev->time_ms);
        bind_text(st, base + 6, ev->correlation_id);
        bind_text(st, base + 7, ev->causation_id);
        bind_text(st, base + 8, ev->data ? ev->data : "{}");
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return RUN_ONE_BY_ONE; /* the statement kept nothing: maybe an id already stored */
    if (rc != SQLITE_DONE)
        return step_error(s->wdb, "append events", err);
    /* Each row took the table's largest rowid + 1, in VALUES order: the
     * run holds last+1 .. last+MANY_ROWS when the last row got that. */
    if (sqlite3_last_insert_rowid(s->wdb) != last + MANY_ROWS)
        return RUN_ONE_BY_ONE;
    for (int i = 0; i < MANY_ROWS; i++) {
        events[i]->sequence = last + 1 + i;
        snprintf(events[i]->source, sizeof events[i]->source, "%s", s->source);
    }
    st = s->stmt[STMT_OUTBOX_RANGE];
    sqlite3_bind_int64(st, 1, last);
    sqlite3_bind_int64(st, 2, last + MANY_ROWS);
    rc = exec_stmt(st);
    if (rc != SQLITE_DONE)
        return step_error(s->wdb, "append outbox", err);
    s->appended_in_transaction = 1;
    return BSS_OK;
}

/* Appends events[0..n) one by one, each after the lookups of its subject's
 * version and of its id. */
static int append_each(bss_store *s, bss_event *const *events, size_t n, char *err)
{
    int rc = BSS_OK;
    int64_t version = 0;
    const char *subject = NULL; /* whose current version `version` is */
    for (size_t i = 0; rc == BSS_OK && i < n; i++) {
        bss_event *ev = events[i];
        if (subject == NULL || strcmp(subject, ev->subject) != 0) {
            rc = current_version(s, ev->subject, &version, err);
            if (rc != BSS_OK)
                break;
            subject = ev->subject;
        }
        /* The insert itself detects an id already stored (its UNIQUE
         * index is searched anyway), instead of a lookup before every
         * insert: only then is the stored row read back. */
        snprintf(ev->source, sizeof ev->source, "%s", s->source);
        ev->version = version + 1;
        int inserted = 0;
        rc = write_event(s, ev, 1, &inserted, err);
        if (rc != BSS_OK)
            break;
        if (inserted) {
            version++;
            s->appended_in_transaction = 1;
        } else {
            int found = find_event_id(s, ev, err);
            if (found == 0)
                bss_seterr(err, "event %s neither inserted nor found", ev->id);
            if (found != 1)
                rc = found < 0 ? found : BSS_ERR_IO;
        }
    }
    return rc;
}

int bss_store_append_many(bss_store *s, bss_event *const *events, size_t n, char *err)
{
    if (!holds_transaction(s)) {
        bss_seterr(err, "append outside a transaction");
        return BSS_ERR_INVALID;
    }
    if (n == 0 || events == NULL) {
        bss_seterr(err, "append needs at least one event");
        return BSS_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (events[i] == NULL || events[i]->subject[0] == '\0') {
            bss_seterr(err, "append_many: event %zu has no subject", i);
            return BSS_ERR_INVALID;
        }
    }
    if (exec_stmt(s->stmt[STMT_APPEND_SAVEPOINT]) != SQLITE_DONE)
        return step_error(s->wdb, "savepoint", err);
    int rc = n >= MANY_ROWS ? prepare_many(s, err) : BSS_OK;
    size_t done = 0;
    while (rc == BSS_OK && n - done >= MANY_ROWS) {
        rc = append_run(s, events + done, err);
        if (rc == BSS_OK)
            done += MANY_ROWS;
    }
    if (rc == RUN_ONE_BY_ONE) {
        /* Start over, one by one, from what the call found. */
        exec_stmt(s->stmt[STMT_APPEND_ROLLBACK_TO]);
        done = 0;
        rc = BSS_OK;
    }
    if (rc == BSS_OK && done < n)
        rc = append_each(s, events + done, n - done, err);
    if (rc != BSS_OK) {
        exec_stmt(s->stmt[STMT_APPEND_ROLLBACK_TO]);
        for (size_t i = 0; i < n; i++) {
            events[i]->sequence = 0;
            events[i]->version = 0;
        }
    }
    exec_stmt(s->stmt[STMT_APPEND_RELEASE]);
    return rc;
}

int bss_store_append_tx(bss_store *s, const char *subject, int64_t expected_version,
                        bss_event *const *events, size_t n, char *err)
{
    int rc = bss_store_begin(s, err);
    if (rc != BSS_OK)
        return rc;
    rc = append(s, subject, expected_version, events, n, 0, err);
    if (rc != BSS_OK) {
        bss_store_rollback(s);
        return rc;
    }
    return bss_store_commit(s, err);
}

static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* A read connection: the write connection for the transaction holder, else
 * one from the pool, waiting up to READER_WAIT_MS for one to come back,
 * else one of its own (closed again when given back). */
static int acquire_reader(bss_store *s, sqlite3 **db, char *err)
{
    if (holds_transaction(s)) {
        *db = s->wdb;
        return BSS_OK;
    }
    pthread_mutex_lock(&s->pool_lock);
    if (s->pool_count == 0) {
        struct timespec deadline = deadline_in(READER_WAIT_MS);
        while (s->pool_count == 0 &&
               pthread_cond_timedwait(&s->pool_cond, &s->pool_lock, &deadline) != ETIMEDOUT)
            ;
    }
    if (s->pool_count > 0) {
        *db = s->pool[--s->pool_count];
        pthread_mutex_unlock(&s->pool_lock);
        return BSS_OK;
    }
    pthread_mutex_unlock(&s->pool_lock);
    return open_reader(s, db, err);
}

static void release_reader(bss_store *s, sqlite3 *db)
{
    if (db == s->wdb)
        return;
    int pooled = 0;
    for (int i = 0; i < READ_POOL_SIZE && !pooled; i++)
        pooled = db == s->readers[i];
    if (!pooled) {
        close_connection(db);
        return;
    }
    pthread_mutex_lock(&s->pool_lock);
    s->pool[s->pool_count++] = db;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
}

int bss_store_prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err)
{
    /* The connection's own list of statements is the cache: a statement
     * whose text is sql and that nobody is stepping is free to reuse. A
     * scan of a few dozen strcmp is far cheaper than a parse. */
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st != NULL;
         st = sqlite3_next_stmt(db, st)) {
        const char *text = sqlite3_sql(st);
        if (!sqlite3_stmt_busy(st) && text != NULL && strcmp(text, sql) == 0) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            *out = st;
            return BSS_OK;
        }
    }
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        *out = NULL;
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int bss_store_reader_acquire(bss_store *s, sqlite3 **db, char *err)
{
    return acquire_reader(s, db, err);
}

void bss_store_reader_release(bss_store *s, sqlite3 *db) { release_reader(s, db); }

int bss_store_snapshot_begin(bss_store *s, sqlite3 **db, char *err)
{
    if (holds_transaction(s)) {
        bss_seterr(err, "a snapshot cannot be taken inside the write transaction");
        return BSS_ERR_INVALID;
    }
    int rc = acquire_reader(s, db, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *begin = NULL;
    if (bss_store_prepare_cached(*db, "BEGIN", &begin, err) != BSS_OK ||
        exec_stmt(begin) != SQLITE_DONE) {
        bss_seterr(err, "begin read: %s", sqlite3_errmsg(*db));
        release_reader(s, *db);
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

void bss_store_snapshot_end(bss_store *s, sqlite3 *db)
{
    sqlite3_stmt *end = NULL;
    if (!sqlite3_get_autocommit(db) &&
        (bss_store_prepare_cached(db, "COMMIT", &end, NULL) != BSS_OK ||
         exec_stmt(end) != SQLITE_DONE))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    release_reader(s, db);
}

/* Copies a text column into dst (cap bytes), truncating like snprintf. */
static void copy_column(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (text == NULL)
        n = 0;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, text, n);
    dst[n] = '\0';
}

static void event_from_row(sqlite3_stmt *st, const char *source, bss_event *ev)
{
    ev->sequence = sqlite3_column_int64(st, 0);
    copy_column(st, 1, ev->id, sizeof ev->id);
    copy_column(st, 2, ev->type, sizeof ev->type);
    copy_column(st, 3, ev->subject, sizeof ev->subject);
    ev->version = sqlite3_column_int64(st, 4);
    ev->time_ms = sqlite3_column_int64(st, 5);
    copy_column(st, 6, ev->correlation_id, sizeof ev->correlation_id);
    copy_column(st, 7, ev->causation_id, sizeof ev->causation_id);
    memcpy(ev->source, source, sizeof ev->source);
    ev->data = (char *)sqlite3_column_text(st, 8); /* borrowed for the callback */
}

/* Steps st (bound by the caller) and hands each row to fn (decoded) or
 * raw_fn (encoded envelope); resets st. */
static int step_events(bss_store *s, sqlite3 *db, sqlite3_stmt *st, bss_event_fn fn,
                       bss_raw_event_fn raw_fn, void *ctx, char *err)
{
    int rc = BSS_OK;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        bss_event ev;
        event_from_row(st, s->source, &ev);
        int stop;
        if (raw_fn != NULL) {
            size_t len = 0;
            char *json = bss_event_encode(&ev, &len);
            if (json == NULL) {
                rc = BSS_ERR_NOMEM;
                bss_seterr(err, "out of memory");
                break;
            }
            stop = raw_fn(ctx, ev.sequence, json, len);
            free(json);
        } else {
            stop = fn(ctx, &ev);
        }
        if (stop)
            break;
    }
    if (rc == BSS_OK && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = step_error(db, "read events", err);
    sqlite3_reset(st);
    return rc;
}

/* Runs sql (with up to two int64/text binds via the binder) and hands each
 * row to either fn (decoded) or raw_fn (encoded envelope). */
typedef struct {
    const char *text;
    int64_t a, b;
} query_args;

static int run_event_query(bss_store *s, const char *sql, const query_args *args,
                           bss_event_fn fn, bss_raw_event_fn raw_fn, void *ctx, char *err)
{
    sqlite3 *db = NULL;
    int rc = acquire_reader(s, &db, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        release_reader(s, db);
        return BSS_ERR_IO;
    }
    int param = 1;
    int params = sqlite3_bind_parameter_count(st);
    if (args->text != NULL)
        sqlite3_bind_text(st, param++, args->text, -1, SQLITE_STATIC);
    if (param <= params)
        sqlite3_bind_int64(st, param++, args->a);
    if (param <= params)
        sqlite3_bind_int64(st, param, args->b);
    rc = step_events(s, db, st, fn, raw_fn, ctx, err);
    sqlite3_finalize(st);
    release_reader(s, db);
    return rc;
}

int bss_store_load_stream(bss_store *s, const char *subject, int64_t after_version,
                          bss_event_fn fn, void *ctx, char *err)
{
    query_args args = {subject, after_version, 0};
    return run_event_query(s,
                           "SELECT " EVENT_COLUMNS " FROM events WHERE subject = ?1"
                           " AND version > ?2 ORDER BY version",
                           &args, fn, NULL, ctx, err);
}

int bss_store_read_from(bss_store *s, int64_t after_sequence, size_t limit,
                        bss_event_fn fn, void *ctx, char *err)
{
    query_args args = {NULL, after_sequence, (int64_t)limit};
    return run_event_query(s,
                           "SELECT " EVENT_COLUMNS " FROM events WHERE sequence > ?1"
                           " ORDER BY sequence LIMIT ?2",
                           &args, fn, NULL, ctx, err);
}

int bss_store_read_raw(bss_store *s, int64_t after_sequence, size_t limit,
                       bss_raw_event_fn fn, void *ctx, char *err)
{
    query_args args = {NULL, after_sequence, (int64_t)limit};
    return run_event_query(s,
                           "SELECT " EVENT_COLUMNS " FROM events WHERE sequence > ?1"
                           " ORDER BY sequence LIMIT ?2",
                           &args, NULL, fn, ctx, err);
}

int bss_store_outbox_read(bss_store *s, size_t limit, bss_raw_event_fn fn, void *ctx,
                          char *err)
{
    query_args args = {NULL, (int64_t)limit, 0};
    return run_event_query(s,
                           "SELECT " EVENT_COLUMNS " FROM outbox JOIN events USING(sequence)"
                           " ORDER BY sequence LIMIT ?1",
                           &args, NULL, fn, ctx, err);
}

/* Runs a query returning one integer. */
static int query_int(bss_store *s, const char *sql, const char *text, int64_t *out, char *err)
{
    sqlite3 *db = NULL;
    int rc = acquire_reader(s, &db, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        release_reader(s, db);
        return BSS_ERR_IO;
    }
    if (text != NULL)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = step_error(db, "query", err);
    sqlite3_finalize(st);
    release_reader(s, db);
    return rc;
}

int bss_store_version(bss_store *s, const char *subject, int64_t *version, char *err)
{
    return query_int(s, "SELECT COALESCE(MAX(version), 0) FROM events WHERE subject = ?1",
                     subject, version, err);
}

int bss_store_head(bss_store *s, int64_t *sequence, char *err)
{
    return query_int(s, "SELECT COALESCE(MAX(sequence), 0) FROM events", NULL, sequence, err);
}

int bss_store_outbox_backlog(bss_store *s, int64_t *count, char *err)
{
    return query_int(s, "SELECT COUNT(*) FROM outbox", NULL, count, err);
}

int bss_store_outbox_ack(bss_store *s, int64_t up_to, char *err)
{
    int rc = bss_store_begin(s, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *st = s->stmt[STMT_OUTBOX_ACK];
    sqlite3_bind_int64(st, 1, up_to);
    if (exec_stmt(st) != SQLITE_DONE) {
        rc = step_error(s->wdb, "ack outbox", err);
        bss_store_rollback(s);
        return rc;
    }
    return bss_store_commit(s, err);
}

/* A dedicated read connection with its statements prepared once, for one
 * thread that reads the log over and over (the relay, the catch-up server). */
enum { FEED_OUTBOX, FEED_READ, FEED_HEAD, FEED_COUNT };

static const char *FEED_SQL[FEED_COUNT] = {
    "SELECT e.sequence, e.id, e.type, e.subject, e.version, e.time_ms, e.correlation_id,"
    " e.causation_id, e.data FROM outbox o JOIN events e ON e.sequence = o.sequence"
    " WHERE o.sequence > ?1 ORDER BY o.sequence LIMIT ?2",
    "SELECT " EVENT_COLUMNS " FROM events WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
    "SELECT COALESCE(MAX(sequence), 0) FROM events",
};

struct bss_store_feed {
    bss_store *store;
    sqlite3 *db;
    sqlite3_stmt *stmt[FEED_COUNT];
};

int bss_store_feed_open(bss_store *s, bss_store_feed **out, char *err)
{
    bss_store_feed *f = calloc(1, sizeof *f);
    if (f == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    f->store = s;
    int rc = open_reader(s, &f->db, err);
    for (int i = 0; rc == BSS_OK && i < FEED_COUNT; i++) {
        if (sqlite3_prepare_v3(f->db, FEED_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &f->stmt[i],
                               NULL) != SQLITE_OK) {
            bss_seterr(err, "prepare: %s", sqlite3_errmsg(f->db));
            rc = BSS_ERR_IO;
        }
    }
    if (rc != BSS_OK) {
        bss_store_feed_close(f);
        return rc;
    }
    *out = f;
    return BSS_OK;
}

void bss_store_feed_close(bss_store_feed *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < FEED_COUNT; i++)
        sqlite3_finalize(f->stmt[i]);
    close_connection(f->db);
    free(f);
}

static int feed_events(bss_store_feed *f, int which, int64_t after, size_t limit,
                       bss_raw_event_fn fn, void *ctx, char *err)
{
    sqlite3_stmt *st = f->stmt[which];
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
    return step_events(f->store, f->db, st, NULL, fn, ctx, err);
}

int bss_store_feed_outbox(bss_store_feed *f, int64_t after_sequence, size_t limit,
                          bss_raw_event_fn fn, void *ctx, char *err)
{
    return feed_events(f, FEED_OUTBOX, after_sequence, limit, fn, ctx, err);
}

int bss_store_feed_read_raw(bss_store_feed *f, int64_t after_sequence, size_t limit,
                            bss_raw_event_fn fn, void *ctx, char *err)
{
    return feed_events(f, FEED_READ, after_sequence, limit, fn, ctx, err);
}

int bss_store_feed_head(bss_store_feed *f, int64_t *sequence, char *err)
{
    sqlite3_stmt *st = f->stmt[FEED_HEAD];
    int step = sqlite3_step(st);
    int rc = BSS_OK;
    if (step == SQLITE_ROW)
        *sequence = sqlite3_column_int64(st, 0);
    else
        rc = step_error(f->db, "read head", err);
    sqlite3_reset(st);
    return rc;
}

int bss_store_wait_commit(bss_store *s, uint64_t *generation, int timeout_ms)
{
    struct timespec deadline = deadline_in(timeout_ms);
    int rc = BSS_OK;
    pthread_mutex_lock(&s->commit_lock);
    while (!s->closing && s->commit_generation == *generation) {
        if (pthread_cond_timedwait(&s->commit_cond, &s->commit_lock, &deadline) == ETIMEDOUT) {
            rc = BSS_ERR_TIMEOUT;
            break;
        }
    }
    if (s->closing)
        rc = BSS_ERR_CLOSED;
    else if (s->commit_generation != *generation)
        rc = BSS_OK;
    *generation = s->commit_generation;
    pthread_mutex_unlock(&s->commit_lock);
    return rc;
}

void bss_store_wake_all(bss_store *s)
{
    pthread_mutex_lock(&s->commit_lock);
    s->closing = 1;
    pthread_cond_broadcast(&s->commit_cond);
    pthread_mutex_unlock(&s->commit_lock);
}

int bss_store_inbox_get(bss_store *s, const char *stream, int partition, int64_t *position,
                        char *err)
{
    if (holds_transaction(s)) {
        sqlite3_stmt *st = s->stmt[STMT_INBOX_GET];
        bind_text(st, 1, stream);
        sqlite3_bind_int(st, 2, partition);
        int step = sqlite3_step(st);
        int rc = BSS_OK;
        if (step == SQLITE_ROW)
            *position = sqlite3_column_int64(st, 0);
        else if (step == SQLITE_DONE)
            *position = 0;
        else
            rc = step_error(s->wdb, "read inbox", err);
        sqlite3_reset(st);
        return rc;
    }
    char sql[96];
    snprintf(sql, sizeof sql,
             "SELECT COALESCE(MAX(position), 0) FROM inbox WHERE stream = ?1 AND partition = %d",
             partition);
    return query_int(s, sql, stream, position, err);
}

int bss_store_inbox_set(bss_store *s, const char *stream, int partition, int64_t position,
                        char *err)
{
    if (!holds_transaction(s)) {
        bss_seterr(err, "inbox update outside a transaction");
        return BSS_ERR_INVALID;
    }
    sqlite3_stmt *st = s->stmt[STMT_INBOX_SET];
    bind_text(st, 1, stream);
    sqlite3_bind_int(st, 2, partition);
    sqlite3_bind_int64(st, 3, position);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    return step == SQLITE_DONE ? BSS_OK : step_error(s->wdb, "write inbox", err);
}

int bss_store_dead_letter(bss_store *s, const char *stream, int partition, int64_t position,
                          const char *payload, size_t len, const char *reason, char *err)
{
    if (!holds_transaction(s)) {
        bss_seterr(err, "dead letter outside a transaction");
        return BSS_ERR_INVALID;
    }
    sqlite3_stmt *st = s->stmt[STMT_DEAD_LETTER];
    sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, partition);
    sqlite3_bind_int64(st, 3, position);
    sqlite3_bind_blob(st, 4, payload, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, reason ? reason : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_DONE ? BSS_OK : step_error(s->wdb, "dead letter", err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* the payload was bound SQLITE_STATIC */
    return rc;
}
