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
 */
#ifndef BSS_MYPAGE_PROJECTION_H
#define BSS_MYPAGE_PROJECTION_H

#include "envelope.h"

#include <sqlite3.h>
#include <stddef.h>

/* The source streams the projection folds, in no particular order. */
extern const char *const mypage_projection_streams[];
extern const size_t mypage_projection_nstreams;

/* Creates the projection's tables in db (idempotent). Runs inside the
 * caller's transaction. */
int mypage_projection_schema(sqlite3 *db, char *err);

/* Applies one event inside the caller's open transaction. Events of types
 * the projection does not use return BSS_OK and change nothing. Returns
 * BSS_ERR_INVALID when the event's data is not what its type promises. */
int mypage_projection_apply(sqlite3 *db, const bss_event *ev, char *err);

/* The projection's tables, in an order suitable for comparing two stores
 * (bssiot-replay verify): NULL-terminated list of table names, each with a
 * deterministic "SELECT ... ORDER BY ..." that dumps it. */
typedef struct mypage_projection_table {
    const char *name;
    const char *dump_sql;
} mypage_projection_table;
extern const mypage_projection_table mypage_projection_tables[];

#endif
