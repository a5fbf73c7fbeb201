/* routes.c - see routes.h. */
#include "routes.h"

#include "bss_error.h"
#include "settlement.h"

#include <cjson/cJSON.h>

/* Logs a read failure and answers it: 503, or 500 (by returning the error)
 * when memory ran out. */
static int read_failed(bss_request *req, int rc, const char *what, const char *err)
{
    bss_log_write(bss_req_log(req), BSS_LOG_ERROR, bss_req_id(req), bss_req_correlation_id(req),
                  "%s: %s", what, err);
    return rc == BSS_ERR_NOMEM
               ? rc
               : bss_reply_problem(req, 503, "STORE_UNAVAILABLE", "Store unavailable", err);
}

static int get_settlement(bss_request *req, void *ctx)
{
    settlement_routes *r = ctx;
    const char *period = bss_req_param(req, "period");
    if (!settlement_period_ok(period))
        return bss_reply_problem(req, 422, "VALIDATION_FAILED", "Validation failed",
                                 "period must be YYYY-MM");
    char err[BSS_ERRLEN] = "";
    sqlite3 *db = NULL;
    settlement_summary s;
    int rc = bss_store_snapshot_begin(r->store, &db, err);
    if (rc == BSS_OK) {
        rc = settlement_load(db, period, &s, err);
        bss_store_snapshot_end(r->store, db);
    }
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problemf(req, 404, "SETTLEMENT_NOT_FOUND", "Settlement not found",
                                  "nothing settled for period %s yet", period);
    if (rc != BSS_OK)
        return read_failed(req, rc, "GET settlement", err);
    cJSON *doc = settlement_summary_json(&s);
    settlement_summary_free(&s);
    if (doc == NULL)
        return BSS_ERR_NOMEM;
    int status = bss_reply_json(req, 200, doc);
    cJSON_Delete(doc);
    return status;
}

static int list_settlements(bss_request *req, void *ctx)
{
    settlement_routes *r = ctx;
    char err[BSS_ERRLEN] = "";
    sqlite3 *db = NULL;
    cJSON *list = NULL;
    int rc = bss_store_snapshot_begin(r->store, &db, err);
    if (rc == BSS_OK) {
        rc = settlement_list_json(db, &list, err);
        bss_store_snapshot_end(r->store, db);
    }
    if (rc != BSS_OK)
        return read_failed(req, rc, "GET settlements", err);
    int status = bss_reply_json(req, 200, list);
    cJSON_Delete(list);
    return status;
}

int settlement_routes_register(bss_http *h, settlement_routes *ctx, char *err)
{
    int rc = bss_http_route(h, "GET", "/settlements", list_settlements, ctx);
    if (rc != BSS_OK) {
        bss_seterr(err, "route GET /settlements: %s", bss_strerror(rc));
        return rc;
    }
    rc = bss_http_route(h, "GET", "/settlements/{period}", get_settlement, ctx);
    if (rc != BSS_OK)
        bss_seterr(err, "route GET /settlements/{period}: %s", bss_strerror(rc));
    return rc;
}
