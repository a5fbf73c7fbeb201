/*
 * fuzz_envelope.c - libFuzzer target for the event envelope decoder, the
 * parser of every event that arrives off the bus. A decoded event must
 * encode and decode again to the same attributes.
 */
#include "bss_error.h"
#include "envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bss_event *ev = NULL;
    char err[BSS_ERRLEN];
    if (bss_event_decode((const char *)data, size, &ev, err) != BSS_OK)
        return 0;
    size_t len = 0;
    char *json = bss_event_encode(ev, &len);
    if (json == NULL)
        abort();
    bss_event *again = NULL;
    if (bss_event_decode(json, len, &again, err) != BSS_OK)
        abort();
    if (strcmp(ev->id, again->id) != 0 || strcmp(ev->subject, again->subject) != 0 ||
        strcmp(ev->type, again->type) != 0 || strcmp(ev->data, again->data) != 0 ||
        ev->sequence != again->sequence || ev->version != again->version ||
        ev->time_ms != again->time_ms)
        abort();
    free(json);
    bss_event_free(again);
    bss_event_free(ev);
    return 0;
}
