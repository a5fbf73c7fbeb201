/* orders.c - see orders.h. */
#include "orders.h"

#include "bss_error.h"
#include "emit.h"
#include "isotime.h"
#include "notify.h"
#include "uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_problem(customer_problem *p, int status, const char *code, const char *detail)
{
    p->status = status;
    p->code = code;
    snprintf(p->detail, sizeof p->detail, "%s", detail ? detail : "");
}

static void add_time(cJSON *obj, const char *name, int64_t ms)
{
    char text[BSS_TIME_LEN + 8];
    if (bss_time_format(ms, text, sizeof text) == BSS_OK)
        cJSON_AddStringToObject(obj, name, text);
}

/* Appends one event about line l (consuming data) at the line's version. */
static int emit(bss_store *store, line *l, const char *type, cJSON *data,
                const bss_emit_origin *why, char *err)
{
    if (data == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int rc = bss_emit_versioned(store, why, type, l->svc_cont_no, &l->version, data, err);
    cJSON_Delete(data);
    return rc;
}

static int emit_order_created(bss_store *store, line *l, const order *o, const bss_emit_origin *why,
                              char *err)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "orderId", o->order_id);
    cJSON_AddStringToObject(data, "type", order_type_name(o->type));
    cJSON_AddStringToObject(data, "status", order_status_name(o->status));
    add_time(data, "effectiveAt", o->effective_ms);
    cJSON *snapshot = cJSON_CreateObject();
    cJSON_AddStringToObject(snapshot, "customerId", l->customer_id);
    cJSON_AddStringToObject(snapshot, "svcContNo", l->svc_cont_no);
    cJSON_AddStringToObject(snapshot, "svcContStatus", line_status_name(l->status));
    cJSON_AddStringToObject(snapshot, "productCd", l->product_cd);
    cJSON_AddStringToObject(snapshot, "productNm", l->product_nm);
    cJSON_AddNumberToObject(snapshot, "productTarif", (double)l->product_tarif);
    cJSON_AddStringToObject(snapshot, "apnCd", l->apn_cd);
    cJSON_AddStringToObject(snapshot, "email", l->email);
    cJSON_AddStringToObject(snapshot, "phone", l->phone);
    cJSON_AddStringToObject(snapshot, "address", l->address);
    cJSON_AddStringToObject(snapshot, "chargeAccount", l->charge_account);
    cJSON_AddItemToObject(data, "line", snapshot);
    return emit(store, l, "OrderCreated", data, why, err);
}

static int emit_status_changed(bss_store *store, line *l, const order *o, const char *from,
                               const bss_emit_origin *why, char *err)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "orderId", o->order_id);
    if (from != NULL)
        cJSON_AddStringToObject(data, "from", from);
    else
        cJSON_AddNullToObject(data, "from");
    cJSON_AddStringToObject(data, "to", line_status_name(l->status));
    add_time(data, "effectiveAt", o->effective_ms);
    cJSON_AddStringToObject(data, "customerId", l->customer_id);
    return emit(store, l, "LineStatusChanged", data, why, err);
}

static int emit_order_outcome(bss_store *store, line *l, const order *o, const bss_emit_origin *why,
                              char *err)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "orderId", o->order_id);
    cJSON_AddStringToObject(data, "type", order_type_name(o->type));
    if (o->status == ORDER_REJECTED) {
        cJSON_AddStringToObject(data, "reason", o->reason);
        return emit(store, l, "OrderRejected", data, why, err);
    }
    add_time(data, "effectiveAt", o->effective_ms);
    return emit(store, l, "OrderCompleted", data, why, err);
}

static int emit_saga_request(bss_store *store, line *l, const order *o, const bss_emit_origin *why,
                             char *err)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "orderId", o->order_id);
    add_time(data, "effectiveAt", o->effective_ms);
    const char *type = o->type == ORDER_TERMINATE ? "TerminationRequested" : "RestoreRequested";
    return emit(store, l, type, data, why, err);
}

