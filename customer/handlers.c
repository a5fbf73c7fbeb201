/* handlers.c - see handlers.h. */
#include "handlers.h"

#include "bss_error.h"
#include "customer.h"
#include "lines_db.h"
#include "orders.h"
#include "period.h"

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
        return lines_db_close_period(bss_store_db(store), ev->subject, err);
    }
    return orders_on_rater_event(ctx, store, ev, err);
}
