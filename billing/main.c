/*
 * main.c - bssiot-billing: wires the product catalog, billing's event core
 * (following the customer and rater streams, creating its domain tables
 * through the schema hook), the invoice mail sender (a notifier draining
 * the "mail" queue) and routes (reading the core's store) into the service
 * runtime. No domain logic here.
 *
 * Configuration beyond service.h and eventcore.h:
 *   BSS_CATALOG          product catalog file (default config/products.json,
 *                        relative to the working directory); start-up fails
 *                        when it cannot be read or is invalid
 *   BSS_SMTP_URL, BSS_MAIL_FROM, BSS_SMTP_USER, BSS_SMTP_PASSWORD,
 *   BSS_SMTP_TIMEOUT_MS  the invoice mail, see invoice_mail.h
 */
#include "billing.h"
#include "bss_error.h"
#include "catalog.h"
#include "eventcore.h"
#include "handlers.h"
#include "invoice_mail.h"
#include "notify.h"
#include "routes.h"
#include "service.h"

#include <curl/curl.h>
#include <stdio.h>

static const char *const followed[] = {"customer", "rater"};

static void free_catalog(void *catalog) { bss_catalog_free(catalog); }
static void free_mail(void *mail) { invoice_mail_free(mail); }
static void stop_notifier(void *notifier) { bss_notifier_stop(notifier); }

int main(int argc, char **argv)
{
    bss_service_exec_tuned(argv);
    bss_service svc;
    char err[BSS_ERRLEN];
    if (bss_service_init(&svc, "billing", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "billing: %s\n", err);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bss_catalog *catalog = NULL;
    invoice_mail *mail = NULL;
    bss_notifier *notifier = NULL;
    bss_eventcore *core = NULL;
    billing_handler_ctx hctx = {.catalog = NULL, .log = svc.log};
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
                                   .nstreams = sizeof followed / sizeof followed[0],
                                   .handler = billing_handle_event,
                                   .handler_ctx = &hctx,
                                   .types = BILLING_HANDLED_TYPES,
                                   .ntypes = BILLING_HANDLED_TYPE_COUNT,
                                   .schema = billing_schema};
        rc = bss_eventcore_open(&o, &core, err);
    }
    if (rc == BSS_OK) {
        rctx.store = bss_eventcore_store(core);
        mail = invoice_mail_new(svc.config, svc.data_dir, rctx.store, err);
        rc = mail != NULL ? BSS_OK : BSS_ERR_INVALID;
    }
    if (rc == BSS_OK) {
        bss_notifier_options no = {.store = rctx.store,
                                   .send = invoice_mail_send,
                                   .ctx = mail,
                                   .log = svc.log,
                                   .metrics = svc.metrics};
        rc = bss_notifier_start(&no, &notifier, err);
    }
    if (rc == BSS_OK)
        rc = billing_routes_register(svc.http, &rctx, err);
    if (rc == BSS_OK)
        rc = bss_eventcore_serve_dead_letters(core, svc.http, "/billings", err);
    /* Shutdown runs hooks in reverse: the notifier stops (it uses the mail
     * channel and the store), then the event core (whose consumer uses the
     * catalog) closes, then the mail channel and the catalog are freed. */
    if (rc == BSS_OK && (bss_service_add_shutdown(&svc, free_catalog, catalog) != BSS_OK ||
                         bss_service_add_shutdown(&svc, free_mail, mail) != BSS_OK ||
                         bss_service_add_shutdown(&svc, bss_eventcore_close, core) != BSS_OK ||
                         bss_service_add_shutdown(&svc, stop_notifier, notifier) != BSS_OK)) {
        bss_seterr(err, "cannot register the shutdown hooks");
        rc = BSS_ERR_NOMEM;
    }
    if (rc != BSS_OK) {
        /* No hook has run, and none will: release here. */
        bss_log_error(svc.log, "start-up failed: %s", err);
        fprintf(stderr, "billing: %s\n", err);
        bss_notifier_stop(notifier);
        bss_eventcore_close(core);
        invoice_mail_free(mail);
        bss_catalog_free(catalog);
        bss_service_free(&svc);
        curl_global_cleanup();
        return 1;
    }
    bss_log_info(svc.log, "product catalog %s: %zu products", catalog_path,
                 bss_catalog_count(catalog));
    bss_http_set_readiness(svc.http, bss_eventcore_ready, core);
    rc = bss_service_run(&svc, err);
    if (rc != BSS_OK)
        fprintf(stderr, "billing: %s\n", err);
    bss_service_free(&svc);
    curl_global_cleanup();
    return rc == BSS_OK ? 0 : 1;
}
