/*
 * test_settlement.c - the settlement service driven through its consumer
 * handler, report mail channel and REST routes, without a bus: each billing
 * event (InvoiceIssued, PeriodInvoiced) is applied in a store transaction
 * exactly as the consumer does, and the test checks the stored totals, the
 * SettlementCompleted event, the notification queue and the JSON served
 * over real HTTP.
 *
 * Pins down: totals and byProduct (amount = line totals with VAT); a period
 * completes when PeriodInvoiced and exactly that many invoices are in,
 * whichever comes last; replaying the same event, or a re-issued invoice
 * with a new event id, changes nothing; exactly one SettlementCompleted and
 * one report notification per period; a late invoice of a settled period
 * is rejected (dead-lettered) and the totals stay as reported; usage sums
 * beyond 2^53 stay exact in the JSON, sums beyond 2^63 are rejected; the
 * same events in any order give the same document and the same mail;
 * contract violations are BSS_ERR_INVALID; the report's HTML escapes and
 * groups digits; the mail log gets a report exactly once (also after a line
 * cut short by a crash) and SMTP gets the Message-ID; the routes' 200, 404
 * and 422 answers and their ordering.
 */
#include "bss_error.h"
#include "check.h"
#include "config.h"
#include "consumer.h"
#include "html.h"
#include "http.h"
#include "isotime.h"
#include "notify.h"
#include "settlement/handlers.h"
#include "settlement/mailout.h"
#include "settlement/report.h"
#include "settlement/routes.h"
#include "settlement/settlement.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static check_counts C;

/* ---- helpers --------------------------------------------------------- */

typedef struct fixture {
    bss_store *store;
    settlement_handler_ctx ctx;
    tu_events out; /* events the last apply emitted */
} fixture;

/* A billing event as the consumer receives it. */
static bss_event *billing_event(const char *type, const char *subject, const char *data)
{
    return tu_event(&C, "billing", type, subject, data);
}

/* Applies ev through the handler in one transaction, as the consumer does
 * (commit on BSS_OK, rollback otherwise), and collects what it emitted. */
static int apply_event(fixture *f, const bss_event *ev)
{
    return tu_apply(&C, f->store, settlement_handle_event, &f->ctx, ev, &f->out);
}

/* Creates, applies and frees one event; returns the handler's result. */
static int apply(fixture *f, const char *type, const char *subject, const char *data)
{
    bss_event *ev = billing_event(type, subject, data);
    if (ev == NULL)
        return BSS_ERR;
    int rc = apply_event(f, ev);
    bss_event_free(ev);
    return rc;
}

static int open_fixture(const char *dir, const char *name, fixture *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    memset(f, 0, sizeof *f);
    f->ctx.mail_to = "biz@example.com";
    if (tu_open_store(path, "settlement", &f->store) != BSS_OK) {
        C.failed++;
        return BSS_ERR;
    }
    /* The schema hook, in a write transaction, as bss_eventcore_open runs it. */
    for (int i = 0; i < 2; i++) /* twice: idempotent */
        CHECK(&C, tu_apply_schema(f->store, settlement_schema) == BSS_OK);
    return BSS_OK;
}

static void close_fixture(fixture *f)
{
    tu_events_free(&f->out);
    bss_store_close(f->store);
    f->store = NULL;
}

/* The period's document as compact JSON text (malloc'd), or NULL. */
static char *doc_text(bss_store *store, const char *period)
{
    char err[BSS_ERRLEN] = "";
    sqlite3 *db = NULL;
    settlement_summary s;
    char *text = NULL;
    if (bss_store_snapshot_begin(store, &db, err) != BSS_OK)
        return NULL;
    if (settlement_load(db, period, &s, err) == BSS_OK) {
        cJSON *doc = settlement_summary_json(&s);
        if (doc != NULL)
            text = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        settlement_summary_free(&s);
    }
    bss_store_snapshot_end(store, db);
    return text;
}

/* The document without completedAt (which is the completing event's time). */
static char *doc_text_timeless(bss_store *store, const char *period)
{
    char *text = doc_text(store, period);
    cJSON *o = text != NULL ? cJSON_Parse(text) : NULL;
    free(text);
    if (o == NULL)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(o, "completedAt");
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* A charge line of InvoiceIssued. usage is the decimal text. */
static void charge(char *out, size_t len, const char *no, const char *customer,
                   const char *product, const char *period, const char *usage,
                   long long billable_mb, long long subtotal, long long vat)
{
    snprintf(out, len,
             "{\"svcContNo\":\"%s\",\"customerId\":\"%s\",\"productCd\":\"%s\","
             "\"period\":\"%s\",\"usageBytes\":\"%s\",\"billableMb\":%lld,"
             "\"includedMb\":null,\"overageMb\":0,\"overageFee\":0,\"activeDays\":31,"
             "\"daysInPeriod\":31,\"baseFee\":%lld,\"subtotal\":%lld,\"vat\":%lld,"
             "\"total\":%lld}",
             no, customer, product, period, usage, billable_mb, subtotal, subtotal, vat,
             subtotal + vat);
}

/* InvoiceIssued data with the given charge lines (JSON objects, joined). */
static char *invoice(const char *id, const char *customer, const char *period,
                     const char *lines, long long subtotal, long long vat)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"invoiceId\":\"%s\",\"customerId\":\"%s\",\"period\":\"%s\","
             "\"email\":\"%s@example.com\",\"lines\":[%s],\"subtotal\":%lld,\"vat\":%lld,"
             "\"total\":%lld,\"status\":\"ISSUED\","
             "\"issuedAt\":\"2026-11-01T10:00:00+09:00\"}",
             id, customer, period, customer, lines, subtotal, vat, subtotal + vat);
    return buf;
}

