/*
 * test_charges.c - billing's month end: the charge rules as pure functions
 * (billing/charges.h) value by value, then the billing handler driven with
 * real customer and rater events into a real store, then the routes and
 * the invoice mail.
 *
 * Pins down: ceil(bytes / 1 MiB) at 0, 1 MiB, 1 MiB + 1 and 2^63-1 bytes;
 * included data exactly reached and exceeded; unlimited plans; perMbRate 0;
 * activeDays 0 with and without usage; day counting at the edges (opened at
 * 23:59:59 on the last day, suspended at exactly midnight, resumed the same
 * day, a backdated termination, a leap February, ties at one instant);
 * floor of baseFee and VAT; amounts beyond 2^53 rejected. Then: UsageMoved
 * waits (BSS_ERR_BUSY) until the customer service's OrdersClosed of the
 * period was applied; charges are stored once and announced with every field;
 * unknown lines and lines moved after invoicing are dead-lettered;
 * AuCloseCompleted issues one invoice per customer with the sums, queues a
 * mail only for customers with an email, and emits PeriodInvoiced; a
 * replayed close changes nothing; charges and invoices refuse UPDATE; and
 * replaying the whole history twice into a fresh store gives byte-identical
 * charges, invoices, events and mails. Routes: the charge and invoice lists,
 * validation, 404, JSON vs HTML by Accept and ?format; the mail log line.
 */
#include "billing/billing.h"
#include "billing/charges.h"
#include "billing/handlers.h"
#include "billing/invoice_html.h"
#include "billing/invoice_mail.h"
#include "billing/ledger.h"
#include "billing/routes.h"
#include "bss_error.h"
#include "catalog.h"
#include "check.h"
#include "invoice_id.h"
#include "config.h"
#include "html.h"
#include "http.h"
#include "isotime.h"
#include "period.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static check_counts C;

/* ---- pure rules ------------------------------------------------------ */

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    if (bss_time_parse(iso, strlen(iso), &ms) != BSS_OK) {
        fprintf(stderr, "bad time %s\n", iso);
        C.failed++;
    }
    return ms;
}

static int days_of(const charge_status_point *h, size_t n, const char *period)
{
    bss_period p;
    int days = -1;
    CHECK(&C, bss_period_parse(period, &p) == BSS_OK);
    CHECK(&C, charge_active_days(h, n, p, &days, NULL) == BSS_OK);
    return days;
}

static void test_billable_mb(void)
{
    CHECK(&C, charge_billable_mb(0) == 0);
    CHECK(&C, charge_billable_mb(1) == 1);
    CHECK(&C, charge_billable_mb(1048575) == 1);
    CHECK(&C, charge_billable_mb(1048576) == 1);
    CHECK(&C, charge_billable_mb(1048577) == 2);
    CHECK(&C, charge_billable_mb(2 * 1048576LL) == 2);
    /* 2^63-1 = (2^43-1) * 2^20 + (2^20-1): the ceiling is 2^43, no overflow. */
    CHECK(&C, charge_billable_mb(INT64_MAX) == 8796093022208LL);
    CHECK(&C, charge_billable_mb(INT64_MAX - 1048575) == 8796093022208LL - 1);
    CHECK(&C, charge_billable_mb(-1) == -1);
}

static void test_prorate(void)
{
    CHECK(&C, charge_prorate(3000, 31, 31) == 3000);
    CHECK(&C, charge_prorate(3000, 0, 31) == 0);
    CHECK(&C, charge_prorate(3000, 15, 31) == 1451); /* 1451.6 floors */
    CHECK(&C, charge_prorate(3100, 1, 31) == 100);
    CHECK(&C, charge_prorate(3000, 1, 30) == 100);
    CHECK(&C, charge_prorate(9999, 28, 29) == 9654); /* 9654.2 */
    CHECK(&C, charge_prorate(INT64_MAX, 31, 31) == INT64_MAX);
    /* floor(x * 30 / 31) for x = 2^63-1, exact: q = x / 31, r = x % 31. */
    int64_t q = INT64_MAX / 31, r = INT64_MAX % 31;
    CHECK(&C, charge_prorate(INT64_MAX, 30, 31) == q * 30 + r * 30 / 31);
    CHECK(&C, charge_prorate(-1, 1, 31) == -1);
    CHECK(&C, charge_prorate(1, 32, 31) == -1);
    CHECK(&C, charge_prorate(1, 1, 0) == -1);
}

static charge_result compute(int64_t bytes, int64_t included, int64_t rate, int64_t tarif,
                             int active, int days, int expect_rc)
{
    charge_input in = {bytes, included, rate, tarif, active, days};
    charge_result r;
    char err[BSS_ERRLEN] = "";
    int rc = charge_compute(&in, &r, err);
    CHECK(&C, rc == expect_rc);
    if (rc != expect_rc)
        fprintf(stderr, "  compute(%lld, %lld, %lld, %lld, %d/%d): %s\n", (long long)bytes,
                (long long)included, (long long)rate, (long long)tarif, active, days, err);
    return r;
}

