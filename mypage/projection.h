/*
 * projection.h - the "my page" read model: what a customer sees, folded from
 * the events of customer, rater and billing.
 *
 * The same code builds the live read model (the mypage service's consumer
 * applies each event as it arrives) and the offline rebuild (bssiot-replay
 * rebuild --projection mypage reads the services' event logs and applies
 * them to a fresh store), so the two are equal by construction when they
 * have applied the same events.
 *
 * Contract for order independence: every column of the projection is owned
 * by exactly one source stream and that stream's events are applied in their
 * log order, so the final tables do not depend on how the streams of
 * different sources were interleaved. `asOf` is derived from the events
 * applied (the latest event time), never from the wall clock.
 *
 * The tables and who owns them:
 *
 *   mypage_line          (customer) one row per line: customerId, product,
 *                        svcContStatus, apnCd, the last order and its
 *                        outcome; customer_seq/customer_ms are the sequence
 *                        and time of the last customer event that changed
 *                        the row.
 *   mypage_usage         (rater) bytes and records per (line, period),
 *                        summed from UsageRated.
 *   mypage_usage_line    (rater) per line: the latest period with rated
 *                        usage, the sequence and time of its last
 *                        UsageRated.
 *   mypage_closed_period (rater) periods whose AU close has started: their
 *                        usage is final.
 *   mypage_invoice       (billing) one row per InvoiceIssued.
 *
 * Events used: customer OrderCreated, LineStatusChanged, OrderCompleted,
 * OrderRejected; rater UsageRated, AuCloseStarted; billing InvoiceIssued.
 * Everything else (and any event whose `source` is not the stream that owns
 * its type) is accepted and changes nothing.
 *
 * Every row is keyed by the subject of the events that write it (a line's
 * svcContNo, a period, an invoiceId), so only the order of each subject's
 * events matters: a bus that keeps order per subject only (Kafka
 * partitions keyed by subject) still ends in the same tables.
 *
 * Applying an event twice changes nothing the second time: each row keeps
 * the source sequence of the last event applied to it and an event at or
 * below it is skipped. So `ev->sequence` must be the event's position in its
 * source's log (>= 1), as the consumer and the log readers provide it.
 *
 * Re-entrancy: a mypage_projection belongs to one thread at a time; the
 * functions without one are safe on any connection the caller owns.
 */
#ifndef BSS_MYPAGE_PROJECTION_H
#define BSS_MYPAGE_PROJECTION_H

#include "envelope.h"

#include <sqlite3.h>
#include <stddef.h>

/* The source streams the projection folds, in no particular order. */
extern const char *const mypage_projection_streams[];
extern const size_t mypage_projection_nstreams;

/* The event types the projection reads, NULL-terminated: events of any other
 * type change nothing, so a reader may leave them out (bssiot-replay's
 * rebuild does, in its log queries). */
extern const char *const mypage_projection_types[];

/* Creates the projection's tables in db (idempotent). Runs inside the
 * caller's transaction. Returns BSS_OK or BSS_ERR_IO (err filled). */
int mypage_projection_schema(sqlite3 *db, char *err);

/* Applies one event inside the caller's open transaction. Events of types
 * the projection does not use return BSS_OK and change nothing. Returns
 * BSS_ERR_INVALID when the event's data is not what its type promises (or
 * its sequence is below 1), BSS_ERR_IO when a statement fails (err filled
 * either way; the caller rolls back what the event changed, e.g. with a
 * savepoint). Prepares its statements on every call: for many events use a
 * mypage_projection below, which is the same code with the statements kept. */
int mypage_projection_apply(sqlite3 *db, const bss_event *ev, char *err);

/* A projection bound to one connection, with its statements prepared once
 * (on first use) and kept: the fast path for applying many events (the
 * consumer, a rebuild). The tables must exist (mypage_projection_schema). */
typedef struct mypage_projection mypage_projection;

/* Binds a projection to db. Returns BSS_OK with *out set, or BSS_ERR_NOMEM.
 * db must outlive the projection; close the projection before closing db
 * (a connection with statements left open does not close). */
int mypage_projection_open(sqlite3 *db, mypage_projection **out, char *err);

/* mypage_projection_apply on the projection's connection, with its kept
 * statements. Same results and errors. */
int mypage_projection_apply_with(mypage_projection *p, const bss_event *ev, char *err);

/* Finalizes the statements and frees p. NULL is fine. */
void mypage_projection_close(mypage_projection *p);

/* The projection's tables, in an order suitable for comparing two stores
 * (bssiot-replay verify): NULL-terminated list of table names, each with a
 * deterministic "SELECT ... ORDER BY ..." that dumps it. */
typedef struct mypage_projection_table {
    const char *name;
    const char *dump_sql;
} mypage_projection_table;
extern const mypage_projection_table mypage_projection_tables[];

#endif
