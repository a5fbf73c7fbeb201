/*
 * fuzz_busframe.c - libFuzzer target for the nng backend's wire formats:
 * pushed frames, catch-up requests and catch-up replies. The first byte
 * picks the parser so one corpus covers all three.
 */
#include "bss_error.h"
#include "busframe.h"

#include <stdint.h>
#include <stdlib.h>

static int check_record(void *ctx, int64_t position, const char *payload, size_t len)
{
    const char *end = ctx;
    if (position < 1 || len < 1 || payload + len > end)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0: {
        bss_frame f;
        if (bss_frame_parse(buf, len, &f) == BSS_OK && f.kind == 'E' &&
            (f.payload < buf || f.payload + f.len != buf + len))
            abort();
        break;
    }
    case 1: {
        int64_t after = 0;
        int limit = 0;
        if (bss_catchup_request_parse(buf, len, &after, &limit) == BSS_OK &&
            (after < 0 || limit < 1 || limit > BSS_CATCHUP_MAX_LIMIT))
            abort();
        break;
    }
    default: {
        int count = 0;
        bss_catchup_reply_parse(buf, len, check_record, (void *)(buf + len), &count);
        break;
    }
    }
    return 0;
}
