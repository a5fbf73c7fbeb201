/*
 * main.c - bssiot-rater: wires the rater's event core (following the
 * customer stream, creating its domain tables through the schema hook) and
 * routes (reading the core's store) into the service runtime. No domain
 * logic here.
 *
 * Configuration: only what service.h and eventcore.h describe.
 */
#include "bss_error.h"
#include "eventcore.h"
#include "handlers.h"
#include "rater.h"
#include "routes.h"
#include "service.h"

#include <stdio.h>

static const char *const followed[] = {"customer"};

int main(int argc, char **argv)
{
    bss_service svc;
    char err[BSS_ERRLEN];
    if (bss_service_init(&svc, "rater", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "rater: %s\n", err);
        return 1;
    }
    bss_eventcore *core = NULL;
    rater_handler_ctx hctx = {svc.log};
    rater_routes rctx = {NULL};
    bss_eventcore_options o = {.service = "rater",
                               .config = svc.config,
                               .data_dir = svc.data_dir,
                               .log = svc.log,
                               .metrics = svc.metrics,
                               .streams = followed,
                               .nstreams = 1,
                               .handler = rater_handle_event,
                               .handler_ctx = &hctx,
                               .schema = rater_schema};
    int rc = bss_eventcore_open(&o, &core, err);
    if (rc == BSS_OK) {
        rctx.store = bss_eventcore_store(core);
        rc = rater_routes_register(svc.http, &rctx, err);
    }
    if (rc == BSS_OK && bss_service_add_shutdown(&svc, bss_eventcore_close, core) != BSS_OK) {
        bss_seterr(err, "cannot register the shutdown hook");
        rc = BSS_ERR_NOMEM;
    }
    if (rc != BSS_OK) {
        /* No hook has run, and none will: release here. */
        bss_log_error(svc.log, "start-up failed: %s", err);
        fprintf(stderr, "rater: %s\n", err);
        bss_eventcore_close(core);
        bss_service_free(&svc);
        return 1;
    }
    bss_http_set_readiness(svc.http, bss_eventcore_ready, core);
    rc = bss_service_run(&svc, err);
    if (rc != BSS_OK)
        fprintf(stderr, "rater: %s\n", err);
    bss_service_free(&svc);
    return rc == BSS_OK ? 0 : 1;
}
