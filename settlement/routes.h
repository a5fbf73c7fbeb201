/*
 * routes.h - settlement's REST surface (reached through the gateway's
 * /settlements/...).
 *
 *   GET /settlements
 *     200 {"items": [{"period", "status": "OPEN"|"COMPLETED", "invoiceCount",
 *          "totalAmount"}]}  newest period first
 *   GET /settlements/{period}
 *     200 the settlement document (settlement.h, settlement_summary_json):
 *         {"period", "status", "lineCount", "invoiceCount", "totalUsageBytes",
 *          "totalBillableMb", "totalSubtotal", "totalVat", "totalAmount",
 *          "byProduct": [{"productCd", "lineCount", "usageBytes", "amount"}],
 *          "expectedInvoiceCount": int|null, "completedAt": ISO-8601|null}
 *         every count and amount an exact JSON integer (64-bit usage sums
 *         beyond 2^53 included)
 *     404 problem SETTLEMENT_NOT_FOUND  nothing recorded for that period yet
 *     422 problem VALIDATION_FAILED     period is not "YYYY-MM"
 *   Both: 503 problem STORE_UNAVAILABLE when the store cannot be read.
 *
 * Handlers read the service's own store through a snapshot (one consistent
 * view per request) and never write: every settlement write happens in the
 * consumer's transaction (handlers.h).
 */
#ifndef SETTLEMENT_ROUTES_H
#define SETTLEMENT_ROUTES_H

#include "evstore.h"
#include "http.h"

typedef struct settlement_routes {
    bss_store *store; /* bss_eventcore_store(core); not owned, must outlive the
                         HTTP server */
} settlement_routes;

/* Registers the routes on h with ctx (which must outlive h). Returns BSS_OK
 * or the error of bss_http_route (err filled). */
int settlement_routes_register(bss_http *h, settlement_routes *ctx, char *err);

#endif