static void test_compute(void)
{
    const int64_t MB = 1048576;
    /* No usage, whole month: the full fee. */
    charge_result r = compute(0, 100, 20, 3000, 31, 31, BSS_OK);
    CHECK(&C, r.chargeable && r.billable_mb == 0 && r.overage_mb == 0 && r.overage_fee == 0);
    CHECK(&C, r.base_fee == 3000 && r.subtotal == 3000 && r.vat == 300 && r.total == 3300);
    /* Exactly 1 MB is 1 MB; one byte more is 2 MB. */
    r = compute(MB, 0, 20, 0, 31, 31, BSS_OK);
    CHECK(&C, r.billable_mb == 1 && r.overage_mb == 1 && r.overage_fee == 20);
    r = compute(MB + 1, 0, 20, 0, 31, 31, BSS_OK);
    CHECK(&C, r.billable_mb == 2 && r.overage_mb == 2 && r.overage_fee == 40);
    CHECK(&C, r.subtotal == 40 && r.vat == 4 && r.total == 44);
    /* Included data exactly reached: no overage; one byte beyond: 1 MB. */
    r = compute(100 * MB, 100, 20, 3000, 31, 31, BSS_OK);
    CHECK(&C, r.billable_mb == 100 && r.overage_mb == 0 && r.overage_fee == 0);
    r = compute(100 * MB + 1, 100, 20, 3000, 31, 31, BSS_OK);
    CHECK(&C, r.billable_mb == 101 && r.overage_mb == 1 && r.overage_fee == 20);
    CHECK(&C, r.subtotal == 3020 && r.vat == 302 && r.total == 3322);
    /* Unlimited: never any overage, even at 2^63-1 bytes. */
    r = compute(INT64_MAX, -1, 50, 22000, 31, 31, BSS_OK);
    CHECK(&C, r.billable_mb == 8796093022208LL && r.overage_mb == 0 && r.overage_fee == 0);
    CHECK(&C, r.total == 24200);
    /* perMbRate 0: overage MB counted, free. */
    r = compute(500 * MB, 100, 0, 3000, 31, 31, BSS_OK);
    CHECK(&C, r.overage_mb == 400 && r.overage_fee == 0 && r.total == 3300);
    /* 2^63-1 bytes at 20 KRW/MB still fits 2^53. */
    r = compute(INT64_MAX, 100, 20, 3000, 31, 31, BSS_OK);
    CHECK(&C, r.overage_mb == 8796093022208LL - 100);
    CHECK(&C, r.overage_fee == (8796093022208LL - 100) * 20);
    CHECK(&C, r.subtotal == r.overage_fee + 3000 && r.vat == r.subtotal / 10);
    CHECK(&C, r.total == r.subtotal + r.vat);
    /* ... but not at 2000 KRW/MB: rejected, never wrapped. */
    r = compute(INT64_MAX, 100, 2000, 3000, 31, 31, BSS_ERR_INVALID);
    CHECK(&C, r.total == 0 && r.chargeable == 0);
    r = compute(0, 100, 20, CHARGE_AMOUNT_MAX, 31, 31, BSS_ERR_INVALID); /* + VAT > 2^53 */
    CHECK(&C, r.total == 0);
    /* activeDays 0 with usage: a charge with baseFee 0. */
    r = compute(3 * MB, 0, 20, 3000, 0, 31, BSS_OK);
    CHECK(&C, r.chargeable && r.base_fee == 0 && r.overage_fee == 60 && r.total == 66);
    /* activeDays 0 and no usage: no charge at all. */
    r = compute(0, 100, 20, 3000, 0, 31, BSS_OK);
    CHECK(&C, !r.chargeable && r.total == 0 && r.base_fee == 0);
    /* One active day's usage but no bytes: still charged (active). */
    r = compute(0, 100, 20, 3100, 1, 31, BSS_OK);
    CHECK(&C, r.chargeable && r.base_fee == 100 && r.total == 110);
    /* Floors: baseFee 1451.6 -> 1451; VAT 145.1 -> 145. */
    r = compute(0, 100, 20, 3000, 15, 31, BSS_OK);
    CHECK(&C, r.base_fee == 1451 && r.vat == 145 && r.total == 1596);
    r = compute(0, 100, 20, 19, 31, 31, BSS_OK);
    CHECK(&C, r.subtotal == 19 && r.vat == 1 && r.total == 20);
    r = compute(0, 100, 20, 9, 31, 31, BSS_OK);
    CHECK(&C, r.vat == 0 && r.total == 9);
    /* Leap February: 29 days. */
    r = compute(0, 100, 20, 2900, 29, 29, BSS_OK);
    CHECK(&C, r.base_fee == 2900);
    r = compute(0, 100, 20, 2900, 10, 29, BSS_OK);
    CHECK(&C, r.base_fee == 1000);
    /* Inputs out of range. */
    compute(-1, 100, 20, 3000, 31, 31, BSS_ERR_INVALID);
    compute(0, -2, 20, 3000, 31, 31, BSS_ERR_INVALID);
    compute(0, 100, -1, 3000, 31, 31, BSS_ERR_INVALID);
    compute(0, 100, 20, -1, 31, 31, BSS_ERR_INVALID);
    compute(0, 100, 20, 3000, 32, 31, BSS_ERR_INVALID);
    compute(0, 100, 20, 3000, -1, 31, BSS_ERR_INVALID);
    compute(0, 100, 20, 3000, 0, 0, BSS_ERR_INVALID);
}