static char *period_invoiced(const char *period, int invoices, int lines)
{
    static char buf[256];
    snprintf(buf, sizeof buf,
             "{\"period\":\"%s\",\"invoiceCount\":%d,\"lineCount\":%d,\"chargeCount\":%d}",
             period, invoices, lines, lines);
    return buf;
}

/* ---- the three October invoices -------------------------------------- *
 *   I1 C1: L1 IOT-BASIC 1000 bytes 1 MB 3000+300; L2 IOT-PLUS 5000 bytes
 *          5 MB 9000+900
 *   I2 C2: L3 IOT-BASIC 2000 bytes 2 MB 3000+300
 *   I3 C3: L4 IOT-<b>&"X' 7 bytes 0 MB 100+10 (a code that needs escaping)
 * Totals: 4 lines, 8007 bytes, 8 MB, subtotal 15100, VAT 1510, total 16610;
 * IOT-BASIC 2 lines 3000 bytes 6600; IOT-PLUS 1 line 5000 bytes 9900. */

static const char *oct_invoice(int which, char *buf, size_t len)
{
    char a[1024], b[1024];
    switch (which) {
    case 1:
        charge(a, sizeof a, "L1", "C1", "IOT-BASIC", "2026-10", "1000", 1, 3000, 300);
        charge(b, sizeof b, "L2", "C1", "IOT-PLUS", "2026-10", "5000", 5, 9000, 900);
        snprintf(buf, len, "%s,%s", a, b);
        return invoice("I1", "C1", "2026-10", buf, 12000, 1200);
    case 2:
        charge(buf, len, "L3", "C2", "IOT-BASIC", "2026-10", "2000", 2, 3000, 300);
        return invoice("I2", "C2", "2026-10", buf, 3000, 300);
    default:
        charge(buf, len, "L4", "C3", "IOT-<b>&\\\"X'", "2026-10", "7", 0, 100, 10);
        return invoice("I3", "C3", "2026-10", buf, 100, 10);
    }
}

/* ---- parsing and formatting ------------------------------------------ */

