/* routes.c - see routes.h. */
#include "routes.h"

#include "bss_error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *const GW_ROUTES_METHODS[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                         NULL};

static const struct {
    const char *prefix;
    const char *service;
    const char *key;
    int port_offset;
} TABLE[] = {
    {"/customers", "customer", "BSS_UPSTREAM_CUSTOMER", 1},
    {"/raters", "rater", "BSS_UPSTREAM_RATER", 2},
    {"/billings", "billing", "BSS_UPSTREAM_BILLING", 3},
    {"/settlements", "settlement", "BSS_UPSTREAM_SETTLEMENT", 4},
    {"/mypage", "mypage", "BSS_UPSTREAM_MYPAGE", 5},
};

int gw_routes_port(const bss_config *cfg, int *port, char *err)
{
    long long v = 0;
    if (bss_config_get_int(cfg, "BSS_PORT", GW_DEFAULT_PORT, &v, err) != BSS_OK)
        return BSS_ERR_INVALID;
    if (v < 1 || v > 65535) {
        bss_seterr(err, "BSS_PORT: %lld is not a port (1..65535)", v);
        return BSS_ERR_INVALID;
    }
    *port = (int)v;
    return BSS_OK;
}

/* Checks an upstream base URL and copies it without trailing slashes. */
static int check_base(const char *key, const char *url, char *out, size_t outlen, char *err)
{
    size_t scheme;
    if (strncasecmp(url, "http://", 7) == 0)
        scheme = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        scheme = 8;
    else {
        bss_seterr(err, "%s: \"%s\" is not an http:// or https:// URL", key, url);
        return BSS_ERR_INVALID;
    }
    size_t n = strlen(url);
    while (n > scheme && url[n - 1] == '/')
        n--;
    size_t host = strcspn(url + scheme, "/");
    if (host == 0 || scheme + host > n) {
        bss_seterr(err, "%s: \"%s\" has no host", key, url);
        return BSS_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') {
            bss_seterr(err, "%s: \"%s\" must not contain spaces, a query or a fragment", key,
                       url);
            return BSS_ERR_INVALID;
        }
    }
    if (n >= outlen) {
        bss_seterr(err, "%s: URL longer than %zu bytes", key, outlen - 1);
        return BSS_ERR_INVALID;
    }
    memcpy(out, url, n);
    out[n] = '\0';
    return BSS_OK;
}

int gw_routes_load(gw_routes *rt, const bss_config *cfg, char *err)
{
    memset(rt, 0, sizeof *rt);
    int port;
    if (gw_routes_port(cfg, &port, err) != BSS_OK)
        return BSS_ERR_INVALID;
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++) {
        gw_route *r = &rt->routes[rt->count];
        r->prefix = TABLE[i].prefix;
        r->service = TABLE[i].service;
        const char *url = bss_config_get(cfg, TABLE[i].key, NULL);
        int rc;
        if (url != NULL) {
            rc = check_base(TABLE[i].key, url, r->base, sizeof r->base, err);
        } else if (port + TABLE[i].port_offset > 65535) {
            bss_seterr(err, "%s is not set and BSS_PORT %d + %d is not a port", TABLE[i].key,
                       port, TABLE[i].port_offset);
            rc = BSS_ERR_INVALID;
        } else {
            snprintf(r->base, sizeof r->base, "http://127.0.0.1:%d",
                     port + TABLE[i].port_offset);
            rc = BSS_OK;
        }
        if (rc != BSS_OK) {
            memset(rt, 0, sizeof *rt);
            return rc;
        }
        rt->count++;
    }
    return BSS_OK;
}

const gw_route *gw_routes_match(const gw_routes *rt, const char *path)
{
    if (rt == NULL || path == NULL)
        return NULL;
    for (int i = 0; i < rt->count; i++) {
        const char *prefix = rt->routes[i].prefix;
        size_t n = strlen(prefix);
        if (strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return &rt->routes[i];
    }
    return NULL;
}

int gw_routes_method_allowed(const char *method)
{
    if (method == NULL)
        return 0;
    if (strcmp(method, "HEAD") == 0)
        return 1;
    for (int m = 0; GW_ROUTES_METHODS[m] != NULL; m++)
        if (strcmp(method, GW_ROUTES_METHODS[m]) == 0)
            return 1;
    return 0;
}