static void test_active_days(void)
{
    /* Opened before the period, never changed: every day. */
    charge_status_point always[] = {{at("2026-09-15T10:00:00+09:00"), 1}};
    CHECK(&C, days_of(always, 1, "2026-10") == 31);
    CHECK(&C, days_of(always, 1, "2026-09") == 16); /* 15th .. 30th */
    CHECK(&C, days_of(always, 1, "2026-08") == 0);  /* did not exist yet */
    CHECK(&C, days_of(NULL, 0, "2026-10") == 0);

    /* Opened on the last day at 23:59:59: one day. */
    charge_status_point late[] = {{at("2026-10-31T23:59:59+09:00"), 1}};
    CHECK(&C, days_of(late, 1, "2026-10") == 1);
    CHECK(&C, days_of(late, 1, "2026-11") == 30);
    /* 23:59:59 in UTC is 08:59:59 next day in Seoul: the billing zone
     * decides. */
    charge_status_point utc[] = {{at("2026-10-31T23:59:59Z"), 1}};
    CHECK(&C, days_of(utc, 1, "2026-10") == 0);
    CHECK(&C, days_of(utc, 1, "2026-11") == 30);

    /* Suspended at exactly midnight of the 10th: the 10th is not active. */
    charge_status_point susp[] = {{at("2026-09-01T00:00:00+09:00"), 1},
                                  {at("2026-10-10T00:00:00+09:00"), 0}};
    CHECK(&C, days_of(susp, 2, "2026-10") == 9);
    /* Suspended one millisecond after midnight: the 10th was active. */
    charge_status_point susp1[] = {{at("2026-09-01T00:00:00+09:00"), 1},
                                   {at("2026-10-10T00:00:00.001+09:00"), 0}};
    CHECK(&C, days_of(susp1, 2, "2026-10") == 10);
    /* ... resumed later the same day: the 10th counts. */
    charge_status_point resumed[] = {{at("2026-09-01T00:00:00+09:00"), 1},
                                     {at("2026-10-10T00:00:00+09:00"), 0},
                                     {at("2026-10-10T15:00:00+09:00"), 1}};
    CHECK(&C, days_of(resumed, 3, "2026-10") == 31);
    /* ... resumed at midnight of the 12th: 10th and 11th missing. */
    charge_status_point resumed12[] = {{at("2026-09-01T00:00:00+09:00"), 1},
                                       {at("2026-10-10T00:00:00+09:00"), 0},
                                       {at("2026-10-12T00:00:00+09:00"), 1}};
    CHECK(&C, days_of(resumed12, 3, "2026-10") == 29);
    /* Suspended and resumed within one day, several times: still that day. */
    charge_status_point flap[] = {{at("2026-10-05T08:00:00+09:00"), 1},
                                  {at("2026-10-05T09:00:00+09:00"), 0},
                                  {at("2026-10-05T10:00:00+09:00"), 1},
                                  {at("2026-10-05T11:00:00+09:00"), 0}};
    CHECK(&C, days_of(flap, 4, "2026-10") == 1);
    /* Terminated mid-month with a backdated effectiveAt: active up to and
     * including the termination day. */
    charge_status_point term[] = {{at("2026-09-20T09:00:00+09:00"), 1},
                                  {at("2026-10-15T12:00:00+09:00"), 0}};
    CHECK(&C, days_of(term, 2, "2026-10") == 15);
    CHECK(&C, days_of(term, 2, "2026-11") == 0);
    /* Two entries at the same instant: the later recorded one holds. */
    charge_status_point tie[] = {{at("2026-09-01T00:00:00+09:00"), 1},
                                 {at("2026-10-10T00:00:00+09:00"), 1},
                                 {at("2026-10-10T00:00:00+09:00"), 0}};
    CHECK(&C, days_of(tie, 3, "2026-10") == 9);
    charge_status_point tie2[] = {{at("2026-09-01T00:00:00+09:00"), 1},
                                  {at("2026-10-10T00:00:00+09:00"), 0},
                                  {at("2026-10-10T00:00:00+09:00"), 1}};
    CHECK(&C, days_of(tie2, 3, "2026-10") == 31);
    /* A leap February has 29 days; a common one 28. */
    charge_status_point feb[] = {{at("2028-01-10T00:00:00+09:00"), 1}};
    CHECK(&C, days_of(feb, 1, "2028-02") == 29);
    charge_status_point feb2[] = {{at("2027-01-10T00:00:00+09:00"), 1}};
    CHECK(&C, days_of(feb2, 1, "2027-02") == 28);
    charge_status_point feb29[] = {{at("2028-02-29T23:00:00+09:00"), 1}};
    CHECK(&C, days_of(feb29, 1, "2028-02") == 1);
    bss_period p = {2028, 2};
    CHECK(&C, bss_period_days(p) == 29);
    /* Inconsistent input is refused. */
    charge_status_point unordered[] = {{at("2026-10-10T00:00:00+09:00"), 1},
                                       {at("2026-10-01T00:00:00+09:00"), 0}};
    int days = -7;
    CHECK(&C, charge_active_days(unordered, 2, (bss_period){2026, 10}, &days, NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, days == -7);
    int64_t bounds[] = {0, 10, 10};
    CHECK(&C, charge_active_days_in(NULL, 0, bounds, 2) == -1);
    int64_t ok_bounds[] = {0, 10, 20};
    charge_status_point mid[] = {{5, 1}, {15, 0}};
    CHECK(&C, charge_active_days_in(mid, 2, ok_bounds, 2) == 2);
}

static void test_parse_and_format(void)
{
    int64_t v = -1;
    CHECK(&C, charge_parse_count("0", &v) == BSS_OK && v == 0);
    CHECK(&C, charge_parse_count("1048577", &v) == BSS_OK && v == 1048577);
    CHECK(&C, charge_parse_count("9223372036854775807", &v) == BSS_OK && v == INT64_MAX);
    CHECK(&C, charge_parse_count("9223372036854775808", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count("99999999999999999999", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count("", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count("-1", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count("+1", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count(" 1", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count("1.0", &v) == BSS_ERR_INVALID);
    CHECK(&C, charge_parse_count(NULL, &v) == BSS_ERR_INVALID);

    char s[40];
    bss_format_grouped(0, s, sizeof s);
    CHECK(&C, strcmp(s, "0") == 0);
    bss_format_grouped(999, s, sizeof s);
    CHECK(&C, strcmp(s, "999") == 0);
    bss_format_grouped(1000, s, sizeof s);
    CHECK(&C, strcmp(s, "1,000") == 0);
    bss_format_grouped(1234567, s, sizeof s);
    CHECK(&C, strcmp(s, "1,234,567") == 0);
    bss_format_grouped(-3300, s, sizeof s);
    CHECK(&C, strcmp(s, "-3,300") == 0);
    bss_format_grouped(INT64_MIN, s, sizeof s);
    CHECK(&C, strcmp(s, "-9,223,372,036,854,775,808") == 0);
    bss_format_krw(3300, s, sizeof s);
    CHECK(&C, strcmp(s, "\xe2\x82\xa9" "3,300") == 0);

    char id[BILLING_INVOICE_ID_MAX + 1];
    CHECK(&C, bss_invoice_id("2026-10", "C1", id, sizeof id) == BSS_OK);
    CHECK(&C, strcmp(id, "INV-202610-C1") == 0);
    CHECK(&C, bss_invoice_id("2026-1", "C1", id, sizeof id) == BSS_ERR_INVALID);
    CHECK(&C, bss_invoice_id("2026-10", "C1", id, 8) == BSS_ERR_INVALID);

    CHECK(&C, billing_wants_html("text/html"));
    CHECK(&C, billing_wants_html("TEXT/HTML; charset=utf-8"));
    CHECK(&C, billing_wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,"
                                 "*/*;q=0.8"));
    CHECK(&C, billing_wants_html("text/html, application/json"));
    CHECK(&C, billing_wants_html("application/json;q=0.5, text/html"));
    CHECK(&C, !billing_wants_html("application/json, text/html"));
    CHECK(&C, !billing_wants_html("text/html;q=0.5, application/json"));
    CHECK(&C, !billing_wants_html("text/html;q=0"));
    CHECK(&C, !billing_wants_html("*/*"));
    CHECK(&C, !billing_wants_html("text/*"));
    CHECK(&C, !billing_wants_html("text/htmlx"));
    CHECK(&C, !billing_wants_html(""));
    CHECK(&C, !billing_wants_html(NULL));
}

/* The charge event data billing writes as text must be byte for byte what
 * the cJSON form prints: same members, same order, same values (strings
 * that need escaping, unlimited plans, amounts up to 2^53, usageBytes
 * beyond it as a string). The invoice event is a summary whatever the
 * number of lines: its totals and one entry per product, sorted, 64-bit
 * usage sums as strings, saturating at int64's maximum. */
static void test_event_text(void)
{
    billing_charge lines[2];
    memset(lines, 0, sizeof lines);
    snprintf(lines[0].svc_cont_no, sizeof lines[0].svc_cont_no, "7000000001");
    snprintf(lines[0].customer_id, sizeof lines[0].customer_id, "C\"1\\\n\x01\xed\x95\x9c");
    snprintf(lines[0].product_cd, sizeof lines[0].product_cd, "IOT-BASIC");
    snprintf(lines[0].period, sizeof lines[0].period, "2026-10");
    lines[0].usage_bytes = INT64_MAX;
    lines[0].billable_mb = 8796093022208LL;
    lines[0].included_mb = -1;
    lines[0].active_days = 31;
    lines[0].days_in_period = 31;
    lines[0].base_fee = CHARGE_AMOUNT_MAX;
    lines[0].subtotal = CHARGE_AMOUNT_MAX;
    lines[0].vat = 900719925474099LL;
    lines[0].total = CHARGE_AMOUNT_MAX;
    lines[1] = lines[0];
    snprintf(lines[1].svc_cont_no, sizeof lines[1].svc_cont_no, "7000000002");
    lines[1].included_mb = 0;
    lines[1].usage_bytes = 0;
    lines[1].overage_mb = 12;
    lines[1].overage_fee = 1200;
    for (int i = 0; i < 2; i++) {
        char *text = billing_charge_event_text(&lines[i]);
        cJSON *built = billing_charge_to_json(&lines[i], BILLING_JSON_EVENT);
        char *printed = built != NULL ? cJSON_PrintUnformatted(built) : NULL;
        CHECK(&C, text != NULL && printed != NULL && strcmp(text, printed) == 0);
        cJSON_Delete(built);
        free(printed);
        free(text);
    }
    billing_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.invoice_id, sizeof inv.invoice_id, "INV-202610-C1");
    snprintf(inv.customer_id, sizeof inv.customer_id, "C\t1");
    snprintf(inv.period, sizeof inv.period, "2026-10");
    snprintf(inv.email, sizeof inv.email, "a\"b@example.com");
    snprintf(inv.status, sizeof inv.status, "ISSUED");
    snprintf(inv.issued_at, sizeof inv.issued_at, "2026-11-01T00:00:00.000+09:00");
    inv.subtotal = 3;
    inv.vat = 0;
    inv.total = 3;
    /* A third line of another product, sorted before IOT-BASIC. */
    billing_charge three[3] = {lines[0], lines[1], lines[1]};
    snprintf(three[2].svc_cont_no, sizeof three[2].svc_cont_no, "7000000003");
    snprintf(three[2].product_cd, sizeof three[2].product_cd, "IOT-A");
    three[2].usage_bytes = 5;
    three[2].billable_mb = 1;
    three[2].total = 7;
    for (size_t n = 0; n <= 3; n++) {
        inv.lines = n > 0 ? three : NULL;
        inv.nlines = n;
        char *text = billing_invoice_event_text(&inv);
        cJSON *d = text != NULL ? cJSON_Parse(text) : NULL;
        CHECK(&C, d != NULL);
        free(text);
        if (d == NULL)
            continue;
        CHECK(&C, strcmp(tu_jstr(d, "customerId"), "C\t1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "email"), "a\"b@example.com") == 0);
        CHECK(&C, tu_jnum(d, "lineCount") == (double)n);
        CHECK(&C, cJSON_GetObjectItemCaseSensitive(d, "lines") == NULL);
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(d, "byProduct");
        CHECK(&C, cJSON_GetArraySize(parts) == (n == 0 ? 0 : n < 3 ? 1 : 2));
        if (n == 0)
            CHECK(&C, strcmp(tu_jstr(d, "usageBytes"), "0") == 0);
        if (n == 2) { /* INT64_MAX + 0 */
            const cJSON *p = cJSON_GetArrayItem(parts, 0);
            CHECK(&C, strcmp(tu_jstr(p, "productCd"), "IOT-BASIC") == 0);
            CHECK(&C, tu_jnum(p, "lineCount") == 2);
            CHECK(&C, strcmp(tu_jstr(p, "usageBytes"), "9223372036854775807") == 0);
            CHECK(&C, tu_jnum(p, "billableMb") == 2 * 8796093022208.0);
            CHECK(&C, tu_jnum(p, "amount") == 2.0 * (double)CHARGE_AMOUNT_MAX);
        }
        if (n == 3) { /* sorted by productCd; INT64_MAX + 0 + 5 saturates */
            const cJSON *a = cJSON_GetArrayItem(parts, 0), *b = cJSON_GetArrayItem(parts, 1);
            CHECK(&C, strcmp(tu_jstr(a, "productCd"), "IOT-A") == 0);
            CHECK(&C, tu_jnum(a, "lineCount") == 1 && tu_jnum(a, "amount") == 7);
            CHECK(&C, strcmp(tu_jstr(a, "usageBytes"), "5") == 0);
            CHECK(&C, strcmp(tu_jstr(b, "productCd"), "IOT-BASIC") == 0);
            CHECK(&C, strcmp(tu_jstr(d, "usageBytes"), "9223372036854775807") == 0);
        }
        cJSON_Delete(d);
    }
}

static void test_html_escaping(void)
{
    billing_charge line;
    memset(&line, 0, sizeof line);
    snprintf(line.svc_cont_no, sizeof line.svc_cont_no, "<script>x</script>");
    snprintf(line.product_cd, sizeof line.product_cd, "P&Q");
    snprintf(line.period, sizeof line.period, "2026-10");
    line.usage_bytes = 1234567890;
    line.included_mb = -1;
    line.total = 1234567;
    billing_invoice inv;
    memset(&inv, 0, sizeof inv);
    snprintf(inv.invoice_id, sizeof inv.invoice_id, "INV-202610-\"o'k\"");
    snprintf(inv.customer_id, sizeof inv.customer_id, "<C&>");
    snprintf(inv.period, sizeof inv.period, "2026-10");
    snprintf(inv.status, sizeof inv.status, "ISSUED");
    snprintf(inv.issued_at, sizeof inv.issued_at, "2026-11-01T00:00:00.000+09:00");
    inv.lines = &line;
    inv.nlines = 1;
    inv.total = 1234567;
    char *html = NULL;
    size_t len = 0;
    CHECK(&C, billing_invoice_html(&inv, &html, &len) == BSS_OK);
    if (html != NULL) {
        CHECK(&C, len == strlen(html));
        CHECK(&C, strstr(html, "<script>") == NULL);
        CHECK(&C, strstr(html, "&lt;script&gt;x&lt;/script&gt;") != NULL);
        CHECK(&C, strstr(html, "&lt;C&amp;&gt;") != NULL);
        CHECK(&C, strstr(html, "P&amp;Q") != NULL);
        CHECK(&C, strstr(html, "INV-202610-&quot;o&#39;k&quot;") != NULL);
        CHECK(&C, strstr(html, "1,234,567,890") != NULL);
        CHECK(&C, strstr(html, "\xe2\x82\xa9" "1,234,567") != NULL);
        CHECK(&C, strstr(html, "unlimited") != NULL);
        CHECK(&C, strstr(html, "@media print") != NULL);
        CHECK(&C, strncmp(html, "<!DOCTYPE html>", 15) == 0);
    }
    free(html);
}

/* ---- the handler against a real store -------------------------------- */

#define LOG_MAX 128

typedef struct logged {
    bss_event *ev;
    const char *stream;
} logged;

typedef struct fixture {
    bss_store *store;
    billing_handler_ctx *ctx;
    int64_t seen;     /* log head before the last apply */
    tu_events out;    /* events the last apply emitted */
    logged log[LOG_MAX]; /* events consumed (applied or dead-lettered) */
    size_t nlog;
} fixture;

/* Delivers ev from `stream` as the consumer does: the next position, the
 * handler and the inbox in one transaction; BSS_ERR_INVALID dead-letters
 * (the position moves on, nothing else is kept); other errors roll back
 * and leave the position. Consumed events are kept in f->log (unless
 * record is 0). Returns the handler's result. */
static int deliver(fixture *f, const char *stream, bss_event *ev, int record)
{
    char err[BSS_ERRLEN] = "";
    tu_events_free(&f->out);
    bss_store_head(f->store, &f->seen, NULL);
    int64_t pos = 0;
    CHECK(&C, bss_store_begin(f->store, err) == BSS_OK);
    bss_store_inbox_get(f->store, stream, 0, &pos, err);
    int rc = billing_handle_event(f->ctx, f->store, ev, err);
    if (rc == BSS_OK) {
        CHECK(&C, bss_store_inbox_set(f->store, stream, 0, pos + 1, err) == BSS_OK);
        CHECK(&C, bss_store_commit(f->store, err) == BSS_OK);
    } else {
        bss_store_rollback(f->store);
        if (rc == BSS_ERR_INVALID) {
            CHECK(&C, bss_store_begin(f->store, NULL) == BSS_OK);
            CHECK(&C, bss_store_inbox_set(f->store, stream, 0, pos + 1, NULL) == BSS_OK);
            CHECK(&C, bss_store_commit(f->store, NULL) == BSS_OK);
        }
    }
    bss_store_read_from(f->store, f->seen, 64, tu_collect, &f->out, NULL);
    if (record && (rc == BSS_OK || rc == BSS_ERR_INVALID) && f->nlog < LOG_MAX) {
        f->log[f->nlog].ev = bss_event_clone(ev);
        f->log[f->nlog].stream = stream;
        f->nlog++;
    }
    return rc;
}

/* A new event of `type` from `stream`, delivered (and kept in *keep when
 * not NULL, else freed). */
static int apply(fixture *f, const char *stream, const char *type, const char *subject,
                 const char *data, bss_event **keep)
{
    bss_event *ev = tu_event(&C, stream, type, subject, data);
    if (ev == NULL)
        return BSS_ERR;
    int rc = deliver(f, stream, ev, 1);
    if (keep != NULL)
        *keep = ev;
    else
        bss_event_free(ev);
    return rc;
}

/* Runs a statement in a write transaction; returns sqlite3_exec's code. */
static int exec_write(bss_store *store, const char *sql)
{
    if (bss_store_begin(store, NULL) != BSS_OK)
        return -1;
    int rc = sqlite3_exec(bss_store_db(store), sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        bss_store_commit(store, NULL);
    else
        bss_store_rollback(store);
    return rc;
}

static cJSON *data_of(const bss_event *ev) { return cJSON_Parse(ev->data); }

static const char *open_data(const char *order, const char *customer, const char *no,
                             const char *product, int tarif, const char *email)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"orderId\":\"%s\",\"type\":\"OPEN\",\"status\":\"COMPLETED\","
             "\"effectiveAt\":\"2026-09-01T09:00:00+09:00\",\"line\":{\"customerId\":\"%s\","
             "\"svcContNo\":\"%s\",\"svcContStatus\":\"ACTIVE\",\"productCd\":\"%s\","
             "\"productNm\":\"Product\",\"productTarif\":%d,\"apnCd\":\"APN1\","
             "\"email\":\"%s\",\"phone\":\"010\",\"address\":\"Seoul\","
             "\"chargeAccount\":\"A1\"}}",
             order, customer, no, product, tarif, email);
    return buf;
}

static const char *status_data(const char *order, const char *from, const char *to,
                               const char *effective)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"orderId\":\"%s\",\"from\":%s%s%s,\"to\":\"%s\",\"effectiveAt\":\"%s\","
             "\"customerId\":\"C\"}",
             order, from ? "\"" : "", from ? from : "null", from ? "\"" : "", to, effective);
    return buf;
}

static const char *moved_data(const char *period, const char *customer, const char *bytes)
{
    static char buf[256];
    snprintf(buf, sizeof buf,
             "{\"period\":\"%s\",\"customerId\":\"%s\",\"usageBytes\":\"%s\",\"records\":3}",
             period, customer, bytes);
    return buf;
}

/* Opens the billing store at path with billing's schema. */
static int open_store(const char *path, bss_store **store)
{
    int rc = tu_open_store(path, "billing", store);
    return rc == BSS_OK ? tu_apply_schema(*store, billing_schema) : rc;
}

static const char CATALOG[] =
    "{\"products\":["
    "{\"productCd\":\"IOT-BASIC\",\"productNm\":\"IoT Basic\",\"productTarif\":3000,"
    "\"includedMb\":100,\"perMbRate\":20},"
    "{\"productCd\":\"IOT-UNLIMITED\",\"productNm\":\"IoT Unlimited\",\"productTarif\":22000,"
    "\"includedMb\":\"unlimited\",\"perMbRate\":0}]}";

/* A string: the JSON of everything a query over the store yields. */
static char *dump_json(bss_store *store, int invoices)
{
    sqlite3 *db = NULL;
    cJSON *a = cJSON_CreateArray();
    char *s = NULL;
    if (bss_store_snapshot_begin(store, &db, NULL) == BSS_OK) {
        int rc = invoices ? billing_invoices_json(db, NULL, "2026-10", a, NULL)
                          : billing_charges_json(db, "2026-10", NULL, a, NULL);
        bss_store_snapshot_end(store, db);
        if (rc == BSS_OK)
            s = cJSON_PrintUnformatted(a);
    }
    cJSON_Delete(a);
    return s;
}

/* ---- HTTP ------------------------------------------------------------ */

static void test_routes(bss_store *store)
{
    char err[BSS_ERRLEN] = "";
    bss_http *http = tu_http_new("billing");
    CHECK(&C, http != NULL);
    if (http == NULL)
        return;
    billing_routes br = {store};
    CHECK(&C, billing_routes_register(http, &br, err) == BSS_OK);
    CHECK(&C, bss_http_start(http, err) == BSS_OK);
    int port = bss_http_port(http);
    tu_body *b = malloc(sizeof *b);
    char ct[128];
    if (b == NULL) {
        bss_http_free(http);
        return;
    }

    CHECK(&C, tu_http_get(port, "/billings/charges?period=2026-10", NULL, b, ct) == 200);
    cJSON *j = cJSON_Parse(b->buf);
    CHECK(&C, strcmp(tu_jstr(j, "period"), "2026-10") == 0);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    CHECK(&C, cJSON_GetArraySize(items) == 3);
    const cJSON *first = cJSON_GetArrayItem(items, 0);
    CHECK(&C, strcmp(tu_jstr(first, "svcContNo"), "L1") == 0);
    CHECK(&C, cJSON_GetArraySize(first) == 15);
    cJSON_Delete(j);
    CHECK(&C, tu_http_get(port, "/billings/charges?period=2026-10&svcContNo=L2", NULL, b, ct) ==
                  200);
    j = cJSON_Parse(b->buf);
    items = cJSON_GetObjectItemCaseSensitive(j, "items");
    CHECK(&C, cJSON_GetArraySize(items) == 1);
    CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0),
                                                            "includedMb")));
    cJSON_Delete(j);
    /* REST writes usageBytes as an exact integer, even at 2^63-1. */
    CHECK(&C, strstr(b->buf, "\"usageBytes\":9223372036854775807,") != NULL);
    CHECK(&C, strstr(b->buf, "\"billableMb\":8796093022208,") != NULL);
    CHECK(&C, tu_http_get(port, "/billings/charges?period=2026-11", NULL, b, ct) == 200);
    CHECK(&C, strstr(b->buf, "\"items\":[]") != NULL);
    CHECK(&C, tu_http_get(port, "/billings/charges", NULL, b, ct) == 422);
    CHECK(&C, strstr(b->buf, "VALIDATION_FAILED") != NULL);
    CHECK(&C, tu_http_get(port, "/billings/charges?period=2026-13", NULL, b, ct) == 422);
    CHECK(&C, tu_http_get(port, "/billings/charges?period=202610", NULL, b, ct) == 422);
    CHECK(&C, tu_http_get(port, "/billings/charges?period=2026-10&svcContNo=", NULL, b, ct) ==
                  422);

    CHECK(&C, tu_http_get(port, "/billings/invoices?customerId=C1", NULL, b, ct) == 200);
    j = cJSON_Parse(b->buf);
    items = cJSON_GetObjectItemCaseSensitive(j, "items");
    CHECK(&C, cJSON_GetArraySize(items) == 1);
    CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(items, 0), "invoiceId"), "INV-202610-C1") == 0);
    CHECK(&C, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0), "email") == NULL);
    cJSON_Delete(j);
    CHECK(&C, tu_http_get(port, "/billings/invoices?period=2026-10", NULL, b, ct) == 200);
    j = cJSON_Parse(b->buf);
    CHECK(&C, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "items")) == 2);
    cJSON_Delete(j);
    CHECK(&C, tu_http_get(port, "/billings/invoices?customerId=C1&period=2026-09", NULL, b, ct) ==
                  200);
    CHECK(&C, strstr(b->buf, "\"items\":[]") != NULL);
    CHECK(&C, tu_http_get(port, "/billings/invoices", NULL, b, ct) == 422);
    CHECK(&C, tu_http_get(port, "/billings/invoices?period=10-2026", NULL, b, ct) == 422);

    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1", NULL, b, ct) == 200);
    CHECK(&C, strncmp(ct, "application/json", 16) == 0);
    j = cJSON_Parse(b->buf);
    CHECK(&C, strcmp(tu_jstr(j, "status"), "ISSUED") == 0);
    CHECK(&C, tu_jnum(j, "total") == 8753);
    CHECK(&C, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "lines")) == 2);
    cJSON_Delete(j);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1", "text/html", b, ct) == 200);
    CHECK(&C, strncmp(ct, "text/html", 9) == 0);
    CHECK(&C, strstr(b->buf, "<!DOCTYPE html>") != NULL);
    CHECK(&C, strstr(b->buf, "\xe2\x82\xa9" "8,753") != NULL);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1",
                       "text/html,application/xhtml+xml,*/*;q=0.8", b, ct) == 200);
    CHECK(&C, strncmp(ct, "text/html", 9) == 0);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1", "application/json, text/html",
                       b, ct) == 200);
    CHECK(&C, strncmp(ct, "application/json", 16) == 0);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1?format=html", NULL, b, ct) ==
                  200);
    CHECK(&C, strncmp(ct, "text/html", 9) == 0);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1?format=json", "text/html", b,
                       ct) == 200);
    CHECK(&C, strncmp(ct, "application/json", 16) == 0);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-202610-C1?format=pdf", NULL, b, ct) ==
                  422);
    CHECK(&C, tu_http_get(port, "/billings/invoices/INV-209901-NOPE", NULL, b, ct) == 404);
    CHECK(&C, strstr(b->buf, "INVOICE_NOT_FOUND") != NULL);
    /* The line view still answers beside the literal routes. */
    CHECK(&C, tu_http_get(port, "/billings/L1", NULL, b, ct) == 200);
    CHECK(&C, strstr(b->buf, "\"svcContNo\":\"L1\"") != NULL);
    free(b);
    bss_http_free(http);
}

