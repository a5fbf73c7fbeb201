/*
 * statushistory.h - a line's status history as a follower of the customer
 * service keeps it: one row per LineStatusChanged applied.
 *
 * Rater and billing each keep their own copy in their own store (services
 * share no database): rater to reject usage of a line that was not ACTIVE at
 * the usage time, billing to prorate the monthly fee by active days. Both use
 * the table defined here:
 *
 *   line_status_history(id, svc_cont_no, status, effective_ms, effective_at,
 *                       order_id, event_id UNIQUE)
 *
 * A row is keyed by the id of the event it was recorded from, so recording
 * the same event twice keeps one row. Rows are read in effective-time order
 * (ties in the order they were recorded), which is the order the statuses
 * held, whatever order the events arrived in.
 *
 * Every db below must be a connection of a bss_store (its write connection
 * or a reader): the statements are prepared once per connection and reused
 * (sqlcache.h), and the store finalizes them when it closes the connection.
 */
#ifndef BSS_STATUSHISTORY_H
#define BSS_STATUSHISTORY_H

#include "envelope.h"
#include "evstore.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* The table and its index, as idempotent SQL for a service's schema hook
 * (bss_eventcore_options.schema). */
extern const char BSS_STATUSHISTORY_SCHEMA[];

/* One history entry. Strings point into the caller's memory. */
typedef struct bss_status_entry {
    const char *svc_cont_no;
    const char *status;       /* ACTIVE, SUSPENDED, TERMINATED */
    int64_t effective_ms;
    const char *effective_at; /* the ISO-8601 text as received */
    const char *order_id;
    const char *event_id;     /* the event it was recorded from */
} bss_status_entry;

/* Records e with db's open write transaction. *inserted (may be NULL) is 1
 * when a row was added, 0 when e->event_id was recorded before. Returns
 * BSS_OK, BSS_ERR_INVALID for a NULL field, or BSS_ERR_IO (err filled). */
int bss_statushistory_record(sqlite3 *db, const bss_status_entry *e, int *inserted, char *err);

/* Applies a customer LineStatusChanged event inside store's open write
 * transaction: parses it (customer_events.h), records the entry for the
 * event's subject keyed by the event id, and emits `recorded_type` (e.g.
 * "RaterStatusRecorded") {orderId, status, effectiveAt (as received)} caused
 * by ev. An event recorded before changes nothing and emits nothing.
 * Returns BSS_OK, BSS_ERR_INVALID for data that breaks the contract (err
 * names the field), or BSS_ERR_IO / BSS_ERR_NOMEM. */
int bss_statushistory_apply(bss_store *store, const bss_event *ev, const char *recorded_type,
                            char *err);

/* Appends the line's history to `array` as objects {status, effectiveAt,
 * orderId}, in effective-time order. An unknown line appends nothing.
 * Returns BSS_OK, BSS_ERR_IO or BSS_ERR_NOMEM (err filled). */
int bss_statushistory_to_json(sqlite3 *db, const char *svc_cont_no, cJSON *array, char *err);

/* Ends a follower's view of a line (GET /raters/{svcContNo},
 * GET /billings/{svcContNo}): adds "createdAt" (created_ms as ISO-8601 in
 * the billing zone, isotime.h) and "statusHistory" (the array of
 * bss_statushistory_to_json) to the object view. Returns BSS_OK,
 * BSS_ERR_NOMEM or BSS_ERR_IO (err filled); view stays the caller's, also
 * on error. */
int bss_statushistory_add_view(sqlite3 *db, const char *svc_cont_no, int64_t created_ms,
                               cJSON *view, char *err);

/* The line's status in effect at at_ms: the latest entry with effective_ms
 * <= at_ms, copied into status (len bytes). Returns BSS_OK,
 * BSS_ERR_NOTFOUND when no entry is that old (status = ""), BSS_ERR_IO. */
int bss_statushistory_status_at(sqlite3 *db, const char *svc_cont_no, int64_t at_ms,
                                char *status, size_t len, char *err);

#endif
