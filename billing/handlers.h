/*
 * handlers.h - how billing reacts to the events of the streams it follows:
 * "customer" (below) and "rater" (the month end, see monthend.h).
 *
 *   OrderCreated(OPEN)   creates charge info           -> ChargeInfoCreated
 *                        {customerId, productCd, productNm, productTarif,
 *                         includedMb (null = unlimited), perMbRate}
 *                        includedMb and perMbRate come from billing's catalog;
 *                        a product the catalog does not know is a contract
 *                        violation (BSS_ERR_INVALID: dead-lettered).
 *   OrderCreated(other)  ignored
 *   LineStatusChanged    appends to the status history -> ChargeStatusRecorded
 *                        {orderId, status, effectiveAt}
 *   AuCloseStarted, UsageMoved, AuCloseCompleted (rater)
 *                        charges, invoices, invoice mails: monthend.h
 *   anything else        ignored
 *
 * Emitted events (customer stream) have the line's svcContNo as subject and
 * are caused by the incoming event. Effects and emitted events are written in the consumer's
 * open transaction. Re-applying an already recorded event changes nothing
 * and emits nothing.
 */
#ifndef BILLING_HANDLERS_H
#define BILLING_HANDLERS_H

#include "catalog.h"
#include "charges.h"
#include "evstore.h"
#include "log.h"

typedef struct billing_handler_ctx {
    const bss_catalog *catalog; /* required; read-only, not owned */
    bss_log *log;               /* may be NULL */
    /* The days of the period being charged, kept between events; only used
     * inside the store's write transaction, which serialises its users.
     * Start it zeroed. */
    charge_calendar calendar;
} billing_handler_ctx;

/* The event types billing_handle_event acts on (consumer.h's types), and
 * how many there are. */
extern const char *const BILLING_HANDLED_TYPES[];
extern const size_t BILLING_HANDLED_TYPE_COUNT;

/* A bss_handler_fn (consumer.h); ctx is a billing_handler_ctx *. Returns
 * BSS_OK (applied or ignored), BSS_ERR_INVALID for data that breaks the
 * event contract or names an unknown product (dead-lettered), BSS_ERR_BUSY
 * for a UsageMoved that must wait for the customer stream, or BSS_ERR_IO /
 * BSS_ERR_NOMEM for a transient failure (retried). */
int billing_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err);

#endif