/* The mail channel without SMTP: one JSON line per mail in mail.log. */
static void test_mail_log(bss_store *store, const char *dir)
{
    char err[BSS_ERRLEN] = "";
    bss_config *cfg = bss_config_new();
    CHECK(&C, cfg != NULL);
    invoice_mail *m = invoice_mail_new(cfg, dir, store, err);
    CHECK(&C, m != NULL);
    if (m == NULL) {
        bss_config_free(cfg);
        return;
    }
    CHECK(&C, invoice_mail_send(m, "mail", "INV-202610-C1", "c1@example.com",
                                "{\"invoiceId\":\"INV-202610-C1\",\"period\":\"2026-10\"}",
                                err) == BSS_OK);
    CHECK(&C, invoice_mail_send(m, "sms", "k", "c1@example.com", "{}", err) ==
                  BSS_ERR_INVALID);
    CHECK(&C, invoice_mail_send(m, "mail", "k", "c1@example.com", "not json", err) ==
                  BSS_ERR_INVALID);
    CHECK(&C, invoice_mail_send(m, "mail", "k", "c1@example.com",
                                "{\"invoiceId\":\"INV-209901-NOPE\"}", err) ==
                  BSS_ERR_INVALID);
    invoice_mail_free(m);
    /* An unusable sender address is refused at start. */
    CHECK(&C, bss_config_set(cfg, "BSS_SMTP_URL", "smtp://127.0.0.1:1") == BSS_OK);
    CHECK(&C, bss_config_set(cfg, "BSS_MAIL_FROM", "not an address") == BSS_OK);
    CHECK(&C, invoice_mail_new(cfg, dir, store, err) == NULL);
    bss_config_free(cfg);

    char path[600];
    snprintf(path, sizeof path, "%s/mail.log", dir);
    FILE *f = fopen(path, "r");
    CHECK(&C, f != NULL);
    if (f == NULL)
        return;
    static char line[65536];
    int lines = 0;
    cJSON *j = NULL;
    while (fgets(line, sizeof line, f) != NULL) {
        lines++;
        cJSON_Delete(j);
        j = cJSON_Parse(line);
    }
    fclose(f);
    CHECK(&C, lines == 1);
    CHECK(&C, strcmp(tu_jstr(j, "to"), "c1@example.com") == 0);
    CHECK(&C, strcmp(tu_jstr(j, "subject"), "Invoice INV-202610-C1 for 2026-10") == 0);
    CHECK(&C, strcmp(tu_jstr(j, "messageId"), "<INV-202610-C1@bssiot>") == 0);
    CHECK(&C, strstr(tu_jstr(j, "html"), "\xe2\x82\xa9" "8,753") != NULL);
    CHECK(&C, strstr(tu_jstr(j, "html"), "L2") != NULL);
    cJSON_Delete(j);
}

