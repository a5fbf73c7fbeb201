/*
 * customer.h - the customer service's context: everything its routes,
 * handlers and order logic share, owned by main.c. No global state.
 */
#ifndef CUSTOMER_CUSTOMER_H
#define CUSTOMER_CUSTOMER_H

#include "catalog.h"
#include "config.h"
#include "eventcore.h"
#include "log.h"
#include "metrics.h"

typedef struct customer_ctx {
    bss_eventcore *core;   /* store, bus, relay, consumer */
    bss_store *store;      /* bss_eventcore_store(core) */
    bss_catalog *catalog;  /* products a line can be opened with */
    bss_log *log;
    bss_metrics *metrics;
} customer_ctx;

/* A refusal to hand back to the REST layer: HTTP status, stable code, why. */
typedef struct customer_problem {
    int status;
    const char *code;
    char detail[256];
} customer_problem;

#endif