static void test_parse_and_format(void)
{
    char err[BSS_ERRLEN] = "", lines[2048], a[1024];
    settlement_invoice inv;
    CHECK(&C, settlement_invoice_parse(oct_invoice(1, lines, sizeof lines), &inv, err) == BSS_OK);
    CHECK(&C, strcmp(inv.invoice_id, "I1") == 0 && strcmp(inv.period, "2026-10") == 0);
    CHECK(&C, inv.line_count == 2 && inv.usage_bytes == 6000 && inv.billable_mb == 6);
    CHECK(&C, inv.subtotal == 12000 && inv.vat == 1200 && inv.total == 13200);
    CHECK(&C, inv.lines_total == 13200);
    CHECK(&C, inv.nproducts == 2);
    if (inv.nproducts == 2) {
        CHECK(&C, strcmp(inv.products[0].product_cd, "IOT-BASIC") == 0);
        CHECK(&C, inv.products[0].amount == 3300 && inv.products[0].usage_bytes == 1000);
        CHECK(&C, strcmp(inv.products[1].product_cd, "IOT-PLUS") == 0);
        CHECK(&C, inv.products[1].amount == 9900 && inv.products[1].line_count == 1);
    }
    settlement_invoice_free(&inv);

    /* The summary form billing emits: the same invoice as byProduct parts. */
    static const char summary[] =
        "{\"invoiceId\":\"I1\",\"customerId\":\"C1\",\"period\":\"2026-10\","
        "\"email\":\"\",\"lineCount\":2,\"usageBytes\":\"6000\",\"billableMb\":6,"
        "\"byProduct\":[{\"productCd\":\"IOT-PLUS\",\"lineCount\":1,\"usageBytes\":\"5000\","
        "\"billableMb\":5,\"amount\":9900},{\"productCd\":\"IOT-BASIC\",\"lineCount\":1,"
        "\"usageBytes\":\"1000\",\"billableMb\":1,\"amount\":3300}],"
        "\"subtotal\":12000,\"vat\":1200,\"total\":13200,\"status\":\"ISSUED\","
        "\"issuedAt\":\"2026-11-01T00:00:00+09:00\"}";
    CHECK(&C, settlement_invoice_parse(summary, &inv, err) == BSS_OK);
    CHECK(&C, inv.line_count == 2 && inv.usage_bytes == 6000 && inv.billable_mb == 6);
    CHECK(&C, inv.lines_total == 13200 && inv.nproducts == 2);
    if (inv.nproducts == 2) {
        CHECK(&C, strcmp(inv.products[0].product_cd, "IOT-BASIC") == 0);
        CHECK(&C, inv.products[0].amount == 3300 && inv.products[0].usage_bytes == 1000);
        CHECK(&C, strcmp(inv.products[1].product_cd, "IOT-PLUS") == 0);
        CHECK(&C, inv.products[1].line_count == 1);
    }
    settlement_invoice_free(&inv);
    /* Parts that do not add up to the totals, a product twice, a part
     * without its amount, a summary that is not an array: refused. */
    char broken[sizeof summary + 64];
    const char *const edits[][2] = {
        {"\"lineCount\":2", "\"lineCount\":3"},
        {"\"usageBytes\":\"6000\"", "\"usageBytes\":\"6001\""},
        {"\"billableMb\":6", "\"billableMb\":7"},
        {"\"productCd\":\"IOT-BASIC\"", "\"productCd\":\"IOT-PLUS\""},
        {",\"amount\":3300", ""},
        {"\"byProduct\":[", "\"byProduct\":{\"x\":["},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(summary, edits[i][0]);
        CHECK(&C, at != NULL);
        if (at == NULL)
            continue;
        snprintf(broken, sizeof broken, "%.*s%s%s", (int)(at - summary), summary, edits[i][1],
                 at + strlen(edits[i][0]));
        CHECK(&C, settlement_invoice_parse(broken, &inv, err) != BSS_OK);
    }

    /* Contract violations. */
    const char *bad_usage[] = {"-1", "12a", "", " 1", "+1", "99999999999999999999",
                               "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_usage / sizeof bad_usage[0]; i++) {
        charge(a, sizeof a, "L1", "C1", "P", "2026-10", bad_usage[i], 1, 1, 0);
        CHECK(&C, settlement_invoice_parse(invoice("I9", "C1", "2026-10", a, 1, 0), &inv, err) ==
                      BSS_ERR_INVALID);
    }
    charge(a, sizeof a, "L1", "C1", "P", "2026-10", "9223372036854775807", 1, 1, 0);
    CHECK(&C, settlement_invoice_parse(invoice("I9", "C1", "2026-10", a, 1, 0), &inv, err) ==
                  BSS_OK);
    CHECK(&C, inv.usage_bytes == INT64_MAX);
    settlement_invoice_free(&inv);
    snprintf(lines, sizeof lines, "%s,%s", a, a); /* two lines: the sum overflows */
    CHECK(&C, settlement_invoice_parse(invoice("I9", "C1", "2026-10", lines, 1, 0), &inv, err) ==
                  BSS_ERR_INVALID);
    charge(a, sizeof a, "L1", "C1", "P", "2026-09", "1", 1, 1, 0); /* another period */
    CHECK(&C, settlement_invoice_parse(invoice("I9", "C1", "2026-10", a, 1, 0), &inv, err) ==
                  BSS_ERR_INVALID);
    CHECK(&C, strstr(err, "period") != NULL);
    charge(a, sizeof a, "L1", "C1", "P", "2026-10", "1", 1, 1, 0);
    const char *bad_period[] = {"2026-13", "2026-1", "26-10", "2026/10", "2026-10x"};
    for (size_t i = 0; i < sizeof bad_period / sizeof bad_period[0]; i++)
        CHECK(&C, settlement_invoice_parse(invoice("I9", "C1", bad_period[i], a, 1, 0), &inv,
                                           err) == BSS_ERR_INVALID);
    CHECK(&C, settlement_invoice_parse("{\"invoiceId\":\"I9\",\"customerId\":\"C\","
                                       "\"period\":\"2026-10\",\"lines\":{},\"subtotal\":0,"
                                       "\"vat\":0,\"total\":0}",
                                       &inv, err) == BSS_ERR_INVALID);
    CHECK(&C, settlement_invoice_parse("{\"customerId\":\"C\",\"period\":\"2026-10\","
                                       "\"lines\":[],\"subtotal\":0,\"vat\":0,\"total\":0}",
                                       &inv, err) == BSS_ERR_INVALID);
    CHECK(&C, strstr(err, "invoiceId") != NULL);
    CHECK(&C, settlement_invoice_parse("{\"invoiceId\":\"I9\",\"customerId\":\"C\","
                                       "\"period\":\"2026-10\",\"lines\":[{\"svcContNo\":\"L\","
                                       "\"productCd\":\"P\",\"usageBytes\":\"1\","
                                       "\"billableMb\":1}],\"subtotal\":0,\"vat\":0,"
                                       "\"total\":0}",
                                       &inv, err) == BSS_ERR_INVALID); /* line without total */
    CHECK(&C, settlement_invoice_parse("not json", &inv, err) == BSS_ERR_INVALID);
    /* usageBytes as a plain JSON integer is accepted too (up to 2^53). */
    CHECK(&C, settlement_invoice_parse("{\"invoiceId\":\"I9\",\"customerId\":\"C\","
                                       "\"period\":\"2026-10\",\"lines\":[{\"svcContNo\":\"L\","
                                       "\"productCd\":\"P\",\"usageBytes\":42,"
                                       "\"billableMb\":1,\"total\":5}],\"subtotal\":5,"
                                       "\"vat\":0,\"total\":5}",
                                       &inv, err) == BSS_OK);
    CHECK(&C, inv.usage_bytes == 42);
    settlement_invoice_free(&inv);

    CHECK(&C, settlement_period_ok("2026-10") && !settlement_period_ok("2026-00") &&
                  !settlement_period_ok(NULL) && !settlement_period_ok("2026-010"));

    char g[BSS_GROUPED_LEN];
    CHECK(&C, strcmp(bss_format_grouped(0, g, sizeof g), "0") == 0);
    CHECK(&C, strcmp(bss_format_grouped(999, g, sizeof g), "999") == 0);
    CHECK(&C, strcmp(bss_format_grouped(1000, g, sizeof g), "1,000") == 0);
    CHECK(&C, strcmp(bss_format_grouped(1234567, g, sizeof g), "1,234,567") == 0);
    CHECK(&C, strcmp(bss_format_grouped(-123456, g, sizeof g), "-123,456") == 0);
    CHECK(&C, strcmp(bss_format_grouped(INT64_MAX, g, sizeof g),
                     "9,223,372,036,854,775,807") == 0);
    CHECK(&C, strcmp(bss_format_grouped(INT64_MIN, g, sizeof g),
                     "-9,223,372,036,854,775,808") == 0);
    char tiny[4];
    CHECK(&C, strcmp(bss_format_grouped(123456, tiny, sizeof tiny), "123") == 0);

    char id[64];
    settlement_report_message_id("2026-10", id, sizeof id);
    CHECK(&C, strcmp(id, "<settlement-2026-10@bssiot>") == 0);
}

