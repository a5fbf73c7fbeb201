/*
 * replay_rebuild.h - rebuilding the "my page" read model from the event logs
 * alone, and comparing it with the live one (bssiot-replay rebuild / verify).
 *
 * Rebuild: a fresh SQLite file gets the projection's schema and every event
 * of its streams (customer, rater, billing), each source's log in sequence
 * order, applied with the same code the mypage service runs
 * (mypage/projection.h). The logs are the SQLite stores or the Kafka topics
 * (replay_log.h). Only the event types the projection reads are fetched
 * (mypage_projection_types; the others change nothing). Reading and
 * decoding run on a thread of their own, handing batches of events through
 * a bounded queue to the thread that applies them, so the two halves
 * overlap on two cores.
 *
 * It is one transaction on a throwaway file (no journal, synchronous=OFF),
 * written beside the target as "<out>.tmp-<pid>" and renamed into place only
 * once complete, so a failed or interrupted rebuild never leaves a
 * half-built file under the final name. The file also gets an
 * `inbox(stream, partition, position)` table like a service store's,
 * holding the positions reached per stream and partition (replay_marks: the
 * last sequence for SQLite logs, the next offset for Kafka topics).
 *
 * Poison events are handled as the live consumer handles them: a corrupt
 * row is reported and passed over; an event the projection rejects
 * (BSS_ERR_INVALID) leaves no trace (the live service dead-letters it after
 * rolling back its savepoint). The fast path runs without a journal or
 * savepoints; the first rejection restarts the rebuild once, on a fresh
 * file with a memory journal and a savepoint per event.
 *
 * Verify: the live store is read in one read transaction: its inbox
 * positions and every projection table (mypage_projection_tables dumps).
 * The rebuild it is compared with must stand at exactly those positions;
 * without --rebuilt, verify rebuilds to them itself, so a running system
 * whose read model lags behind the logs (or a log that moved on since)
 * still verifies equal. Positions are in the live bus's terms (sequences
 * with nng, offsets with Kafka), so verify reads the logs the live read
 * model followed: the stores with nng, the topics with Kafka. Rows are
 * compared as sets per table; every row only on one side is printed.
 */
#ifndef BSS_REPLAY_REBUILD_H
#define BSS_REPLAY_REBUILD_H

#include "replay_log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REPLAY_MAX_STREAMS 8

/* Per projection stream, the positions per partition (replay_marks; a
 * partition not named: nothing of it). */
typedef struct replay_positions {
    size_t n;
    char stream[REPLAY_MAX_STREAMS][32];
    replay_marks marks[REPLAY_MAX_STREAMS];
} replay_positions;

typedef struct replay_rebuild_stats {
    int64_t logged;     /* events in the logs up to the positions reached (for
                           Kafka: messages, copies included) */
    int64_t applied;    /* events handed to the projection */
    size_t skipped;     /* corrupt rows passed over */
    size_t rejected;    /* events the projection refused */
    int64_t duplicates; /* republished Kafka copies dropped */
    double seconds;     /* wall time of reading + applying + committing */
    double cpu_seconds; /* CPU (user + system) of the process meanwhile */
    double read_cpu_seconds, apply_cpu_seconds; /* of the threads of each half */
    double merge_seconds; /* wall time of merging the per-stream parts */
} replay_rebuild_stats;

/* Rebuilds the mypage projection from the logs in src into out_path
 * (replaced when it exists). up_to (may be NULL: everything) limits each
 * stream. Diagnostics go to diag. Returns BSS_OK, or BSS_ERR_IO /
 * BSS_ERR_NOMEM with err filled (out_path is then untouched). */
int replay_rebuild_mypage(const replay_source *src, const char *out_path,
                          const replay_positions *up_to, replay_rebuild_stats *stats,
                          FILE *diag, char *err);

/* The live read model's inbox positions for the projection's streams, every
 * partition with a position above 0. BSS_OK, BSS_ERR_NOTFOUND (no live
 * store) or BSS_ERR_IO. */
int replay_live_positions(const char *live_path, replay_positions *out, char *err);

/* Compares the store at rebuilt_path with the live one at live_path table by
 * table, printing every difference to out. *differences gets their count (a
 * position that differs, per stream and partition, counts as one). Returns BSS_OK, or BSS_ERR_IO /
 * BSS_ERR_NOTFOUND / BSS_ERR_NOMEM with err filled. */
int replay_verify_mypage(const char *live_path, const char *rebuilt_path, FILE *out,
                         size_t *differences, char *err);

#endif
