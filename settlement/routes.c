/* routes.c - see routes.h. */
#include "routes.h"

#include "bss_error.h"
#include "readview.h"
#include "settlement.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* A bss_view_fn: the document of period arg (YYYY-MM). */
static int settlement_view(sqlite3 *db, const void *arg, cJSON **out, char *err)
{
    settlement_summary s;
    int rc = settlement_load(db, arg, &s, err);
    if (rc != BSS_OK)
        return rc;
    *out = settlement_summary_json(&s);
    settlement_summary_free(&s);
    return *out != NULL ? BSS_OK : BSS_ERR_NOMEM;
}

static int get_settlement(bss_request *req, void *ctx)
{
    settlement_routes *r = ctx;
    const char *period = bss_req_param(req, "period");
    if (!settlement_period_ok(period))
        return bss_reply_problem(req, 422, "VALIDATION_FAILED", "Validation failed",
                                 "period must be YYYY-MM");
    char detail[1024];
    snprintf(detail, sizeof detail, "nothing settled for period %s yet", period);
    const bss_view_notfound not_found = {"SETTLEMENT_NOT_FOUND", "Settlement not found", detail};
    return bss_view_reply(req, r->store, settlement_view, period, "GET settlement", &not_found);
}

/* A bss_view_fn: the list of periods (arg unused). */
static int list_view(sqlite3 *db, const void *arg, cJSON **out, char *err)
{
    (void)arg;
    return settlement_list_json(db, out, err);
}

static int list_settlements(bss_request *req, void *ctx)
{
    settlement_routes *r = ctx;
    return bss_view_reply(req, r->store, list_view, NULL, "GET settlements", NULL);
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
