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
#include "spool.h"
#include "usage_routes.h"

#include <limits.h>

#include <stdio.h>

static const char *const followed[] = {"customer"};

int main(int argc, char **argv)
{
    bss_service_exec_tuned(argv);
    bss_service svc;
    char err[BSS_ERRLEN];
    if (bss_service_init(&svc, "rater", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "rater: %s\n", err);
        return 1;
    }
    bss_eventcore *core = NULL;
    rater_spool *spool = NULL;
    au_closer *closer = NULL;
    rater_handler_ctx hctx = {svc.log};
    rater_routes rctx = {NULL};
    usage_routes uctx = {.metrics = svc.metrics};
    long long max_file = 0, spool_poll = 0;
    char default_spool[PATH_MAX + 8], spool_dir[PATH_MAX + 8];
    snprintf(default_spool, sizeof default_spool, "%s/spool", svc.data_dir);
    snprintf(spool_dir, sizeof spool_dir, "%s",
             bss_config_get(svc.config, "BSS_RATER_SPOOL_DIR", default_spool));
    snprintf(uctx.upload_dir, sizeof uctx.upload_dir, "%s", svc.data_dir);
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
    int rc = bss_config_get_int(svc.config, "BSS_USAGE_FILE_MAX_BYTES", 1LL << 30, &max_file, err);
    if (rc == BSS_OK)
        rc = bss_config_get_int(svc.config, "BSS_RATER_SPOOL_POLL_MS", 250, &spool_poll, err);
    if (rc == BSS_OK)
        rc = bss_eventcore_open(&o, &core, err);
    if (rc == BSS_OK) {
        rctx.store = uctx.store = bss_eventcore_store(core);
        uctx.max_file_bytes = max_file;
        rc = rater_routes_register(svc.http, &rctx, err);
    }
    if (rc == BSS_OK)
        rc = au_closer_start(uctx.store, 0, svc.log, svc.metrics, &closer, err);
    uctx.closer = closer;
    if (rc == BSS_OK)
        rc = usage_routes_register(svc.http, &uctx, err);
    if (rc == BSS_OK)
        rc = bss_eventcore_serve_dead_letters(core, svc.http, "/raters", err);
    if (rc == BSS_OK)
        rc = rater_spool_start(spool_dir, (int)spool_poll, uctx.store, svc.log, svc.metrics,
                               &spool, err);
    /* Hooks run in reverse: spool and closer stop before the event core closes. */
    if (rc == BSS_OK && (bss_service_add_shutdown(&svc, bss_eventcore_close, core) != BSS_OK ||
                         bss_service_add_shutdown(&svc, au_closer_stop, closer) != BSS_OK ||
                         bss_service_add_shutdown(&svc, rater_spool_stop, spool) != BSS_OK)) {
        bss_seterr(err, "cannot register the shutdown hook");
        rc = BSS_ERR_NOMEM;
    }
    if (rc != BSS_OK) {
        /* No hook has run, and none will: release here. */
        bss_log_error(svc.log, "start-up failed: %s", err);
        fprintf(stderr, "rater: %s\n", err);
        rater_spool_stop(spool);
        au_closer_stop(closer);
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
