/* routes.c - see routes.h. Parses and validates requests; the order logic
 * lives in orders.c. */
#include "routes.h"

#include "bss_error.h"
#include "isotime.h"
#include "jsonfield.h"
#include "lines_db.h"
#include "orders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE_DEFAULT 20
#define PAGE_SIZE_MAX 100

static int invalid(bss_request *req, const char *detail)
{
    return bss_reply_problem(req, 422, "VALIDATION_FAILED", "The request is not valid", detail);
}

static int reply_problem(bss_request *req, const customer_problem *p)
{
    const char *title = p->status == 404   ? "Not found"
                        : p->status == 409 ? "Conflict with the line's state"
                        : p->status == 503 ? "Service unavailable"
                                           : "The request is not valid";
    if (p->status == 503)
        return bss_reply_problem_h(req, 503, p->code, title, p->detail, "Retry-After: 1\r\n");
    return bss_reply_problem(req, p->status, p->code, title, p->detail);
}

/* Reads an optional string field that must satisfy `valid` when present. */
static int optional_field(const cJSON *body, const char *name, char *out, size_t cap,
                          int (*valid)(const char *), char *detail)
{
    char err[BSS_ERRLEN];
    if (bss_jfield_string_opt(body, name, out, cap, err) != BSS_OK) {
        snprintf(detail, BSS_ERRLEN, "%s", err);
        return BSS_ERR_INVALID;
    }
    if (out[0] != '\0' && valid != NULL && !valid(out)) {
        snprintf(detail, BSS_ERRLEN, "field '%s' is not valid", name);
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

static int valid_customer_id(const char *s) { return line_valid_key(s, LINE_CUSTOMER_ID_MAX); }
static int valid_svc_cont_no(const char *s) { return line_valid_key(s, LINE_SVC_CONT_NO_MAX); }

static int printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* effectiveAt: optional, ISO-8601 with offset, not in the future. Replies
 * itself on error and returns the status; 0 when fine. */
static int read_effective_at(bss_request *req, const cJSON *body, int64_t *ms)
{
    char err[BSS_ERRLEN];
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(body, "effectiveAt");
    int64_t now = bss_now_ms();
    if (at == NULL || cJSON_IsNull(at)) {
        *ms = now;
        return 0;
    }
    if (bss_jfield_time(body, "effectiveAt", ms, NULL, 0, err) != BSS_OK)
        return invalid(req, "field 'effectiveAt' must be an ISO-8601 date-time with an offset");
    if (*ms > now)
        return bss_reply_problem(req, 422, "EFFECTIVE_AT_IN_FUTURE", "The request is not valid",
                                 "effectiveAt must not be in the future");
    return 0;
}

static int reply_line(bss_request *req, int status, const line *l)
{
    char text[2048]; /* a line's JSON is ~450 bytes; longer ones go through cJSON */
    size_t len = lines_db_line_render(l, text, sizeof text);
    if (len > 0)
        return bss_reply_raw(req, status, "application/json", text, len, NULL);
    return bss_reply_json_owned(req, status, lines_db_line_json(l));
}

static int open_line(bss_request *req, void *ctx)
{
    customer_ctx *c = ctx;
    int status = 0;
    cJSON *body = bss_req_json(req, &status);
    if (body == NULL)
        return status;
    line l;
    memset(&l, 0, sizeof l);
    char detail[BSS_ERRLEN] = "";
    int rc = BSS_OK;
    if (bss_jfield_string(body, "customerId", l.customer_id, sizeof l.customer_id, detail) !=
            BSS_OK ||
        !valid_customer_id(l.customer_id)) {
        if (detail[0] == '\0')
            snprintf(detail, sizeof detail, "field 'customerId' must be 1-64 of [A-Za-z0-9._-]");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK &&
        bss_jfield_string(body, "productCd", l.product_cd, sizeof l.product_cd, detail) != BSS_OK)
        rc = BSS_ERR_INVALID;
    if (rc == BSS_OK &&
        (bss_jfield_string(body, "apnCd", l.apn_cd, sizeof l.apn_cd, detail) != BSS_OK ||
         !line_valid_apn(l.apn_cd))) {
        snprintf(detail, sizeof detail, "field 'apnCd' must be 1-63 of [A-Za-z0-9.-]");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = optional_field(body, "svcContNo", l.svc_cont_no, sizeof l.svc_cont_no,
                            valid_svc_cont_no, detail);
    if (rc == BSS_OK)
        rc = optional_field(body, "email", l.email, sizeof l.email, line_valid_email, detail);
    if (rc == BSS_OK)
        rc = optional_field(body, "phone", l.phone, sizeof l.phone, line_valid_phone, detail);
    if (rc == BSS_OK)
        rc = optional_field(body, "address", l.address, sizeof l.address, printable, detail);
    if (rc == BSS_OK)
        rc = optional_field(body, "chargeAccount", l.charge_account, sizeof l.charge_account,
                            printable, detail);
    if (rc != BSS_OK) {
        cJSON_Delete(body);
        return invalid(req, detail);
    }
    const bss_product *product = bss_catalog_find(c->catalog, l.product_cd);
    if (product == NULL) {
        cJSON_Delete(body);
        return bss_reply_problemf(req, 422, "UNKNOWN_PRODUCT", "The request is not valid",
                                  "productCd '%s' is not in the product catalog", l.product_cd);
    }
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(body, "productNm");
    const cJSON *tarif = cJSON_GetObjectItemCaseSensitive(body, "productTarif");
    if ((nm != NULL && !cJSON_IsNull(nm) &&
         (!cJSON_IsString(nm) || strcmp(nm->valuestring, product->product_nm) != 0)) ||
        (tarif != NULL && !cJSON_IsNull(tarif) &&
         (!cJSON_IsNumber(tarif) || tarif->valuedouble != (double)product->tarif_krw))) {
        cJSON_Delete(body);
        return bss_reply_problemf(req, 422, "PRODUCT_MISMATCH", "The request is not valid",
                                  "productNm and productTarif, when given, must be the catalog's"
                                  " (%s, %lld KRW)",
                                  product->product_nm, (long long)product->tarif_krw);
    }
    snprintf(l.product_nm, sizeof l.product_nm, "%s", product->product_nm);
    l.product_tarif = product->tarif_krw;
    int64_t effective_ms = 0;
    int replied = read_effective_at(req, body, &effective_ms);
    cJSON_Delete(body);
    if (replied)
        return replied;

    line stored;
    order o;
    customer_problem p;
    if (orders_open_line(c, &l, effective_ms, bss_req_correlation_id(req), &stored, &o, &p) !=
        BSS_OK)
        return reply_problem(req, &p);
    bss_log_write(bss_req_log(req), BSS_LOG_INFO, bss_req_id(req), bss_req_correlation_id(req),
                  "opened line %s for customer %s", stored.svc_cont_no, stored.customer_id);
    return reply_line(req, 201, &stored);
}

static int with_reader(bss_request *req, customer_ctx *c, sqlite3 **db)
{
    char err[BSS_ERRLEN];
    if (bss_store_reader_acquire(c->store, db, err) != BSS_OK) {
        bss_log_error(c->log, "customer store: %s", err);
        return bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable",
                                   "the customer store cannot be read", "Retry-After: 1\r\n");
    }
    return 0;
}

static int get_line(bss_request *req, void *ctx)
{
    customer_ctx *c = ctx;
    sqlite3 *db = NULL;
    int replied = with_reader(req, c, &db);
    if (replied)
        return replied;
    line l;
    char err[BSS_ERRLEN];
    int rc = lines_db_load(db, bss_req_param(req, "svcContNo"), &l, err);
    bss_store_reader_release(c->store, db);
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problem(req, 404, "LINE_NOT_FOUND", "Not found",
                                 "no line with this svcContNo");
    if (rc != BSS_OK)
        return rc;
    return reply_line(req, 200, &l);
}

/* Reads a positive integer query parameter (default when absent). */
static int query_int(bss_request *req, const char *name, int64_t fallback, int64_t max,
                     int64_t *out)
{
    char text[24];
    int rc = bss_req_query_param(req, name, text, sizeof text);
    if (rc == BSS_ERR_NOTFOUND) {
        *out = fallback;
        return BSS_OK;
    }
    char *end = NULL;
    long long v = rc == BSS_OK ? strtoll(text, &end, 10) : 0;
    if (rc != BSS_OK || end == text || *end != '\0' || v < 1 || v > max)
        return BSS_ERR_INVALID;
    *out = v;
    return BSS_OK;
}

static int list_lines(bss_request *req, void *ctx)
{
    customer_ctx *c = ctx;
    char customer_id[LINE_CUSTOMER_ID_MAX + 1];
    if (bss_req_query_param(req, "customerId", customer_id, sizeof customer_id) != BSS_OK ||
        !valid_customer_id(customer_id))
        return invalid(req, "query parameter 'customerId' is required (1-64 of [A-Za-z0-9._-])");
    int64_t page = 1, size = PAGE_SIZE_DEFAULT;
    if (query_int(req, "page", 1, 1000000, &page) != BSS_OK ||
        query_int(req, "size", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, &size) != BSS_OK)
        return invalid(req, "page must be >= 1 and size 1-100");
    sqlite3 *db = NULL;
    int replied = with_reader(req, c, &db);
    if (replied)
        return replied;
    cJSON *items = NULL;
    int64_t total = 0;
    char err[BSS_ERRLEN];
    int rc = lines_db_list_by_customer(db, customer_id, (page - 1) * size, size, &items, &total,
                                       err);
    bss_store_reader_release(c->store, db);
    if (rc != BSS_OK)
        return rc;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "customerId", customer_id);
    cJSON_AddNumberToObject(out, "page", (double)page);
    cJSON_AddNumberToObject(out, "size", (double)size);
    cJSON_AddNumberToObject(out, "total", (double)total);
    cJSON_AddItemToObject(out, "items", items);
    return bss_reply_json_owned(req, 200, out);
}

static int place_order(bss_request *req, void *ctx)
{
    customer_ctx *c = ctx;
    int status = 0;
    cJSON *body = bss_req_json(req, &status);
    if (body == NULL)
        return status;
    char type_name[16], detail[BSS_ERRLEN];
    order_type type;
    if (bss_jfield_string(body, "type", type_name, sizeof type_name, detail) != BSS_OK ||
        order_type_parse(type_name, &type) != 0 || type == ORDER_OPEN) {
        cJSON_Delete(body);
        return invalid(req, "field 'type' must be SUSPEND, RESUME, TERMINATE or RESTORE");
    }
    int64_t effective_ms = 0;
    int replied = read_effective_at(req, body, &effective_ms);
    cJSON_Delete(body);
    if (replied)
        return replied;
    order o;
    customer_problem p;
    const char *svc_cont_no = bss_req_param(req, "svcContNo");
    if (orders_place(c, svc_cont_no, type, effective_ms, bss_req_correlation_id(req), &o, &p) !=
        BSS_OK)
        return reply_problem(req, &p);
    bss_log_write(bss_req_log(req), BSS_LOG_INFO, bss_req_id(req), bss_req_correlation_id(req),
                  "order %s %s on line %s: %s", o.order_id, order_type_name(o.type), svc_cont_no,
                  order_status_name(o.status));
    cJSON *json = lines_db_order_json(&o);
    char location[160];
    snprintf(location, sizeof location, "Location: /customers/%s/orders/%s\r\n", svc_cont_no,
             o.order_id);
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (text == NULL)
        return BSS_ERR_NOMEM;
    int rc = bss_reply_raw(req, 202, "application/json", text, strlen(text), location);
    free(text);
    return rc;
}

static int list_orders(bss_request *req, void *ctx)
{
    customer_ctx *c = ctx;
    sqlite3 *db = NULL;
    int replied = with_reader(req, c, &db);
    if (replied)
        return replied;
    const char *svc_cont_no = bss_req_param(req, "svcContNo");
    line l;
    char err[BSS_ERRLEN];
    cJSON *items = NULL;
    int rc = lines_db_load(db, svc_cont_no, &l, err);
    if (rc == BSS_OK)
        rc = lines_db_list_orders(db, svc_cont_no, &items, err);
    bss_store_reader_release(c->store, db);
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problem(req, 404, "LINE_NOT_FOUND", "Not found",
                                 "no line with this svcContNo");
    if (rc != BSS_OK)
        return rc;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "svcContNo", svc_cont_no);
    cJSON_AddItemToObject(out, "items", items);
    return bss_reply_json_owned(req, 200, out);
}

