/*
 * handlers.h - the customer service's reactions to other services' events.
 * It follows the rater's stream: the rater's answers to TERMINATE and
 * RESTORE orders complete or reject them (see orders.h), and AuCloseStarted
 * closes a period, after which orders effective in it are refused
 * (PERIOD_CLOSED).
 *
 * Closing a period emits OrdersClosed {period} (subject the period), once,
 * in the same transaction. It is the month end's barrier: every order the
 * customer service accepted for the period sits before it in this log, and
 * none can follow it, so the rater moves usage and billing charges only
 * after applying it (the stream is ordered; with Kafka that holds for a
 * customer topic of one partition, see docs/ARCHITECTURE.md).
 */
#ifndef CUSTOMER_HANDLERS_H
#define CUSTOMER_HANDLERS_H

#include "evstore.h"

/* The streams the customer service follows. */
extern const char *const CUSTOMER_STREAMS[];
#define CUSTOMER_STREAM_COUNT 1

/* A bss_handler_fn (consumer.h); ctx is the customer_ctx. */
int customer_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err);

#endif
