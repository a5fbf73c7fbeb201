/*
 * access.h - what each role may do through the gateway.
 *
 *   operator   every route.
 *   mediation  the usage files and the AU close, nothing else:
 *                POST /raters/usage-files, GET /raters/usage-files/{name},
 *                POST /raters/au-close, GET /raters/au-close/{period}
 *              anything else is 403 FORBIDDEN (a mediation system is ours,
 *              there are no customer ids to hide from it).
 *   customer   bound to one customerId, read-only, only what is its own:
 *                GET /mypage/{own customerId}
 *                GET /customers?customerId={own}              (exactly one customerId)
 *                GET /customers/{svcContNo}                   (line's owner checked)
 *                GET /customers/{svcContNo}/orders[/{orderId}] (line's owner checked)
 *                GET /billings/invoices?customerId={own}      (exactly one customerId)
 *                GET /billings/invoices/{invoiceId}           (invoice's owner checked)
 *              anything else, and anything of another customer, is 404
 *              NOT_FOUND, the same answer as for an id that does not exist,
 *              so a customer cannot probe which ids exist.
 *
 * HEAD is treated as GET. The decision is a pure function of the principal
 * and the request line, so it is unit-tested without a server; the checks
 * that need the owner of a resource are answered by the proxy (access
 * decisions GW_ACCESS_CHECK_*).
 */
#ifndef GW_ACCESS_H
#define GW_ACCESS_H

#include "tokens.h"

#include <stddef.h>

typedef enum gw_access {
    GW_ACCESS_ALLOW = 0,
    GW_ACCESS_FORBID,         /* 403 FORBIDDEN */
    GW_ACCESS_HIDE,           /* 404 NOT_FOUND, as if the resource did not exist */
    GW_ACCESS_CHECK_LINE,     /* allow if line `svc_cont_no` belongs to the principal */
    GW_ACCESS_CHECK_RESPONSE  /* allow if the answer's top-level customerId is the principal's */
} gw_access;

#define GW_SVC_CONT_NO_MAX 64

typedef struct gw_access_decision {
    gw_access access;
    char svc_cont_no[GW_SVC_CONT_NO_MAX + 1]; /* for GW_ACCESS_CHECK_LINE */
} gw_access_decision;

/* Decides for a request: method as received, path as civetweb decoded it,
 * query the raw query string (NULL or "" for none). */
gw_access_decision gw_access_decide(const gw_principal *who, const char *method,
                                    const char *path, const char *query);

/* For GW_ACCESS_CHECK_RESPONSE / _LINE: 1 when body (JSON, len bytes) is an
 * object whose "customerId" is a string equal to customer_id, else 0. */
int gw_access_owned_by(const char *body, size_t len, const char *customer_id);

#endif
