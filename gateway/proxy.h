/*
 * proxy.h - the gateway's forwarding: one client request in, one upstream
 * request out (upstream.h's client, or libcurl), the upstream's answer back.
 *
 * What is forwarded upstream: the method, the path (the URL-decoded path
 * civetweb hands us, re-encoded; see below), the query string exactly as
 * received, the body, and the headers Content-Type, Accept, Authorization,
 * Idempotency-Key, X-Correlation-Id, X-Request-Id (the request id bss_http
 * assigned: the client's when sane, else a new UUID), traceparent and
 * tracestate. A W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>" (lowercase,
 * ids not all zero) is forwarded unchanged together with its tracestate;
 * a missing or malformed one is replaced by a new random one (and
 * tracestate is then dropped, as the W3C spec asks). X-Forwarded-For gets
 * the client address appended.
 *
 * What comes back: the upstream status, body and the headers Content-Type,
 * Location, Retry-After, Allow, WWW-Authenticate and Content-Disposition;
 * bss_http adds X-Request-Id, Content-Length and Connection itself.
 *
 * Request bodies are streamed: a body with a known Content-Length above
 * GW_PROXY_SMALL_BODY, or a chunked one, is read from the client while it
 * is written upstream (never held whole in memory; chunked bodies go out
 * chunked). Small bodies are read first so that libcurl can resend them
 * when a kept-alive upstream connection turns out to be dead. A client's
 * "Expect: 100-continue" is answered by bss_http just before its body is
 * first read (never when the request is refused before, e.g. 413 by
 * Content-Length, or 502 when the upstream of a streamed body is down),
 * and libcurl is told not to send one upstream. Responses are buffered (they are small JSON or HTML), up to
 * max_response_bytes. HEAD goes upstream as HEAD; its answer then carries
 * Content-Length: 0 (bss_reply_raw computes the length from the body).
 *
 * Errors become RFC 9457 problems (bss_reply_problem):
 *   413 BODY_TOO_LARGE               the body exceeds max_body_bytes
 *                                    (Content-Length checked before
 *                                    anything is read, chunked bodies while
 *                                    they stream)
 *   400 BODY_READ_FAILED             the client sent less than announced
 *   502 UPSTREAM_UNAVAILABLE         the upstream cannot be connected to
 *                                    (refused, unresolvable) or closed the
 *                                    connection without an answer
 *   502 UPSTREAM_ERROR               any other failure talking to it
 *   502 UPSTREAM_RESPONSE_TOO_LARGE  its answer exceeds max_response_bytes
 *   504 UPSTREAM_TIMEOUT             see timeout_ms
 *
 * Timeouts (timeout_ms): connecting may take at most timeout_ms; once the
 * request (with its body) has been sent, the upstream has timeout_ms to
 * deliver its whole answer; while a body is still streaming, the transfer
 * may not stall (no byte read from the client, sent upstream or received)
 * for longer than timeout_ms. So a slow upload by the client is never
 * blamed on the upstream.
 *
 * Connections: a request whose body is small (read whole) or absent, to
 * a plain http:// upstream, and not HEAD, goes through the gateway's own
 * HTTP/1.1 client (upstream.h) over a pooled keep-alive connection; the
 * rules above (headers, timeouts, problems) are the same on both paths.
 * Every other request borrows a libcurl handle pair (multi + easy)
 * from a mutex-protected pool and returns it afterwards; the multi handle's
 * connection cache keeps upstream connections alive between requests, so
 * sequential requests from one worker reuse the same TCP connection. At
 * most max_idle_handles pairs are kept; the pool never holds more pairs
 * than there were concurrent requests. Idle connections older than
 * GW_PROXY_MAX_CONN_AGE_S seconds are not reused (bss_http closes idle
 * keep-alive connections after 5 s).
 *
 * Every forwarded request counts in
 *   bss_gateway_upstream_requests_total{upstream,status}   (the status the
 *       gateway answered with, including its own 502/504/413)
 *   bss_gateway_upstream_duration_seconds{upstream}
 * and is logged in one info line with the request id.
 *
 * Threading: gw_proxy_handle runs concurrently on the server's worker
 * threads. curl_global_init must have been called before gw_proxy_new
 * (main does it once) and curl_global_cleanup only after gw_proxy_free.
 */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include <stddef.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "guard.h"