/* ---- the handler ------------------------------------------------------ */

/* Checks the October document after all three invoices. */
static void check_october(const cJSON *d)
{
    CHECK(&C, strcmp(tu_jstr(d, "period"), "2026-10") == 0);
    CHECK(&C, strcmp(tu_jstr(d, "status"), "COMPLETED") == 0);
    CHECK(&C, tu_jnum(d, "invoiceCount") == 3);
    CHECK(&C, tu_jnum(d, "lineCount") == 4);
    CHECK(&C, tu_jnum(d, "totalUsageBytes") == 8007);
    CHECK(&C, tu_jnum(d, "totalBillableMb") == 8);
    CHECK(&C, tu_jnum(d, "totalSubtotal") == 15100);
    CHECK(&C, tu_jnum(d, "totalVat") == 1510);
    CHECK(&C, tu_jnum(d, "totalAmount") == 16610);
    CHECK(&C, tu_jnum(d, "expectedInvoiceCount") == 3);
    CHECK(&C, cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "completedAt")));
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(d, "byProduct");
    CHECK(&C, cJSON_GetArraySize(by) == 3);
    const cJSON *p0 = cJSON_GetArrayItem(by, 0), *p1 = cJSON_GetArrayItem(by, 1),
                *p2 = cJSON_GetArrayItem(by, 2);
    CHECK(&C, strcmp(tu_jstr(p0, "productCd"), "IOT-<b>&\"X'") == 0);
    CHECK(&C, tu_jnum(p0, "lineCount") == 1 && tu_jnum(p0, "usageBytes") == 7 &&
                  tu_jnum(p0, "amount") == 110);
    CHECK(&C, strcmp(tu_jstr(p1, "productCd"), "IOT-BASIC") == 0);
    CHECK(&C, tu_jnum(p1, "lineCount") == 2 && tu_jnum(p1, "usageBytes") == 3000 &&
                  tu_jnum(p1, "amount") == 6600);
    CHECK(&C, strcmp(tu_jstr(p2, "productCd"), "IOT-PLUS") == 0);
    CHECK(&C, tu_jnum(p2, "lineCount") == 1 && tu_jnum(p2, "usageBytes") == 5000 &&
                  tu_jnum(p2, "amount") == 9900);
}

