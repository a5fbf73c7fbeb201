/*
 * test_rater_billing.c - the rater and billing aggregates driven through
 * their consumer handlers and REST routes, without a bus: each customer
 * event is applied in a store transaction exactly as the consumer does, and
 * the test checks the domain rows, the events emitted (types, data,
 * causation) and the JSON the routes serve.
 *
 * Pins down: OPEN creates rater info / charge info; other order types are
 * ignored; status history comes from LineStatusChanged only, once per event;
 * the termination/restore saga answers (including the compensation path);
 * contract violations are BSS_ERR_INVALID (dead-lettered); unknown products
 * are rejected by billing; unlimited data is JSON null; status_at. The
 * routes read the same bss_store the handlers wrote, through store
 * snapshots, and many concurrent GETs all get the full answer.
 */
#include "billing/billing.h"
#include "billing/handlers.h"
#include "billing/routes.h"
#include "bss_error.h"
#include "catalog.h"
#include "check.h"
#include "consumer.h"
#include "http.h"
#include "isotime.h"
#include "rater/handlers.h"
#include "rater/rater.h"
#include "rater/routes.h"
#include "statushistory.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static check_counts C;

/* ---- helpers --------------------------------------------------------- */

typedef struct fixture {
    bss_store *store;
    tu_events out; /* events the last apply emitted */
} fixture;

/* Applies a customer event through handler in one transaction, as the
 * consumer does (commit on BSS_OK, rollback otherwise), and collects what it
 * emitted into f->out. Returns the handler's result. */
static int apply(fixture *f, bss_handler_fn handler, void *ctx, const char *type,
                 const char *subject, const char *data, bss_event **keep)
{
    bss_event *ev = tu_event(&C, "customer", type, subject, data);
    if (ev == NULL)
        return BSS_ERR;
    int rc = tu_apply(&C, f->store, handler, ctx, ev, &f->out);
    if (keep != NULL)
        *keep = ev;
    else
        bss_event_free(ev);
    return rc;
}

static cJSON *data_of(const bss_event *ev) { return cJSON_Parse(ev->data); }

static char *open_data(const char *order, const char *no, const char *product, const char *apn)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"orderId\":\"%s\",\"type\":\"OPEN\",\"status\":\"COMPLETED\","
             "\"effectiveAt\":\"2026-10-01T09:00:00+09:00\",\"line\":{\"customerId\":\"C1\","
             "\"svcContNo\":\"%s\",\"svcContStatus\":\"ACTIVE\",\"productCd\":\"%s\","
             "\"productNm\":\"IoT Basic\",\"productTarif\":3000,\"apnCd\":\"%s\","
             "\"email\":\"c1@example.com\",\"phone\":\"010\",\"address\":\"Seoul\","
             "\"chargeAccount\":\"A1\"}}",
             order, no, product, apn);
    return buf;
}

/* ---- HTTP ------------------------------------------------------------ */

/* Many clients GET the same path at once: every answer must be 200 and carry
 * `needle` (each request takes its own store snapshot). */
#define GET_THREADS 8
#define GETS_PER_THREAD 25

typedef struct getter {
    pthread_t tid;
    int port;
    const char *path;
    const char *needle;
    int ok; /* requests answered 200 with needle in the body */
} getter;

static void *getter_run(void *arg)
{
    getter *g = arg;
    tu_body b;
    for (int i = 0; i < GETS_PER_THREAD; i++)
        if (tu_http_get(g->port, g->path, NULL, &b, NULL) == 200 &&
            strstr(b.buf, g->needle) != NULL)
            g->ok++;
    return NULL;
}

static void check_concurrent_gets(int port, const char *path, const char *needle)
{
    getter g[GET_THREADS];
    int started = 0;
    for (int i = 0; i < GET_THREADS; i++) {
        g[i] = (getter){.port = port, .path = path, .needle = needle};
        if (pthread_create(&g[i].tid, NULL, getter_run, &g[i]) != 0)
            break;
        started++;
    }
    CHECK(&C, started == GET_THREADS);
    int ok = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(g[i].tid, NULL);
        ok += g[i].ok;
    }
    CHECK(&C, ok == GET_THREADS * GETS_PER_THREAD);
}

/* ---- rater ----------------------------------------------------------- */

