/*
 * envelope.c - CloudEvents JSON encoding and validating decoding.
 *
 * Encoding is done by hand rather than through a cJSON tree because every
 * event is encoded at least once on the hot path (publish and catch-up) and
 * `data` is already compact JSON text that can be copied verbatim.
 */
#include "envelope.h"

#include "bss_error.h"
#include "isotime.h"
#include "uuid.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_attr(char *dst, size_t cap, const char *src, const char *name, char *err)
{
    size_t n = src ? strlen(src) : 0;
    if (n == 0 || n >= cap) {
        bss_seterr(err, "%s must be 1..%zu bytes", name, cap - 1);
        return BSS_ERR_INVALID;
    }
    memcpy(dst, src, n + 1);
    return BSS_OK;
}

/*
 * `data` is kept as the producer wrote it. cJSON holds numbers as doubles, so
 * re-printing a parsed tree would turn 1795386404292558123 into
 * 1.7953864042925581e+18 and 9007199254740993 into 9007199254740992; instead
 * cJSON only validates, and the object's own bytes are kept. The scanners
 * below run on text cJSON has already accepted, so they may assume valid
 * JSON, but every step is bounds-checked and they fail rather than read past
 * `end` on anything else.
 */

/* Skips what cJSON treats as whitespace (every byte <= 0x20). */
static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && *p <= 0x20)
        p++;
    return p;
}

/* p at an opening quote: returns the byte after the closing one, or NULL. */
static const unsigned char *skip_string(const unsigned char *p, const unsigned char *end)
{
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        if (*p == '\\') {
            if (end - p < 2)
                return NULL;
            p++; /* the escaped byte, whatever it is (\" included) */
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* p at the first byte of a value: returns the byte after it, or NULL. Objects
 * and arrays are skipped by counting brackets outside strings. */
static const unsigned char *skip_value(const unsigned char *p, const unsigned char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (p == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (depth == 0)
                    return NULL;
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    /* a number or a literal: up to the next separator */
    const unsigned char *start = p;
    while (p < end && *p > 0x20 && *p != ',' && *p != '}' && *p != ']' && *p != ':')
        p++;
    return p > start ? p : NULL;
}

/* The text of the index-th member's value of the top-level object in
 * buf[0..len) (cJSON skips a UTF-8 byte order mark, so this does too).
 * Returns 0 with [*vstart, *vend), or -1. */
static int member_span(const char *buf, size_t len, size_t index, const char **vstart,
                       const char **vend)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        p += 3;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    for (size_t i = 0;; i++) {
        p = skip_ws(p, end);
        p = skip_string(p, end); /* the key */
        if (p == NULL)
            return -1;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        const unsigned char *value = p;
        p = skip_value(p, end);
        if (p == NULL)
            return -1;
        if (i == index) {
            *vstart = (const char *)value;
            *vend = (const char *)p;
            return 0;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',')
            return -1; /* '}' (or garbage) before the index-th member */
        p++;
    }
}

/* Copies the JSON text src[0..len) without the whitespace between tokens, so
 * the result is compact while every token (numbers, strings and their
 * escapes) keeps its bytes. A raw control byte inside a string, which cJSON
 * tolerates but RFC 8259 does not, is written as a \u00XX escape. Returns a
 * malloc'd string or NULL when out of memory. The first pass sizes the
 * output, the second writes it. */
static char *minify(const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *out = NULL;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && (out = malloc(n + 1)) == NULL)
            return NULL;
        n = 0;
        int in_string = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)src[i];
            if (!in_string) {
                if (c <= 0x20)
                    continue;
                in_string = c == '"';
            } else if (c == '\\' && i + 1 < len) {
                if (out != NULL)
                    out[n] = (char)c;
                n++;
                c = (unsigned char)src[++i]; /* the escaped byte, kept as is */
            } else if (c < 0x20) {
                if (out != NULL) {
                    memcpy(out + n, "\\u00", 4);
                    out[n + 4] = hex[c >> 4];
                    out[n + 5] = hex[c & 15];
                }
                n += 6;
                continue;
            } else if (c == '"') {
                in_string = 0;
            }
            if (out != NULL)
                out[n] = (char)c;
            n++;
        }
    }
    out[n] = '\0';
    return out;
}