/* Queues the SMS announcing that order o entered its current status. */
static int queue_sms(bss_store *store, const line *l, const order *o, char *err)
{
    if (l->phone[0] == '\0')
        return BSS_OK;
    char key[64], text[256];
    snprintf(key, sizeof key, "%s:%s", o->order_id, order_status_name(o->status));
    snprintf(text, sizeof text, "[bssiot] %s order %.8s for line %s: %s%s%s",
             order_type_name(o->type), o->order_id, l->svc_cont_no, order_status_name(o->status),
             o->reason[0] ? " - " : "", o->reason);
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "to", l->phone);
    cJSON_AddStringToObject(payload, "text", text);
    cJSON_AddStringToObject(payload, "orderId", o->order_id);
    cJSON_AddStringToObject(payload, "status", order_status_name(o->status));
    char *json = cJSON_PrintUnformatted(payload);
    cJSON_Delete(payload);
    if (json == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int rc = bss_notify_enqueue(store, "sms", key, l->phone, json, err);
    free(json);
    return rc;
}

static int new_order(order *o, const char *svc_cont_no, order_type type, order_status status,
                     int64_t effective_ms)
{
    memset(o, 0, sizeof *o);
    if (bss_uuid_v4(o->order_id) != BSS_OK)
        return BSS_ERR_IO;
    snprintf(o->svc_cont_no, sizeof o->svc_cont_no, "%s", svc_cont_no);
    o->type = type;
    o->status = status;
    o->effective_ms = effective_ms;
    o->created_ms = o->updated_ms = bss_now_ms();
    return BSS_OK;
}

static int store_failure(customer_ctx *c, customer_problem *p, const char *err, int rc)
{
    bss_log_error(c->log, "customer store: %s", err);
    set_problem(p, 503, "STORE_UNAVAILABLE", "the customer store cannot take writes right now");
    return rc;
}

/* Inside the open transaction: rolls back and fills *p when effective_ms
 * falls in a period AU close has closed (409 PERIOD_CLOSED). */
static int refuse_closed_period(customer_ctx *c, sqlite3 *db, int64_t effective_ms,
                                customer_problem *p, char *err)
{
    int closed = lines_db_period_closed(db, effective_ms, err);
    if (closed == 0)
        return BSS_OK;
    bss_store_rollback(c->store);
    if (closed < 0)
        return store_failure(c, p, err, closed);
    set_problem(p, 409, "PERIOD_CLOSED", "effectiveAt falls in a period already closed");
    return BSS_ERR_CONFLICT;
}