static void test_handler(fixture *f)
{
    char lines[2048];
    bss_event *i1 = billing_event("InvoiceIssued", "I1", oct_invoice(1, lines, sizeof lines));
    bss_event *i3 = billing_event("InvoiceIssued", "I3", oct_invoice(3, lines, sizeof lines));
    bss_event *pi = billing_event("PeriodInvoiced", "2026-10", period_invoiced("2026-10", 3, 4));
    if (i1 == NULL || i3 == NULL || pi == NULL)
        goto out;

    /* Nothing yet. */
    CHECK(&C, doc_text(f->store, "2026-10") == NULL);

    /* I1: the period opens with I1's contribution. */
    CHECK(&C, apply_event(f, i1) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    char *t = doc_text(f->store, "2026-10");
    cJSON *d = t != NULL ? cJSON_Parse(t) : NULL;
    CHECK(&C, d != NULL);
    CHECK(&C, strcmp(tu_jstr(d, "status"), "OPEN") == 0);
    CHECK(&C, tu_jnum(d, "invoiceCount") == 1 && tu_jnum(d, "lineCount") == 2);
    CHECK(&C, tu_jnum(d, "totalAmount") == 13200);
    CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "expectedInvoiceCount")));
    CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "completedAt")));
    cJSON_Delete(d);

    /* The same event again (a replay) and the same invoice under a new
     * event id (billing's month end run twice) change nothing. */
    CHECK(&C, apply_event(f, i1) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, apply(f, "InvoiceIssued", "I1", oct_invoice(1, lines, sizeof lines)) == BSS_OK);
    char *t2 = doc_text(f->store, "2026-10");
    CHECK(&C, t != NULL && t2 != NULL && strcmp(t, t2) == 0);
    free(t);
    free(t2);

    /* I2, then PeriodInvoiced(3): still OPEN, 2 of 3. */
    CHECK(&C, apply(f, "InvoiceIssued", "I2", oct_invoice(2, lines, sizeof lines)) == BSS_OK);
    CHECK(&C, apply_event(f, pi) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM settlement_period"
                                   " WHERE period='2026-10' AND status='OPEN'"
                                   " AND expected_invoices=3") == 1);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications") == 0);

    /* I3 completes the period: one SettlementCompleted, one report. */
    CHECK(&C, apply_event(f, i3) == BSS_OK);
    CHECK(&C, f->out.n == 1);
    if (f->out.n == 1) {
        bss_event *e = f->out.ev[0];
        CHECK(&C, strcmp(e->type, "SettlementCompleted") == 0);
        CHECK(&C, strcmp(e->subject, "2026-10") == 0);
        CHECK(&C, strcmp(e->source, "settlement") == 0);
        CHECK(&C, strcmp(e->causation_id, i3->id) == 0);
        cJSON *ed = cJSON_Parse(e->data);
        check_october(ed);
        cJSON_Delete(ed);
        /* The event carries exactly the document GET serves. */
        char *now = doc_text(f->store, "2026-10");
        CHECK(&C, now != NULL && strcmp(now, e->data) == 0);
        free(now);
    }
    t = doc_text(f->store, "2026-10");
    d = t != NULL ? cJSON_Parse(t) : NULL;
    check_october(d);
    cJSON_Delete(d);
    free(t);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications") == 1);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications WHERE channel='mail'"
                                   " AND dedup_key='settlement-2026-10'"
                                   " AND target='biz@example.com' AND status='PENDING'") == 1);
    char *payload = tu_query_text(f->store, "SELECT payload FROM notifications");
    cJSON *p = payload != NULL ? cJSON_Parse(payload) : NULL;
    CHECK(&C, strcmp(tu_jstr(p, "to"), "biz@example.com") == 0);
    CHECK(&C, strcmp(tu_jstr(p, "messageId"), "<settlement-2026-10@bssiot>") == 0);
    CHECK(&C, strstr(tu_jstr(p, "subject"), "2026-10") != NULL);
    const char *html = tu_jstr(p, "html");
    CHECK(&C, strstr(html, "16,610 KRW") != NULL); /* total */
    CHECK(&C, strstr(html, "15,100 KRW") != NULL); /* subtotal */
    CHECK(&C, strstr(html, "1,510 KRW") != NULL);  /* VAT */
    CHECK(&C, strstr(html, "8,007 bytes") != NULL);
    CHECK(&C, strstr(html, "9,900 KRW") != NULL); /* IOT-PLUS */
    CHECK(&C, strstr(html, "IOT-&lt;b&gt;&amp;&quot;X&#39;") != NULL);
    CHECK(&C, strstr(html, "<b>") == NULL); /* nothing unescaped */
    CHECK(&C, strstr(html, "style=\"") != NULL);
    cJSON_Delete(p);
    free(payload);

    /* Replays after completion: nothing emitted, no second report. */
    CHECK(&C, apply_event(f, i3) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, apply_event(f, pi) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-10", period_invoiced("2026-10", 3, 4)) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, apply_event(f, i1) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications") == 1);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM events") == 1);

    /* A new invoice for the settled period is rejected; totals unchanged. */
    char one[1024];
    charge(one, sizeof one, "L9", "C9", "IOT-BASIC", "2026-10", "1", 1, 1000, 100);
    t = doc_text(f->store, "2026-10");
    CHECK(&C, apply(f, "InvoiceIssued", "I9", invoice("I9", "C9", "2026-10", one, 1000, 100)) ==
                  BSS_ERR_INVALID);
    t2 = doc_text(f->store, "2026-10");
    CHECK(&C, t != NULL && t2 != NULL && strcmp(t, t2) == 0);
    free(t);
    free(t2);

    /* The running totals equal the sum of the stored contributions. */
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM settlement_period p WHERE"
                                   " p.total = (SELECT sum(total) FROM settlement_invoice i"
                                   "   WHERE i.period = p.period) AND"
                                   " p.usage_bytes = (SELECT sum(usage_bytes) FROM"
                                   "   settlement_invoice i WHERE i.period = p.period) AND"
                                   " p.invoice_count = (SELECT count(*) FROM"
                                   "   settlement_invoice i WHERE i.period = p.period)") == 1);

    /* Contract violations. */
    CHECK(&C, apply(f, "InvoiceIssued", "OTHER", oct_invoice(2, lines, sizeof lines)) ==
                  BSS_ERR_INVALID); /* subject != invoiceId */
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-09", period_invoiced("2026-10", 1, 1)) ==
                  BSS_ERR_INVALID); /* subject != period */
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-09", period_invoiced("2026-09", -1, 1)) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-9", period_invoiced("2026-9", 1, 1)) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-09", "{\"period\":\"2026-09\"}") ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, "ChargeCalculated", "L1", "{}") == BSS_OK); /* not ours: ignored */
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM settlement_period") == 1);

out:
    bss_event_free(i1);
    bss_event_free(i3);
    bss_event_free(pi);
}

/* PeriodInvoiced first; the last invoice completes. An empty period
 * completes on PeriodInvoiced alone. */
static void test_order_independence(fixture *f)
{
    char a[1024];
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-11", period_invoiced("2026-11", 2, 2)) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    char *t = doc_text(f->store, "2026-11");
    cJSON *d = t != NULL ? cJSON_Parse(t) : NULL;
    CHECK(&C, strcmp(tu_jstr(d, "status"), "OPEN") == 0);
    CHECK(&C, tu_jnum(d, "invoiceCount") == 0 && tu_jnum(d, "totalAmount") == 0);
    CHECK(&C, tu_jnum(d, "expectedInvoiceCount") == 2);
    CHECK(&C, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "byProduct")) == 0);
    cJSON_Delete(d);
    free(t);
    charge(a, sizeof a, "L1", "C1", "IOT-BASIC", "2026-11", "10", 1, 3000, 300);
    CHECK(&C, apply(f, "InvoiceIssued", "N1", invoice("N1", "C1", "2026-11", a, 3000, 300)) ==
                  BSS_OK);
    CHECK(&C, f->out.n == 0);
    charge(a, sizeof a, "L3", "C2", "IOT-BASIC", "2026-11", "20", 1, 3000, 300);
    CHECK(&C, apply(f, "InvoiceIssued", "N2", invoice("N2", "C2", "2026-11", a, 3000, 300)) ==
                  BSS_OK);
    CHECK(&C, f->out.n == 1 && strcmp(f->out.ev[0]->type, "SettlementCompleted") == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications"
                                   " WHERE dedup_key='settlement-2026-11'") == 1);

    /* A period billing says has no invoices completes at once. */
    CHECK(&C, apply(f, "PeriodInvoiced", "2027-01", period_invoiced("2027-01", 0, 0)) == BSS_OK);
    CHECK(&C, f->out.n == 1);
    t = doc_text(f->store, "2027-01");
    d = t != NULL ? cJSON_Parse(t) : NULL;
    CHECK(&C, strcmp(tu_jstr(d, "status"), "COMPLETED") == 0 && tu_jnum(d, "totalAmount") == 0);
    cJSON_Delete(d);
    free(t);
    char *payload = tu_query_text(f->store, "SELECT payload FROM notifications"
                                         " WHERE dedup_key='settlement-2027-01'");
    CHECK(&C, payload != NULL && strstr(payload, "No charged lines") != NULL);
    free(payload);

    /* While OPEN, a newer PeriodInvoiced replaces the expectation. */
    CHECK(&C, apply(f, "PeriodInvoiced", "2027-02", period_invoiced("2027-02", 5, 5)) == BSS_OK);
    charge(a, sizeof a, "L1", "C1", "IOT-BASIC", "2027-02", "10", 1, 3000, 300);
    CHECK(&C, apply(f, "InvoiceIssued", "F1", invoice("F1", "C1", "2027-02", a, 3000, 300)) ==
                  BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, apply(f, "PeriodInvoiced", "2027-02", period_invoiced("2027-02", 1, 1)) == BSS_OK);
    CHECK(&C, f->out.n == 1);
}

