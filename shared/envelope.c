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

/* Parses data_json, requires an object, returns its compact text. */
static char *compact_object(const char *data_json, size_t len, char *err)
{
    cJSON *obj = cJSON_ParseWithLengthOpts(data_json, len, NULL, 0);
    if (obj == NULL || !cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        bss_seterr(err, "data must be a JSON object");
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (text == NULL)
        bss_seterr(err, "out of memory");
    return text;
}

bss_event *bss_event_new(const char *type, const char *subject,
                         const char *data_json, char *err)
{
    bss_event *ev = calloc(1, sizeof *ev);
    if (ev == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    if (copy_attr(ev->type, sizeof ev->type, type, "type", err) != BSS_OK ||
        copy_attr(ev->subject, sizeof ev->subject, subject, "subject", err) != BSS_OK) {
        free(ev);
        return NULL;
    }
    if (data_json == NULL)
        data_json = "{}";
    ev->data = compact_object(data_json, strlen(data_json), err);
    if (ev->data == NULL || bss_uuid_v4(ev->id) != BSS_OK) {
        if (ev->data != NULL)
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

/* Writes s as a JSON string literal, escaping what RFC 8259 requires. */
static void out_json_string(outbuf *o, const char *s)
{
    out_put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': out_put(o, "\\\"", 2); break;
        case '\\': out_put(o, "\\\\", 2); break;
        case '\n': out_put(o, "\\n", 2); break;
        case '\r': out_put(o, "\\r", 2); break;
        case '\t': out_put(o, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                out_put(o, esc, 6);
            } else {
                out_put(o, (const char *)p, 1);
            }
        }
    }
    out_put(o, "\"", 1);
}

char *bss_event_encode(const bss_event *ev, size_t *len)
{
    outbuf o = {0};
    char time_text[BSS_TIME_LEN + 8];
    char num[32];
    if (bss_time_format(ev->time_ms, time_text, sizeof time_text) != BSS_OK)
        snprintf(time_text, sizeof time_text, "1970-01-01T00:00:00.000+00:00");
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
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        if (!cJSON_IsObject(data)) {
            bss_seterr(err, "attribute data must be a JSON object");
            rc = BSS_ERR_INVALID;
        } else if ((ev->data = cJSON_PrintUnformatted(data)) == NULL) {
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
