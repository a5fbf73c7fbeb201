/*
 * evstore.h - a service's own event log, outbox and inbox in its SQLite file.
 *
 * One store is one SQLite file (WAL mode) owned by one service process. It
 * holds the service's domain tables (created by the service) beside four of
 * ours:
 *
 *   events   the log: every event this service emitted, in `sequence` order.
 *            Sequences are assigned on append, start at 1 and have no gaps,
 *            because they are rowids handed out inside serialised write
 *            transactions and events are never deleted.
 *   outbox   one row per appended event not yet handed to the bus; written in
 *            the same transaction as the event, deleted by the relay.
 *   inbox    per (stream, partition) the position of the last event from
 *            another service that was applied here; written in the same
 *            transaction as the effects of applying it.
 *   dead_letters  events that could not be applied, kept for the operator.
 *
 * Write transactions are serialised by a mutex per store and opened with
 * BEGIN IMMEDIATE, so a write never fails halfway with SQLITE_BUSY_SNAPSHOT.
 * Concurrent request threads can share one transaction and its COMMIT (group
 * commit, bss_store_group_begin), each answered only after that COMMIT.
 * Reads outside a transaction use a pool of four read connections, all
 * opened with the store (a read that finds the four lent out waits for one;
 * after 200 ms, say a thread that holds readers and asks for more, it gets
 * a connection of its own, closed when given back), and see the last
 * committed state; reads by the thread that holds the write transaction see
 * its uncommitted writes.
 *
 * Durability: synchronous=NORMAL (default) survives a crash of the process;
 * synchronous=FULL also survives power loss.
 */
#ifndef BSS_EVSTORE_H
#define BSS_EVSTORE_H

#include "envelope.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bss_store bss_store;

typedef struct bss_store_options {
    const char *path;     /* the SQLite file; created if missing */
    const char *source;   /* this service's name, stamped on every appended event */
    int synchronous_full; /* 0: synchronous=NORMAL, 1: synchronous=FULL */
    int busy_timeout_ms;  /* 0 means 5000 */
} bss_store_options;

/* Expected version for bss_store_append: skip the concurrency check. */
#define BSS_ANY_VERSION (-1)

/* Opens (creating if needed) the store. Returns BSS_OK with *out set, or
 * BSS_ERR_INVALID (bad options) / BSS_ERR_IO (cannot open or migrate). */
int bss_store_open(const bss_store_options *opts, bss_store **out, char *err);

/* Closes every connection. Must not be called while a transaction is open. */
void bss_store_close(bss_store *store);

/* The source name events appended here are stamped with. */
const char *bss_store_source(const bss_store *store);

/* Starts the write transaction (BEGIN IMMEDIATE), waiting for any other
 * thread's transaction to end first. Returns BSS_OK, or BSS_ERR_BUSY when
 * another process holds the file past the busy timeout (nothing is held). */
int bss_store_begin(bss_store *store, char *err);

/* The write connection, for the domain's own statements. Only valid in the
 * thread holding the transaction, between begin and commit/rollback. */
sqlite3 *bss_store_db(bss_store *store);

/* Commits. On failure the transaction is rolled back and an error returned:
 * nothing of it is kept. Either way the transaction is over. Wakes threads
 * waiting in bss_store_wait_commit when events were appended. */
int bss_store_commit(bss_store *store, char *err);

/* bss_store_commit for a large transaction whose caller answers someone
 * once it has committed (a usage file of a million records): the WAL
 * checkpoint such a commit would run before returning (copying every page
 * it wrote into the database file, and an fsync) is left to the next
 * commit on the store instead, which runs it as usual. The checkpoint adds
 * nothing to the commit's durability: with synchronous=NORMAL a commit in
 * the WAL survives a crash of the process, with FULL the COMMIT itself
 * syncs the WAL, either way before this returns. Same results as
 * bss_store_commit; inside a group unit it is bss_store_group_commit. */
int bss_store_commit_checkpoint_later(bss_store *store, char *err);

/* Rolls back everything since bss_store_begin; the transaction is over. */
void bss_store_rollback(bss_store *store);

/* Called each time a write transaction ends (plain or group), once its
 * outcome is final: committed = 1 when it committed (its rows are visible to
 * every new read transaction), 0 when it was rolled back. It runs on the
 * thread that ended it, with the write connection still held, so it must
 * not use the store; it is for in-memory state derived from the store (a
 * cache of rendered reads) that must change only after the store did. */
typedef void (*bss_store_txn_end_fn)(void *ctx, int committed);

/* Installs fn (NULL: none) before the store is shared between threads. */
void bss_store_on_txn_end(bss_store *store, bss_store_txn_end_fn fn, void *ctx);

