/* routes.c - see routes.h. */
#include "routes.h"

#include "billing.h"
#include "bss_error.h"
#include "invoice_html.h"
#include "ledger.h"
#include "period.h"
#include "readview.h"
#include "statushistory.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A bss_view_fn: the view of line arg (its svcContNo) into *out (caller
 * frees). Returns BSS_OK, BSS_ERR_NOTFOUND, or a read/memory error. */
static int billing_view(sqlite3 *db, const void *arg, cJSON **out, char *err)
{
    const char *svc_cont_no = arg;
    billing_charge_info info;
    int rc = billing_charge_info_get(db, svc_cont_no, &info, err);
    if (rc != BSS_OK)
        return rc;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "svcContNo", info.svc_cont_no) == NULL ||
        cJSON_AddStringToObject(o, "customerId", info.customer_id) == NULL ||
        cJSON_AddStringToObject(o, "productCd", info.product_cd) == NULL ||
        cJSON_AddStringToObject(o, "productNm", info.product_nm) == NULL ||
        cJSON_AddNumberToObject(o, "productTarif", (double)info.product_tarif) == NULL ||
        (info.included_mb < 0 ? cJSON_AddNullToObject(o, "includedMb")
                              : cJSON_AddNumberToObject(o, "includedMb",
                                                        (double)info.included_mb)) == NULL ||
        cJSON_AddNumberToObject(o, "perMbRate", (double)info.per_mb_rate) == NULL ||
        cJSON_AddStringToObject(o, "email", info.email) == NULL) {
        cJSON_Delete(o);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    rc = bss_statushistory_add_view(db, svc_cont_no, info.created_ms, o, err);
    if (rc != BSS_OK) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return BSS_OK;
}

static int get_billing(bss_request *req, void *ctx)
{
    billing_routes *r = ctx;
    const char *no = bss_req_param(req, "svcContNo");
    char what[512], detail[1024];
    snprintf(what, sizeof what, "GET billing %s", no);
    snprintf(detail, sizeof detail, "no charge info for line %s", no);
    const bss_view_notfound not_found = {"LINE_NOT_FOUND", "Line not found", detail};
    return bss_view_reply(req, r->store, billing_view, no, what, &not_found);
}

/* ---- month end: charges and invoices --------------------------------- */

static int invalid(bss_request *req, const char *detail)
{
    return bss_reply_problem(req, 422, "VALIDATION_FAILED", "The request is not valid", detail);
}

/* Reads query parameter `name` into out: 1 when present and valid
 * (1..outlen-1 bytes), 0 when absent, -1 when present but empty or too long. */
static int query_text(bss_request *req, const char *name, char *out, size_t outlen)
{
    int rc = bss_req_query_param(req, name, out, outlen);
    if (rc == BSS_ERR_NOTFOUND) {
        out[0] = '\0';
        return 0;
    }
    return rc == BSS_OK && out[0] != '\0' ? 1 : -1;
}

/* What GET /billings/charges or /billings/invoices asks for (NULL: a
 * filter not given). */
typedef struct list_query {
    int invoices; /* 0: charges */
    const char *period, *svc_cont_no, *customer_id;
} list_query;

/* A bss_view_fn: for the list_query arg, {"period", "items": charges} or
 * {"items": invoices}. */
static int list_view(sqlite3 *db, const void *arg, cJSON **out, char *err)
{
    const list_query *q = arg;
    cJSON *body = cJSON_CreateObject();
    cJSON *items = cJSON_CreateArray();
    if (body == NULL || items == NULL ||
        (!q->invoices && cJSON_AddStringToObject(body, "period", q->period) == NULL) ||
        !cJSON_AddItemToObject(body, "items", items)) {
        cJSON_Delete(items);
        cJSON_Delete(body);
        return BSS_ERR_NOMEM;
    }
    int rc = q->invoices ? billing_invoices_json(db, q->customer_id, q->period, items, err)
                         : billing_charges_json(db, q->period, q->svc_cont_no, items, err);
    if (rc != BSS_OK) {
        cJSON_Delete(body);
        return rc;
    }
    *out = body;
    return BSS_OK;
}

static int list_charges(bss_request *req, void *ctx)
{
    billing_routes *r = ctx;
    char period[BSS_PERIOD_LEN + 2];
    char no[BSS_CEV_SVC_CONT_NO_MAX + 1];
    bss_period p;
    if (query_text(req, "period", period, sizeof period) != 1 ||
        bss_period_parse(period, &p) != BSS_OK)
        return invalid(req, "query parameter 'period' is required, as YYYY-MM");
    int has_no = query_text(req, "svcContNo", no, sizeof no);
    if (has_no < 0)
        return invalid(req, "query parameter 'svcContNo' must be 1-128 characters");
    const list_query q = {0, period, has_no ? no : NULL, NULL};
    return bss_view_reply(req, r->store, list_view, &q, "GET charges", NULL);
}

