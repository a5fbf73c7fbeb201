/*
 * ledger.h - billing's month-end records in billing.db: the AU closes the
 * rater announced, the lines it moved, the charges computed from them and
 * the invoices issued over the charges.
 *
 * Tables (created by billing_ledger_schema, part of billing_schema):
 *
 *   au_close(period PRIMARY KEY, customer_position, event_id, started_ms)
 *       one row per AuCloseStarted; the first one of a period is kept.
 *   orders_closed(period PRIMARY KEY, event_id, closed_ms)
 *       one row per customer OrdersClosed: the period's status changes
 *       are all in the status history (monthend.h).
 *   usage_moved(svc_cont_no, period, customer_id, usage_bytes, records,
 *               event_id, moved_ms, PRIMARY KEY(svc_cont_no, period))
 *       every UsageMoved applied, charged or not: the lines of the close.
 *   charge(svc_cont_no, period, customer_id, product_cd, product_tarif,
 *          per_mb_rate, usage_bytes, billable_mb, included_mb (-1 =
 *          unlimited), overage_mb, overage_fee, active_days, days_in_period,
 *          base_fee, subtotal, vat, total, calculated_ms,
 *          UNIQUE(svc_cont_no, period))
 *       the final charge of a line for a period, with the tarif and rate it
 *       was computed from (a later product change rewrites nothing).
 *   invoice(invoice_id PRIMARY KEY, customer_id, period, email, subtotal,
 *           vat, total, status, issued_ms, issued_at,
 *           UNIQUE(customer_id, period))
 *   invoice_line(invoice_id, line_no, svc_cont_no, period,
 *                PRIMARY KEY(invoice_id, line_no), UNIQUE(svc_cont_no, period))
 *       the charges an invoice is made of; a charge is on one invoice only.
 *   period_invoiced(period PRIMARY KEY, invoice_count, line_count,
 *                   charge_count, close_line_count, close_total_bytes,
 *                   event_id, invoiced_ms)
 *       the period's invoicing is done (PeriodInvoiced was emitted).
 *
 * Charges and invoices are final: triggers make any UPDATE or DELETE of
 * charge, invoice and invoice_line fail, so a correction can only ever be a
 * new document. Every insert here is idempotent (a second insert of the same
 * key changes nothing and reports inserted = 0).
 *
 * Functions taking a sqlite3 *db work on any connection of the store: the
 * write connection inside the consumer's transaction (writes and reads) or
 * a snapshot reader (reads). It must be a bss_store's connection, not one
 * opened by hand: statements are prepared once per connection and reused
 * (sqlcache.h), and the store finalizes them when it closes the connection.
 * Errors: BSS_ERR_IO for SQLite failures, BSS_ERR_NOMEM for allocation
 * failures, err filled.
 */
#ifndef BILLING_LEDGER_H
#define BILLING_LEDGER_H

#include "charges.h"
#include "customer_events.h"
#include "period.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define BILLING_INVOICE_ID_MAX 96 /* "INV-YYYYMM-<customerId>" */

/* One line's charge for one period (a charge row). */
typedef struct billing_charge {
    char svc_cont_no[BSS_CEV_SVC_CONT_NO_MAX + 1];
    char customer_id[BSS_CEV_ID_MAX + 1];
    char product_cd[BSS_CEV_CODE_MAX + 1];
    char period[BSS_PERIOD_LEN + 1];
    int64_t product_tarif; /* snapshot of charge info */
    int64_t per_mb_rate;   /* snapshot of charge info */
    int64_t usage_bytes;
    int64_t billable_mb;
    int64_t included_mb; /* -1 = unlimited */
    int64_t overage_mb;
    int64_t overage_fee;
    int active_days;
    int days_in_period;
    int64_t base_fee;
    int64_t subtotal;
    int64_t vat;
    int64_t total;
    int64_t calculated_ms;
} billing_charge;