static void test_handler(const char *dir)
{
    char path[512], err[BSS_ERRLEN] = "";
    bss_catalog *catalog = NULL;
    CHECK(&C, bss_catalog_parse(CATALOG, strlen(CATALOG), &catalog, err) == BSS_OK);
    billing_handler_ctx ctx = {.catalog = catalog, .log = NULL};
    snprintf(path, sizeof path, "%s/billing.db", dir);
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || open_store(path, &f->store) != BSS_OK) {
        C.failed++;
        free(f);
        bss_catalog_free(catalog);
        return;
    }
    f->ctx = &ctx;
    const char *cust = "customer", *rater = "rater";

    /* Lines: L1 (C1, basic), L2 (C1, unlimited), L3 (C2, basic, no email),
     * L5 (C2, basic, active only from November), L4 (C3) opened late. */
    CHECK(&C, apply(f, cust, "OrderCreated", "L1",
                    open_data("O1", "C1", "L1", "IOT-BASIC", 3100, "c1@example.com"),
                    NULL) == BSS_OK);
    CHECK(&C, apply(f, cust, "OrderCreated", "L2",
                    open_data("O2", "C1", "L2", "IOT-UNLIMITED", 10000, "c1@example.com"),
                    NULL) == BSS_OK);
    CHECK(&C, apply(f, cust, "OrderCreated", "L3",
                    open_data("O3", "C2", "L3", "IOT-BASIC", 3100, ""), NULL) == BSS_OK);
    CHECK(&C, apply(f, cust, "OrderCreated", "L5",
                    open_data("O5", "C2", "L5", "IOT-BASIC", 3100, ""), NULL) == BSS_OK);
    /* L1: active since September, suspended at midnight of the 10th,
     * resumed on the 20th at 15:00: 9 + 12 = 21 days. */
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L1",
                    status_data("O1", NULL, "ACTIVE", "2026-09-15T09:00:00+09:00"),
                    NULL) == BSS_OK);
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L1",
                    status_data("O6", "ACTIVE", "SUSPENDED", "2026-10-10T00:00:00+09:00"),
                    NULL) == BSS_OK);
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L1",
                    status_data("O7", "SUSPENDED", "ACTIVE", "2026-10-20T15:00:00+09:00"),
                    NULL) == BSS_OK);
    /* L2: active from October 1st, midnight. */
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L2",
                    status_data("O2", NULL, "ACTIVE", "2026-10-01T00:00:00+09:00"),
                    NULL) == BSS_OK);
    /* L3: opened on the last day at 23:59:59: one day. */
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L3",
                    status_data("O3", NULL, "ACTIVE", "2026-10-31T23:59:59+09:00"),
                    NULL) == BSS_OK);
    /* L5: active from November only. */
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L5",
                    status_data("O5", NULL, "ACTIVE", "2026-11-02T10:00:00+09:00"),
                    NULL) == BSS_OK);
    int64_t customer_pos = 0;
    bss_store_inbox_get(f->store, cust, 0, &customer_pos, NULL);
    CHECK(&C, customer_pos == 10);

    /* The rater closes October; the customer service had accepted one more
     * order (L2's backdated termination) than billing has applied. */
    char data[512];
    snprintf(data, sizeof data, "{\"period\":\"2026-10\",\"customerPosition\":%lld}",
             (long long)customer_pos + 1);
    CHECK(&C, apply(f, rater, "AuCloseStarted", "2026-10", data, NULL) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM au_close") == 1);
    /* A close whose subject is not its period breaks the contract. */
    CHECK(&C, apply(f, rater, "AuCloseStarted", "2026-09",
                    "{\"period\":\"2026-10\",\"customerPosition\":1}", NULL) == BSS_ERR_INVALID);

    /* UsageMoved waits for the customer stream's OrdersClosed: BUSY,
     * nothing kept. */
    bss_event *moved_l2 =
        bss_event_new("UsageMoved", "L2", moved_data("2026-10", "C1", "9223372036854775807"),
                      err);
    CHECK(&C, moved_l2 != NULL);
    if (moved_l2 == NULL)
        return;
    snprintf(moved_l2->source, sizeof moved_l2->source, "rater");
    CHECK(&C, deliver(f, rater, moved_l2, 1) == BSS_ERR_BUSY);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM usage_moved") == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM charge") == 0);
    /* The customer stream moves on: L2 terminated, backdated to the 15th. */
    CHECK(&C, apply(f, cust, "LineStatusChanged", "L2",
                    status_data("O8", "ACTIVE", "TERMINATED", "2026-10-15T12:00:00+09:00"),
                    NULL) == BSS_OK);
    /* Still BUSY: the barrier has not come yet. */
    CHECK(&C, deliver(f, rater, moved_l2, 1) == BSS_ERR_BUSY);
    CHECK(&C, f->out.n == 0);
    /* A barrier that is not about a period breaks the contract. */
    CHECK(&C, apply(f, cust, "OrdersClosed", "L2", "{\"period\":\"2026-10\"}", NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, cust, "OrdersClosed", "2026-10", "{\"period\":\"2026-10\"}", NULL) ==
                  BSS_OK);
    CHECK(&C, f->out.n == 0);
    /* Now it applies: 15 active days of 10000 -> 4838; unlimited. */
    CHECK(&C, deliver(f, rater, moved_l2, 1) == BSS_OK);
    bss_event_free(moved_l2);
    CHECK(&C, f->out.n == 1);
    if (f->out.n == 1) {
        cJSON *d = data_of(f->out.ev[0]);
        CHECK(&C, strcmp(f->out.ev[0]->type, "ChargeCalculated") == 0);
        CHECK(&C, strcmp(f->out.ev[0]->subject, "L2") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "usageBytes"), "9223372036854775807") == 0);
        CHECK(&C, tu_jnum(d, "billableMb") == 8796093022208.0);
        CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "includedMb")));
        CHECK(&C, tu_jnum(d, "overageMb") == 0 && tu_jnum(d, "overageFee") == 0);
        CHECK(&C, tu_jnum(d, "activeDays") == 15 && tu_jnum(d, "daysInPeriod") == 31);
        CHECK(&C, tu_jnum(d, "baseFee") == 4838 && tu_jnum(d, "subtotal") == 4838);
        CHECK(&C, tu_jnum(d, "vat") == 483 && tu_jnum(d, "total") == 5321);
        cJSON_Delete(d);
    }

    /* L1: 150 MB + 1 byte -> 151 MB, 51 over at 20 = 1020; 21/31 of 3100 =
     * 2100; subtotal 3120, VAT 312, total 3432. Every field is there. */
    bss_event *cause = NULL;
    CHECK(&C, apply(f, rater, "UsageMoved", "L1", moved_data("2026-10", "C1", "157286401"),
                    &cause) == BSS_OK);
    CHECK(&C, f->out.n == 1);
    if (f->out.n == 1) {
        bss_event *e = f->out.ev[0];
        cJSON *d = data_of(e);
        CHECK(&C, strcmp(e->type, "ChargeCalculated") == 0);
        CHECK(&C, strcmp(e->source, "billing") == 0);
        CHECK(&C, strcmp(e->causation_id, cause->id) == 0);
        CHECK(&C, cJSON_GetArraySize(d) == 15);
        CHECK(&C, strcmp(tu_jstr(d, "svcContNo"), "L1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "customerId"), "C1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "productCd"), "IOT-BASIC") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "period"), "2026-10") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "usageBytes"), "157286401") == 0);
        CHECK(&C, tu_jnum(d, "billableMb") == 151 && tu_jnum(d, "includedMb") == 100);
        CHECK(&C, tu_jnum(d, "overageMb") == 51 && tu_jnum(d, "overageFee") == 1020);
        CHECK(&C, tu_jnum(d, "activeDays") == 21 && tu_jnum(d, "daysInPeriod") == 31);
        CHECK(&C, tu_jnum(d, "baseFee") == 2100 && tu_jnum(d, "subtotal") == 3120);
        CHECK(&C, tu_jnum(d, "vat") == 312 && tu_jnum(d, "total") == 3432);
        cJSON_Delete(d);
    }
    bss_event_free(cause);
    /* The same line and period again (a new event): nothing changes. */
    CHECK(&C, apply(f, rater, "UsageMoved", "L1", moved_data("2026-10", "C1", "999999999"),
                    NULL) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT total FROM charge WHERE svc_cont_no='L1'") == 3432);
    /* L3: exactly 1 MB, one day: 100 + VAT 10. */
    CHECK(&C, apply(f, rater, "UsageMoved", "L3", moved_data("2026-10", "C2", "1048576"),
                    NULL) == BSS_OK);
    CHECK(&C, f->out.n == 1);
    CHECK(&C, tu_count_rows(f->store, "SELECT total FROM charge WHERE svc_cont_no='L3'") == 110);
    /* L5: not active in October, no usage: no charge, no event, but moved. */
    CHECK(&C, apply(f, rater, "UsageMoved", "L5", moved_data("2026-10", "C2", "0"), NULL) ==
                  BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM charge WHERE svc_cont_no='L5'") == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM usage_moved WHERE svc_cont_no='L5'") ==
                  1);
    /* A line billing does not know, bad data, an unknown close: dead letters. */
    CHECK(&C, apply(f, rater, "UsageMoved", "L9", moved_data("2026-10", "C9", "5"), NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, rater, "UsageMoved", "L1", moved_data("2026-10", "C1", "-5"), NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, rater, "UsageMoved", "L1", moved_data("2026-10", "C1", "1e9"), NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, rater, "UsageMoved", "L1", moved_data("2026-1x", "C1", "5"), NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, apply(f, rater, "UsageMoved", "L1", moved_data("2026-08", "C1", "5"), NULL) ==
                  BSS_ERR_INVALID);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM usage_moved") == 4);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM charge") == 3);

    /* AuCloseCompleted: C1 gets L1 + L2, C2 gets L3; mails for C1 only. */
    bss_event *done = NULL;
    CHECK(&C, apply(f, rater, "AuCloseCompleted", "2026-10",
                    "{\"period\":\"2026-10\",\"lineCount\":4,"
                    "\"totalBytes\":\"9223372036854775807\"}",
                    &done) == BSS_OK);
    CHECK(&C, f->out.n == 3);
    if (f->out.n == 3) {
        bss_event *e = f->out.ev[0];
        cJSON *d = data_of(e);
        CHECK(&C, strcmp(e->type, "InvoiceIssued") == 0);
        CHECK(&C, strcmp(e->subject, "INV-202610-C1") == 0);
        CHECK(&C, strcmp(e->causation_id, done->id) == 0);
        CHECK(&C, strcmp(tu_jstr(d, "invoiceId"), "INV-202610-C1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "customerId"), "C1") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "period"), "2026-10") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "email"), "c1@example.com") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "status"), "ISSUED") == 0);
        CHECK(&C, tu_jnum(d, "subtotal") == 3120 + 4838);
        CHECK(&C, tu_jnum(d, "vat") == 312 + 483);
        CHECK(&C, tu_jnum(d, "total") == 3432 + 5321);
        char issued[BSS_TIME_LEN + 8];
        bss_time_format(done->time_ms, issued, sizeof issued);
        CHECK(&C, strcmp(tu_jstr(d, "issuedAt"), issued) == 0);
        /* A summary, bounded whatever the customer's number of lines. */
        CHECK(&C, tu_jnum(d, "lineCount") == 2);
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(d, "byProduct");
        double lines = 0, amount = 0;
        const cJSON *p = NULL;
        cJSON_ArrayForEach(p, parts)
        {
            lines += tu_jnum(p, "lineCount");
            amount += tu_jnum(p, "amount");
            CHECK(&C, cJSON_GetArraySize(p) == 5);
        }
        CHECK(&C, lines == 2 && amount == 3432 + 5321);
        cJSON_Delete(d);
        d = data_of(f->out.ev[1]);
        CHECK(&C, strcmp(f->out.ev[1]->type, "InvoiceIssued") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "invoiceId"), "INV-202610-C2") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "email"), "") == 0);
        CHECK(&C, tu_jnum(d, "total") == 110);
        cJSON_Delete(d);
        d = data_of(f->out.ev[2]);
        CHECK(&C, strcmp(f->out.ev[2]->type, "PeriodInvoiced") == 0);
        CHECK(&C, strcmp(f->out.ev[2]->subject, "2026-10") == 0);
        CHECK(&C, strcmp(tu_jstr(d, "period"), "2026-10") == 0);
        CHECK(&C, tu_jnum(d, "invoiceCount") == 2);
        CHECK(&C, tu_jnum(d, "lineCount") == 4); /* L5 moved, not charged */
        CHECK(&C, tu_jnum(d, "chargeCount") == 3);
        CHECK(&C, cJSON_GetArraySize(d) == 4);
        cJSON_Delete(d);
    }
    bss_event_free(done);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications") == 1);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications WHERE channel='mail'"
                                   " AND dedup_key='INV-202610-C1'"
                                   " AND target='c1@example.com'") == 1);
    /* A replayed close changes nothing. */
    CHECK(&C, apply(f, rater, "AuCloseCompleted", "2026-10",
                    "{\"period\":\"2026-10\",\"lineCount\":3,\"totalBytes\":\"1\"}",
                    NULL) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM invoice") == 2);
    CHECK(&C, tu_count_rows(f->store, "SELECT count(*) FROM notifications") == 1);
    /* A line moved after invoicing is refused (final documents). */
    CHECK(&C, apply(f, cust, "OrderCreated", "L4",
                    open_data("O4", "C3", "L4", "IOT-BASIC", 3000, "c3@example.com"),
                    NULL) == BSS_OK);
    CHECK(&C, apply(f, rater, "UsageMoved", "L4", moved_data("2026-10", "C3", "10"), NULL) ==
                  BSS_ERR_INVALID);
    /* ... while a replayed UsageMoved of an invoiced line is just a no-op. */
    CHECK(&C, apply(f, rater, "UsageMoved", "L3", moved_data("2026-10", "C2", "1048576"),
                    NULL) == BSS_OK);
    CHECK(&C, f->out.n == 0);
    /* Charges and invoices are final. */
    CHECK(&C, exec_write(f->store, "UPDATE charge SET total = 1") != SQLITE_OK);
    CHECK(&C, exec_write(f->store, "DELETE FROM charge") != SQLITE_OK);
    CHECK(&C, exec_write(f->store, "UPDATE invoice SET total = 1") != SQLITE_OK);
    CHECK(&C, exec_write(f->store, "DELETE FROM invoice_line") != SQLITE_OK);
    CHECK(&C, tu_count_rows(f->store, "SELECT sum(total) FROM invoice") == 8753 + 110);

    test_routes(f->store);
    test_mail_log(f->store, dir);

    /* Replaying every consumed event twice into a fresh store ends with
     * exactly the same charges, invoices, events and mails. */
    snprintf(path, sizeof path, "%s/replay.db", dir);
    fixture *g = calloc(1, sizeof *g);
    if (g != NULL && open_store(path, &g->store) == BSS_OK) {
        g->ctx = &ctx;
        for (size_t i = 0; i < f->nlog; i++) {
            for (int k = 0; k < 2; k++) {
                int rc = deliver(g, f->log[i].stream, f->log[i].ev, 0);
                CHECK(&C, rc == BSS_OK || rc == BSS_ERR_INVALID);
            }
        }
        char *a = dump_json(f->store, 0), *b = dump_json(g->store, 0);
        CHECK(&C, a != NULL && b != NULL && strcmp(a, b) == 0);
        free(a);
        free(b);
        a = dump_json(f->store, 1);
        b = dump_json(g->store, 1);
        CHECK(&C, a != NULL && b != NULL && strcmp(a, b) == 0);
        CHECK(&C, a != NULL && strstr(a, "INV-202610-C2") != NULL);
        free(a);
        free(b);
        static const char *const counts[] = {
            "SELECT count(*) FROM events WHERE type='ChargeCalculated'",
            "SELECT count(*) FROM events WHERE type='InvoiceIssued'",
            "SELECT count(*) FROM events WHERE type='PeriodInvoiced'",
            "SELECT count(*) FROM events",
            "SELECT count(*) FROM notifications",
            "SELECT count(*) FROM usage_moved",
        };
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
            int64_t x = tu_count_rows(f->store, counts[i]), y = tu_count_rows(g->store, counts[i]);
            CHECK(&C, x == y && x >= 0);
            if (x != y)
                fprintf(stderr, "  %s: %lld vs %lld\n", counts[i], (long long)x, (long long)y);
        }
        CHECK(&C, tu_count_rows(g->store, "SELECT count(*) FROM events WHERE type='InvoiceIssued'") ==
                      2);
        tu_events_free(&g->out);
        bss_store_close(g->store);
    } else {
        C.failed++;
    }
    free(g);

    tu_events_free(&f->out);
    for (size_t i = 0; i < f->nlog; i++)
        bss_event_free(f->log[i].ev);
    bss_store_close(f->store);
    free(f);
    bss_catalog_free(catalog);
}

int main(void)
{
    char dir[] = "/tmp/bss-charges-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    test_billable_mb();
    test_prorate();
    test_compute();
    test_active_days();
    test_parse_and_format();
    test_html_escaping();
    test_event_text();
    test_handler(dir);
    tu_end(dir);
    return CHECK_DONE(&C);
}
