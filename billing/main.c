/*
 * main.c - bssiot-billing: wires the product catalog, billing's event core
 * (following the customer stream, creating its domain tables through the
 * schema hook) and routes (reading the core's store) into the service
 * runtime. No domain logic here.
 *
 * Configuration beyond service.h and eventcore.h:
 *   BSS_CATALOG          product catalog file (default config/products.json,
 *                        relative to the working directory); start-up fails
 *                        when it cannot be read or is invalid
 */
#include "billing.h"
#include "bss_error.h"
#include "catalog.h"
#include "eventcore.h"
#include "handlers.h"
#include "routes.h"
#include "service.h"

#include <stdio.h>

static const char *const followed[] = {"customer"};

static void free_catalog(void *catalog) { bss_catalog_free(catalog); }

int main(int argc, char **argv)
{
    bss_service svc;
    char err[BSS_ERRLEN];
    if (bss_service_init(&svc, "billing", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "billing: %s\n", err);
        return 1;
    }
    bss_catalog *catalog = NULL;
    bss_eventcore *core = NULL;
    billing_handler_ctx hctx = {NULL, svc.log};
    billing_routes rctx = {NULL};
    const char *catalog_path = bss_config_get(svc.config, "BSS_CATALOG", "config/products.json");
    char cerr[BSS_ERRLEN];
    int rc = bss_catalog_load(catalog_path, &catalog, cerr);
    if (rc != BSS_OK)
        bss_seterr(err, "product catalog %s (set BSS_CATALOG): %s", catalog_path, cerr);
    if (rc == BSS_OK) {
        hctx.catalog = catalog;
        bss_eventcore_options o = {.service = "billing",
                                   .config = svc.config,
                                   .data_dir = svc.data_dir,
                                   .log = svc.log,
                                   .metrics = svc.metrics,
                                   .streams = followed,
                                   .nstreams = 1,
                                   .handler = billing_handle_event,
                                   .handler_ctx = &hctx,
                                   .schema = billing_schema};
        rc = bss_eventcore_open(&o, &core, err);
    }
    if (rc == BSS_OK) {
        rctx.store = bss_eventcore_store(core);
        rc = billing_routes_register(svc.http, &rctx, err);
    }
    /* Shutdown runs hooks in reverse: the event core (whose consumer uses the
     * catalog) closes first, then the catalog is freed. */
    if (rc == BSS_OK && (bss_service_add_shutdown(&svc, free_catalog, catalog) != BSS_OK ||
                         bss_service_add_shutdown(&svc, bss_eventcore_close, core) != BSS_OK)) {
        bss_seterr(err, "cannot register the shutdown hooks");
        rc = BSS_ERR_NOMEM;
    }
    if (rc != BSS_OK) {
        /* No hook has run, and none will: release here. */
        bss_log_error(svc.log, "start-up failed: %s", err);
        fprintf(stderr, "billing: %s\n", err);
        bss_eventcore_close(core);
        bss_catalog_free(catalog);
        bss_service_free(&svc);
        return 1;
    }
    bss_log_info(svc.log, "product catalog %s: %zu products", catalog_path,
                 bss_catalog_count(catalog));
    bss_http_set_readiness(svc.http, bss_eventcore_ready, core);
    rc = bss_service_run(&svc, err);
    if (rc != BSS_OK)
        fprintf(stderr, "billing: %s\n", err);
    bss_service_free(&svc);
    return rc == BSS_OK ? 0 : 1;
}
