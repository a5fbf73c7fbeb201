/*
 * routes.h - the customer service's REST surface (reached through the
 * gateway under /customers):
 *
 *   POST /customers                               open a line          201
 *   GET  /customers?customerId=C[&page=1&size=20] a customer's lines   200
 *   GET  /customers/{svcContNo}                   one line             200
 *   POST /customers/{svcContNo}/orders            place an order       202
 *   GET  /customers/{svcContNo}/orders            the line's orders    200
 *   GET  /customers/{svcContNo}/orders/{orderId}  one order            200
 *
 * Errors are problem+json with stable codes (see docs/openapi.yaml).
 */
#ifndef CUSTOMER_ROUTES_H
#define CUSTOMER_ROUTES_H

#include "customer.h"
#include "http.h"

/* Registers every route above on http with c as their context. */
int customer_routes_register(bss_http *http, customer_ctx *c, char *err);

#endif