/* The same events, in two orders and with duplicates, into two stores:
 * the same document and the same report. */
static void test_same_result_any_order(const char *dir)
{
    fixture a, b;
    if (open_fixture(dir, "order-a", &a) != BSS_OK)
        return;
    if (open_fixture(dir, "order-b", &b) != BSS_OK) {
        close_fixture(&a);
        return;
    }
    char lines[2048];
    bss_event *ev[4] = {
        billing_event("InvoiceIssued", "I1", oct_invoice(1, lines, sizeof lines)),
        billing_event("InvoiceIssued", "I2", oct_invoice(2, lines, sizeof lines)),
        billing_event("InvoiceIssued", "I3", oct_invoice(3, lines, sizeof lines)),
        billing_event("PeriodInvoiced", "2026-10", period_invoiced("2026-10", 3, 4))};
    const int order_a[] = {0, 1, 2, 3};
    const int order_b[] = {3, 2, 3, 0, 2, 1, 0, 1, 3};
    for (size_t i = 0; i < sizeof order_a / sizeof order_a[0]; i++)
        if (ev[order_a[i]] != NULL)
            CHECK(&C, apply_event(&a, ev[order_a[i]]) == BSS_OK);
    for (size_t i = 0; i < sizeof order_b / sizeof order_b[0]; i++)
        if (ev[order_b[i]] != NULL)
            CHECK(&C, apply_event(&b, ev[order_b[i]]) == BSS_OK);
    char *da = doc_text_timeless(a.store, "2026-10"), *db = doc_text_timeless(b.store, "2026-10");
    CHECK(&C, da != NULL && db != NULL && strcmp(da, db) == 0);
    CHECK(&C, da != NULL && strstr(da, "\"status\":\"COMPLETED\"") != NULL);
    free(da);
    free(db);
    char *pa = tu_query_text(a.store, "SELECT payload FROM notifications");
    char *pb = tu_query_text(b.store, "SELECT payload FROM notifications");
    CHECK(&C, pa != NULL && pb != NULL && strcmp(pa, pb) == 0);
    free(pa);
    free(pb);
    CHECK(&C, tu_count_rows(a.store, "SELECT count(*) FROM events") == 1);
    CHECK(&C, tu_count_rows(b.store, "SELECT count(*) FROM events") == 1);
    CHECK(&C, tu_count_rows(b.store, "SELECT count(*) FROM notifications") == 1);
    for (int i = 0; i < 4; i++)
        bss_event_free(ev[i]);
    close_fixture(&a);
    close_fixture(&b);
}

/* 64-bit usage: sums beyond 2^53 are exact in the JSON; beyond 2^63 they
 * are rejected and change nothing. */
static void test_big_usage(fixture *f)
{
    char a[1024];
    /* 2^62 + (2^53 + 1) = 4620693217682128897: a double would round it. */
    charge(a, sizeof a, "B1", "C1", "IOT-BIG", "2026-12", "4611686018427387904", 1, 1, 0);
    CHECK(&C, apply(f, "InvoiceIssued", "G1", invoice("G1", "C1", "2026-12", a, 1, 0)) ==
                  BSS_OK);
    charge(a, sizeof a, "B2", "C2", "IOT-BIG", "2026-12", "9007199254740993", 1, 1, 0);
    CHECK(&C, apply(f, "InvoiceIssued", "G2", invoice("G2", "C2", "2026-12", a, 1, 0)) ==
                  BSS_OK);
    CHECK(&C, apply(f, "PeriodInvoiced", "2026-12", period_invoiced("2026-12", 2, 2)) == BSS_OK);
    CHECK(&C, f->out.n == 1);
    char *t = doc_text(f->store, "2026-12");
    CHECK(&C, t != NULL && strstr(t, "\"totalUsageBytes\":4620693217682128897,") != NULL);
    CHECK(&C, t != NULL && strstr(t, "\"usageBytes\":4620693217682128897,") != NULL);
    if (f->out.n == 1)
        CHECK(&C, strstr(f->out.ev[0]->data, "\"totalUsageBytes\":4620693217682128897,") != NULL);
    free(t);
    char *payload = tu_query_text(f->store, "SELECT payload FROM notifications"
                                         " WHERE dedup_key='settlement-2026-12'");
    CHECK(&C, payload != NULL && strstr(payload, "4,620,693,217,682,128,897 bytes") != NULL);
    free(payload);

    /* An OPEN period whose sum would pass 2^63 - 1. */
    charge(a, sizeof a, "B1", "C1", "IOT-BIG", "2027-03", "9223372036854775807", 1, 1, 0);
    CHECK(&C, apply(f, "InvoiceIssued", "H1", invoice("H1", "C1", "2027-03", a, 1, 0)) ==
                  BSS_OK);
    charge(a, sizeof a, "B2", "C2", "IOT-BIG", "2027-03", "1", 1, 1, 0);
    CHECK(&C, apply(f, "InvoiceIssued", "H2", invoice("H2", "C2", "2027-03", a, 1, 0)) ==
                  BSS_ERR_INVALID);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM settlement_invoice WHERE"
                                   " period='2027-03'") == 1);
    t = doc_text(f->store, "2027-03");
    CHECK(&C, t != NULL && strstr(t, "\"totalUsageBytes\":9223372036854775807,") != NULL);
    free(t);
}

