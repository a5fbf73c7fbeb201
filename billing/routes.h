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

/* Registers the routes on h with ctx (which must outlive h). Returns BSS_OK
 * or the error of bss_http_route (err filled). */
int billing_routes_register(bss_http *h, billing_routes *ctx, char *err);

#endif