static void test_rater(const char *dir)
{
    char path[512], err[BSS_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/rater.db", dir);
    fixture f = {0};
    if (tu_open_store(path, "rater", &f.store) != BSS_OK) {
        C.failed++;
        return;
    }
    CHECK(&C, tu_apply_schema(f.store, rater_schema) == BSS_OK);
    CHECK(&C, tu_apply_schema(f.store, rater_schema) == BSS_OK); /* idempotent */
    rater_handler_ctx ctx = {NULL};
    bss_handler_fn h = rater_handle_event;

    /* OPEN creates rater info and emits RaterCreated caused by the order. */
    bss_event *cause = NULL;
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L1", open_data("O1", "L1", "IOT-BASIC", "APN1"),
                    &cause) == BSS_OK);
    CHECK(&C, f.out.n == 1);
    if (f.out.n == 1) {
        bss_event *e = f.out.ev[0];
        cJSON *d = data_of(e);
        CHECK(&C, strcmp(e->type, "RaterCreated") == 0);
        CHECK(&C, strcmp(e->subject, "L1") == 0);
        CHECK(&C, strcmp(e->source, "rater") == 0);
        CHECK(&C, strcmp(e->causation_id, cause->id) == 0);
        CHECK(&C, strcmp(e->correlation_id, cause->id) == 0);
        CHECK(&C, strcmp(tu_jstr(d, "customerId"), "C1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "apnCd"), "APN1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "useYn"), "Y") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "productCd"), "IOT-BASIC") == 0);
        CHECK(&C, cJSON_GetArraySize(d) == 4);
        cJSON_Delete(d);
    }
    bss_event_free(cause);
    /* A second OPEN for the same line changes nothing and emits nothing. */
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L1", open_data("O9", "L1", "IOT-PLUS", "APN9"),
                    NULL) == BSS_OK);
    CHECK(&C, f.out.n == 0);
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM rater_info WHERE apn_cd='APN1'") == 1);
    /* OrderCreated does not write status history. */
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM line_status_history") == 0);

    /* Other order types are ignored; contract violations are invalid. */
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L1",
                    "{\"orderId\":\"O2\",\"type\":\"SUSPEND\",\"status\":\"RECEIVED\","
                    "\"effectiveAt\":\"2026-10-02T00:00:00+09:00\"}",
                    NULL) == BSS_OK);
    CHECK(&C, f.out.n == 0);
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L2",
                    "{\"orderId\":\"O3\",\"type\":\"OPEN\",\"effectiveAt\":"
                    "\"2026-10-02T00:00:00+09:00\",\"line\":{\"customerId\":\"C1\","
                    "\"svcContNo\":\"L2\",\"productCd\":\"IOT-BASIC\",\"productNm\":\"n\","
                    "\"productTarif\":3000}}",
                    NULL) == BSS_ERR_INVALID); /* no apnCd */
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L2", open_data("O4", "L3", "IOT-BASIC", "A"),
                    NULL) == BSS_ERR_INVALID); /* line.svcContNo != subject */
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L2",
                    "{\"orderId\":\"O5\",\"type\":\"BOGUS\",\"effectiveAt\":"
                    "\"2026-10-02T00:00:00+09:00\"}",
                    NULL) == BSS_ERR_INVALID);
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "L2", "{\"orderId\":\"O5\",\"type\":\"OPEN\"}",
                    NULL) == BSS_ERR_INVALID);
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM rater_info") == 1);
    CHECK(&C, apply(&f, h, &ctx, "SomethingNew", "L1", "{}", NULL) == BSS_OK);
    CHECK(&C, f.out.n == 0);

    /* LineStatusChanged -> history + RaterStatusRecorded, once per event. */
    const char *lsc = "{\"orderId\":\"O1\",\"from\":null,\"to\":\"ACTIVE\","
                      "\"effectiveAt\":\"2026-10-01T09:00:00+09:00\",\"customerId\":\"C1\"}";
    bss_event *sc = NULL;
    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "L1", lsc, &sc) == BSS_OK);
    CHECK(&C, f.out.n == 1);
    if (f.out.n == 1) {
        cJSON *d = data_of(f.out.ev[0]);
        CHECK(&C, strcmp(f.out.ev[0]->type, "RaterStatusRecorded") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "orderId"), "O1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "status"), "ACTIVE") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "effectiveAt"), "2026-10-01T09:00:00+09:00") == 0);
        cJSON_Delete(d);
    }
    /* The same event again (by id) records nothing. */
    tu_events_free(&f.out);
    CHECK(&C, bss_store_begin(f.store, err) == BSS_OK);
    CHECK(&C, rater_handle_event(&ctx, f.store, sc, err) == BSS_OK);
    CHECK(&C, bss_store_commit(f.store, err) == BSS_OK);
    bss_event_free(sc);
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM line_status_history") == 1);
    CHECK(&C, tu_count_rows(f.store,
                            "SELECT count(*) FROM events WHERE type='RaterStatusRecorded'") == 1);
    /* Bad statuses and times are contract violations. */
    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "L1",
                    "{\"orderId\":\"O1\",\"to\":\"ASLEEP\",\"effectiveAt\":\"2026-10-01T09:00:00Z\"}",
                    NULL) == BSS_ERR_INVALID);
    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "L1",
                    "{\"orderId\":\"O1\",\"to\":\"ACTIVE\",\"effectiveAt\":\"2026-10-01T09:00:00\"}",
                    NULL) == BSS_ERR_INVALID);
    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "L1",
                    "{\"to\":\"ACTIVE\",\"effectiveAt\":\"2026-10-01T09:00:00Z\"}",
                    NULL) == BSS_ERR_INVALID);
    /* Later change arriving first still reads back in effective order. */
    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "L1",
                    "{\"orderId\":\"O7\",\"from\":\"SUSPENDED\",\"to\":\"ACTIVE\","
                    "\"effectiveAt\":\"2026-10-20T00:00:00+09:00\"}",
                    NULL) == BSS_OK);
    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "L1",
                    "{\"orderId\":\"O6\",\"from\":\"ACTIVE\",\"to\":\"SUSPENDED\","
                    "\"effectiveAt\":\"2026-10-10T00:00:00+09:00\"}",
                    NULL) == BSS_OK);

    /* status_at answers from the effective times. */
    int64_t t_open = 0, t_susp = 0;
    bss_time_parse("2026-10-01T09:00:00+09:00", 25, &t_open);
    bss_time_parse("2026-10-10T00:00:00+09:00", 25, &t_susp);
    char st[16];
    CHECK(&C, bss_store_begin(f.store, err) == BSS_OK);
    sqlite3 *db = bss_store_db(f.store);
    CHECK(&C, bss_statushistory_status_at(db, "L1", t_open - 1, st, sizeof st, err) ==
                  BSS_ERR_NOTFOUND);
    CHECK(&C, bss_statushistory_status_at(db, "L1", t_open, st, sizeof st, err) == BSS_OK &&
                  strcmp(st, "ACTIVE") == 0);
    CHECK(&C, bss_statushistory_status_at(db, "L1", t_susp + 1000, st, sizeof st, err) == BSS_OK &&
                  strcmp(st, "SUSPENDED") == 0);
    CHECK(&C, bss_statushistory_status_at(db, "L1", t_susp + 30LL * 86400000, st, sizeof st,
                                          err) == BSS_OK &&
                  strcmp(st, "ACTIVE") == 0);
    bss_store_rollback(f.store);

    /* Termination saga: in use -> RaterTerminated; again -> RaterUnused. */
    const char *term = "{\"orderId\":\"T1\",\"effectiveAt\":\"2026-10-25T00:00:00+09:00\"}";
    CHECK(&C, apply(&f, h, &ctx, "TerminationRequested", "L1", term, NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1 && strcmp(f.out.ev[0]->type, "RaterTerminated") == 0);
    if (f.out.n == 1) {
        cJSON *d = data_of(f.out.ev[0]);
        CHECK(&C, strcmp(tu_jstr(d, "orderId"), "T1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "effectiveAt"), "2026-10-25T00:00:00+09:00") == 0);
        cJSON_Delete(d);
    }
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM rater_info WHERE use_yn='N'") == 1);
    CHECK(&C, apply(&f, h, &ctx, "TerminationRequested", "L1",
                    "{\"orderId\":\"T2\",\"effectiveAt\":\"2026-10-26T00:00:00+09:00\"}",
                    NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1 && strcmp(f.out.ev[0]->type, "RaterUnused") == 0);
    if (f.out.n == 1) {
        cJSON *d = data_of(f.out.ev[0]);
        CHECK(&C, strcmp(tu_jstr(d, "orderId"), "T2") == 0 && cJSON_GetArraySize(d) == 1);
        cJSON_Delete(d);
    }
    /* Unknown line: already unused. */
    CHECK(&C, apply(&f, h, &ctx, "TerminationRequested", "NOPE", term, NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1 && strcmp(f.out.ev[0]->type, "RaterUnused") == 0);
    CHECK(&C, apply(&f, h, &ctx, "TerminationRequested", "L1", "{\"orderId\":\"T3\"}", NULL) ==
                  BSS_ERR_INVALID);

    /* Restore saga: not in use -> RaterRestored; again -> RaterInUse. */
    const char *rest = "{\"orderId\":\"R1\",\"effectiveAt\":\"2026-10-27T00:00:00+09:00\"}";
    CHECK(&C, apply(&f, h, &ctx, "RestoreRequested", "L1", rest, NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1 && strcmp(f.out.ev[0]->type, "RaterRestored") == 0);
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM rater_info WHERE use_yn='Y'") == 1);
    CHECK(&C, apply(&f, h, &ctx, "RestoreRequested", "L1", rest, NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1 && strcmp(f.out.ev[0]->type, "RaterInUse") == 0);
    tu_events_free(&f.out);

    /* GET /raters/{svcContNo} through the real HTTP server, reading the
     * store the handlers wrote. */
    bss_http *http = tu_http_new("rater");
    CHECK(&C, http != NULL);
    rater_routes rr = {f.store};
    CHECK(&C, rater_routes_register(http, &rr, err) == BSS_OK);
    CHECK(&C, bss_http_start(http, err) == BSS_OK);
    int port = bss_http_port(http);
    tu_body b;
    CHECK(&C, tu_http_get(port, "/raters/L1", NULL, &b, NULL) == 200);
    cJSON *v = cJSON_Parse(b.buf);
    CHECK(&C, strcmp(tu_jstr(v, "svcContNo"), "L1") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "customerId"), "C1") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "apnCd"), "APN1") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "useYn"), "Y") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "productCd"), "IOT-BASIC") == 0);
    int64_t created = 0;
    CHECK(&C, bss_time_parse(tu_jstr(v, "createdAt"), strlen(tu_jstr(v, "createdAt")), &created) ==
                  BSS_OK);
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(v, "statusHistory");
    CHECK(&C, cJSON_GetArraySize(hist) == 3);
    const char *want[] = {"ACTIVE", "SUSPENDED", "ACTIVE"}, *orders[] = {"O1", "O6", "O7"};
    for (int i = 0; i < 3 && cJSON_GetArraySize(hist) == 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(hist, i);
        CHECK(&C, strcmp(tu_jstr(e, "status"), want[i]) == 0);
        CHECK(&C, strcmp(tu_jstr(e, "orderId"), orders[i]) == 0);
    }
    CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(hist, 0), "effectiveAt"),
                     "2026-10-01T09:00:00+09:00") == 0);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(v, "usage");
    CHECK(&C, cJSON_IsArray(usage) && cJSON_GetArraySize(usage) == 0);
    cJSON_Delete(v);
    CHECK(&C, tu_http_get(port, "/raters/NOPE", NULL, &b, NULL) == 404);
    v = cJSON_Parse(b.buf);
    CHECK(&C, strcmp(tu_jstr(v, "code"), "LINE_NOT_FOUND") == 0);
    cJSON_Delete(v);
    check_concurrent_gets(port, "/raters/L1", "\"O7\"");
    bss_http_free(http);
    bss_store_close(f.store);
}

