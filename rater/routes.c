/* routes.c - see routes.h. */
#include "routes.h"

#include "usage.h"

#include "bss_error.h"
#include "rater.h"
#include "readview.h"
#include "statushistory.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* A bss_view_fn: the view of line arg (its svcContNo) into *out (caller
 * frees). Returns BSS_OK, BSS_ERR_NOTFOUND, or a read/memory error. */
static int rater_view(sqlite3 *db, const void *arg, cJSON **out, char *err)
{
    const char *svc_cont_no = arg;
    rater_info info;
    int rc = rater_info_get(db, svc_cont_no, &info, err);
    if (rc != BSS_OK)
        return rc;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "svcContNo", info.svc_cont_no) == NULL ||
        cJSON_AddStringToObject(o, "customerId", info.customer_id) == NULL ||
        cJSON_AddStringToObject(o, "apnCd", info.apn_cd) == NULL ||
        cJSON_AddStringToObject(o, "useYn", info.use_yn) == NULL ||
        cJSON_AddStringToObject(o, "productCd", info.product_cd) == NULL) {
        cJSON_Delete(o);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    rc = bss_statushistory_add_view(db, svc_cont_no, info.created_ms, o, err);
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
    char what[512], detail[1024];
    snprintf(what, sizeof what, "GET rater %s", no);
    snprintf(detail, sizeof detail, "no rater info for line %s", no);
    const bss_view_notfound not_found = {"LINE_NOT_FOUND", "Line not found", detail};
    return bss_view_reply(req, r->store, rater_view, no, what, &not_found);
}

int rater_routes_register(bss_http *h, rater_routes *ctx, char *err)
{
    int rc = bss_http_route(h, "GET", "/raters/{svcContNo}", get_rater, ctx);
    if (rc != BSS_OK)
        bss_seterr(err, "route GET /raters/{svcContNo}: %s", bss_strerror(rc));
    return rc;
}