/* Validates data_json (NUL-terminated) as one JSON object with nothing but
 * whitespace after it and returns its compact text (see minify). */
static char *compact_object(const char *data_json, char *err)
{
    const char *parse_end = NULL;
    cJSON *obj = cJSON_ParseWithOpts(data_json, &parse_end, 0);
    int ok = obj != NULL && cJSON_IsObject(obj);
    cJSON_Delete(obj);
    const char *start = NULL, *stop = NULL;
    if (ok) {
        const unsigned char *rest = (const unsigned char *)parse_end;
        const unsigned char *end = rest + strlen(parse_end);
        ok = skip_ws(rest, end) == end;
    }
    if (ok) {
        /* The object's own bytes: cJSON accepted it, so the first byte that
         * is neither whitespace nor a byte order mark opens it. */
        const unsigned char *p = (const unsigned char *)data_json;
        if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
            p += 3;
        p = skip_ws(p, (const unsigned char *)parse_end);
        const unsigned char *q = skip_value(p, (const unsigned char *)parse_end);
        ok = q != NULL && *p == '{';
        start = (const char *)p;
        stop = (const char *)q;
    }
    if (!ok) {
        bss_seterr(err, "data must be a JSON object");
        return NULL;
    }
    char *text = minify(start, (size_t)(stop - start));
    if (text == NULL)
        bss_seterr(err, "out of memory");
    return text;
}

bss_event *bss_event_new(const char *type, const char *subject,
                         const char *data_json, char *err)
{
    char *data = compact_object(data_json != NULL ? data_json : "{}", err);
    return data != NULL ? bss_event_adopt(type, subject, data, err) : NULL;
}

bss_event *bss_event_adopt(const char *type, const char *subject, char *data, char *err)
{
    if (data == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    if (data[0] != '{') {
        free(data);
        bss_seterr(err, "data must be a JSON object");
        return NULL;
    }
    bss_event *ev = calloc(1, sizeof *ev);
    if (ev == NULL) {
        free(data);
        bss_seterr(err, "out of memory");
        return NULL;
    }
    ev->data = data;
    if (copy_attr(ev->type, sizeof ev->type, type, "type", err) != BSS_OK ||
        copy_attr(ev->subject, sizeof ev->subject, subject, "subject", err) != BSS_OK) {
        bss_event_free(ev);
        return NULL;
    }
    if (bss_uuid_v7(ev->id) != BSS_OK) {
        bss_seterr(err, "no entropy for an event id");
        bss_event_free(ev);
        return NULL;
    }
    ev->time_ms = bss_now_ms();
    return ev;
}

void bss_event_caused_by(bss_event *ev, const bss_event *cause)
{
    const char *corr = cause->correlation_id[0] ? cause->correlation_id : cause->id;
    snprintf(ev->correlation_id, sizeof ev->correlation_id, "%s", corr);
    snprintf(ev->causation_id, sizeof ev->causation_id, "%s", cause->id);
}

int bss_event_set_correlation(bss_event *ev, const char *id)
{
    if (id == NULL || strlen(id) > BSS_EVENT_ID_MAX)
        return BSS_ERR_INVALID;
    snprintf(ev->correlation_id, sizeof ev->correlation_id, "%s", id);
    return BSS_OK;
}

/* A growable output buffer; `failed` latches the first allocation failure. */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} outbuf;

static void out_reserve(outbuf *o, size_t extra)
{
    if (o->failed || o->len + extra + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + extra + 1)
        cap *= 2;
    char *p = realloc(o->buf, cap);
    if (p == NULL) {
        o->failed = 1;
        return;
    }
    o->buf = p;
    o->cap = cap;
}

