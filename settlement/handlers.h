/*
 * handlers.h - how settlement reacts to the billing service's events.
 *
 *   InvoiceIssued (subject invoiceId)
 *       stores the invoice's contribution once (by invoiceId) and adds it to
 *       its period's totals; a known invoiceId changes nothing
 *   PeriodInvoiced (subject period)
 *       records how many invoices (lines, charges) billing issued
 *   anything else  ignored
 *
 * After either, a period that has its PeriodInvoiced and exactly that many
 * invoices stored becomes COMPLETED (whichever of the two arrives last
 * completes it), and in the same transaction:
 *   - SettlementCompleted (subject period, data = the settlement document,
 *     settlement.h) is emitted, caused by the completing event;
 *   - one report mail (report.h) is queued on the "mail" channel of the
 *     notification queue under dedup key "settlement-<period>", to the
 *     business department's address.
 * A period completes once: its status only moves OPEN -> COMPLETED, so
 * neither the event nor the mail can happen twice, whatever is replayed.
 *
 * Everything is written in the consumer's open transaction, so it commits
 * together with the inbox position.
 */
#ifndef SETTLEMENT_HANDLERS_H
#define SETTLEMENT_HANDLERS_H

#include "evstore.h"
#include "log.h"

#include <stddef.h>

/* Default recipient of the settlement report (BSS_SETTLEMENT_MAIL_TO). */
#define SETTLEMENT_MAIL_TO_DEFAULT "business@bssiot.local"

typedef struct settlement_handler_ctx {
    const char *mail_to; /* the report's recipient; NULL means the default */
    bss_log *log;        /* may be NULL */
} settlement_handler_ctx;

/* A bss_handler_fn (consumer.h); ctx is a settlement_handler_ctx * (may be
 * NULL: default recipient, no log). Returns BSS_OK (applied, already
 * applied, or ignored); BSS_ERR_INVALID for data that breaks the event
 * contract, for totals that would overflow 64 bits, and for a new invoice
 * of a period that is COMPLETED already (err says which; the event is
 * dead-lettered and the settled totals stay as reported); or BSS_ERR_IO /
 * BSS_ERR_NOMEM for a transient failure (retried). */
int settlement_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err);

/* The event types settlement_handle_event acts on (consumer.h's types), and
 * how many there are: everything else of billing's stream is passed
 * without being decoded. */
extern const char *const SETTLEMENT_HANDLED_TYPES[];
extern const size_t SETTLEMENT_HANDLED_TYPE_COUNT;

#endif