int orders_open_line(customer_ctx *c, const line *requested, int64_t effective_ms,
                     const char *correlation_id, line *out, order *out_order,
                     customer_problem *p)
{
    char err[BSS_ERRLEN] = "";
    line l = *requested;
    l.status = LINE_ACTIVE;
    l.opened_ms = l.status_changed_ms = effective_ms;
    l.terminated_ms = 0;
    l.pending_order_id[0] = '\0';
    l.version = 0;
    /* Grouped: concurrent requests share one COMMIT (evstore.h); the
     * commit and rollbacks below act on this request's unit only, and the
     * answer goes out only after the COMMIT that holds it. */
    int rc = bss_store_group_begin(c->store, err);
    if (rc != BSS_OK)
        return store_failure(c, p, err, rc);
    sqlite3 *db = bss_store_db(c->store);
    line existing;
    int closed = refuse_closed_period(c, db, effective_ms, p, err);
    if (closed != BSS_OK)
        return closed;
    if (l.svc_cont_no[0] == '\0')
        rc = lines_db_next_number(db, l.svc_cont_no, sizeof l.svc_cont_no, err);
    else if ((rc = lines_db_load(db, l.svc_cont_no, &existing, err)) == BSS_OK) {
        bss_store_rollback(c->store);
        set_problem(p, 409, "LINE_EXISTS", "a line with this svcContNo exists already");
        return BSS_ERR_CONFLICT;
    } else if (rc == BSS_ERR_NOTFOUND)
        rc = BSS_OK;

    order o;
    bss_emit_origin why = {NULL, correlation_id};
    if (rc == BSS_OK)
        rc = new_order(&o, l.svc_cont_no, ORDER_OPEN, ORDER_COMPLETED, effective_ms);
    if (rc == BSS_OK)
        rc = lines_db_insert(db, &l, err);
    if (rc == BSS_OK)
        rc = lines_db_insert_order(db, &o, err);
    if (rc == BSS_OK)
        rc = emit_order_created(c->store, &l, &o, &why, err);
    if (rc == BSS_OK)
        rc = emit_status_changed(c->store, &l, &o, NULL, &why, err);
    if (rc == BSS_OK)
        rc = emit_order_outcome(c->store, &l, &o, &why, err);
    if (rc == BSS_OK)
        rc = lines_db_update(db, &l, err); /* the version after the events */
    if (rc == BSS_OK)
        rc = queue_sms(c->store, &l, &o, err);
    if (rc != BSS_OK) {
        bss_store_rollback(c->store);
        return store_failure(c, p, err, rc);
    }
    rc = bss_store_commit(c->store, err);
    if (rc != BSS_OK)
        return store_failure(c, p, err, rc);
    *out = l;
    *out_order = o;
    return BSS_OK;
}

int orders_place(customer_ctx *c, const char *svc_cont_no, order_type type, int64_t effective_ms,
                 const char *correlation_id, order *out, customer_problem *p)
{
    char err[BSS_ERRLEN] = "";
    int rc = bss_store_group_begin(c->store, err);
    if (rc != BSS_OK)
        return store_failure(c, p, err, rc);
    sqlite3 *db = bss_store_db(c->store);
    line l;
    rc = lines_db_load(db, svc_cont_no, &l, err);
    if (rc == BSS_ERR_NOTFOUND) {
        bss_store_rollback(c->store);
        set_problem(p, 404, "LINE_NOT_FOUND", "no line with this svcContNo");
        return rc;
    }
    if (rc != BSS_OK) {
        bss_store_rollback(c->store);
        return store_failure(c, p, err, rc);
    }
    int closed = refuse_closed_period(c, db, effective_ms, p, err);
    if (closed != BSS_OK)
        return closed;
    order_decision d = line_decide(&l, type, effective_ms);
    if (d.kind == DECISION_REJECT) {
        bss_store_rollback(c->store);
        set_problem(p, 409, d.code, d.detail);
        return BSS_ERR_CONFLICT;
    }
    order o;
    bss_emit_origin why = {NULL, correlation_id};
    int now = d.kind == DECISION_APPLY_NOW;
    rc = new_order(&o, svc_cont_no, type, now ? ORDER_COMPLETED : ORDER_PENDING, effective_ms);
    if (rc == BSS_OK)
        rc = lines_db_insert_order(db, &o, err);
    if (rc == BSS_OK && now) {
        const char *from = line_status_name(l.status);
        l.status = d.target;
        l.status_changed_ms = effective_ms;
        rc = emit_order_created(c->store, &l, &o, &why, err);
        if (rc == BSS_OK)
            rc = emit_status_changed(c->store, &l, &o, from, &why, err);
        if (rc == BSS_OK)
            rc = emit_order_outcome(c->store, &l, &o, &why, err);
    } else if (rc == BSS_OK) {
        snprintf(l.pending_order_id, sizeof l.pending_order_id, "%s", o.order_id);
        rc = emit_order_created(c->store, &l, &o, &why, err);
        if (rc == BSS_OK)
            rc = emit_saga_request(c->store, &l, &o, &why, err);
    }
    if (rc == BSS_OK)
        rc = lines_db_update(db, &l, err);
    if (rc == BSS_OK)
        rc = queue_sms(c->store, &l, &o, err);
    if (rc != BSS_OK) {
        bss_store_rollback(c->store);
        return store_failure(c, p, err, rc);
    }
    rc = bss_store_commit(c->store, err);
    if (rc != BSS_OK)
        return store_failure(c, p, err, rc);
    *out = o;
    return BSS_OK;
}

