/*
 * settlement.h - the settlement aggregate: per billing period ("YYYY-MM"),
 * the totals of every invoice issued for it, and whether the period is
 * complete.
 *
 * Billing issues one InvoiceIssued per customer and period and then one
 * PeriodInvoiced that says how many invoices the period has. Settlement
 * keeps each invoice's contribution exactly once (keyed by invoiceId) and
 * adds it to the period's running totals in the same transaction, so a
 * redelivered or re-issued invoice never counts twice. A period is OPEN
 * until PeriodInvoiced has arrived and the number of stored invoices equals
 * its invoiceCount, in whichever order the two happen; it then becomes
 * COMPLETED, once, and stays so.
 *
 * Money is integer KRW and every count is an int64: nothing here passes
 * through a double. Sums are checked for overflow (an overflowing invoice is
 * rejected as invalid rather than wrapped). Documents render every int64 as
 * an exact JSON number token (cJSON raw), so usage sums beyond 2^53 survive.
 *
 * Tables in settlement.db (created by settlement_schema, the event core's
 * schema hook, together with the notification queue of notify.h):
 *
 *   settlement_invoice(invoice_id PRIMARY KEY, period, customer_id,
 *       line_count, usage_bytes, billable_mb, subtotal, vat, total,
 *       event_id, applied_ms)                  one row per invoice, once
 *   settlement_invoice_product(invoice_id, product_cd, line_count,
 *       usage_bytes, amount)                   the invoice's per-product part
 *   settlement_period(period PRIMARY KEY, status 'OPEN'|'COMPLETED',
 *       invoice_count, line_count, usage_bytes, billable_mb, subtotal, vat,
 *       total, expected_invoices NULL, expected_lines NULL,
 *       expected_charges NULL, completed_ms NULL, updated_ms)
 *   settlement_product(period, product_cd, line_count, usage_bytes, amount)
 *
 * Every function takes an sqlite3 connection: the store's write connection
 * inside the consumer's transaction for writes, a store snapshot
 * (bss_store_snapshot_begin) for reads.
 */
#ifndef SETTLEMENT_H
#define SETTLEMENT_H

#include "envelope.h"
#include "period.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define SETTLEMENT_ID_MAX BSS_EVENT_SUBJECT_MAX /* invoiceId, svcContNo */
#define SETTLEMENT_CUSTOMER_ID_MAX 64
#define SETTLEMENT_PRODUCT_CD_MAX 32
#define SETTLEMENT_STATUS_MAX 16

/* One product's share of an invoice or of a period. amount is the sum of
 * the line totals (VAT included) of the lines with that product. */
typedef struct settlement_product_total {
    char product_cd[SETTLEMENT_PRODUCT_CD_MAX + 1];
    int64_t line_count;
    int64_t usage_bytes;
    int64_t amount;
} settlement_product_total;

/* An InvoiceIssued reduced to what settlement keeps. */
typedef struct settlement_invoice {
    char invoice_id[SETTLEMENT_ID_MAX + 1];
    char customer_id[SETTLEMENT_CUSTOMER_ID_MAX + 1];
    char period[BSS_PERIOD_LEN + 1];
    int64_t line_count;  /* lines charged */
    int64_t usage_bytes; /* sum of the lines' usageBytes */
    int64_t billable_mb; /* sum of the lines' billableMb */
    int64_t subtotal, vat, total; /* the invoice's own amounts */
    int64_t lines_total;          /* sum of the lines' totals (for a consistency warning) */
    settlement_product_total *products; /* by productCd, ascending; owned */
    size_t nproducts;
} settlement_invoice;

/* A period as stored: the document GET /settlements/{period} serves. */
typedef struct settlement_summary {
    char period[BSS_PERIOD_LEN + 1];
    char status[SETTLEMENT_STATUS_MAX + 1]; /* "OPEN" or "COMPLETED" */
    int64_t invoice_count, line_count;
    int64_t usage_bytes, billable_mb;
    int64_t subtotal, vat, total;
    int has_expected;          /* 1 once PeriodInvoiced was applied */
    int64_t expected_invoices; /* PeriodInvoiced.invoiceCount, when has_expected */
    int64_t expected_lines;    /* PeriodInvoiced.lineCount, when has_expected */
    int64_t completed_ms;      /* when it completed (the completing event's time), else 0 */
    settlement_product_total *products; /* by productCd, ascending; owned */
    size_t nproducts;
} settlement_summary;

/* Creates settlement's tables and the notification queue on db (the
 * store's write connection inside its write transaction); idempotent.
 * Suits bss_eventcore_options.schema. Returns BSS_OK or BSS_ERR_IO. */
int settlement_schema(sqlite3 *db, char *err);

