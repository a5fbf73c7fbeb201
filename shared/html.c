/* html.c - see html.h. */
#include "html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bss_hbuf_put(bss_hbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void bss_hbuf_puts(bss_hbuf *b, const char *s) { bss_hbuf_put(b, s, strlen(s)); }

void bss_hbuf_escaped(bss_hbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': bss_hbuf_puts(b, "&amp;"); break;
        case '<': bss_hbuf_puts(b, "&lt;"); break;
        case '>': bss_hbuf_puts(b, "&gt;"); break;
        case '"': bss_hbuf_puts(b, "&quot;"); break;
        case '\'': bss_hbuf_puts(b, "&#39;"); break;
        default: bss_hbuf_put(b, s, 1); break;
        }
    }
}

const char *bss_format_grouped(int64_t value, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    /* The magnitude as unsigned, so INT64_MIN has one too. */
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    char rev[BSS_GROUPED_LEN];
    size_t n = 0, digits = 0;
    do {
        if (digits > 0 && digits % 3 == 0)
            rev[n++] = ',';
        rev[n++] = (char)('0' + mag % 10);
        mag /= 10;
        digits++;
    } while (mag > 0);
    if (value < 0)
        rev[n++] = '-';
    size_t o = 0;
    while (n > 0 && o + 1 < outlen)
        out[o++] = rev[--n];
    out[o] = '\0';
    return out;
}

const char *bss_format_krw(int64_t value, char *out, size_t outlen)
{
    char g[BSS_GROUPED_LEN];
    bss_format_grouped(value, g, sizeof g);
    if (out != NULL && outlen > 0)
        snprintf(out, outlen, "\xe2\x82\xa9%s", g); /* U+20A9 WON SIGN */
    return out;
}
