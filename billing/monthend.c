/* monthend.c - see monthend.h. */
#include "monthend.h"

#include "billing.h"
#include "bss_error.h"
#include "charges.h"
#include "emit.h"
#include "invoice_id.h"
#include "isotime.h"
#include "jsonfield.h"
#include "ledger.h"
#include "notify.h"
#include "period.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the rater's data ---------------------------------------- */

/* A required "YYYY-MM" member into out (BSS_PERIOD_LEN + 1 bytes). */
static int read_period(const cJSON *d, const char *type, char *out, char *err)
{
    bss_period p;
    int rc = bss_jfield_string(d, "period", out, BSS_PERIOD_LEN + 1, err);
    if (rc == BSS_OK && bss_period_parse(out, &p) != BSS_OK) {
        bss_seterr(err, "%s: field 'period' is not YYYY-MM", type);
        rc = BSS_ERR_INVALID;
    }
    return rc;
}

/* A required 64-bit count: a decimal string (the contract), or a JSON
 * integer up to 2^53 (tolerated). */
static int read_count(const cJSON *d, const char *name, int64_t *out, char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, name);
    if (cJSON_IsString(v)) {
        if (charge_parse_count(v->valuestring, out) == BSS_OK)
            return BSS_OK;
        bss_seterr(err, "field '%s' is not a decimal count", name);
        return BSS_ERR_INVALID;
    }
    int64_t n = 0;
    int rc = bss_jfield_int64(d, name, &n, err);
    if (rc == BSS_OK && n < 0) {
        bss_seterr(err, "field '%s' is negative", name);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        *out = n;
    return rc;
}

/* An optional non-negative integer (absent or null: 0). */
static int read_opt_int(const cJSON *d, const char *name, int64_t *out, char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, name);
    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return BSS_OK;
    return read_count(d, name, out, err);
}

/* bss_emit (emit.h) for data already written as JSON text: skips building
 * a cJSON tree only to print it, which a month end would do a million
 * times. */
static int emit_text(bss_store *store, const bss_event *cause, const char *type,
                     const char *subject, char *json, char *err)
{
    if (json == NULL) {
        bss_seterr(err, "%s: out of memory", type);
        return BSS_ERR_NOMEM;
    }
    bss_event *ev = bss_event_adopt(type, subject, json, err);
    if (ev == NULL)
        return BSS_ERR_INVALID;
    bss_event_caused_by(ev, cause);
    int rc = bss_store_append(store, subject, BSS_ANY_VERSION, &ev, 1, err);
    bss_event_free(ev);
    return rc;
}

/* ---- AuCloseStarted --------------------------------------------------- */

int billing_on_au_close_started(bss_log *log, bss_store *store, const bss_event *ev,
                                char *err)
{
    cJSON *d = bss_jfield_event_data(ev, err);
    if (d == NULL)
        return BSS_ERR_INVALID;
    char period[BSS_PERIOD_LEN + 1];
    int64_t position = 0;
    int rc = read_period(d, ev->type, period, err);
    if (rc == BSS_OK)
        rc = bss_jfield_int64(d, "customerPosition", &position, err);
    cJSON_Delete(d);
    if (rc == BSS_OK && position < 0) {
        bss_seterr(err, "AuCloseStarted: customerPosition is negative");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK && strcmp(ev->subject, period) != 0) {
        bss_seterr(err, "AuCloseStarted: subject '%s' is not its period %s", ev->subject,
                   period);
        rc = BSS_ERR_INVALID;
    }
    if (rc != BSS_OK)
        return rc;
    int inserted = 0;
    rc = billing_close_insert(bss_store_db(store), period, position, ev->id, ev->time_ms,
                              &inserted, err);
    if (rc == BSS_OK && !inserted)
        bss_log_info(log, "AuCloseStarted %s (customerPosition %" PRId64
                          ") again: the first close of the period is kept",
                     period, position);
    return rc;
}

/* ---- OrdersClosed (customer stream) ----------------------------------- */

int billing_on_orders_closed(const bss_event *ev, bss_store *store, char *err)
{
    bss_period p;
    if (bss_period_parse(ev->subject, &p) != BSS_OK) {
        bss_seterr(err, "OrdersClosed about '%s', not a period", ev->subject);
        return BSS_ERR_INVALID;
    }
    return billing_orders_closed_insert(bss_store_db(store), ev->subject, ev->id, ev->time_ms,
                                        err);
}

