/*
 * routes.h - billing's REST surface (reached through the gateway's
 * /billings/...).
 *
 *   GET /billings/{svcContNo}
 *     200 {"svcContNo", "customerId", "productCd", "productNm",
 *          "productTarif": KRW integer, "includedMb": integer or null
 *          (unlimited), "perMbRate": KRW integer, "email",
 *          "createdAt": ISO-8601, "statusHistory": [{"status",
 *          "effectiveAt", "orderId"}] in effective-time order}
 *     404 problem LINE_NOT_FOUND    no charge info for that line
 *     503 problem STORE_UNAVAILABLE the store cannot be read
 *
 *   GET /billings/charges?period=YYYY-MM[&svcContNo=N]
 *     200 {"period", "items": [charge]} by svcContNo, charge = {svcContNo,
 *          customerId, productCd, period, usageBytes, billableMb,
 *          includedMb (null = unlimited), overageMb, overageFee, activeDays,
 *          daysInPeriod, baseFee, subtotal, vat, total} (ledger.h): counts
 *          and amounts are JSON integers written with their exact digits,
 *          usageBytes too (events carry it as a decimal string instead);
 *          an empty list when nothing is charged yet
 *     422 problem VALIDATION_FAILED period missing or not YYYY-MM,
 *                                   svcContNo empty or too long
 *
 *   GET /billings/invoices?customerId=C&period=YYYY-MM
 *     200 {"items": [invoice]} by period, then customerId; invoice =
 *          {invoiceId, customerId, period, lines: [charge], subtotal, vat,
 *          total, status: "ISSUED", issuedAt}. Both filters are optional
 *          but at least one is required (no unbounded dump of every
 *          invoice); customerId alone lists the customer's history.
 *     422 problem VALIDATION_FAILED neither filter, a bad period, or a
 *                                   customerId over 64 characters
 *
 *   GET /billings/invoices/{invoiceId}[?format=json|html]
 *     200 the invoice as JSON (above), or the printable HTML invoice
 *         (invoice_html.h, text/html; charset=utf-8) when format=html, or
 *         when no format is given and Accept prefers text/html over
 *         application/json (billing_wants_html)
 *     404 problem INVOICE_NOT_FOUND
 *     422 problem VALIDATION_FAILED format other than json or html
 *
 * Handlers read the service's own store through a snapshot
 * (bss_store_snapshot_begin/_end: one consistent view per request) and never
 * write: every billing write happens in the consumer's transaction
 * (handlers.h).
 */
#ifndef BILLING_ROUTES_H
#define BILLING_ROUTES_H

#include "evstore.h"
#include "http.h"

typedef struct billing_routes {
    bss_store *store; /* bss_eventcore_store(core); not owned, must outlive the
                         HTTP server */
} billing_routes;

/* 1 when an Accept header value asks for HTML rather than JSON: text/html
 * (exact media type, case-insensitive) is listed with q > 0 and either
 * application/json is not listed, or has a lower q, or the same q but comes
 * later. Wildcard media ranges choose nothing: JSON stays the default.
 * NULL or "" gives 0. */
int billing_wants_html(const char *accept);

/* Registers the routes on h with ctx (which must outlive h). Returns BSS_OK
 * or the error of bss_http_route (err filled). */
int billing_routes_register(bss_http *h, billing_routes *ctx, char *err);

#endif
