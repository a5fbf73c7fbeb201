/* handlers.c - see handlers.h. */
#include "handlers.h"

#include "billing.h"
#include "bss_error.h"
#include "customer_events.h"
#include "emit.h"
#include "monthend.h"
#include "statushistory.h"

#include <cjson/cJSON.h>
#include <string.h>

static int on_order_created(billing_handler_ctx *c, bss_store *store, const bss_event *ev,
                            char *err)
{
    bss_cev_order_created oc;
    int rc = bss_cev_parse_order_created(ev, &oc, err);
    if (rc != BSS_OK || strcmp(oc.type, "OPEN") != 0)
        return rc;
    const bss_product *p = bss_catalog_find(c->catalog, oc.line.product_cd);
    if (p == NULL) {
        bss_seterr(err, "OrderCreated(OPEN) %s: product '%s' is not in billing's catalog",
                   oc.order_id, oc.line.product_cd);
        return BSS_ERR_INVALID;
    }
    billing_charge_info info;
    memset(&info, 0, sizeof info);
    memcpy(info.svc_cont_no, oc.line.svc_cont_no, sizeof info.svc_cont_no);
    memcpy(info.customer_id, oc.line.customer_id, sizeof info.customer_id);
    memcpy(info.product_cd, oc.line.product_cd, sizeof info.product_cd);
    memcpy(info.product_nm, oc.line.product_nm, sizeof info.product_nm);
    memcpy(info.email, oc.line.email, sizeof info.email);
    memcpy(info.open_order_id, oc.order_id, sizeof info.open_order_id);
    info.product_tarif = oc.line.product_tarif;
    info.included_mb = p->included_mb;
    info.per_mb_rate = p->per_mb_rate;
    info.created_ms = ev->time_ms;
    int inserted = 0;
    rc = billing_charge_info_insert(bss_store_db(store), &info, &inserted, err);
    if (rc != BSS_OK)
        return rc;
    if (!inserted) {
        bss_log_warn(c->log,
                     "OrderCreated(OPEN) %s for line %s: charge info exists, left unchanged",
                     oc.order_id, info.svc_cont_no);
        return BSS_OK;
    }
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || cJSON_AddStringToObject(d, "customerId", info.customer_id) == NULL ||
        cJSON_AddStringToObject(d, "productCd", info.product_cd) == NULL ||
        cJSON_AddStringToObject(d, "productNm", info.product_nm) == NULL ||
        cJSON_AddNumberToObject(d, "productTarif", (double)info.product_tarif) == NULL ||
        (info.included_mb < 0 ? cJSON_AddNullToObject(d, "includedMb")
                              : cJSON_AddNumberToObject(d, "includedMb",
                                                        (double)info.included_mb)) == NULL ||
        cJSON_AddNumberToObject(d, "perMbRate", (double)info.per_mb_rate) == NULL) {
        cJSON_Delete(d);
        bss_seterr(err, "ChargeInfoCreated: out of memory");
        return BSS_ERR_NOMEM;
    }
    rc = bss_emit(store, ev, "ChargeInfoCreated", ev->subject, d, err);
    cJSON_Delete(d);
    return rc;
}

const char *const BILLING_HANDLED_TYPES[] = {"OrderCreated",   "LineStatusChanged",
                                              "OrdersClosed",   "UsageMoved",
                                              "AuCloseStarted", "AuCloseCompleted"};
const size_t BILLING_HANDLED_TYPE_COUNT =
    sizeof BILLING_HANDLED_TYPES / sizeof BILLING_HANDLED_TYPES[0];

int billing_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    billing_handler_ctx *c = ctx;
    if (strcmp(ev->type, "OrderCreated") == 0)
        return on_order_created(c, store, ev, err);
    if (strcmp(ev->type, "LineStatusChanged") == 0)
        return bss_statushistory_apply(store, ev, "ChargeStatusRecorded", err);
    if (strcmp(ev->type, "OrdersClosed") == 0)
        return billing_on_orders_closed(ev, store, err);
    if (strcmp(ev->type, "UsageMoved") == 0)
        return billing_on_usage_moved(c->log, &c->calendar, store, ev, err);
    if (strcmp(ev->type, "AuCloseStarted") == 0)
        return billing_on_au_close_started(c->log, store, ev, err);
    if (strcmp(ev->type, "AuCloseCompleted") == 0)
        return billing_on_au_close_completed(c->log, store, ev, err);
    return BSS_OK;
}