/* Group commit: units of work from several threads (HTTP requests) share
 * one write transaction and one COMMIT, each unit that joins others' work
 * in a savepoint of its own (the first unit of a group needs none: if it
 * fails, the transaction holds nothing else and is rolled back whole).
 *
 * bss_store_group_begin waits for the write connection like
 * bss_store_begin, then joins the open group transaction (opening it with
 * BEGIN IMMEDIATE when there is none) and starts the unit's savepoint.
 * Inside the unit everything works as in a plain transaction:
 * bss_store_db, bss_store_append, readers (the write connection, which
 * also shows the group's earlier units), savepoints.
 *
 * bss_store_group_commit keeps the unit's work and returns only once a
 * COMMIT containing it has happened: BSS_OK when it succeeded, the COMMIT's
 * error when it failed (then nothing of the unit is kept, nor of the rest of
 * its group). So a caller that answers after BSS_OK never acknowledges a
 * write that a crash can lose. While it waits, the connection goes to the
 * next thread queued in bss_store_group_begin, if any, whose unit joins the
 * same transaction; the thread that finds nobody queued (or the group at 64
 * units) commits for everyone. A plain bss_store_begin commits an open
 * group before starting its own transaction.
 *
 * bss_store_group_rollback undoes only the unit's own work; the other units
 * of the group are unaffected and still commit. It does not wait.
 *
 * Inside a unit, bss_store_commit and bss_store_rollback act as
 * bss_store_group_commit and bss_store_group_rollback, so domain code
 * written for plain transactions can run grouped by changing its begin.
 * bss_store_group_begin returns BSS_OK, BSS_ERR_BUSY (another process holds
 * the file past the busy timeout) or BSS_ERR_IO; bss_store_group_commit
 * BSS_OK, BSS_ERR_BUSY or BSS_ERR_IO (the COMMIT failed), or
 * BSS_ERR_INVALID when the caller is not in a unit. Either way the unit is
 * over. */
int bss_store_group_begin(bss_store *store, char *err);
int bss_store_group_commit(bss_store *store, char *err);
void bss_store_group_rollback(bss_store *store);

/* 1 when the calling thread holds the write transaction, else 0. */
int bss_store_in_transaction(bss_store *store);

/* Savepoints inside the open transaction, for a caller that runs several
 * units of work in one transaction and must be able to undo one of them
 * alone (the consumer applies a batch of events this way). They nest; each
 * bss_store_savepoint is ended by exactly one release (keep its work, still
 * uncommitted) or rollback (undo its work; the transaction stays open).
 * bss_store_savepoint returns BSS_OK, BSS_ERR_INVALID outside a transaction
 * or BSS_ERR_IO; release and rollback return BSS_OK or BSS_ERR_IO (after a
 * failed rollback the transaction's state is unknown: roll it all back). */
int bss_store_savepoint(bss_store *store, char *err);
int bss_store_savepoint_release(bss_store *store, char *err);
int bss_store_savepoint_rollback(bss_store *store);

/* Appends events[0..n), all about `subject`, inside the open transaction.
 * expected_version is the subject's current version (0 for a new subject) or
 * BSS_ANY_VERSION. Events whose id is already stored are skipped, with their
 * stored version and sequence copied back (idempotent append). The others get
 * source, versions expected+1.. and the next sequences, are written to the
 * log and the outbox.
 * Returns BSS_OK; BSS_ERR_CONFLICT when the subject's version differs from
 * expected_version; BSS_ERR_INVALID on bad arguments. On error nothing of
 * this call is kept, and the transaction stays open for the caller. */
int bss_store_append(bss_store *store, const char *subject, int64_t expected_version,
                     bss_event *const *events, size_t n, char *err);

/* Appends events[0..n), each about its own subject (events[i]->subject),
 * inside the open transaction, with no version check (as BSS_ANY_VERSION
 * for every subject): for a caller that writes one event to each of many
 * subjects at once (the rater's UsageRated, one per line per usage file).
 * Events of one subject get consecutive versions in array order. Ids
 * already stored are skipped as in bss_store_append. One savepoint per
 * call instead of one per subject; every full 64 events are written with
 * three statements (versions, rows, outbox rows) instead of four each, so
 * a caller with many events should pass them in calls of 64 or more.
 * Returns BSS_OK; BSS_ERR_INVALID on bad arguments; BSS_ERR_IO / BSS_ERR_BUSY
 * when the store failed. On error nothing of this call is kept (sequence
 * and version of every event are zeroed), and the transaction stays open. */
int bss_store_append_many(bss_store *store, bss_event *const *events, size_t n, char *err);

/* begin + append + commit, for callers with no domain state to write. */
int bss_store_append_tx(bss_store *store, const char *subject, int64_t expected_version,
                        bss_event *const *events, size_t n, char *err);

/* Borrows a connection for the domain's own reads: from the pool (waiting
 * for one when all are lent out, see above), or the write connection itself
 * for the thread holding the transaction (so it sees its own writes). Give
 * it back with bss_store_reader_release, soon; never close it. Returns
 * BSS_OK or BSS_ERR_IO. */
int bss_store_reader_acquire(bss_store *store, sqlite3 **db, char *err);
void bss_store_reader_release(bss_store *store, sqlite3 *db);

