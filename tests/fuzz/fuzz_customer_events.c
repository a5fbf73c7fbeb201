/*
 * fuzz_customer_events.c - libFuzzer target for the parsers of the customer
 * service's events as rater and billing read them off the bus
 * (shared/customer_events.h). The first byte picks the event type, the rest
 * is the event's data.
 */
#include "bss_error.h"
#include "customer_events.h"
#include "envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {"OrderCreated", "LineStatusChanged",
                                        "TerminationRequested", "RestoreRequested"};
    if (size < 1 || size > 65536)
        return 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[BSS_ERRLEN];
    bss_event *ev = bss_event_new(types[data[0] % 4], "7000000001", text, err);
    free(text);
    if (ev == NULL)
        return 0;
    bss_cev_order_created oc;
    bss_cev_status_changed sc;
    bss_cev_order_request rq;
    if (bss_cev_parse_order_created(ev, &oc, err) == BSS_OK &&
        (oc.order_id[0] == '\0' || (oc.has_line && oc.line.product_tarif < 0)))
        abort();
    if (bss_cev_parse_status_changed(ev, &sc, err) == BSS_OK && !bss_cev_is_line_status(sc.to))
        abort();
    bss_cev_parse_order_request(ev, &rq, err);
    bss_event_free(ev);
    return 0;
}
