/* main.c - the customer service: wiring only. */
#include "bss_error.h"
#include "catalog.h"
#include "customer.h"
#include "eventcore.h"
#include "handlers.h"
#include "lines_db.h"
#include "notify.h"
#include "routes.h"
#include "service.h"
#include "sms.h"

#include <curl/curl.h>
#include <stdio.h>

static void stop_notifier(void *ctx) { bss_notifier_stop(ctx); }

int main(int argc, char **argv)
{
    bss_service_exec_tuned(argv);
    bss_service svc;
    char err[BSS_ERRLEN] = "";
    if (bss_service_init(&svc, "customer", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "customer: %s\n", err);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    customer_ctx c = {.log = svc.log, .metrics = svc.metrics};
    sms_channel *sms = NULL;
    bss_notifier *notifier = NULL;
    int rc = bss_catalog_load(bss_config_get(svc.config, "BSS_CATALOG", "config/products.json"),
                              &c.catalog, err);
    if (rc == BSS_OK) {
        bss_eventcore_options o = {.service = "customer",
                                   .config = svc.config,
                                   .data_dir = svc.data_dir,
                                   .log = svc.log,
                                   .metrics = svc.metrics,
                                   .streams = CUSTOMER_STREAMS,
                                   .nstreams = CUSTOMER_STREAM_COUNT,
                                   .handler = customer_handle_event,
                                   .handler_ctx = &c,
                                   .schema = lines_db_schema};
        rc = bss_eventcore_open(&o, &c.core, err);
    }
    if (rc == BSS_OK) {
        c.store = bss_eventcore_store(c.core);
        sms = sms_channel_new(svc.config, svc.data_dir, err);
        rc = sms ? BSS_OK : BSS_ERR;
    }
    if (rc == BSS_OK) {
        bss_notifier_options no = {c.store, sms_channel_send, sms, svc.log, svc.metrics, 0};
        rc = bss_notifier_start(&no, &notifier, err);
    }
    if (rc == BSS_OK)
        rc = customer_routes_register(svc.http, &c, err);
    if (rc == BSS_OK)
        rc = bss_eventcore_serve_dead_letters(c.core, svc.http, "/customers", err);
    if (rc == BSS_OK) {
        bss_http_set_readiness(svc.http, bss_eventcore_ready, c.core);
        /* Hooks run in reverse: the notifier stops before the store closes. */
        bss_service_add_shutdown(&svc, bss_eventcore_close, c.core);
        bss_service_add_shutdown(&svc, stop_notifier, notifier);
        rc = bss_service_run(&svc, err);
    } else {
        bss_notifier_stop(notifier);
        bss_eventcore_close(c.core);
    }
    if (rc != BSS_OK)
        bss_log_error(svc.log, "customer: %s", err);
    sms_channel_free(sms);
    bss_catalog_free(c.catalog);
    bss_service_free(&svc);
    curl_global_cleanup();
    return rc == BSS_OK ? 0 : 1;
}
