#include "access.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define MAX_SEGMENTS 6
#define SEGMENT_MAX 128

/* The path split at '/', without empty segments at the ends. Returns the
 * number of segments, or -1 when there are too many, one is too long, or
 * an inner one is empty. */
static int split(const char *path, char seg[MAX_SEGMENTS][SEGMENT_MAX + 1])
{
    if (path == NULL || path[0] != '/')
        return -1;
    const char *p = path + 1;
    size_t total = strlen(p);
    if (total > 0 && p[total - 1] == '/')
        return -1; /* a trailing '/' names no route of ours */
    int n = 0;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len > SEGMENT_MAX || n == MAX_SEGMENTS)
            return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a form-encoded query value ('+' is a space). 0 on bad encoding or
 * when it does not fit. */
static int form_decode(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= n)
                return 0;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= outlen)
            return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

/* 1 when the query has exactly one parameter named `name` (after decoding)
 * and its decoded value equals `value`. */
static int query_has_only(const char *query, const char *name, const char *value)
{
    if (query == NULL)
        return 0;
    int matches = 0, equal = 0;
    const char *p = query;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        char key[SEGMENT_MAX + 1];
        if (!form_decode(p, klen, key, sizeof key))
            return 0;
        if (strcmp(key, name) == 0) {
            char val[SEGMENT_MAX + 1];
            matches++;
            if (eq == NULL || !form_decode(eq + 1, len - klen - 1, val, sizeof val))
                return 0;
            equal = strcmp(val, value) == 0;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return matches == 1 && equal;
}

static gw_access_decision decide(gw_access access)
{
    gw_access_decision d;
    memset(&d, 0, sizeof d);
    d.access = access;
    return d;
}

static gw_access_decision mediation(int is_get, int is_post, char seg[][SEGMENT_MAX + 1], int n)
{
    if (n >= 2 && strcmp(seg[0], "raters") == 0 &&
        (strcmp(seg[1], "usage-files") == 0 || strcmp(seg[1], "au-close") == 0)) {
        if ((n == 2 && is_post) || (n == 3 && is_get))
            return decide(GW_ACCESS_ALLOW);
    }
    return decide(GW_ACCESS_FORBID);
}

static gw_access_decision customer(const gw_principal *who, int is_get,
                                   char seg[][SEGMENT_MAX + 1], int n, const char *query)
{
    if (!is_get || n < 1)
        return decide(GW_ACCESS_HIDE);
    if (n == 2 && strcmp(seg[0], "mypage") == 0)
        return decide(strcmp(seg[1], who->customer_id) == 0 ? GW_ACCESS_ALLOW : GW_ACCESS_HIDE);
    if (n == 1 && strcmp(seg[0], "customers") == 0)
        return decide(query_has_only(query, "customerId", who->customer_id) ? GW_ACCESS_ALLOW
                                                                           : GW_ACCESS_HIDE);
    if (n >= 2 && strcmp(seg[0], "customers") == 0) {
        if (n == 2)
            return decide(GW_ACCESS_CHECK_RESPONSE);
        if ((n == 3 || n == 4) && strcmp(seg[2], "orders") == 0 &&
            strlen(seg[1]) <= GW_SVC_CONT_NO_MAX) {
            gw_access_decision d = decide(GW_ACCESS_CHECK_LINE);
            snprintf(d.svc_cont_no, sizeof d.svc_cont_no, "%s", seg[1]);
            return d;
        }
        return decide(GW_ACCESS_HIDE);
    }
    if (n >= 2 && strcmp(seg[0], "billings") == 0 && strcmp(seg[1], "invoices") == 0) {
        if (n == 2)
            return decide(query_has_only(query, "customerId", who->customer_id) ? GW_ACCESS_ALLOW
                                                                               : GW_ACCESS_HIDE);
        if (n == 3)
            return decide(GW_ACCESS_CHECK_RESPONSE);
    }
    return decide(GW_ACCESS_HIDE);
}

gw_access_decision gw_access_decide(const gw_principal *who, const char *method,
                                    const char *path, const char *query)
{
    if (who->role == GW_ROLE_OPERATOR)
        return decide(GW_ACCESS_ALLOW);
    char seg[MAX_SEGMENTS][SEGMENT_MAX + 1];
    int n = split(path, seg);
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int is_post = strcmp(method, "POST") == 0;
    if (who->role == GW_ROLE_MEDIATION)
        return n < 0 ? decide(GW_ACCESS_FORBID) : mediation(is_get, is_post, seg, n);
    if (who->role == GW_ROLE_CUSTOMER && who->customer_id[0] != '\0' && n >= 0)
        return customer(who, is_get, seg, n, query);
    return decide(GW_ACCESS_HIDE);
}

int gw_access_owned_by(const char *body, size_t len, const char *customer_id)
{
    if (body == NULL || customer_id == NULL || customer_id[0] == '\0')
        return 0;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(doc, "customerId");
    int owned = cJSON_IsString(owner) && strcmp(owner->valuestring, customer_id) == 0;
    cJSON_Delete(doc);
    return owned;
}