/* ---- the mail channel ------------------------------------------------- */

/* Lines in path (0 when missing). */
static int file_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (f == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void test_mail_log(const char *dir, bss_store *store)
{
    char err[BSS_ERRLEN] = "", path[600], logdir[512];
    snprintf(logdir, sizeof logdir, "%s/maildir", dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", logdir);
    CHECK(&C, system(cmd) == 0);
    snprintf(path, sizeof path, "%s/mail.log", logdir);
    bss_config *cfg = bss_config_new();
    settlement_mailout *m = settlement_mailout_new(cfg, logdir, err);
    CHECK(&C, m != NULL);
    if (m == NULL) {
        bss_config_free(cfg);
        return;
    }
    CHECK(&C, !settlement_mailout_uses_smtp(m));
    char *payload = tu_query_text(store, "SELECT payload FROM notifications"
                                      " WHERE dedup_key='settlement-2026-10'");
    CHECK(&C, payload != NULL);
    if (payload != NULL) {
        /* A crash once left a line cut short: it does not count as sent. */
        FILE *f = fopen(path, "w");
        if (f != NULL) {
            fprintf(f, "%.60s", payload);
            fclose(f);
        }
        const char *key = "settlement-2026-10", *to = "biz@example.com";
        CHECK(&C, settlement_mailout_send(m, "mail", key, to, payload, err) == BSS_OK);
        CHECK(&C, settlement_mailout_send(m, "mail", key, to, payload, err) == BSS_OK);
        CHECK(&C, file_lines(path) == 2); /* the cut line, ended; the report once */
        FILE *r = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        int reports = 0;
        while (r != NULL && getline(&line, &cap, r) > 0) {
            cJSON *o = cJSON_Parse(line);
            if (o != NULL) {
                reports++;
                CHECK(&C, strcmp(tu_jstr(o, "to"), to) == 0);
                CHECK(&C, strcmp(tu_jstr(o, "messageId"), "<settlement-2026-10@bssiot>") == 0);
                CHECK(&C, strstr(tu_jstr(o, "subject"), "2026-10") != NULL);
                CHECK(&C, strstr(tu_jstr(o, "html"), "16,610 KRW") != NULL);
                CHECK(&C, cJSON_GetArraySize(o) == 4);
                cJSON_Delete(o);
            }
        }
        free(line);
        if (r != NULL)
            fclose(r);
        CHECK(&C, reports == 1);
        /* Not for this channel, or not a report: never retried. */
        CHECK(&C, settlement_mailout_send(m, "sms", key, to, payload, err) == BSS_ERR_INVALID);
        CHECK(&C, settlement_mailout_send(m, "mail", key, to, "{}", err) == BSS_ERR_INVALID);
        CHECK(&C, settlement_mailout_send(m, "mail", key, "x@y.z", payload, err) ==
                      BSS_ERR_INVALID);
        CHECK(&C, file_lines(path) == 2);
    }
    free(payload);
    settlement_mailout_free(m);

    /* A bad sender address fails at creation. */
    bss_config_set(cfg, "BSS_MAIL_FROM", "not an address");
    CHECK(&C, settlement_mailout_new(cfg, logdir, err) == NULL);
    bss_config_free(cfg);
}

/* A one-shot SMTP sink: accepts one session and keeps what DATA carried. */
typedef struct smtp_sink {
    int fd;
    int port;
    pthread_t tid;
    char data[65536];
    size_t len;
    char rcpt[1024];
} smtp_sink;

static void sink_say(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) < 0)
        perror("sink write");
}

static void *sink_run(void *arg)
{
    smtp_sink *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    sink_say(c, "220 sink ESMTP\r\n");
    char buf[8192], line[1024];
    size_t ll = 0;
    int in_data = 0, done = 0;
    while (!done) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && !done; i++) {
            if (ll + 1 < sizeof line)
                line[ll++] = buf[i];
            if (buf[i] != '\n')
                continue;
            line[ll] = '\0';
            if (in_data) {
                if (strcmp(line, ".\r\n") == 0) {
                    in_data = 0;
                    sink_say(c, "250 queued\r\n");
                } else if (s->len + ll < sizeof s->data) {
                    memcpy(s->data + s->len, line, ll);
                    s->len += ll;
                    s->data[s->len] = '\0';
                }
            } else if (strncmp(line, "EHLO", 4) == 0 || strncmp(line, "HELO", 4) == 0) {
                sink_say(c, "250-sink\r\n250 8BITMIME\r\n");
            } else if (strncmp(line, "RCPT", 4) == 0) {
                snprintf(s->rcpt, sizeof s->rcpt, "%s", line);
                sink_say(c, "250 ok\r\n");
            } else if (strncmp(line, "DATA", 4) == 0) {
                in_data = 1;
                sink_say(c, "354 go on\r\n");
            } else if (strncmp(line, "QUIT", 4) == 0) {
                sink_say(c, "221 bye\r\n");
                done = 1;
            } else {
                sink_say(c, "250 ok\r\n");
            }
            ll = 0;
        }
    }
    close(c);
    return NULL;
}

