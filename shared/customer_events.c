/* customer_events.c - see customer_events.h. */
#include "customer_events.h"

#include "bss_error.h"
#include "jsonfield.h"

#include <cjson/cJSON.h>
#include <string.h>

static const char *const order_types[] = {"OPEN", "SUSPEND", "RESUME", "TERMINATE", "RESTORE"};
static const char *const line_statuses[] = {"ACTIVE", "SUSPENDED", "TERMINATED"};

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

int bss_cev_is_line_status(const char *s)
{
    return s != NULL && in_list(s, line_statuses, sizeof line_statuses / sizeof *line_statuses);
}

static int parse_line(const cJSON *line, const bss_event *ev, bss_cev_line *out, char *err)
{
    int rc = bss_jfield_string(line, "customerId", out->customer_id, sizeof out->customer_id, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(line, "svcContNo", out->svc_cont_no, sizeof out->svc_cont_no, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(line, "productCd", out->product_cd, sizeof out->product_cd, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(line, "productNm", out->product_nm, sizeof out->product_nm, err);
    if (rc == BSS_OK)
        rc = bss_jfield_int64(line, "productTarif", &out->product_tarif, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(line, "apnCd", out->apn_cd, sizeof out->apn_cd, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string_opt(line, "email", out->email, sizeof out->email, err);
    if (rc == BSS_OK && out->product_tarif < 0) {
        bss_seterr(err, "field 'productTarif' is negative");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK && strcmp(out->svc_cont_no, ev->subject) != 0) {
        bss_seterr(err, "line.svcContNo '%s' differs from the event subject '%s'",
                   out->svc_cont_no, ev->subject);
        rc = BSS_ERR_INVALID;
    }
    return rc;
}

int bss_cev_parse_order_created(const bss_event *ev, bss_cev_order_created *out, char *err)
{
    memset(out, 0, sizeof *out);
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    int rc = bss_jfield_string(data, "orderId", out->order_id, sizeof out->order_id, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(data, "type", out->type, sizeof out->type, err);
    if (rc == BSS_OK && !in_list(out->type, order_types, sizeof order_types / sizeof *order_types)) {
        bss_seterr(err, "field 'type' is not an order type: '%s'", out->type);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = bss_jfield_string_opt(data, "status", out->status, sizeof out->status, err);
    if (rc == BSS_OK)
        rc = bss_jfield_time(data, "effectiveAt", &out->effective_ms, out->effective_at,
                             sizeof out->effective_at, err);
    if (rc == BSS_OK) {
        int open = strcmp(out->type, "OPEN") == 0;
        char lerr[BSS_ERRLEN];
        const cJSON *line = bss_jfield_object(data, "line", lerr);
        int lrc = line != NULL ? parse_line(line, ev, &out->line, lerr) : BSS_ERR_INVALID;
        if (lrc == BSS_OK) {
            out->has_line = 1;
        } else if (open) {
            bss_seterr(err, "OrderCreated(OPEN) line: %s", lerr);
            rc = BSS_ERR_INVALID;
        } else {
            memset(&out->line, 0, sizeof out->line);
        }
    }
    cJSON_Delete(data);
    return rc;
}

int bss_cev_parse_status_changed(const bss_event *ev, bss_cev_status_changed *out, char *err)
{
    memset(out, 0, sizeof *out);
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    int rc = bss_jfield_string(data, "orderId", out->order_id, sizeof out->order_id, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(data, "to", out->to, sizeof out->to, err);
    if (rc == BSS_OK && !bss_cev_is_line_status(out->to)) {
        bss_seterr(err, "field 'to' is not a line status: '%s'", out->to);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = bss_jfield_string_opt(data, "from", out->from, sizeof out->from, err);
    if (rc == BSS_OK && out->from[0] != '\0' && !bss_cev_is_line_status(out->from)) {
        bss_seterr(err, "field 'from' is not a line status: '%s'", out->from);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = bss_jfield_time(data, "effectiveAt", &out->effective_ms, out->effective_at,
                             sizeof out->effective_at, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string_opt(data, "customerId", out->customer_id,
                                   sizeof out->customer_id, err);
    cJSON_Delete(data);
    return rc;
}

int bss_cev_parse_order_request(const bss_event *ev, bss_cev_order_request *out, char *err)
{
    memset(out, 0, sizeof *out);
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    int rc = bss_jfield_string(data, "orderId", out->order_id, sizeof out->order_id, err);
    if (rc == BSS_OK)
        rc = bss_jfield_time(data, "effectiveAt", &out->effective_ms, out->effective_at,
                             sizeof out->effective_at, err);
    cJSON_Delete(data);
    return rc;
}
