/* jsonfield.c - see jsonfield.h. */
#include "jsonfield.h"

#include "bss_error.h"
#include "isotime.h"

#include <string.h>

static const cJSON *member(const cJSON *obj, const char *name, char *err)
{
    if (!cJSON_IsObject(obj)) {
        bss_seterr(err, "expected an object holding field '%s'", name);
        return NULL;
    }
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

static int copy_string(const cJSON *v, const char *name, int allow_empty, char *out,
                       size_t outlen, char *err)
{
    if (outlen > 0)
        out[0] = '\0';
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        bss_seterr(err, "field '%s' is not a string", name);
        return BSS_ERR_INVALID;
    }
    size_t n = strlen(v->valuestring);
    if (n == 0 && !allow_empty) {
        bss_seterr(err, "field '%s' is empty", name);
        return BSS_ERR_INVALID;
    }
    if (n >= outlen) {
        bss_seterr(err, "field '%s' is longer than %zu bytes", name, outlen > 0 ? outlen - 1 : 0);
        return BSS_ERR_INVALID;
    }
    memcpy(out, v->valuestring, n + 1);
    return BSS_OK;
}

int bss_jfield_string(const cJSON *obj, const char *name, char *out, size_t outlen, char *err)
{
    if (outlen > 0)
        out[0] = '\0';
    const cJSON *v = member(obj, name, err);
    if (!cJSON_IsObject(obj))
        return BSS_ERR_INVALID;
    if (v == NULL || cJSON_IsNull(v)) {
        bss_seterr(err, "field '%s' is missing", name);
        return BSS_ERR_INVALID;
    }
    return copy_string(v, name, 0, out, outlen, err);
}

int bss_jfield_string_opt(const cJSON *obj, const char *name, char *out, size_t outlen,
                          char *err)
{
    if (outlen > 0)
        out[0] = '\0';
    const cJSON *v = member(obj, name, err);
    if (!cJSON_IsObject(obj))
        return BSS_ERR_INVALID;
    if (v == NULL || cJSON_IsNull(v))
        return BSS_OK;
    return copy_string(v, name, 1, out, outlen, err);
}

int bss_jfield_int64(const cJSON *obj, const char *name, int64_t *out, char *err)
{
    const cJSON *v = member(obj, name, err);
    if (!cJSON_IsObject(obj))
        return BSS_ERR_INVALID;
    if (v == NULL || cJSON_IsNull(v)) {
        bss_seterr(err, "field '%s' is missing", name);
        return BSS_ERR_INVALID;
    }
    if (!cJSON_IsNumber(v)) {
        bss_seterr(err, "field '%s' is not a number", name);
        return BSS_ERR_INVALID;
    }
    double d = v->valuedouble;
    if (!(d >= -(double)BSS_JFIELD_INT_MAX && d <= (double)BSS_JFIELD_INT_MAX) ||
        (double)(int64_t)d != d) {
        bss_seterr(err, "field '%s' is not an integer in range", name);
        return BSS_ERR_INVALID;
    }
    *out = (int64_t)d;
    return BSS_OK;
}

int bss_jfield_time(const cJSON *obj, const char *name, int64_t *ms, char *text, size_t textlen,
                    char *err)
{
    char buf[64];
    int rc = bss_jfield_string(obj, name, buf, sizeof buf, err);
    if (rc != BSS_OK)
        return rc;
    int64_t t = 0;
    if (bss_time_parse(buf, strlen(buf), &t) != BSS_OK) {
        bss_seterr(err, "field '%s' is not an ISO-8601 date-time with offset: '%s'", name, buf);
        return BSS_ERR_INVALID;
    }
    if (text != NULL) {
        if (strlen(buf) >= textlen) {
            bss_seterr(err, "field '%s' is longer than %zu bytes", name,
                       textlen > 0 ? textlen - 1 : 0);
            return BSS_ERR_INVALID;
        }
        memcpy(text, buf, strlen(buf) + 1);
    }
    *ms = t;
    return BSS_OK;
}

const cJSON *bss_jfield_object(const cJSON *obj, const char *name, char *err)
{
    const cJSON *v = member(obj, name, err);
    if (!cJSON_IsObject(obj))
        return NULL;
    if (!cJSON_IsObject(v)) {
        bss_seterr(err, "field '%s' is %s", name, v == NULL ? "missing" : "not an object");
        return NULL;
    }
    return v;
}

cJSON *bss_jfield_event_data(const bss_event *ev, char *err)
{
    cJSON *data = ev->data != NULL ? cJSON_Parse(ev->data) : NULL;
    if (!cJSON_IsObject(data)) {
        cJSON_Delete(data);
        bss_seterr(err, "%s %s: data is not a JSON object", ev->type, ev->id);
        return NULL;
    }
    return data;
}