#include "routes.h"

#define GW_PROXY_DEFAULT_MAX_BODY (1024LL * 1024 * 1024)        /* 1 GiB */
#define GW_PROXY_DEFAULT_MAX_RESPONSE (64LL * 1024 * 1024)     /* 64 MiB */
#define GW_PROXY_DEFAULT_TIMEOUT_MS 30000
#define GW_PROXY_DEFAULT_IDLE_HANDLES 32
#define GW_PROXY_SMALL_BODY (64 * 1024)
#define GW_PROXY_MAX_CONN_AGE_S 4
#define GW_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2, without the NUL */

typedef struct gw_proxy gw_proxy;

typedef struct gw_proxy_options {
    const gw_routes *routes;      /* the route table; required, not owned,
                                     must outlive the proxy */
    long long max_body_bytes;     /* request body cap; 0 -> 1 GiB */
    long long max_response_bytes; /* buffered response cap; 0 -> 64 MiB */
    long timeout_ms;              /* upstream timeout; 0 -> 30000 */
    int max_idle_handles;         /* pooled curl handle pairs; 0 -> 32 */
    bss_log *log;                 /* may be NULL; not owned */
    bss_metrics *metrics;         /* may be NULL; not owned */
    gw_guard *guard;              /* who may call what (guard.h); NULL lets
                                     everything through (tests of the
                                     forwarding alone); not owned */
    const char *internal_token;   /* sent upstream as X-Bss-Internal-Token
                                     (internal_auth.h); NULL or "" for none */
} gw_proxy_options;

/* Creates a proxy (no connection is opened yet). Options are copied.
 * Returns NULL with the reason in err (may be NULL) for a missing route
 * table, a negative option, or when memory runs out. */
gw_proxy *gw_proxy_new(const gw_proxy_options *opts, char *err);

/* A bss_http_handler, installed as the server's fallback; ctx is the
 * gw_proxy. A method the gateway does not proxy (see
 * gw_routes_method_allowed) gets 405 METHOD_NOT_ALLOWED with an Allow
 * header. Then the request path is looked up in the route table: no match
 * gives 404 problem ROUTE_NOT_FOUND, a match is forwarded with
 * gw_proxy_forward. Returns the status sent (or a negative
 * BSS_ERR_* when no reply could be sent, see bss_http_handler). */
int gw_proxy_handle(bss_request *req, void *ctx);

/* Forwards req to route's upstream and replies with its answer or with one
 * of the problems listed above. Returns the status sent, or a negative
 * BSS_ERR_* when even the reply failed before anything was sent
 * (bss_http then answers 500). */
int gw_proxy_forward(gw_proxy *p, bss_request *req, const gw_route *route);

/* Frees the pooled curl handles (closing their upstream connections) and
 * the proxy. Call only when no request can be running (after the server
 * has stopped). NULL is a no-op. */
void gw_proxy_free(gw_proxy *p);

/* 1 when s is a well-formed W3C traceparent of version 00: exactly
 * "00-" 32 lowercase hex "-" 16 lowercase hex "-" 2 lowercase hex, with
 * neither id all zeros; else 0 (also for NULL). */
int gw_traceparent_valid(const char *s);

/* Writes a new traceparent "00-<random trace id>-<random parent id>-01"
 * into out (GW_TRACEPARENT_LEN + 1 bytes). Returns BSS_OK, or BSS_ERR_IO
 * when the kernel gives no randomness (out is then "" ). */
int gw_traceparent_new(char out[GW_TRACEPARENT_LEN + 1]);

/* Percent-encodes a URL-decoded path for the upstream request line: bytes
 * outside RFC 3986 pchar ("A-Za-z0-9-._~!$&'()*+,;=:@") and '/' become %XX.
 * Writes a NUL-terminated string into out. Returns the length written, or
 * BSS_ERR_INVALID when it does not fit in outlen (out is then ""). */
long gw_path_encode(const char *path, char *out, size_t outlen);

#endif
