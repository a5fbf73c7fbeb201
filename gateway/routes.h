/*
 * routes.h - the gateway's route table: which path prefix goes to which
 * upstream service, and where that service listens.
 *
 * The table is fixed in code and only the upstream addresses come from the
 * configuration:
 *
 *   prefix          service     base URL key              default
 *   /customers      customer    BSS_UPSTREAM_CUSTOMER     http://127.0.0.1:(BSS_PORT+1)
 *   /raters         rater       BSS_UPSTREAM_RATER        http://127.0.0.1:(BSS_PORT+2)
 *   /billings       billing     BSS_UPSTREAM_BILLING      http://127.0.0.1:(BSS_PORT+3)
 *   /settlements    settlement  BSS_UPSTREAM_SETTLEMENT   http://127.0.0.1:(BSS_PORT+4)
 *   /mypage         mypage      BSS_UPSTREAM_MYPAGE       http://127.0.0.1:(BSS_PORT+5)
 *
 * BSS_PORT is the gateway's own port (8088 unless set). A prefix matches on
 * whole path segments: "/customers" and "/customers/C1/orders" match,
 * "/customersX" does not.
 *
 * Routing inside the HTTP server: main installs gw_proxy_handle as
 * bss_http's fallback handler (bss_http_set_fallback), so every request
 * whose path no route pattern matches reaches it, whatever its depth, with
 * empty segments or a trailing '/' intact; the handler then looks the path
 * up with gw_routes_match. The built-in routes (/healthz, /readyz,
 * /metrics) are the gateway's own; another method on them gets bss_http's
 * 405.
 *
 * A gw_routes is caller-allocated, filled once before the server starts and
 * read-only afterwards, so any number of threads may read it.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include "config.h"
#include "http.h"

#define GW_ROUTES_MAX 8
#define GW_URL_MAX 512
#define GW_DEFAULT_PORT 8088

typedef struct gw_route {
    const char *prefix;    /* "/customers": a literal, no trailing '/' */
    const char *service;   /* "customer": the metrics/log label */
    char base[GW_URL_MAX]; /* "http://127.0.0.1:8089" or with a base path
                              ("http://host/api"), never a trailing '/' */
} gw_route;

typedef struct gw_routes {
    gw_route routes[GW_ROUTES_MAX];
    int count;
} gw_routes;

/* Reads the gateway port: BSS_PORT as an integer 1..65535, GW_DEFAULT_PORT
 * when unset. Returns BSS_OK with *port set, or BSS_ERR_INVALID with the
 * reason in err (may be NULL) for a non-numeric or out-of-range value. */
int gw_routes_port(const bss_config *cfg, int *port, char *err);

/* Fills rt with the five routes above, each upstream base taken from its
 * BSS_UPSTREAM_* key or derived from BSS_PORT. A configured base must be an
 * absolute http:// or https:// URL with a host, without query or fragment;
 * trailing '/' characters are dropped. Returns BSS_OK; BSS_ERR_INVALID with
 * the reason (naming the key) in err (may be NULL) for a bad BSS_PORT, a
 * malformed or too long URL, or a derived port above 65535 for an upstream
 * that is not configured. On error rt is zeroed. */
int gw_routes_load(gw_routes *rt, const bss_config *cfg, char *err);

/* The route whose prefix matches the (URL-decoded) path on whole segments,
 * or NULL when none does. */
const gw_route *gw_routes_match(const gw_routes *rt, const char *path);

/* The methods the gateway proxies, NULL-terminated ("GET", "POST", "PUT",
 * "PATCH", "DELETE", "OPTIONS"); HEAD is proxied too (as HEAD). */
extern const char *const GW_ROUTES_METHODS[];

/* 1 when the gateway proxies method (one of GW_ROUTES_METHODS, or HEAD),
 * else 0 (also for NULL). */
int gw_routes_method_allowed(const char *method);

#endif