/* ---- billing --------------------------------------------------------- */

static void test_billing(const char *dir)
{
    char path[512], err[BSS_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/billing.db", dir);
    const char *cat =
        "{\"products\":[{\"productCd\":\"IOT-BASIC\",\"productNm\":\"IoT Basic\","
        "\"productTarif\":3000,\"includedMb\":100,\"perMbRate\":20},"
        "{\"productCd\":\"IOT-UNLIMITED\",\"productNm\":\"IoT Unlimited\","
        "\"productTarif\":22000,\"includedMb\":\"unlimited\",\"perMbRate\":0}]}";
    bss_catalog *catalog = NULL;
    CHECK(&C, bss_catalog_parse(cat, strlen(cat), &catalog, err) == BSS_OK);
    fixture f = {0};
    if (catalog == NULL || tu_open_store(path, "billing", &f.store) != BSS_OK) {
        C.failed++;
        bss_catalog_free(catalog);
        return;
    }
    CHECK(&C, tu_apply_schema(f.store, billing_schema) == BSS_OK);
    billing_handler_ctx ctx = {.catalog = catalog, .log = NULL};
    bss_handler_fn h = billing_handle_event;

    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "B1", open_data("O1", "B1", "IOT-BASIC", "A1"),
                    NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1);
    if (f.out.n == 1) {
        cJSON *d = data_of(f.out.ev[0]);
        CHECK(&C, strcmp(f.out.ev[0]->type, "ChargeInfoCreated") == 0);
        CHECK(&C, strcmp(f.out.ev[0]->source, "billing") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "customerId"), "C1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "productCd"), "IOT-BASIC") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "productNm"), "IoT Basic") == 0);
        CHECK(&C, tu_jnum(d, "productTarif") == 3000);
        CHECK(&C, tu_jnum(d, "includedMb") == 100);
        CHECK(&C, tu_jnum(d, "perMbRate") == 20);
        cJSON_Delete(d);
    }
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "B2",
                    open_data("O2", "B2", "IOT-UNLIMITED", "A1"), NULL) == BSS_OK);
    if (f.out.n == 1) {
        cJSON *d = data_of(f.out.ev[0]);
        CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "includedMb")));
        CHECK(&C, tu_jnum(d, "perMbRate") == 0);
        cJSON_Delete(d);
    }
    /* Unknown product, fractional or textual money: contract violations. */
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "B3", open_data("O3", "B3", "IOT-GOLD", "A1"),
                    NULL) == BSS_ERR_INVALID);
    char bad[1024];
    snprintf(bad, sizeof bad, "%s", open_data("O4", "B3", "IOT-BASIC", "A1"));
    char *tarif = strstr(bad, "3000");
    memcpy(tarif, "30.5", 4);
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "B3", bad, NULL) == BSS_ERR_INVALID);
    memcpy(tarif, "\"30\"", 4);
    CHECK(&C, apply(&f, h, &ctx, "OrderCreated", "B3", bad, NULL) == BSS_ERR_INVALID);
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM charge_info") == 2);
    CHECK(&C, tu_count_rows(f.store, "SELECT count(*) FROM line_status_history") == 0);
    /* Billing ignores the rater's saga requests. */
    CHECK(&C, apply(&f, h, &ctx, "TerminationRequested", "B1",
                    "{\"orderId\":\"T1\",\"effectiveAt\":\"2026-10-25T00:00:00+09:00\"}",
                    NULL) == BSS_OK);
    CHECK(&C, f.out.n == 0);

    CHECK(&C, apply(&f, h, &ctx, "LineStatusChanged", "B1",
                    "{\"orderId\":\"O1\",\"from\":null,\"to\":\"ACTIVE\","
                    "\"effectiveAt\":\"2026-10-01T09:00:00+09:00\",\"customerId\":\"C1\"}",
                    NULL) == BSS_OK);
    CHECK(&C, f.out.n == 1 && strcmp(f.out.ev[0]->type, "ChargeStatusRecorded") == 0);
    tu_events_free(&f.out);

    bss_http *http = tu_http_new("billing");
    CHECK(&C, http != NULL);
    billing_routes br = {f.store};
    CHECK(&C, billing_routes_register(http, &br, err) == BSS_OK);
    CHECK(&C, bss_http_start(http, err) == BSS_OK);
    int port = bss_http_port(http);
    tu_body b;
    CHECK(&C, tu_http_get(port, "/billings/B1", NULL, &b, NULL) == 200);
    cJSON *v = cJSON_Parse(b.buf);
    CHECK(&C, strcmp(tu_jstr(v, "svcContNo"), "B1") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "customerId"), "C1") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "productCd"), "IOT-BASIC") == 0);
    CHECK(&C, strcmp(tu_jstr(v, "productNm"), "IoT Basic") == 0);
    CHECK(&C, tu_jnum(v, "productTarif") == 3000);
    CHECK(&C, tu_jnum(v, "includedMb") == 100);
    CHECK(&C, tu_jnum(v, "perMbRate") == 20);
    CHECK(&C, strcmp(tu_jstr(v, "email"), "c1@example.com") == 0);
    CHECK(&C, tu_jstr(v, "createdAt")[0] != '\0');
    CHECK(&C, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "statusHistory")) == 1);
    cJSON_Delete(v);
    CHECK(&C, tu_http_get(port, "/billings/B2", NULL, &b, NULL) == 200);
    v = cJSON_Parse(b.buf);
    CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(v, "includedMb")));
    CHECK(&C, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "statusHistory")) == 0);
    cJSON_Delete(v);
    CHECK(&C, tu_http_get(port, "/billings/B3", NULL, &b, NULL) == 404);
    CHECK(&C, strstr(b.buf, "\"LINE_NOT_FOUND\"") != NULL);
    check_concurrent_gets(port, "/billings/B1", "\"IoT Basic\"");
    bss_http_free(http);
    bss_store_close(f.store);
    bss_catalog_free(catalog);
}

int main(void)
{
    char dir[] = "/tmp/bss-raterbilling-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    test_rater(dir);
    test_billing(dir);
    tu_end(dir);
    return CHECK_DONE(&C);
}
