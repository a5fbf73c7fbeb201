/*
 * orders.h - the customer service's commands: open a line, place an order,
 * and take the rater's answer to a saga order. Each runs as one write
 * transaction on the customer store that holds the line and order rows, the
 * events they cause and the SMS they announce: all of it or none of it.
 *
 * Every order status a customer's order enters (PENDING, COMPLETED,
 * REJECTED) queues exactly one SMS to the line's phone (none when the line
 * has no phone), keyed "<orderId>:<STATUS>".
 */
#ifndef CUSTOMER_ORDERS_H
#define CUSTOMER_ORDERS_H

#include "customer.h"
#include "lines_db.h"

/* Opens `requested` (all fields but status, times and version filled in by
 * the caller; svc_cont_no "" means assign one) effective at effective_ms.
 * Returns BSS_OK with the stored line in *out and the OPEN order in
 * *out_order; or an error with *p filled: 409 LINE_EXISTS, 503
 * STORE_UNAVAILABLE. */
int orders_open_line(customer_ctx *c, const line *requested, int64_t effective_ms,
                     const char *correlation_id, line *out, order *out_order,
                     customer_problem *p);

/* Places an order of `type` on line svc_cont_no. Returns BSS_OK with the
 * order (COMPLETED for SUSPEND/RESUME, PENDING for TERMINATE/RESTORE); or an
 * error with *p: 404 LINE_NOT_FOUND, 409 with the line_decide code, 503
 * STORE_UNAVAILABLE. */
int orders_place(customer_ctx *c, const char *svc_cont_no, order_type type, int64_t effective_ms,
                 const char *correlation_id, order *out, customer_problem *p);

/* Applies a rater event (RaterTerminated, RaterUnused, RaterRestored,
 * RaterInUse) to the pending order it answers, inside the consumer's open
 * transaction. Other events and answers to orders no longer pending are
 * ignored (BSS_OK). BSS_ERR_INVALID when the event's data is malformed. */
int orders_on_rater_event(customer_ctx *c, bss_store *store, const bss_event *ev, char *err);

#endif
