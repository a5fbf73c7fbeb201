/* handlers.c - see handlers.h. */
#include "handlers.h"

#include "bss_error.h"
#include "customer.h"
#include "orders.h"

#include <string.h>

const char *const CUSTOMER_STREAMS[] = {"rater"};

int customer_handle_event(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    if (strcmp(ev->source, "rater") == 0)
        return orders_on_rater_event(ctx, store, ev, err);
    return BSS_OK;
}
