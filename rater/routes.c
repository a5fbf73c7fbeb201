/* routes.c - see routes.h. */
#include "routes.h"

#include "usage.h"

#include "bss_error.h"
#include "isotime.h"
#include "rater.h"
#include "statushistory.h"

#include <cjson/cJSON.h>

/* Builds the line's view into *out (caller frees). Returns BSS_OK,
 * BSS_ERR_NOTFOUND, or a read/memory error. */
static int rater_view(sqlite3 *db, const char *svc_cont_no, cJSON **out, char *err)
{
    rater_info info;
    int rc = rater_info_get(db, svc_cont_no, &info, err);
    if (rc != BSS_OK)
        return rc;
    char created[BSS_TIME_LEN + 8] = "";
    bss_time_format(info.created_ms, created, sizeof created);
    cJSON *o = cJSON_CreateObject();
    cJSON *history = cJSON_CreateArray();
    if (o == NULL || history == NULL ||
        cJSON_AddStringToObject(o, "svcContNo", info.svc_cont_no) == NULL ||
        cJSON_AddStringToObject(o, "customerId", info.customer_id) == NULL ||
        cJSON_AddStringToObject(o, "apnCd", info.apn_cd) == NULL ||
        cJSON_AddStringToObject(o, "useYn", info.use_yn) == NULL ||
        cJSON_AddStringToObject(o, "productCd", info.product_cd) == NULL ||
        cJSON_AddStringToObject(o, "createdAt", created) == NULL ||
        !cJSON_AddItemToObject(o, "statusHistory", history)) {
        cJSON_Delete(o);
        cJSON_Delete(history);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    rc = bss_statushistory_to_json(db, svc_cont_no, history, err);
    cJSON *usage = NULL;
    if (rc == BSS_OK)
        rc = usage_periods_json(db, svc_cont_no, &usage, err);
    if (rc == BSS_OK)
        cJSON_AddItemToObject(o, "usage", usage);
    if (rc != BSS_OK) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return BSS_OK;
}

static int get_rater(bss_request *req, void *ctx)
{
    rater_routes *r = ctx;
    const char *no = bss_req_param(req, "svcContNo");
    char err[BSS_ERRLEN] = "";
    sqlite3 *db = NULL;
    cJSON *view = NULL;
    int rc = bss_store_snapshot_begin(r->store, &db, err);
    if (rc == BSS_OK) {
        rc = rater_view(db, no, &view, err);
        bss_store_snapshot_end(r->store, db);
    }
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problemf(req, 404, "LINE_NOT_FOUND", "Line not found",
                                  "no rater info for line %s", no);
    if (rc != BSS_OK) {
        bss_log_write(bss_req_log(req), BSS_LOG_ERROR, bss_req_id(req),
                      bss_req_correlation_id(req), "GET rater %s: %s", no, err);
        return rc == BSS_ERR_NOMEM ? rc
                                   : bss_reply_problem(req, 503, "STORE_UNAVAILABLE",
                                                       "Store unavailable", err);
    }
    int status = bss_reply_json(req, 200, view);
    cJSON_Delete(view);
    return status;
}

int rater_routes_register(bss_http *h, rater_routes *ctx, char *err)
{
    int rc = bss_http_route(h, "GET", "/raters/{svcContNo}", get_rater, ctx);
    if (rc != BSS_OK)
        bss_seterr(err, "route GET /raters/{svcContNo}: %s", bss_strerror(rc));
    return rc;
}
