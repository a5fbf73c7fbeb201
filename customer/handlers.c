/* handlers.c - see handlers.h. */
#include "handlers.h"

#include "bss_error.h"
#include "customer.h"
#include "emit.h"
#include "lines_db.h"
#include "orders.h"
#include "period.h"

#include <cjson/cJSON.h>
#include <string.h>

const char *const CUSTOMER_STREAMS[] = {"rater"};

int customer_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    if (strcmp(ev->source, "rater") != 0)
        return BSS_OK;
    if (strcmp(ev->type, "AuCloseStarted") == 0) {
        bss_period period;
        if (bss_period_parse(ev->subject, &period) != BSS_OK) {
            bss_seterr(err, "AuCloseStarted about '%s', not a period", ev->subject);
            return BSS_ERR_INVALID;
        }
        int closed_now = 0;
        int rc = lines_db_close_period(bss_store_db(store), ev->subject, &closed_now, err);
        if (rc != BSS_OK || !closed_now)
            return rc;
        /* The barrier of the close: in this log it follows every order the
         * customer service accepted for the period, so a follower that has
         * applied it has applied all of them (see handlers.h). */
        cJSON *data = cJSON_CreateObject();
        if (data == NULL || cJSON_AddStringToObject(data, "period", ev->subject) == NULL) {
            cJSON_Delete(data);
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
        rc = bss_emit(store, ev, "OrdersClosed", ev->subject, data, err);
        cJSON_Delete(data);
        return rc;
    }
    return orders_on_rater_event(ctx, store, ev, err);
}
