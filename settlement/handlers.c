/* handlers.c - see handlers.h. */
#include "handlers.h"

#include "bss_error.h"
#include "emit.h"
#include "jsonfield.h"
#include "notify.h"
#include "report.h"
#include "settlement.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mail_to(const settlement_handler_ctx *c)
{
    return c != NULL && c->mail_to != NULL && c->mail_to[0] != '\0' ? c->mail_to
                                                                     : SETTLEMENT_MAIL_TO_DEFAULT;
}

/* Completes the period if it is due: emits SettlementCompleted and queues
 * the report, all in the open transaction. */
static int maybe_complete(const settlement_handler_ctx *c, bss_store *store,
                          const bss_event *cause, const char *period, char *err)
{
    sqlite3 *db = bss_store_db(store);
    int completed = 0;
    /* The completing event's own time: a replay of the same history gives
     * the same document. */
    int rc = settlement_try_complete(db, period, cause->time_ms > 0 ? cause->time_ms : 1,
                                     &completed, err);
    if (rc != BSS_OK || !completed)
        return rc;
    settlement_summary s;
    rc = settlement_load(db, period, &s, err);
    if (rc == BSS_ERR_NOTFOUND) {
        bss_seterr(err, "period %s vanished while completing", period);
        return BSS_ERR_IO;
    }
    if (rc != BSS_OK)
        return rc;
    if (s.has_expected && s.expected_lines != s.line_count)
        bss_log_warn(c != NULL ? c->log : NULL,
                     "settlement %s: %" PRId64 " lines in the invoices, PeriodInvoiced said %" PRId64,
                     period, s.line_count, s.expected_lines);
    cJSON *doc = settlement_summary_json(&s);
    char *payload = NULL;
    if (doc == NULL) {
        bss_seterr(err, "out of memory");
        rc = BSS_ERR_NOMEM;
    }
    if (rc == BSS_OK)
        rc = bss_emit(store, cause, "SettlementCompleted", period, doc, err);
    if (rc == BSS_OK)
        rc = settlement_report_payload(&s, mail_to(c), &payload, err);
    if (rc == BSS_OK) {
        char key[32];
        snprintf(key, sizeof key, "settlement-%s", period);
        rc = bss_notify_enqueue(store, "mail", key, mail_to(c), payload, err);
    }
    if (rc == BSS_OK)
        bss_log_info(c != NULL ? c->log : NULL,
                     "settlement %s completed: %" PRId64 " invoices, %" PRId64
                     " lines, total %" PRId64 " KRW; report queued to %s",
                     period, s.invoice_count, s.line_count, s.total, mail_to(c));
    free(payload);
    cJSON_Delete(doc);
    settlement_summary_free(&s);
    return rc;
}

static int on_invoice_issued(const settlement_handler_ctx *c, bss_store *store,
                             const bss_event *ev, char *err)
{
    settlement_invoice inv;
    int rc = settlement_invoice_parse(ev->data, &inv, err);
    if (rc != BSS_OK)
        return rc;
    if (strcmp(inv.invoice_id, ev->subject) != 0) {
        bss_seterr(err, "invoiceId '%s' differs from the subject '%s'", inv.invoice_id,
                   ev->subject);
        settlement_invoice_free(&inv);
        return BSS_ERR_INVALID;
    }
    if (inv.lines_total != inv.total)
        bss_log_warn(c != NULL ? c->log : NULL,
                     "invoice %s: total %" PRId64 " but its lines add up to %" PRId64,
                     inv.invoice_id, inv.total, inv.lines_total);
    int inserted = 0;
    rc = settlement_record_invoice(bss_store_db(store), &inv, ev->id, ev->time_ms, &inserted,
                                   err);
    if (rc == BSS_ERR_CONFLICT)
        rc = BSS_ERR_INVALID; /* a late invoice of a settled period: keep it aside */
    if (rc == BSS_OK && !inserted)
        bss_log_debug(c != NULL ? c->log : NULL, "invoice %s already settled, skipped",
                      inv.invoice_id);
    if (rc == BSS_OK)
        rc = maybe_complete(c, store, ev, inv.period, err);
    settlement_invoice_free(&inv);
    return rc;
}

static int read_nonneg(const cJSON *d, const char *name, int64_t *out, char *err)
{
    if (bss_jfield_int64(d, name, out, err) != BSS_OK)
        return BSS_ERR_INVALID;
    if (*out < 0) {
        bss_seterr(err, "field '%s' must not be negative", name);
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

static int on_period_invoiced(const settlement_handler_ctx *c, bss_store *store,
                              const bss_event *ev, char *err)
{
    cJSON *d = cJSON_Parse(ev->data);
    char period[BSS_PERIOD_LEN + 2];
    int64_t invoices = 0, lines = 0, charges = 0;
    int rc = BSS_OK;
    if (d == NULL) {
        bss_seterr(err, "PeriodInvoiced data is not JSON");
        rc = BSS_ERR_INVALID;
    } else if (bss_jfield_string(d, "period", period, sizeof period, err) != BSS_OK ||
               read_nonneg(d, "invoiceCount", &invoices, err) != BSS_OK ||
               read_nonneg(d, "lineCount", &lines, err) != BSS_OK ||
               read_nonneg(d, "chargeCount", &charges, err) != BSS_OK) {
        rc = BSS_ERR_INVALID;
    } else if (!settlement_period_ok(period)) {
        bss_seterr(err, "field 'period' must be YYYY-MM, not '%s'", period);
        rc = BSS_ERR_INVALID;
    } else if (strcmp(period, ev->subject) != 0) {
        bss_seterr(err, "period '%s' differs from the subject '%s'", period, ev->subject);
        rc = BSS_ERR_INVALID;
    }
    cJSON_Delete(d);
    if (rc != BSS_OK)
        return rc;
    int changed = 0;
    rc = settlement_record_expected(bss_store_db(store), period, invoices, lines, charges,
                                    ev->time_ms, &changed, err);
    if (rc == BSS_OK && !changed)
        bss_log_debug(c != NULL ? c->log : NULL,
                      "PeriodInvoiced %s: nothing new (same counts, or settled)", period);
    if (rc == BSS_OK)
        rc = maybe_complete(c, store, ev, period, err);
    return rc;
}

const char *const SETTLEMENT_HANDLED_TYPES[] = {"InvoiceIssued", "PeriodInvoiced"};
const size_t SETTLEMENT_HANDLED_TYPE_COUNT =
    sizeof SETTLEMENT_HANDLED_TYPES / sizeof SETTLEMENT_HANDLED_TYPES[0];

int settlement_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    const settlement_handler_ctx *c = ctx;
    if (strcmp(ev->type, "InvoiceIssued") == 0)
        return on_invoice_issued(c, store, ev, err);
    if (strcmp(ev->type, "PeriodInvoiced") == 0)
        return on_period_invoiced(c, store, ev, err);
    return BSS_OK;
}