static int list_invoices(bss_request *req, void *ctx)
{
    billing_routes *r = ctx;
    char period[BSS_PERIOD_LEN + 2];
    char customer[BSS_CEV_ID_MAX + 1];
    bss_period p;
    int has_period = query_text(req, "period", period, sizeof period);
    int has_customer = query_text(req, "customerId", customer, sizeof customer);
    if (has_period < 0 || (has_period && bss_period_parse(period, &p) != BSS_OK))
        return invalid(req, "query parameter 'period' must be YYYY-MM");
    if (has_customer < 0)
        return invalid(req, "query parameter 'customerId' must be 1-64 characters");
    if (!has_period && !has_customer)
        return invalid(req, "give customerId, period or both");
    const list_query q = {1, has_period ? period : NULL, NULL, has_customer ? customer : NULL};
    return bss_view_reply(req, r->store, list_view, &q, "GET invoices", NULL);
}

/* The qvalue at v (RFC 9110: "0" ["." 0*3DIGIT] / "1" ["." 0*3"0"]) in
 * thousandths, reading no further than e. */
static int parse_q(const char *v, const char *e)
{
    if (v >= e || (*v != '0' && *v != '1'))
        return 0;
    if (*v == '1')
        return 1000;
    int q = 0, scale = 100;
    if (++v < e && *v == '.') {
        for (v++; v < e && *v >= '0' && *v <= '9' && scale > 0; v++, scale /= 10)
            q += (*v - '0') * scale;
    }
    return q;
}

/* The first character in [s, e) that is not a space or tab (or e). */
static const char *skip_ws(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

/* Media range element [s, e) of an Accept header: its q (0..1000) when
 * its type is `type`, else -1. */
static int accept_q(const char *s, const char *e, const char *type)
{
    s = skip_ws(s, e);
    const char *end = s;
    while (end < e && *end != ';')
        end++;
    const char *params = end;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = strlen(type);
    if ((size_t)(end - s) != n || strncasecmp(s, type, n) != 0)
        return -1;
    int q = 1000;
    for (const char *p = params; p < e; p++) {
        if (*p != ';')
            continue;
        const char *v = skip_ws(p + 1, e);
        if (e - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=')
            q = parse_q(v + 2, e);
    }
    return q;
}

int billing_wants_html(const char *accept)
{
    if (accept == NULL)
        return 0;
    int q_html = -1, q_json = -1, pos_html = -1, pos_json = -1, pos = 0;
    for (const char *s = accept; *s != '\0'; pos++) {
        const char *e = strchr(s, ',');
        if (e == NULL)
            e = s + strlen(s);
        int q = accept_q(s, e, "text/html");
        if (q >= 0 && pos_html < 0) {
            q_html = q;
            pos_html = pos;
        }
        q = accept_q(s, e, "application/json");
        if (q >= 0 && pos_json < 0) {
            q_json = q;
            pos_json = pos;
        }
        s = *e == ',' ? e + 1 : e;
    }
    if (q_html <= 0)
        return 0;
    return q_json < 0 || q_html > q_json || (q_html == q_json && pos_html < pos_json);
}

static int get_invoice(bss_request *req, void *ctx)
{
    billing_routes *r = ctx;
    const char *id = bss_req_param(req, "invoiceId");
    char format[8];
    int has_format = query_text(req, "format", format, sizeof format);
    int html = 0;
    if (has_format != 0) {
        if (has_format < 0 || (strcmp(format, "html") != 0 && strcmp(format, "json") != 0))
            return invalid(req, "query parameter 'format' must be json or html");
        html = strcmp(format, "html") == 0;
    } else {
        html = billing_wants_html(bss_req_header(req, "Accept"));
    }
    char err[BSS_ERRLEN] = "";
    billing_invoice inv;
    memset(&inv, 0, sizeof inv);
    sqlite3 *db = NULL;
    int rc = bss_store_snapshot_begin(r->store, &db, err);
    if (rc == BSS_OK) {
        rc = billing_invoice_get(db, id, &inv, err);
        bss_store_snapshot_end(r->store, db);
    }
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problemf(req, 404, "INVOICE_NOT_FOUND", "Invoice not found",
                                  "no invoice %s", id);
    if (rc != BSS_OK)
        return bss_view_read_failed(req, rc, "GET invoice", err);
    int status;
    if (html) {
        char *page = NULL;
        size_t len = 0;
        rc = billing_invoice_html(&inv, &page, &len);
        status = rc == BSS_OK ? bss_reply_raw(req, 200, "text/html; charset=utf-8", page, len,
                                              "Vary: Accept\r\n")
                              : rc;
        free(page);
    } else {
        status = bss_reply_json_owned(req, 200, billing_invoice_to_json(&inv));
    }
    billing_invoice_clear(&inv);
    return status;
}

int billing_routes_register(bss_http *h, billing_routes *ctx, char *err)
{
    static const struct {
        const char *pattern;
        bss_http_handler fn;
    } routes[] = {
        {"/billings/{svcContNo}", get_billing},
        {"/billings/charges", list_charges},
        {"/billings/invoices", list_invoices},
        {"/billings/invoices/{invoiceId}", get_invoice},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = bss_http_route(h, "GET", routes[i].pattern, routes[i].fn, ctx);
        if (rc != BSS_OK) {
            bss_seterr(err, "route GET %s: %s", routes[i].pattern, bss_strerror(rc));
            return rc;
        }
    }
    return BSS_OK;
}
