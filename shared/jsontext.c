/* jsontext.c - see jsontext.h. */
#include "jsontext.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bss_jtext_fixed(bss_jtext *t, char *buf, size_t cap)
{
    *t = (bss_jtext){buf, 0, cap, cap == 0, 1};
    if (cap > 0)
        buf[0] = '\0';
}

void bss_jtext_reset(bss_jtext *t)
{
    t->len = 0;
    t->failed = t->fixed && t->cap == 0;
    if (t->s != NULL)
        t->s[0] = '\0';
}

void bss_jtext_raw(bss_jtext *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (n + 1 > t->cap - t->len) {
        if (t->fixed) {
            t->failed = 1;
            return;
        }
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->s, cap);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void bss_jtext_str(bss_jtext *t, const char *s)
{
    bss_jtext_raw(t, s, strlen(s));
}

void bss_jtext_string(bss_jtext *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    bss_jtext_raw(t, "\"", 1);
    const char *run = s;
    for (const unsigned char *c = (const unsigned char *)s;; c++) {
        if (*c >= 0x20 && *c != '"' && *c != '\\')
            continue;
        bss_jtext_raw(t, run, (size_t)((const char *)c - run));
        if (*c == '\0')
            break;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*c) {
        case '"':
        case '\\':
            esc[1] = (char)*c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*c >> 4];
            esc[5] = hex[*c & 0x0f];
            n = 6;
            break;
        }
        bss_jtext_raw(t, esc, n);
        run = (const char *)c + 1;
    }
    bss_jtext_raw(t, "\"", 1);
}

void bss_jtext_name(bss_jtext *t, const char *name, int first)
{
    if (!first)
        bss_jtext_raw(t, ",", 1);
    bss_jtext_raw(t, "\"", 1);
    bss_jtext_str(t, name);
    bss_jtext_raw(t, "\":", 2);
}

void bss_jtext_string_member(bss_jtext *t, const char *name, const char *value, int first)
{
    bss_jtext_name(t, name, first);
    bss_jtext_string(t, value);
}

void bss_jtext_int_member(bss_jtext *t, const char *name, int64_t value, int first)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%" PRId64, value);
    bss_jtext_name(t, name, first);
    bss_jtext_raw(t, digits, n > 0 ? (size_t)n : 0);
}
