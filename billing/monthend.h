/*
 * monthend.h - how billing reacts to the rater's month-end events (stream
 * "rater"): charges per moved line, then invoices per customer.
 *
 *   AuCloseStarted {period, customerPosition}      subject = period
 *       records the close (the first one of a period is kept). Emits nothing.
 *   OrdersClosed {period}   (customer stream)        subject = period
 *       records the customer service's barrier: every order it accepted
 *       for the period precedes this event in its stream, so billing's
 *       status history now holds all of them. Emits nothing.
 *   UsageMoved {period, customerId, usageBytes, records}   subject = svcContNo
 *       1. causality: until the period's OrdersClosed was applied, returns
 *          BSS_ERR_BUSY (the consumer retries it later; the customer stream
 *          goes on being applied meanwhile), so billing's status history
 *          holds every status change of the period;
 *       2. records the moved line (a second UsageMoved for the same line and
 *          period changes nothing and emits nothing);
 *       3. computes the charge (charges.h) from charge info and billing's
 *          status history; with activeDays = 0 and no usage there is no
 *          charge and no event; otherwise stores it and emits
 *          ChargeCalculated {svcContNo, customerId, productCd, period,
 *          usageBytes (decimal string), billableMb, includedMb (null =
 *          unlimited), overageMb, overageFee, activeDays, daysInPeriod,
 *          baseFee, subtotal, vat, total}, subject svcContNo.
 *       BSS_ERR_INVALID (dead-lettered, logged): bad data, no AuCloseStarted
 *       for the period, no charge info for the line, a line moved after its
 *       period was invoiced, or amounts beyond 2^53.
 *   AuCloseCompleted {period, lineCount, totalBytes}   subject = period
 *       every UsageMoved of the close precedes it in the rater stream, so
 *       the period's charges are complete: issues one invoice per customer
 *       (invoiceId "INV-<YYYYMM>-<customerId>", lines = the customer's
 *       charges by svcContNo, subtotal/vat/total = their sums, status
 *       ISSUED, issuedAt = the AuCloseCompleted event's time, so replaying
 *       the log re-creates identical documents), emits InvoiceIssued
 *       (the summary of billing_invoice_event_text, ledger.h: totals and
 *       byProduct, not the lines) per invoice (subject invoiceId), queues one mail
 *       per invoice with an email (notify.h channel "mail", dedup key =
 *       invoiceId, target = email, payload {"invoiceId","period"}), then
 *       emits PeriodInvoiced {period, invoiceCount, lineCount (lines moved
 *       to billing), chargeCount} (subject period). A period invoiced before
 *       changes nothing and emits nothing.
 *
 * Everything is written in the caller's (the consumer's) open transaction:
 * domain rows, emitted events and queued mails commit together with the
 * inbox position, or not at all.
 */
#ifndef BILLING_MONTHEND_H
#define BILLING_MONTHEND_H

#include "charges.h"
#include "envelope.h"
#include "evstore.h"
#include "log.h"

/* The notify.h channel invoice mails are queued on. */
#define BILLING_MAIL_CHANNEL "mail"

/* Each applies one event of its type inside store's open transaction.
 * log may be NULL; calendar (charges.h) keeps the period's days between
 * UsageMoved events (a zeroed one is filled on first use). Returns BSS_OK,
 * BSS_ERR_INVALID (permanent, see above), BSS_ERR_BUSY (UsageMoved ahead of the customer stream: retry later) or
 * BSS_ERR_IO / BSS_ERR_NOMEM (transient); err filled. */
int billing_on_orders_closed(const bss_event *ev, bss_store *store, char *err);
int billing_on_au_close_started(bss_log *log, bss_store *store, const bss_event *ev,
                                char *err);
int billing_on_usage_moved(bss_log *log, charge_calendar *calendar, bss_store *store,
                           const bss_event *ev, char *err);
int billing_on_au_close_completed(bss_log *log, bss_store *store, const bss_event *ev,
                                  char *err);

#endif
