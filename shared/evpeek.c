/* evpeek.c - see evpeek.h. */
#include "evpeek.h"

#include "bss_error.h"

#include <string.h>

#define PEEK_MAX_DEPTH 64

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at the opening quote: the byte after the closing one, or NULL.
 * *escaped is set when the string holds a backslash. */
static const char *string_end(const char *p, const char *end, int *escaped)
{
    *escaped = 0;
    for (p++; p < end; p++) {
        if (*p == '\\') {
            *escaped = 1;
            p++;
        } else if (*p == '"') {
            return p + 1;
        } else if ((unsigned char)*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

static const char *value_end(const char *p, const char *end, int depth)
{
    int escaped;
    if (p >= end)
        return NULL;
    if (*p == '"')
        return string_end(p, end, &escaped);
    if (*p == '{' || *p == '[') {
        if (depth >= PEEK_MAX_DEPTH)
            return NULL;
        int object = *p == '{';
        char close = object ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (object) {
                if (p >= end || *p != '"' || (p = string_end(p, end, &escaped)) == NULL)
                    return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = skip_ws(p + 1, end);
            }
            if ((p = value_end(p, end, depth + 1)) == NULL)
                return NULL;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            return p < end && *p == close ? p + 1 : NULL;
        }
    }
    /* numbers, true, false, null: their exact form does not matter here */
    const char *start = p;
    while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                       (*p >= 'A' && *p <= 'Z') || *p == '+' || *p == '-' || *p == '.'))
        p++;
    return p > start ? p : NULL;
}

/* Copies the string value at [p, vend) (quotes included) into out. */
static int copy_value(const char *p, const char *vend, char *out, size_t cap)
{
    size_t n = (size_t)(vend - p) - 2;
    if (n >= cap)
        return BSS_ERR_INVALID;
    memcpy(out, p + 1, n);
    out[n] = '\0';
    return BSS_OK;
}

static int scan(const char *p, const char *end, char *type, size_t tcap, char *source,
                size_t scap)
{
    int have_type = 0, have_source = 0, escaped;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return BSS_ERR_INVALID;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return BSS_ERR_INVALID; /* no members at all */
    for (;;) {
        const char *name = p;
        if (p >= end || *p != '"' || (p = string_end(p, end, &escaped)) == NULL || escaped)
            return BSS_ERR_INVALID;
        size_t name_len = (size_t)(p - name) - 2;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return BSS_ERR_INVALID;
        p = skip_ws(p + 1, end);
        const char *value = p;
        if ((p = value_end(p, end, 1)) == NULL)
            return BSS_ERR_INVALID;
        int is_type = name_len == 4 && memcmp(name + 1, "type", 4) == 0;
        int is_source = name_len == 6 && memcmp(name + 1, "source", 6) == 0;
        if ((is_type && !have_type) || (is_source && !have_source)) {
            if (*value != '"')
                return BSS_ERR_INVALID;
            string_end(value, p, &escaped);
            if (escaped ||
                copy_value(value, p, is_type ? type : source, is_type ? tcap : scap) != BSS_OK)
                return BSS_ERR_INVALID;
            if (is_type)
                have_type = 1;
            else
                have_source = 1;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p >= end || *p != '}')
            return BSS_ERR_INVALID;
        p = skip_ws(p + 1, end);
        return p == end && have_type && have_source ? BSS_OK : BSS_ERR_INVALID;
    }
}

int bss_event_peek(const char *buf, size_t len, char *type, size_t tcap, char *source,
                   size_t scap)
{
    if (tcap == 0 || scap == 0)
        return BSS_ERR_INVALID;
    type[0] = source[0] = '\0';
    if (buf == NULL || scan(buf, buf + len, type, tcap, source, scap) != BSS_OK) {
        type[0] = source[0] = '\0';
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}
