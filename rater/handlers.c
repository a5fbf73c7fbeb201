/* handlers.c - see handlers.h. */
#include "handlers.h"

#include "auclose.h"
#include "bss_error.h"
#include "customer_events.h"
#include "emit.h"
#include "rater.h"
#include "statushistory.h"

#include <cjson/cJSON.h>
#include <string.h>

/* Emits `type` with data {orderId[, effectiveAt]}. */
static int emit_order_answer(bss_store *store, const bss_event *cause, const char *type,
                             const char *order_id, const char *effective_at, char *err)
{
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || cJSON_AddStringToObject(d, "orderId", order_id) == NULL ||
        (effective_at != NULL && cJSON_AddStringToObject(d, "effectiveAt", effective_at) == NULL)) {
        cJSON_Delete(d);
        bss_seterr(err, "%s: out of memory", type);
        return BSS_ERR_NOMEM;
    }
    int rc = bss_emit(store, cause, type, cause->subject, d, err);
    cJSON_Delete(d);
    return rc;
}

static int on_order_created(rater_handler_ctx *c, bss_store *store, const bss_event *ev,
                            char *err)
{
    bss_cev_order_created oc;
    int rc = bss_cev_parse_order_created(ev, &oc, err);
    if (rc != BSS_OK || strcmp(oc.type, "OPEN") != 0)
        return rc;
    rater_info info;
    memset(&info, 0, sizeof info);
    memcpy(info.svc_cont_no, oc.line.svc_cont_no, sizeof info.svc_cont_no);
    memcpy(info.customer_id, oc.line.customer_id, sizeof info.customer_id);
    memcpy(info.apn_cd, oc.line.apn_cd, sizeof info.apn_cd);
    memcpy(info.product_cd, oc.line.product_cd, sizeof info.product_cd);
    memcpy(info.open_order_id, oc.order_id, sizeof info.open_order_id);
    strcpy(info.use_yn, "Y");
    info.created_ms = info.updated_ms = ev->time_ms;
    int inserted = 0;
    rc = rater_info_insert(bss_store_db(store), &info, &inserted, err);
    if (rc != BSS_OK)
        return rc;
    if (!inserted) {
        bss_log_warn(c != NULL ? c->log : NULL,
                     "OrderCreated(OPEN) %s for line %s: rater info exists, left unchanged",
                     oc.order_id, info.svc_cont_no);
        return BSS_OK;
    }
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || cJSON_AddStringToObject(d, "customerId", info.customer_id) == NULL ||
        cJSON_AddStringToObject(d, "apnCd", info.apn_cd) == NULL ||
        cJSON_AddStringToObject(d, "useYn", "Y") == NULL ||
        cJSON_AddStringToObject(d, "productCd", info.product_cd) == NULL) {
        cJSON_Delete(d);
        bss_seterr(err, "RaterCreated: out of memory");
        return BSS_ERR_NOMEM;
    }
    rc = bss_emit(store, ev, "RaterCreated", ev->subject, d, err);
    cJSON_Delete(d);
    return rc;
}

/* TerminationRequested (to_use "N") and RestoreRequested (to_use "Y"): flip
 * useYn when it holds the opposite value, else answer that it already holds
 * the requested one. A line without rater info is treated as already being
 * in the requested state, so the saga always gets an answer. */
static int on_use_request(bss_store *store, const bss_event *ev, const char *to_use,
                          const char *done_type, const char *already_type, char *err)
{
    bss_cev_order_request rq;
    int rc = bss_cev_parse_order_request(ev, &rq, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(store);
    rater_info info;
    rc = rater_info_get(db, ev->subject, &info, err);
    if (rc != BSS_OK && rc != BSS_ERR_NOTFOUND)
        return rc;
    if (rc == BSS_OK && strcmp(info.use_yn, to_use) != 0) {
        rc = rater_info_set_use(db, ev->subject, to_use, ev->time_ms, err);
        if (rc != BSS_OK)
            return rc;
        return emit_order_answer(store, ev, done_type, rq.order_id, rq.effective_at, err);
    }
    return emit_order_answer(store, ev, already_type, rq.order_id, NULL, err);
}

int rater_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    rater_handler_ctx *c = ctx;
    if (strcmp(ev->type, "OrderCreated") == 0)
        return on_order_created(c, store, ev, err);
    if (strcmp(ev->type, "LineStatusChanged") == 0)
        return bss_statushistory_apply(store, ev, "RaterStatusRecorded", err);
    if (strcmp(ev->type, "TerminationRequested") == 0)
        return on_use_request(store, ev, "N", "RaterTerminated", "RaterUnused", err);
    if (strcmp(ev->type, "RestoreRequested") == 0)
        return on_use_request(store, ev, "Y", "RaterRestored", "RaterInUse", err);
    if (strcmp(ev->type, "OrdersClosed") == 0)
        return au_close_orders_closed(bss_store_db(store), ev->subject, err);
    return BSS_OK;
}
