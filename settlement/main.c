/*
 * main.c - bssiot-settlement: wires settlement's event core (following the
 * billing stream, creating its domain tables and notification queue
 * through the schema hook), the report mail channel with its notifier
 * thread, and the routes (reading the core's store) into the service
 * runtime. No domain logic here.
 *
 * Configuration beyond service.h and eventcore.h:
 *   BSS_SETTLEMENT_MAIL_TO  the business department's address that gets the
 *                           settlement report (default business@bssiot.local)
 *   BSS_SMTP_URL, BSS_MAIL_FROM, BSS_SMTP_USER, BSS_SMTP_PASSWORD,
 *   BSS_SMTP_TIMEOUT_MS     the mail channel, see mailout.h (without
 *                           BSS_SMTP_URL reports go to <data dir>/mail.log)
 */
#include "bss_error.h"
#include "eventcore.h"
#include "handlers.h"
#include "mail.h"
#include "mailout.h"
#include "notify.h"
#include "routes.h"
#include "service.h"
#include "settlement.h"

#include <curl/curl.h>
#include <stdio.h>

static const char *const followed[] = {"billing"};

static void stop_notifier(void *notifier) { bss_notifier_stop(notifier); }

int main(int argc, char **argv)
{
    bss_service_exec_tuned(argv);
    bss_service svc;
    char err[BSS_ERRLEN] = "";
    if (bss_service_init(&svc, "settlement", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "settlement: %s\n", err);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bss_eventcore *core = NULL;
    bss_notifier *notifier = NULL;
    settlement_mailout *mailout = NULL;
    settlement_handler_ctx hctx = {
        bss_config_get(svc.config, "BSS_SETTLEMENT_MAIL_TO", SETTLEMENT_MAIL_TO_DEFAULT),
        svc.log};
    settlement_routes rctx = {NULL};
    int rc = BSS_OK;
    if (!bss_mail_address_ok(hctx.mail_to)) {
        bss_seterr(err, "BSS_SETTLEMENT_MAIL_TO '%s' is not a usable address", hctx.mail_to);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK) {
        mailout = settlement_mailout_new(svc.config, svc.data_dir, err);
        rc = mailout != NULL ? BSS_OK : BSS_ERR_INVALID;
    }
    if (rc == BSS_OK) {
        bss_eventcore_options o = {.service = "settlement",
                                   .config = svc.config,
                                   .data_dir = svc.data_dir,
                                   .log = svc.log,
                                   .metrics = svc.metrics,
                                   .streams = followed,
                                   .nstreams = 1,
                                   .handler = settlement_handle_event,
                                   .handler_ctx = &hctx,
                                   .types = SETTLEMENT_HANDLED_TYPES,
                                   .ntypes = SETTLEMENT_HANDLED_TYPE_COUNT,
                                   .schema = settlement_schema};
        rc = bss_eventcore_open(&o, &core, err);
    }
    if (rc == BSS_OK) {
        rctx.store = bss_eventcore_store(core);
        bss_notifier_options no = {rctx.store, settlement_mailout_send, mailout, svc.log,
                                   svc.metrics, 0};
        rc = bss_notifier_start(&no, &notifier, err);
    }
    if (rc == BSS_OK)
        rc = settlement_routes_register(svc.http, &rctx, err);
    if (rc == BSS_OK)
        rc = bss_eventcore_serve_dead_letters(core, svc.http, "/settlements", err);
    /* Hooks run in reverse: the notifier stops before the store closes. */
    if (rc == BSS_OK && (bss_service_add_shutdown(&svc, bss_eventcore_close, core) != BSS_OK ||
                         bss_service_add_shutdown(&svc, stop_notifier, notifier) != BSS_OK)) {
        bss_seterr(err, "cannot register the shutdown hooks");
        rc = BSS_ERR_NOMEM;
    }
    if (rc != BSS_OK) {
        /* No hook has run, and none will: release here. */
        bss_log_error(svc.log, "start-up failed: %s", err);
        fprintf(stderr, "settlement: %s\n", err);
        bss_notifier_stop(notifier);
        bss_eventcore_close(core);
        settlement_mailout_free(mailout);
        bss_service_free(&svc);
        curl_global_cleanup();
        return 1;
    }
    bss_log_info(svc.log, "settlement reports go to %s via %s", hctx.mail_to,
                 settlement_mailout_uses_smtp(mailout) ? "SMTP" : "the mail log");
    bss_http_set_readiness(svc.http, bss_eventcore_ready, core);
    rc = bss_service_run(&svc, err);
    if (rc != BSS_OK)
        fprintf(stderr, "settlement: %s\n", err);
    settlement_mailout_free(mailout);
    bss_service_free(&svc);
    curl_global_cleanup();
    return rc == BSS_OK ? 0 : 1;
}
