/* busframe.c - see busframe.h. Every read is bounds-checked against len. */
#include "busframe.h"

#include "bss_error.h"

#include <stdio.h>
#include <string.h>

static int is_stream_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Reads a decimal int64 ending at a byte in `ends`; advances *pos past it. */
static int read_number(const char *buf, size_t len, size_t *pos, int64_t *out)
{
    size_t start = *pos;
    int64_t v = 0;
    while (*pos < len && buf[*pos] >= '0' && buf[*pos] <= '9') {
        int digit = buf[*pos] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return BSS_ERR_INVALID;
        v = v * 10 + digit;
        (*pos)++;
    }
    if (*pos == start)
        return BSS_ERR_INVALID;
    *out = v;
    return BSS_OK;
}

static int expect(const char *buf, size_t len, size_t *pos, char c)
{
    if (*pos >= len || buf[*pos] != c)
        return BSS_ERR_INVALID;
    (*pos)++;
    return BSS_OK;
}

int bss_frame_parse(const char *buf, size_t len, bss_frame *out)
{
    size_t pos = 0;
    if (len < 2 || (buf[0] != 'E' && buf[0] != 'H') || buf[1] != ' ')
        return BSS_ERR_INVALID;
    out->kind = buf[0];
    pos = 2;
    size_t n = 0;
    while (pos < len && is_stream_char(buf[pos])) {
        if (n >= BSS_EVENT_SOURCE_MAX)
            return BSS_ERR_INVALID;
        out->stream[n++] = buf[pos++];
    }
    if (n == 0)
        return BSS_ERR_INVALID;
    out->stream[n] = '\0';
    if (expect(buf, len, &pos, ' ') != BSS_OK ||
        read_number(buf, len, &pos, &out->position) != BSS_OK ||
        expect(buf, len, &pos, '\n') != BSS_OK)
        return BSS_ERR_INVALID;
    if (out->kind == 'H') {
        out->payload = NULL;
        out->len = 0;
        return pos == len ? BSS_OK : BSS_ERR_INVALID;
    }
    if (out->position < 1 || pos == len)
        return BSS_ERR_INVALID;
    out->payload = buf + pos;
    out->len = len - pos;
    return BSS_OK;
}

int bss_frame_header(char *out, size_t cap, char kind, const char *stream, int64_t position)
{
    int n = snprintf(out, cap, "%c %s %lld\n", kind, stream, (long long)position);
    return (n > 0 && (size_t)n < cap) ? n : -1;
}

int bss_catchup_request_parse(const char *buf, size_t len, int64_t *after, int *limit)
{
    size_t pos = 0;
    int64_t lim = 0;
    if (read_number(buf, len, &pos, after) != BSS_OK || expect(buf, len, &pos, ' ') != BSS_OK ||
        read_number(buf, len, &pos, &lim) != BSS_OK || pos != len || lim < 1 ||
        lim > BSS_CATCHUP_MAX_LIMIT)
        return BSS_ERR_INVALID;
    *limit = (int)lim;
    return BSS_OK;
}

int bss_catchup_reply_parse(const char *buf, size_t len, bss_catchup_record_fn fn, void *ctx,
                            int *count)
{
    size_t pos = 0;
    int64_t declared = 0;
    *count = 0;
    if (len >= 3 && memcmp(buf, "ERR", 3) == 0)
        return BSS_ERR_IO;
    if (len < 3 || memcmp(buf, "OK ", 3) != 0)
        return BSS_ERR_INVALID;
    pos = 3;
    if (read_number(buf, len, &pos, &declared) != BSS_OK ||
        expect(buf, len, &pos, '\n') != BSS_OK || declared > BSS_CATCHUP_MAX_LIMIT)
        return BSS_ERR_INVALID;
    int64_t previous = 0;
    for (int64_t i = 0; i < declared; i++) {
        int64_t position = 0, length = 0;
        if (read_number(buf, len, &pos, &position) != BSS_OK ||
            expect(buf, len, &pos, ' ') != BSS_OK ||
            read_number(buf, len, &pos, &length) != BSS_OK ||
            expect(buf, len, &pos, '\n') != BSS_OK)
            return BSS_ERR_INVALID;
        if (position <= previous || length < 1 || (uint64_t)length > len - pos)
            return BSS_ERR_INVALID;
        previous = position;
        (*count)++;
        if (fn(ctx, position, buf + pos, (size_t)length))
            return BSS_OK;
        pos += (size_t)length;
    }
    return pos == len ? BSS_OK : BSS_ERR_INVALID;
}