/* An invoice with its lines (lines[0..nlines) ordered by svcContNo). */
typedef struct billing_invoice {
    char invoice_id[BILLING_INVOICE_ID_MAX + 1];
    char customer_id[BSS_CEV_ID_MAX + 1];
    char period[BSS_PERIOD_LEN + 1];
    char email[BSS_CEV_EMAIL_MAX + 1]; /* "" when the customer has none */
    int64_t subtotal;
    int64_t vat;
    int64_t total;
    char status[16]; /* "ISSUED" */
    int64_t issued_ms;
    char issued_at[48]; /* ISO-8601 with offset, as issued */
    billing_charge *lines; /* malloc'd, owned; see billing_invoice_clear */
    size_t nlines;
} billing_invoice;

/* Creates the tables and triggers above; idempotent. BSS_OK or BSS_ERR_IO. */
int billing_ledger_schema(sqlite3 *db, char *err);

/* The line's status history (line_status_history, statushistory.h) as
 * charge_status_point entries in effective order, ties in the order they
 * were recorded: a malloc'd array (*points; free(), NULL when empty) of *n. */
int billing_status_points(sqlite3 *db, const char *svc_cont_no, charge_status_point **points,
                          size_t *n, char *err);

/* Records an AU close. *inserted (may be NULL) is 0 when the period had one
 * (the first is kept unchanged). */
int billing_close_insert(sqlite3 *db, const char *period, int64_t customer_position,
                         const char *event_id, int64_t started_ms, int *inserted, char *err);

/* The period's close: its customerPosition into *position. BSS_OK,
 * BSS_ERR_NOTFOUND (no AuCloseStarted for it; err untouched) or BSS_ERR_IO. */
int billing_close_position(sqlite3 *db, const char *period, int64_t *position, char *err);

/* Records the customer service's OrdersClosed for period (the first is
 * kept). */
int billing_orders_closed_insert(sqlite3 *db, const char *period, const char *event_id,
                                 int64_t closed_ms, char *err);

/* *closed = 1 when the customer service's OrdersClosed for period was
 * applied, else 0. */
int billing_orders_closed(sqlite3 *db, const char *period, int *closed, char *err);

/* Records that the line's usage for the period was moved. *inserted (may
 * be NULL) is 0 when it was recorded before (nothing changes). */
int billing_moved_insert(sqlite3 *db, const char *svc_cont_no, const char *period,
                         const char *customer_id, int64_t usage_bytes, int64_t records,
                         const char *event_id, int64_t moved_ms, int *inserted, char *err);

/* Inserts a charge unless the line has one for that period. *inserted (may
 * be NULL) is 1 when added, 0 when one existed (left unchanged). */
int billing_charge_insert(sqlite3 *db, const billing_charge *c, int *inserted, char *err);

/* The two JSON forms of charges and invoices. Integers are written with
 * their exact digits in both. */
typedef enum billing_json_form {
    /* Event data (ChargeCalculated): usageBytes as a decimal string, as the
     * event catalog carries 64-bit counts. */
    BILLING_JSON_EVENT,
    /* The REST API: usageBytes as a JSON integer like every other count. */
    BILLING_JSON_API
} billing_json_form;

/* The charge as JSON, exactly the contract's fields: svcContNo, customerId,
 * productCd, period, usageBytes (see form), billableMb, includedMb (null =
 * unlimited), overageMb, overageFee, activeDays, daysInPeriod, baseFee,
 * subtotal, vat, total (integers). NULL when out of memory. */
cJSON *billing_charge_to_json(const billing_charge *c, billing_json_form form);

/* The event form (BILLING_JSON_EVENT) of a charge as compact JSON text,
 * written directly rather than built and printed with cJSON: byte for byte
 * what cJSON_PrintUnformatted of billing_charge_to_json gives
 * (tests/unit/test_charges.c compares them). A malloc'd string (free()),
 * or NULL when out of memory. */
char *billing_charge_event_text(const billing_charge *c);

/* InvoiceIssued's data: the invoice without its lines, which would make an
 * event grow with the customer's fleet (a few thousand lines passed the
 * bus's 1 MiB per event), but with what followers total from them:
 * {invoiceId, customerId, period, email, lineCount, usageBytes (decimal
 * string), billableMb, byProduct: [{productCd, lineCount, usageBytes,
 * billableMb, amount (the lines' totals, VAT included)}] by productCd,
 * subtotal, vat, total, status, issuedAt}. Usage sums stop at INT64_MAX.
 * The lines stay in billing's store (GET /billings/invoices/{id}). A
 * malloc'd string (free()), or NULL when out of memory. */