/* ---- UsageMoved ------------------------------------------------------- */

typedef struct moved {
    char period[BSS_PERIOD_LEN + 1];
    char customer_id[BSS_CEV_ID_MAX + 1];
    int64_t usage_bytes;
    int64_t records;
} moved;

static int parse_moved(const bss_event *ev, moved *m, char *err)
{
    cJSON *d = bss_jfield_event_data(ev, err);
    if (d == NULL)
        return BSS_ERR_INVALID;
    int rc = read_period(d, ev->type, m->period, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(d, "customerId", m->customer_id, sizeof m->customer_id, err);
    if (rc == BSS_OK)
        rc = read_count(d, "usageBytes", &m->usage_bytes, err);
    if (rc == BSS_OK)
        rc = read_opt_int(d, "records", &m->records, err);
    cJSON_Delete(d);
    return rc;
}

/* Computes the line's charge for the period into *c. *chargeable = 0 when
 * there is none (not active, no usage). */
static int compute_charge(sqlite3 *db, charge_calendar *calendar, const billing_charge_info *info,
                          const moved *m, billing_charge *c, int *chargeable, char *err)
{
    bss_period p;
    bss_period_parse(m->period, &p); /* validated by parse_moved */
    charge_status_point *hist = NULL;
    size_t n = 0;
    int rc = billing_status_points(db, info->svc_cont_no, &hist, &n, err);
    if (rc != BSS_OK)
        return rc;
    int active_days = 0;
    rc = charge_active_days_cal(hist, n, calendar, p, &active_days, err);
    free(hist);
    if (rc != BSS_OK)
        return rc;
    charge_input in = {.usage_bytes = m->usage_bytes,
                       .included_mb = info->included_mb,
                       .per_mb_rate = info->per_mb_rate,
                       .product_tarif = info->product_tarif,
                       .active_days = active_days,
                       .days_in_period = bss_period_days(p)};
    charge_result r;
    rc = charge_compute(&in, &r, err);
    if (rc != BSS_OK)
        return rc;
    *chargeable = r.chargeable;
    memset(c, 0, sizeof *c);
    memcpy(c->svc_cont_no, info->svc_cont_no, sizeof c->svc_cont_no);
    memcpy(c->customer_id, info->customer_id, sizeof c->customer_id);
    memcpy(c->product_cd, info->product_cd, sizeof c->product_cd);
    memcpy(c->period, m->period, sizeof c->period);
    c->product_tarif = info->product_tarif;
    c->per_mb_rate = info->per_mb_rate;
    c->usage_bytes = m->usage_bytes;
    c->billable_mb = r.billable_mb;
    c->included_mb = info->included_mb;
    c->overage_mb = r.overage_mb;
    c->overage_fee = r.overage_fee;
    c->active_days = in.active_days;
    c->days_in_period = in.days_in_period;
    c->base_fee = r.base_fee;
    c->subtotal = r.subtotal;
    c->vat = r.vat;
    c->total = r.total;
    return BSS_OK;
}

int billing_on_usage_moved(bss_log *log, charge_calendar *calendar, bss_store *store,
                           const bss_event *ev, char *err)
{
    moved m;
    memset(&m, 0, sizeof m);
    int rc = parse_moved(ev, &m, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(store);
    const char *no = ev->subject;

    /* Causality first: the status history must hold every order the
     * customer service accepted for the period, which the customer's
     * OrdersClosed barrier vouches for. */
    int64_t close_position = 0;
    rc = billing_close_position(db, m.period, &close_position, err);
    if (rc == BSS_ERR_NOTFOUND) {
        bss_seterr(err, "UsageMoved %s: no AuCloseStarted for period %s", no, m.period);
        bss_log_error(log, "%s", err);
        return BSS_ERR_INVALID;
    }
    int orders_closed = 0;
    if (rc == BSS_OK)
        rc = billing_orders_closed(db, m.period, &orders_closed, err);
    if (rc != BSS_OK)
        return rc;
    if (!orders_closed) {
        bss_seterr(err,
                   "UsageMoved %s %s: waiting for the customer stream's OrdersClosed of the"
                   " period",
                   no, m.period);
        return BSS_ERR_BUSY;
    }

    int inserted = 0;
    rc = billing_moved_insert(db, no, m.period, m.customer_id, m.usage_bytes, m.records, ev->id,
                              ev->time_ms, &inserted, err);
    if (rc != BSS_OK || !inserted)
        return rc; /* a line moved before changes nothing */
    int invoiced = 0;
    rc = billing_period_invoiced(db, m.period, &invoiced, err);
    if (rc != BSS_OK)
        return rc;
    if (invoiced) {
        bss_seterr(err, "UsageMoved %s: period %s is invoiced already (final); a correction "
                        "needs a new document",
                   no, m.period);
        bss_log_error(log, "%s", err);
        return BSS_ERR_INVALID;
    }
    billing_charge_info info;
    rc = billing_charge_info_get(db, no, &info, err);
    if (rc == BSS_ERR_NOTFOUND) {
        bss_seterr(err, "UsageMoved %s %s: billing has no charge info for the line", no,
                   m.period);
        bss_log_error(log, "%s", err);
        return BSS_ERR_INVALID;
    }
    if (rc != BSS_OK)
        return rc;
    if (strcmp(info.customer_id, m.customer_id) != 0)
        bss_log_warn(log, "UsageMoved %s: customerId %s differs from charge info's %s; "
                          "billing the charge info's customer",
                     no, m.customer_id, info.customer_id);

    billing_charge c;
    int chargeable = 0;
    rc = compute_charge(db, calendar, &info, &m, &c, &chargeable, err);
    if (rc == BSS_ERR_INVALID)
        bss_log_error(log, "UsageMoved %s %s: %s", no, m.period, err);
    if (rc != BSS_OK || !chargeable)
        return rc;
    c.calculated_ms = ev->time_ms;
    rc = billing_charge_insert(db, &c, &inserted, err);
    if (rc != BSS_OK || !inserted)
        return rc;
    return emit_text(store, ev, "ChargeCalculated", no, billing_charge_event_text(&c), err);
}

/* ---- AuCloseCompleted ------------------------------------------------- */

/* Builds, stores and announces the customer's invoice for the period from
 * its charges (lines[0..nlines), by svcContNo) and address (email, "" for
 * none). *issued = 1 when a new invoice was stored. */
static int issue_invoice(bss_log *log, bss_store *store, const bss_event *ev,
                         const char *period, const char *customer_id,
                         const billing_charge *lines, size_t nlines, const char *email,
                         int *issued, char *err)
{
    sqlite3 *db = bss_store_db(store);
    billing_invoice inv;
    memset(&inv, 0, sizeof inv);
    *issued = 0;
    if (bss_invoice_id(period, customer_id, inv.invoice_id, sizeof inv.invoice_id) !=
        BSS_OK) {
        bss_seterr(err, "customer id '%s' makes no invoice id", customer_id);
        return BSS_ERR_INVALID;
    }
    snprintf(inv.customer_id, sizeof inv.customer_id, "%s", customer_id);
    memcpy(inv.period, period, sizeof inv.period);
    snprintf(inv.status, sizeof inv.status, "ISSUED");
    inv.issued_ms = ev->time_ms;
    if (bss_time_format(inv.issued_ms, inv.issued_at, sizeof inv.issued_at) != BSS_OK) {
        bss_seterr(err, "cannot format the issue time");
        return BSS_ERR_INVALID;
    }
    snprintf(inv.email, sizeof inv.email, "%s", email);
    /* The lines are the scan's, only borrowed: inv is not cleared below. */
    inv.lines = (billing_charge *)lines;
    inv.nlines = nlines;
    int rc = BSS_OK;
    for (size_t i = 0; rc == BSS_OK && i < inv.nlines; i++) {
        const billing_charge *c = &inv.lines[i];
        if (c->subtotal > CHARGE_AMOUNT_MAX - inv.subtotal ||
            c->vat > CHARGE_AMOUNT_MAX - inv.vat || c->total > CHARGE_AMOUNT_MAX - inv.total) {
            bss_seterr(err, "invoice %s: sums beyond 2^53", inv.invoice_id);
            bss_log_error(log, "%s", err);
            rc = BSS_ERR_INVALID;
            break;
        }
        inv.subtotal += c->subtotal;
        inv.vat += c->vat;
        inv.total += c->total;
    }
    int inserted = 0;
    if (rc == BSS_OK)
        rc = billing_invoice_insert(db, &inv, &inserted, err);
    if (rc == BSS_OK && inserted)
        rc = emit_text(store, ev, "InvoiceIssued", inv.invoice_id,
                       billing_invoice_event_text(&inv), err);
    if (rc == BSS_OK && inserted && inv.email[0] != '\0') {
        cJSON *p = cJSON_CreateObject();
        char *json = NULL;
        if (p != NULL && cJSON_AddStringToObject(p, "invoiceId", inv.invoice_id) != NULL &&
            cJSON_AddStringToObject(p, "period", inv.period) != NULL)
            json = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
        if (json == NULL) {
            bss_seterr(err, "invoice mail: out of memory");
            rc = BSS_ERR_NOMEM;
        } else {
            rc = bss_notify_enqueue(store, BILLING_MAIL_CHANNEL, inv.invoice_id, inv.email,
                                    json, err);
            free(json);
        }
    } else if (rc == BSS_OK && inserted) {
        bss_log_warn(log, "invoice %s: customer %s has no email, not mailed", inv.invoice_id,
                     customer_id);
    }
    if (rc == BSS_OK)
        *issued = inserted;
    return rc;
}

typedef struct invoicing {
    bss_log *log;
    bss_store *store;
    const bss_event *ev;
    const char *period;
} invoicing;

static int invoice_customer(void *ctx, const char *customer_id, const billing_charge *lines,
                            size_t n, const char *email, char *err)
{
    const invoicing *iv = ctx;
    int issued = 0;
    return issue_invoice(iv->log, iv->store, iv->ev, iv->period, customer_id, lines, n, email,
                         &issued, err);
}

int billing_on_au_close_completed(bss_log *log, bss_store *store, const bss_event *ev,
                                  char *err)
{
    cJSON *d = bss_jfield_event_data(ev, err);
    if (d == NULL)
        return BSS_ERR_INVALID;
    char period[BSS_PERIOD_LEN + 1];
    int64_t close_lines = 0, close_bytes = 0;
    int rc = read_period(d, ev->type, period, err);
    if (rc == BSS_OK)
        rc = read_opt_int(d, "lineCount", &close_lines, err);
    if (rc == BSS_OK)
        rc = read_opt_int(d, "totalBytes", &close_bytes, err);
    cJSON_Delete(d);
    if (rc == BSS_OK && strcmp(ev->subject, period) != 0) {
        bss_seterr(err, "AuCloseCompleted: subject '%s' is not its period %s", ev->subject,
                   period);
        rc = BSS_ERR_INVALID;
    }
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(store);
    int invoiced = 0;
    rc = billing_period_invoiced(db, period, &invoiced, err);
    if (rc != BSS_OK || invoiced)
        return rc; /* a replayed close changes nothing */

    invoicing iv = {log, store, ev, period};
    rc = billing_period_charges_by_customer(db, period, invoice_customer, &iv, err);
    if (rc != BSS_OK)
        return rc;

    int64_t lines = 0, charges = 0, invoices = 0;
    rc = billing_period_counts(db, period, &lines, &charges, &invoices, err);
    if (rc != BSS_OK)
        return rc;
    if (lines != close_lines)
        bss_log_warn(log, "period %s: the close moved %" PRId64 " lines, billing applied %" PRId64
                          " (see dead letters)",
                     period, close_lines, lines);
    int inserted = 0;
    rc = billing_period_invoiced_insert(db, period, invoices, lines, charges, close_lines,
                                        close_bytes, ev->id, ev->time_ms, &inserted, err);
    if (rc != BSS_OK || !inserted)
        return rc;
    cJSON *out = cJSON_CreateObject();
    if (out == NULL || cJSON_AddStringToObject(out, "period", period) == NULL ||
        cJSON_AddNumberToObject(out, "invoiceCount", (double)invoices) == NULL ||
        cJSON_AddNumberToObject(out, "lineCount", (double)lines) == NULL ||
        cJSON_AddNumberToObject(out, "chargeCount", (double)charges) == NULL) {
        cJSON_Delete(out);
        bss_seterr(err, "PeriodInvoiced: out of memory");
        return BSS_ERR_NOMEM;
    }
    rc = bss_emit(store, ev, "PeriodInvoiced", period, out, err);
    cJSON_Delete(out);
    if (rc == BSS_OK)
        bss_log_info(log, "period %s invoiced: %" PRId64 " invoices, %" PRId64
                          " charges, %" PRId64 " lines",
                     period, invoices, charges, lines);
    return rc;
}