/* A statement for sql on db, one of this store's connections (the write
 * connection or a reader), prepared once per connection and reused: the
 * first call parses it, later ones find it again (reset, bindings cleared).
 * sql must be a fixed text (not one built per call: each distinct text stays
 * prepared until the store closes the connection). Use it like any
 * prepared statement but end with sqlite3_reset, never sqlite3_finalize;
 * a read statement left unreset keeps its connection's read transaction
 * open. Returns BSS_OK with *st set, or BSS_ERR_IO (err filled). */
int bss_store_prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err);

/* A consistent read view for a handler that runs several queries: borrows
 * a reader and opens a read transaction on it, so every query sees the same
 * committed state. End it with bss_store_snapshot_end. Not for the thread
 * holding the write transaction. Returns BSS_OK or BSS_ERR_IO. */
int bss_store_snapshot_begin(bss_store *store, sqlite3 **db, char *err);
void bss_store_snapshot_end(bss_store *store, sqlite3 *db);

/* Called once per event read; return non-zero to stop reading. The event is
 * only valid during the call (clone it to keep it). */
typedef int (*bss_event_fn)(void *ctx, const bss_event *ev);

/* The subject's current version (0 when it has no events). */
int bss_store_version(bss_store *store, const char *subject, int64_t *version, char *err);

/* Reads the subject's events with version > after_version in version order. */
int bss_store_load_stream(bss_store *store, const char *subject, int64_t after_version,
                          bss_event_fn fn, void *ctx, char *err);

/* Reads up to `limit` events with sequence > after_sequence in sequence order. */
int bss_store_read_from(bss_store *store, int64_t after_sequence, size_t limit,
                        bss_event_fn fn, void *ctx, char *err);

/* Reads up to `limit` encoded envelopes with sequence > after_sequence, each
 * handed to fn as (sequence, bytes, len). Faster than decode + encode. */
typedef int (*bss_raw_event_fn)(void *ctx, int64_t sequence, const char *json, size_t len);
int bss_store_read_raw(bss_store *store, int64_t after_sequence, size_t limit,
                       bss_raw_event_fn fn, void *ctx, char *err);

/* The highest sequence in the log (0 when empty). */
int bss_store_head(bss_store *store, int64_t *sequence, char *err);

/* Reads up to `limit` outbox entries in sequence order, as encoded envelopes. */
int bss_store_outbox_read(bss_store *store, size_t limit, bss_raw_event_fn fn, void *ctx,
                          char *err);

/* Deletes outbox entries with sequence <= up_to in a transaction of its own. */
int bss_store_outbox_ack(bss_store *store, int64_t up_to, char *err);

/* A feed: a read connection of its own with its statements prepared once,
 * for a single thread that reads the log again and again (the relay, the
 * catch-up server). Not thread-safe: one thread uses a feed at a time. It
 * sees the last committed state (never the caller's own open transaction).
 * Close every feed before bss_store_close. open returns BSS_OK, BSS_ERR_IO
 * or BSS_ERR_NOMEM; the readers behave like bss_store_outbox_read,
 * bss_store_read_raw and bss_store_head. */
typedef struct bss_store_feed bss_store_feed;
int bss_store_feed_open(bss_store *store, bss_store_feed **out, char *err);
void bss_store_feed_close(bss_store_feed *feed); /* NULL is fine */

/* Up to `limit` outbox entries with sequence > after_sequence, in sequence
 * order, as encoded envelopes (the relay passes what it has published but
 * not yet acknowledged, so it does not read those again). */
int bss_store_feed_outbox(bss_store_feed *feed, int64_t after_sequence, size_t limit,
                          bss_raw_event_fn fn, void *ctx, char *err);

/* Up to `limit` encoded envelopes with sequence > after_sequence. */
int bss_store_feed_read_raw(bss_store_feed *feed, int64_t after_sequence, size_t limit,
                            bss_raw_event_fn fn, void *ctx, char *err);

/* The highest sequence in the log (0 when empty). */
int bss_store_feed_head(bss_store_feed *feed, int64_t *sequence, char *err);

/* Number of outbox entries not yet acknowledged. */
int bss_store_outbox_backlog(bss_store *store, int64_t *count, char *err);

/* Blocks until a commit that appended events happens after *generation was
 * read, or timeout_ms passes. *generation is updated to the current one.
 * Returns BSS_OK when woken by a commit, BSS_ERR_TIMEOUT otherwise, and
 * BSS_ERR_CLOSED once bss_store_wake_all was called. */
int bss_store_wait_commit(bss_store *store, uint64_t *generation, int timeout_ms);

/* Wakes every waiter and makes further waits return BSS_ERR_CLOSED. */
void bss_store_wake_all(bss_store *store);

/* The last applied position for (stream, partition), 0 when none. Works in
 * or outside the transaction. */
int bss_store_inbox_get(bss_store *store, const char *stream, int partition,
                        int64_t *position, char *err);

/* Records, inside the open transaction, that (stream, partition) has been
 * applied up to `position`. */
int bss_store_inbox_set(bss_store *store, const char *stream, int partition,
                        int64_t position, char *err);

/* Records, inside the open transaction, an event that could not be applied. */
int bss_store_dead_letter(bss_store *store, const char *stream, int partition,
                          int64_t position, const char *payload, size_t len,
                          const char *reason, char *err);

#endif