static int get_order(bss_request *req, void *ctx)
{
    customer_ctx *c = ctx;
    sqlite3 *db = NULL;
    int replied = with_reader(req, c, &db);
    if (replied)
        return replied;
    order o;
    char err[BSS_ERRLEN];
    int rc = lines_db_load_order(db, bss_req_param(req, "svcContNo"),
                                 bss_req_param(req, "orderId"), &o, err);
    bss_store_reader_release(c->store, db);
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problem(req, 404, "ORDER_NOT_FOUND", "Not found",
                                 "no such order on this line");
    if (rc != BSS_OK)
        return rc;
    return bss_reply_json_owned(req, 200, lines_db_order_json(&o));
}

int customer_routes_register(bss_http *http, customer_ctx *c, char *err)
{
    struct {
        const char *method, *pattern;
        bss_http_handler fn;
    } routes[] = {
        {"POST", "/customers", open_line},
        {"GET", "/customers", list_lines},
        {"GET", "/customers/{svcContNo}", get_line},
        {"POST", "/customers/{svcContNo}/orders", place_order},
        {"GET", "/customers/{svcContNo}/orders", list_orders},
        {"GET", "/customers/{svcContNo}/orders/{orderId}", get_order},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = bss_http_route(http, routes[i].method, routes[i].pattern, routes[i].fn, c);
        if (rc != BSS_OK) {
            bss_seterr(err, "cannot route %s %s", routes[i].method, routes[i].pattern);
            return rc;
        }
    }
    return BSS_OK;
}