/* Reads data.orderId (and data.effectiveAt when wanted) of a rater answer. */
static int answer_fields(const bss_event *ev, char *order_id, size_t cap, int64_t *effective_ms,
                         char *err)
{
    cJSON *data = cJSON_Parse(ev->data);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "orderId");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(data, "effectiveAt");
    int rc = BSS_OK;
    if (!cJSON_IsString(id) || strlen(id->valuestring) >= cap) {
        bss_seterr(err, "%s without a valid orderId", ev->type);
        rc = BSS_ERR_INVALID;
    } else {
        snprintf(order_id, cap, "%s", id->valuestring);
        if (effective_ms != NULL &&
            (!cJSON_IsString(at) ||
             bss_time_parse(at->valuestring, strlen(at->valuestring), effective_ms) != BSS_OK)) {
            bss_seterr(err, "%s without a valid effectiveAt", ev->type);
            rc = BSS_ERR_INVALID;
        }
    }
    cJSON_Delete(data);
    return rc;
}

int orders_on_rater_event(customer_ctx *c, bss_store *store, const bss_event *ev, char *err)
{
    int confirms = strcmp(ev->type, "RaterTerminated") == 0 || strcmp(ev->type, "RaterRestored") == 0;
    int refuses = strcmp(ev->type, "RaterUnused") == 0 || strcmp(ev->type, "RaterInUse") == 0;
    if (!confirms && !refuses)
        return BSS_OK;
    char order_id[40];
    int64_t effective_ms = 0;
    int rc = answer_fields(ev, order_id, sizeof order_id, confirms ? &effective_ms : NULL, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3 *db = bss_store_db(store);
    order o;
    line l;
    rc = lines_db_load_order(db, ev->subject, order_id, &o, err);
    if (rc == BSS_ERR_NOTFOUND || (rc == BSS_OK && o.status != ORDER_PENDING)) {
        bss_log_warn(c->log, "%s for order %s that is not pending here: ignored", ev->type,
                     order_id);
        return BSS_OK;
    }
    if (rc == BSS_OK)
        rc = lines_db_load(db, ev->subject, &l, err);
    if (rc != BSS_OK)
        return rc == BSS_ERR_NOTFOUND ? BSS_ERR_INVALID : rc;

    bss_emit_origin why = {ev, NULL};
    o.updated_ms = bss_now_ms();
    l.pending_order_id[0] = '\0';
    if (confirms) {
        const char *from = line_status_name(l.status);
        l.status = o.type == ORDER_TERMINATE ? LINE_TERMINATED : LINE_ACTIVE;
        l.status_changed_ms = o.effective_ms;
        if (l.status == LINE_TERMINATED)
            l.terminated_ms = o.effective_ms;
        o.status = ORDER_COMPLETED;
        rc = emit_status_changed(store, &l, &o, from, &why, err);
    } else {
        o.status = ORDER_REJECTED;
        snprintf(o.reason, sizeof o.reason, "%s",
                 o.type == ORDER_TERMINATE ? "ALREADY_TERMINATED" : "ALREADY_ACTIVE");
    }
    if (rc == BSS_OK)
        rc = emit_order_outcome(store, &l, &o, &why, err);
    if (rc == BSS_OK)
        rc = lines_db_update(db, &l, err);
    if (rc == BSS_OK)
        rc = lines_db_update_order(db, &o, err);
    if (rc == BSS_OK)
        rc = queue_sms(store, &l, &o, err);
    return rc;
}