static int sink_start(smtp_sink *s)
{
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->fd, 1) != 0 || getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->tid, NULL, sink_run, s) == 0 ? 0 : -1;
}

static void test_mail_smtp(const char *dir, bss_store *store)
{
    smtp_sink sink;
    if (sink_start(&sink) != 0) {
        C.failed++;
        return;
    }
    char err[BSS_ERRLEN] = "", url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", sink.port);
    bss_config *cfg = bss_config_new();
    bss_config_set(cfg, "BSS_SMTP_URL", url);
    bss_config_set(cfg, "BSS_SMTP_TIMEOUT_MS", "5000");
    settlement_mailout *m = settlement_mailout_new(cfg, dir, err);
    CHECK(&C, m != NULL && settlement_mailout_uses_smtp(m));
    char *payload = tu_query_text(store, "SELECT payload FROM notifications"
                                      " WHERE dedup_key='settlement-2026-10'");
    if (m != NULL && payload != NULL) {
        int rc = settlement_mailout_send(m, "mail", "settlement-2026-10", "biz@example.com",
                                         payload, err);
        if (rc != BSS_OK)
            fprintf(stderr, "smtp: %s\n", err);
        CHECK(&C, rc == BSS_OK);
    }
    settlement_mailout_free(m); /* closes the connection: the sink ends */
    pthread_join(sink.tid, NULL);
    close(sink.fd);
    CHECK(&C, strstr(sink.rcpt, "<biz@example.com>") != NULL);
    CHECK(&C, strstr(sink.data, "Message-ID: <settlement-2026-10@bssiot>\r\n") != NULL);
    CHECK(&C, strstr(sink.data, "From: <settlement@bssiot.local>\r\n") != NULL);
    CHECK(&C, strstr(sink.data, "Subject: [bssiot] Settlement report 2026-10\r\n") != NULL);
    CHECK(&C, strstr(sink.data, "Content-Type: text/html") != NULL);
    CHECK(&C, strstr(sink.data, "16,610 KRW") != NULL);
    free(payload);
    bss_config_free(cfg);
}

/* ---- routes over HTTP ------------------------------------------------- */

static void test_routes(fixture *f)
{
    char err[BSS_ERRLEN] = "";
    bss_http *http = tu_http_new("settlement");
    CHECK(&C, http != NULL);
    if (http == NULL)
        return;
    settlement_routes r = {f->store};
    CHECK(&C, settlement_routes_register(http, &r, err) == BSS_OK);
    CHECK(&C, bss_http_start(http, err) == BSS_OK);
    int port = bss_http_port(http);
    tu_body b;

    CHECK(&C, tu_http_get(port, "/settlements/2026-10", NULL, &b, NULL) == 200);
    cJSON *d = cJSON_Parse(b.buf);
    check_october(d);
    cJSON_Delete(d);
    char *doc = doc_text(f->store, "2026-10");
    CHECK(&C, doc != NULL && strcmp(doc, b.buf) == 0);
    free(doc);

    CHECK(&C, tu_http_get(port, "/settlements/2026-12", NULL, &b, NULL) == 200);
    CHECK(&C, strstr(b.buf, "\"totalUsageBytes\":4620693217682128897,") != NULL);

    CHECK(&C, tu_http_get(port, "/settlements/2030-01", NULL, &b, NULL) == 404);
    d = cJSON_Parse(b.buf);
    CHECK(&C, strcmp(tu_jstr(d, "code"), "SETTLEMENT_NOT_FOUND") == 0);
    cJSON_Delete(d);
    const char *bad[] = {"/settlements/2026-13", "/settlements/abc", "/settlements/2026-1",
                         "/settlements/202610"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(&C, tu_http_get(port, bad[i], NULL, &b, NULL) == 422);
        d = cJSON_Parse(b.buf);
        CHECK(&C, strcmp(tu_jstr(d, "code"), "VALIDATION_FAILED") == 0);
        cJSON_Delete(d);
    }

    CHECK(&C, tu_http_get(port, "/settlements", NULL, &b, NULL) == 200);
    d = cJSON_Parse(b.buf);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(d, "items");
    /* 2027-03, 2027-02, 2027-01, 2026-12, 2026-11, 2026-10 */
    CHECK(&C, cJSON_GetArraySize(items) == 6);
    const char *want[] = {"2027-03", "2027-02", "2027-01", "2026-12", "2026-11", "2026-10"};
    for (int i = 0; i < 6 && i < cJSON_GetArraySize(items); i++)
        CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(items, i), "period"), want[i]) == 0);
    const cJSON *oct = cJSON_GetArrayItem(items, 5);
    CHECK(&C, strcmp(tu_jstr(oct, "status"), "COMPLETED") == 0);
    CHECK(&C, tu_jnum(oct, "invoiceCount") == 3 && tu_jnum(oct, "totalAmount") == 16610);
    CHECK(&C, cJSON_GetArraySize(oct) == 4);
    CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(items, 0), "status"), "OPEN") == 0);
    cJSON_Delete(d);
    bss_http_free(http);
}

int main(void)
{
    char dir[] = "/tmp/bss-settlement-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    test_parse_and_format();
    fixture f;
    if (open_fixture(dir, "settlement", &f) == BSS_OK) {
        test_handler(&f);
        test_order_independence(&f);
        test_big_usage(&f);
        test_mail_log(dir, f.store);
        test_mail_smtp(dir, f.store);
        test_routes(&f);
        close_fixture(&f);
    }
    test_same_result_any_order(dir);
    tu_end(dir);
    return CHECK_DONE(&C);
}