static void out_put(outbuf *o, const char *s, size_t n)
{
    out_reserve(o, n);
    if (o->failed)
        return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(outbuf *o, const char *s) { out_put(o, s, strlen(s)); }

/* Writes s as a JSON string literal, escaping what RFC 8259 requires. Runs
 * of characters that need no escape are copied at once: the relay and the
 * catch-up server encode every event they send. */
static void out_json_string(outbuf *o, const char *s)
{
    out_put(o, "\"", 1);
    const unsigned char *run = (const unsigned char *)s;
    const unsigned char *p = run;
    for (; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        out_put(o, (const char *)run, (size_t)(p - run));
        run = p + 1;
        switch (*p) {
        case '"': out_put(o, "\\\"", 2); break;
        case '\\': out_put(o, "\\\\", 2); break;
        case '\n': out_put(o, "\\n", 2); break;
        case '\r': out_put(o, "\\r", 2); break;
        case '\t': out_put(o, "\\t", 2); break;
        default: {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            out_put(o, esc, 6);
        }
        }
    }
    out_put(o, (const char *)run, (size_t)(p - run));
    out_put(o, "\"", 1);
}

char *bss_event_encode(const bss_event *ev, size_t *len)
{
    outbuf o = {0};
    char time_text[BSS_TIME_LEN + 8];
    char num[32];
    if (bss_time_format(ev->time_ms, time_text, sizeof time_text) != BSS_OK)
        snprintf(time_text, sizeof time_text, "1970-01-01T00:00:00.000+00:00");
    /* The attributes take under 512 bytes unescaped: one allocation. */
    out_reserve(&o, 512 + (ev->data ? strlen(ev->data) : 2));
    out_str(&o, "{\"specversion\":\"1.0\",\"id\":");
    out_json_string(&o, ev->id);
    out_str(&o, ",\"source\":");
    out_json_string(&o, ev->source);
    out_str(&o, ",\"type\":");
    out_json_string(&o, ev->type);
    out_str(&o, ",\"subject\":");
    out_json_string(&o, ev->subject);
    out_str(&o, ",\"time\":");
    out_json_string(&o, time_text);
    out_str(&o, ",\"datacontenttype\":\"application/json\",\"aggregateversion\":");
    snprintf(num, sizeof num, "%" PRId64, ev->version);
    out_str(&o, num);
    out_str(&o, ",\"sequence\":");
    snprintf(num, sizeof num, "%" PRId64, ev->sequence);
    out_str(&o, num);
    if (ev->correlation_id[0]) {
        out_str(&o, ",\"correlationid\":");
        out_json_string(&o, ev->correlation_id);
    }
    if (ev->causation_id[0]) {
        out_str(&o, ",\"causationid\":");
        out_json_string(&o, ev->causation_id);
    }
    out_str(&o, ",\"data\":");
    out_str(&o, ev->data ? ev->data : "{}");
    out_str(&o, "}");
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    if (len != NULL)
        *len = o.len;
    return o.buf;
}

static int get_string(const cJSON *root, const char *name, int required, char *dst,
                      size_t cap, char *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);
    if (item == NULL) {
        if (!required) {
            dst[0] = '\0';
            return BSS_OK;
        }
        bss_seterr(err, "missing attribute %s", name);
        return BSS_ERR_INVALID;
    }
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        bss_seterr(err, "attribute %s must be a string", name);
        return BSS_ERR_INVALID;
    }
    size_t n = strlen(item->valuestring);
    if ((required && n == 0) || n >= cap) {
        bss_seterr(err, "attribute %s must be %s..%zu bytes", name, required ? "1" : "0",
                   cap - 1);
        return BSS_ERR_INVALID;
    }
    memcpy(dst, item->valuestring, n + 1);
    return BSS_OK;
}

/* JSON numbers are doubles in cJSON; accept only integral values that a
 * double represents exactly (|v| < 2^53). */
static int get_count(const cJSON *root, const char *name, int64_t *out, char *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);
    if (item == NULL) {
        *out = 0;
        return BSS_OK;
    }
    if (!cJSON_IsNumber(item)) {
        bss_seterr(err, "attribute %s must be a number", name);
        return BSS_ERR_INVALID;
    }
    double v = item->valuedouble;
    if (!(v >= 0 && v <= 9007199254740991.0) || (double)(int64_t)v != v) {
        bss_seterr(err, "attribute %s must be a non-negative integer", name);
        return BSS_ERR_INVALID;
    }
    *out = (int64_t)v;
    return BSS_OK;
}