/* Parses InvoiceIssued data (JSON object text) into *out. Checks invoiceId,
 * customerId, period (exactly "YYYY-MM"), subtotal/vat/total (integers),
 * then the invoice's content in one of its two forms:
 *   byProduct (what billing emits): lineCount, usageBytes, billableMb and
 *     byProduct [{productCd (each once), lineCount, usageBytes, billableMb,
 *     amount}], whose sums must equal the three totals; counts are decimal
 *     strings of non-negative int64s or JSON integers up to 2^53;
 *   lines (events written before the summary form, still in old logs):
 *     every line's svcContNo, productCd, usageBytes, billableMb (>= 0),
 *     total, and period (when present, equal to the invoice's).
 * Returns BSS_OK
 * (free *out with settlement_invoice_free), BSS_ERR_INVALID with the field
 * named in err (also when a sum overflows int64), or BSS_ERR_NOMEM. On
 * error *out holds nothing to free. */
int settlement_invoice_parse(const char *data_json, settlement_invoice *out, char *err);

/* Releases what settlement_invoice_parse allocated; zeroes *inv. */
void settlement_invoice_free(settlement_invoice *inv);

/* Stores the invoice's contribution unless its invoiceId is stored already,
 * and adds it to its period's totals (creating the period, OPEN). at_ms is
 * the time recorded; event_id the InvoiceIssued's id (for the operator).
 * *inserted is 1 when it was added, 0 when the invoice was known (nothing
 * changed; a known invoice is never compared or counted again). Returns
 * BSS_OK; BSS_ERR_CONFLICT when the invoice is new but its period is
 * COMPLETED already (a settled period's totals, as reported, never change;
 * nothing changed, err says why); BSS_ERR_INVALID when a period total would
 * overflow int64 (nothing changed); BSS_ERR_IO. */
int settlement_record_invoice(sqlite3 *db, const settlement_invoice *inv, const char *event_id,
                              int64_t at_ms, int *inserted, char *err);

/* Records PeriodInvoiced: the number of invoices, lines and charges billing
 * issued for the period (creating the period, OPEN, when it has no invoice
 * yet). A later PeriodInvoiced replaces the expectation while the period is
 * OPEN; once COMPLETED nothing changes (*changed 0). *changed is 1 when the
 * stored expectation changed. Returns BSS_OK or BSS_ERR_IO. */
int settlement_record_expected(sqlite3 *db, const char *period, int64_t invoice_count,
                               int64_t line_count, int64_t charge_count, int64_t at_ms,
                               int *changed, char *err);

/* Marks the period COMPLETED (completed_ms = at_ms) when it is OPEN, its
 * expectation is known and its stored invoice count equals the expected
 * one. *completed is 1 exactly when this call made the change. Returns
 * BSS_OK (also for an unknown period: nothing to do) or BSS_ERR_IO. */
int settlement_try_complete(sqlite3 *db, const char *period, int64_t at_ms, int *completed,
                            char *err);

/* Loads the period into *out (free with settlement_summary_free). Returns
 * BSS_OK, BSS_ERR_NOTFOUND (nothing recorded for it; err untouched),
 * BSS_ERR_IO or BSS_ERR_NOMEM. */
int settlement_load(sqlite3 *db, const char *period, settlement_summary *out, char *err);

/* Releases what settlement_load allocated; zeroes *s. NULL is fine. */
void settlement_summary_free(settlement_summary *s);

/* The settlement document of s:
 *   {"period", "status": "OPEN"|"COMPLETED", "lineCount", "invoiceCount",
 *    "totalUsageBytes", "totalBillableMb", "totalSubtotal", "totalVat",
 *    "totalAmount", "byProduct": [{"productCd", "lineCount", "usageBytes",
 *    "amount"}] (by productCd), "expectedInvoiceCount": int|null,
 *    "completedAt": ISO-8601|null}
 * Every count and amount is an exact JSON integer. NULL when out of memory.
 * The caller frees it with cJSON_Delete. */
cJSON *settlement_summary_json(const settlement_summary *s);

/* The list served by GET /settlements: {"items": [{"period", "status",
 * "invoiceCount", "totalAmount"}]} newest period first. Returns BSS_OK with
 * *out (cJSON_Delete it), BSS_ERR_IO or BSS_ERR_NOMEM. */
int settlement_list_json(sqlite3 *db, cJSON **out, char *err);

/* Adds `value` to obj as an exact JSON integer named `name` (a raw decimal
 * token, never a double). Returns 1, or 0 when out of memory. */
int settlement_add_int64(cJSON *obj, const char *name, int64_t value);

/* 1 when text is a canonical period "YYYY-MM" (bss_period_parse accepts it
 * and formatting it back gives the same text), else 0. */
int settlement_period_ok(const char *text);

#endif