char *billing_invoice_event_text(const billing_invoice *inv);

/* Appends the period's charges (only the line's when svc_cont_no is not
 * NULL) to array as billing_charge_to_json(c, BILLING_JSON_API) objects,
 * by svcContNo. */
int billing_charges_json(sqlite3 *db, const char *period, const char *svc_cont_no,
                         cJSON *array, char *err);

/* The distinct customer ids having charges in the period, in order:
 * *ids is a malloc'd array of *n malloc'd strings; free with
 * billing_strings_free. */
int billing_period_customers(sqlite3 *db, const char *period, char ***ids, size_t *n,
                             char *err);
void billing_strings_free(char **strings, size_t n);

/* The customer's charges of the period, ordered by svcContNo, into a
 * malloc'd array (*lines; free()) of *n. */
int billing_customer_charges(sqlite3 *db, const char *period, const char *customer_id,
                             billing_charge **lines, size_t *n, char *err);

/* The address an invoice of the customer for the period goes to: the email
 * in charge info of the most recently opened of the customer's charged
 * lines that has one; "" when none does. */
int billing_customer_email(sqlite3 *db, const char *period, const char *customer_id,
                           char *email, size_t len, char *err);

/* One customer's charges of a period: lines[0..n) ordered by svcContNo,
 * valid during the call only; email as billing_customer_email gives it.
 * Returns BSS_OK to go on, anything else to stop the scan with. */
typedef int (*billing_customer_charges_fn)(void *ctx, const char *customer_id,
                                           const billing_charge *lines, size_t n,
                                           const char *email, char *err);

/* Calls fn for every customer with charges in the period, by customerId,
 * from one ordered scan of the period's charges (what
 * billing_period_customers, billing_customer_charges and
 * billing_customer_email give, without three queries per customer). fn may
 * write to other tables than charge and charge_info on db. Returns BSS_OK,
 * fn's first error, or BSS_ERR_IO / BSS_ERR_NOMEM. */
int billing_period_charges_by_customer(sqlite3 *db, const char *period,
                                       billing_customer_charges_fn fn, void *ctx, char *err);

/* Inserts the invoice and its lines unless the customer has an invoice for
 * that period (or the id exists). *inserted (may be NULL) as above. */
int billing_invoice_insert(sqlite3 *db, const billing_invoice *inv, int *inserted, char *err);

/* Loads the invoice with its lines into *out (release with
 * billing_invoice_clear). BSS_OK, BSS_ERR_NOTFOUND (err untouched),
 * BSS_ERR_IO or BSS_ERR_NOMEM. */
int billing_invoice_get(sqlite3 *db, const char *invoice_id, billing_invoice *out, char *err);

/* Frees inv's lines; inv may then be reused. NULL is fine. */
void billing_invoice_clear(billing_invoice *inv);

/* The invoice as the REST API shows it: invoiceId, customerId, period,
 * lines (billing_charge_to_json each, API form), subtotal, vat, total,
 * status, issuedAt. (Its event is billing_invoice_event_text.) NULL when
 * out of memory. */
cJSON *billing_invoice_to_json(const billing_invoice *inv);

/* Appends the invoices matching the filters (each may be NULL = any; at
 * least one is expected from callers) to array as
 * billing_invoice_to_json(inv), by period then customerId. */
int billing_invoices_json(sqlite3 *db, const char *customer_id, const char *period,
                          cJSON *array, char *err);

/* The period's counts: lines moved (usage_moved rows), charges, invoices. */
int billing_period_counts(sqlite3 *db, const char *period, int64_t *lines, int64_t *charges,
                          int64_t *invoices, char *err);

/* *invoiced = 1 when the period's invoicing is recorded, else 0. */
int billing_period_invoiced(sqlite3 *db, const char *period, int *invoiced, char *err);

/* Records that the period is invoiced. *inserted (may be NULL) as above. */
int billing_period_invoiced_insert(sqlite3 *db, const char *period, int64_t invoice_count,
                                   int64_t line_count, int64_t charge_count,
                                   int64_t close_line_count, int64_t close_total_bytes,
                                   const char *event_id, int64_t invoiced_ms, int *inserted,
                                   char *err);

#endif