int bss_event_decode(const char *buf, size_t len, bss_event **out, char *err)
{
    if (buf == NULL || len == 0 || len > BSS_EVENT_MAX_BYTES) {
        bss_seterr(err, "event must be 1..%d bytes", BSS_EVENT_MAX_BYTES);
        return BSS_ERR_INVALID;
    }
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, NULL, 0);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        bss_seterr(err, "event is not a JSON object");
        return BSS_ERR_INVALID;
    }
    bss_event *ev = calloc(1, sizeof *ev);
    int rc = ev ? BSS_OK : BSS_ERR_NOMEM;
    char specversion[8];
    char time_text[64];
    char content_type[64];
    if (rc == BSS_OK)
        rc = get_string(root, "specversion", 1, specversion, sizeof specversion, err);
    if (rc == BSS_OK && strcmp(specversion, "1.0") != 0) {
        bss_seterr(err, "specversion must be 1.0");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = get_string(root, "id", 1, ev->id, sizeof ev->id, err);
    if (rc == BSS_OK)
        rc = get_string(root, "source", 1, ev->source, sizeof ev->source, err);
    if (rc == BSS_OK)
        rc = get_string(root, "type", 1, ev->type, sizeof ev->type, err);
    if (rc == BSS_OK)
        rc = get_string(root, "subject", 1, ev->subject, sizeof ev->subject, err);
    if (rc == BSS_OK)
        rc = get_string(root, "correlationid", 0, ev->correlation_id,
                        sizeof ev->correlation_id, err);
    if (rc == BSS_OK)
        rc = get_string(root, "causationid", 0, ev->causation_id,
                        sizeof ev->causation_id, err);
    if (rc == BSS_OK)
        rc = get_string(root, "time", 1, time_text, sizeof time_text, err);
    if (rc == BSS_OK &&
        bss_time_parse(time_text, strlen(time_text), &ev->time_ms) != BSS_OK) {
        bss_seterr(err, "attribute time is not ISO-8601 with an offset");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = get_string(root, "datacontenttype", 0, content_type, sizeof content_type, err);
    if (rc == BSS_OK && content_type[0] && strcmp(content_type, "application/json") != 0) {
        bss_seterr(err, "datacontenttype must be application/json");
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = get_count(root, "aggregateversion", &ev->version, err);
    if (rc == BSS_OK)
        rc = get_count(root, "sequence", &ev->sequence, err);
    if (rc == BSS_OK) {
        /* The first member named "data" (as cJSON_GetObjectItemCaseSensitive
         * picks it), found by its position among the members and then cut
         * out of buf verbatim. */
        const cJSON *data = NULL;
        size_t index = 0;
        for (data = root->child; data != NULL; data = data->next, index++)
            if (data->string != NULL && strcmp(data->string, "data") == 0)
                break;
        const char *vstart = NULL, *vend = NULL;
        if (!cJSON_IsObject(data) || member_span(buf, len, index, &vstart, &vend) != 0 ||
            *vstart != '{') {
            bss_seterr(err, "attribute data must be a JSON object");
            rc = BSS_ERR_INVALID;
        } else if ((ev->data = minify(vstart, (size_t)(vend - vstart))) == NULL) {
            rc = BSS_ERR_NOMEM;
        }
    }
    cJSON_Delete(root);
    if (rc != BSS_OK) {
        if (rc == BSS_ERR_NOMEM)
            bss_seterr(err, "out of memory");
        bss_event_free(ev);
        return rc;
    }
    *out = ev;
    return BSS_OK;
}

bss_event *bss_event_clone(const bss_event *ev)
{
    bss_event *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return NULL;
    *copy = *ev;
    copy->data = strdup(ev->data ? ev->data : "{}");
    if (copy->data == NULL) {
        free(copy);
        return NULL;
    }
    return copy;
}

void bss_event_free(bss_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->data);
    free(ev);
}
