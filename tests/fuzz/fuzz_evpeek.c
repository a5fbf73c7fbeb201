/*
 * fuzz_evpeek.c - libFuzzer target for bss_event_peek (evpeek.h), which
 * the consumer uses to pass events its handler ignores without decoding
 * them. Whatever the input, the peek must not crash, and wherever both it
 * and bss_event_decode accept an envelope they must agree on its type and
 * source: a disagreement would make a consumer skip an event it needs.
 */
#include "bss_error.h"
#include "envelope.h"
#include "evpeek.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char type[BSS_EVENT_TYPE_MAX + 1], source[BSS_EVENT_SOURCE_MAX + 1];
    /* A copy of exactly size bytes, so reading past the end is caught. */
    char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    int peeked = bss_event_peek(buf, size, type, sizeof type, source, sizeof source);
    if (peeked != BSS_OK && (type[0] != '\0' || source[0] != '\0'))
        abort();
    bss_event *ev = NULL;
    char err[BSS_ERRLEN];
    if (peeked == BSS_OK && bss_event_decode(buf, size, &ev, err) == BSS_OK) {
        if (strcmp(ev->type, type) != 0 || strcmp(ev->source, source) != 0)
            abort();
        bss_event_free(ev);
    }
    free(buf);
    return 0;
}
