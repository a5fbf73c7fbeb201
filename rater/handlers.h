/*
 * handlers.h - how the rater reacts to the customer service's events.
 *
 *   OrderCreated(OPEN)    creates rater info (useYn Y)   -> RaterCreated
 *                         {customerId, apnCd, useYn, productCd}
 *   OrderCreated(other)   ignored
 *   LineStatusChanged     appends to the status history  -> RaterStatusRecorded
 *                         {orderId, status, effectiveAt}
 *   TerminationRequested  line in use: useYn Y -> N      -> RaterTerminated
 *                         {orderId, effectiveAt}
 *                         otherwise (not in use / unknown) -> RaterUnused {orderId}
 *   RestoreRequested      line not in use: useYn N -> Y  -> RaterRestored
 *                         {orderId, effectiveAt}
 *                         otherwise (in use / unknown)   -> RaterInUse {orderId}
 *   OrdersClosed          the period's close may move usage now
 *                         (auclose.h); emits nothing
 *   anything else         ignored
 *
 * Every emitted event has the line's svcContNo as subject and is caused by
 * the incoming event (correlation carried over). effectiveAt is echoed as
 * received. Effects and emitted events are written in the consumer's open
 * transaction, so they commit together with the inbox position. Re-applying
 * an OPEN or a LineStatusChanged that is already recorded changes nothing
 * and emits nothing.
 */
#ifndef RATER_HANDLERS_H
#define RATER_HANDLERS_H

#include "evstore.h"
#include "log.h"

typedef struct rater_handler_ctx {
    bss_log *log; /* may be NULL */
} rater_handler_ctx;

/* A bss_handler_fn (consumer.h); ctx is a rater_handler_ctx * (may be NULL).
 * Returns BSS_OK (applied or ignored), BSS_ERR_INVALID for data that breaks
 * the event contract (err names the field; the event is dead-lettered), or
 * BSS_ERR_IO / BSS_ERR_NOMEM for a transient failure (retried). */
int rater_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err);

#endif
