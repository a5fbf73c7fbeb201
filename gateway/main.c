/*
 * main.c - bssiot-gateway: the single REST entry point of a bssiot system.
 *
 * Wiring only: reads the configuration, builds the route table (routes.h)
 * and the forwarding proxy (proxy.h), installs the proxy as the fallback
 * handler of the service's HTTP server and runs until SIGTERM/SIGINT
 * (requests in flight then finish, see bss_http_stop). Configuration keys
 * (environment BSS_*, or the matching --flag), besides the ones service.h
 * reads:
 *
 *   BSS_PORT                         gateway port (8088); upstream defaults
 *                                    are derived from it (routes.h)
 *   BSS_GATEWAY_LISTEN               listen address (default: BSS_PORT on
 *                                    all interfaces)
 *   BSS_UPSTREAM_CUSTOMER, _RATER, _BILLING, _SETTLEMENT, _MYPAGE
 *                                    upstream base URLs
 *   BSS_GATEWAY_MAX_BODY_BYTES       request body cap (1 GiB)
 *   BSS_GATEWAY_MAX_RESPONSE_BYTES   upstream answer cap (64 MiB)
 *   BSS_GATEWAY_UPSTREAM_TIMEOUT_MS  upstream timeout (30000)
 *
 * Exit status: 0 after a graceful shutdown, 1 when the configuration is
 * invalid or the port cannot be bound.
 */
#include "bss_error.h"
#include "guard.h"
#include "proxy.h"
#include "routes.h"
#include "service.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static void free_proxy(void *ctx) { gw_proxy_free(ctx); }

/* Reads a positive integer setting in 1..max. */
static int positive(const bss_config *cfg, const char *key, long long fallback, long long max,
                    long long *out, char *err)
{
    if (bss_config_get_int(cfg, key, fallback, out, err) != BSS_OK)
        return BSS_ERR_INVALID;
    if (*out < 1 || *out > max) {
        bss_seterr(err, "%s: %lld is out of range 1..%lld", key, *out, max);
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

/* The default listen address depends on BSS_PORT, which lives in the
 * configuration that bss_service_init loads; read it once beforehand. */
static int default_listen(int argc, char **argv, char *out, size_t outlen, char *err)
{
    bss_config *pre = bss_config_load(argc, argv, err);
    if (pre == NULL)
        return BSS_ERR_INVALID;
    int port = 0;
    int rc = gw_routes_port(pre, &port, err);
    bss_config_free(pre);
    if (rc == BSS_OK)
        snprintf(out, outlen, "%d", port);
    return rc;
}

static void free_guard(void *ctx) { gw_guard_free(ctx); }

/* The gateway's own /metrics is a route like any other: operators only. */
static int guard_metrics(bss_request *req, void *ctx)
{
    if (strcmp(bss_req_path(req), "/metrics") != 0)
        return 0;
    gw_guard_pass pass;
    if (gw_guard_admit(ctx, req, NULL, NULL, &pass) == GW_GUARD_REPLIED)
        return pass.status;
    gw_guard_end(ctx, &pass);
    return 0;
}

static int setup(bss_service *svc, gw_routes *routes, gw_guard **guard, gw_proxy **proxy,
                 char *err)
{
    const bss_config *cfg = svc->config;
    long long max_body, max_resp, timeout, threads;
    int rc;
    if ((rc = gw_routes_load(routes, cfg, err)) != BSS_OK ||
        (rc = positive(cfg, "BSS_GATEWAY_MAX_BODY_BYTES", GW_PROXY_DEFAULT_MAX_BODY,
                       1LL << 50, &max_body, err)) != BSS_OK ||
        (rc = positive(cfg, "BSS_GATEWAY_MAX_RESPONSE_BYTES", GW_PROXY_DEFAULT_MAX_RESPONSE,
                       1LL << 32, &max_resp, err)) != BSS_OK ||
        (rc = positive(cfg, "BSS_GATEWAY_UPSTREAM_TIMEOUT_MS", GW_PROXY_DEFAULT_TIMEOUT_MS,
                       24LL * 3600 * 1000, &timeout, err)) != BSS_OK ||
        (rc = positive(cfg, "BSS_HTTP_THREADS", BSS_HTTP_DEFAULT_THREADS, 10000, &threads,
                       err)) != BSS_OK)
        return rc;
    if ((rc = gw_guard_open(cfg, svc->data_dir, svc->log, svc->metrics, guard, err)) != BSS_OK)
        return rc;
    if ((rc = bss_service_add_shutdown(svc, free_guard, *guard)) != BSS_OK) {
        bss_seterr(err, "cannot register the shutdown hook");
        return rc;
    }
    bss_http_set_gate(svc->http, guard_metrics, *guard);

    gw_proxy_options opts = {0};
    opts.routes = routes;
    opts.max_body_bytes = max_body;
    opts.max_response_bytes = max_resp;
    opts.timeout_ms = (long)timeout;
    opts.max_idle_handles = (int)threads; /* one per worker thread at most */
    opts.log = svc->log;
    opts.metrics = svc->metrics;
    opts.guard = *guard;
    opts.internal_token = bss_config_get(cfg, "BSS_INTERNAL_TOKEN", NULL);
    *proxy = gw_proxy_new(&opts, err);
    if (*proxy == NULL)
        return BSS_ERR_NOMEM;
    if ((rc = bss_service_add_shutdown(svc, free_proxy, *proxy)) != BSS_OK) {
        gw_proxy_free(*proxy);
        *proxy = NULL;
        bss_seterr(err, "cannot register the shutdown hook");
        return rc;
    }
    /* Every path that is not one of bss_http's built-in routes. */
    bss_http_set_fallback(svc->http, gw_proxy_handle, *proxy);
    for (int i = 0; i < routes->count; i++)
        bss_log_info(svc->log, "route %s/** -> %s (%s)", routes->routes[i].prefix,
                     routes->routes[i].service, routes->routes[i].base);
    return BSS_OK;
}

int main(int argc, char **argv)
{
    bss_service_exec_tuned(argv);
    char err[BSS_ERRLEN] = "";
    char listen[16];
    if (default_listen(argc, argv, listen, sizeof listen, err) != BSS_OK) {
        fprintf(stderr, "gateway: %s\n", err);
        return 1;
    }
    bss_service svc;
    if (bss_service_init_listen(&svc, "gateway", listen, argc, argv, err) != BSS_OK) {
        fprintf(stderr, "gateway: %s\n", err);
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "gateway: curl_global_init failed\n");
        bss_service_free(&svc);
        return 1;
    }
    gw_routes routes;
    gw_proxy *proxy = NULL;
    gw_guard *guard = NULL;
    int rc = setup(&svc, &routes, &guard, &proxy, err);
    if (rc == BSS_OK) {
        rc = bss_service_run(&svc, err); /* the shutdown hook frees the proxy */
    } else {
        bss_log_error(svc.log, "%s", err);
        /* The hook, if registered, has not run: the server never started. */
        if (proxy != NULL)
            gw_proxy_free(proxy);
        gw_guard_free(guard);
    }
    if (rc != BSS_OK)
        fprintf(stderr, "gateway: %s\n", err);
    bss_service_free(&svc);
    curl_global_cleanup();
    return rc == BSS_OK ? 0 : 1;
}
