/*
 * routes.h - the rater's REST surface (reached through the gateway's
 * /raters/...).
 *
 *   GET /raters/{svcContNo}
 *     200 {"svcContNo", "customerId", "apnCd", "useYn": "Y"|"N", "productCd",
 *          "createdAt": ISO-8601, "statusHistory": [{"status", "effectiveAt",
 *          "orderId"}] in effective-time order, "usage": [] (per period,
 *          filled by usage rating)}
 *     404 problem LINE_NOT_FOUND   no rater info for that line
 *     503 problem STORE_UNAVAILABLE the store cannot be read
 *
 * Handlers read the service's own store through a snapshot
 * (bss_store_snapshot_begin/_end: one consistent view per request) and never
 * write: every rater write happens in the consumer's transaction
 * (handlers.h).
 */
#ifndef RATER_ROUTES_H
#define RATER_ROUTES_H

#include "evstore.h"
#include "http.h"

typedef struct rater_routes {
    bss_store *store; /* bss_eventcore_store(core); not owned, must outlive the
                         HTTP server */
} rater_routes;

/* Registers the routes on h with ctx (which must outlive h). Returns BSS_OK
 * or the error of bss_http_route (err filled). */
int rater_routes_register(bss_http *h, rater_routes *ctx, char *err);

#endif
