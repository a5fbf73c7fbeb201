/*
 * http.h - the HTTP server of a bssiot service: civetweb underneath, a route
 * table, request accessors, body limits, JSON and RFC 9457 problem replies.
 *
 * One bss_http owns one civetweb context. civetweb runs one thread per
 * connection (num_threads = the number of concurrent connections); every
 * request is routed by this module, not by civetweb:
 *
 *   - Routes are (method, pattern) pairs such as
 *     ("GET", "/customers/{svcContNo}/orders/{orderId}"). A pattern matches a
 *     path with the same number of '/'-separated segments where each literal
 *     segment is equal and each {param} segment is non-empty. Among the
 *     routes that match both path and method, the most specific wins: going
 *     left to right, the first segment where two patterns differ decides,
 *     and a literal beats a {param} ("/raters/usage-files" beats
 *     "/raters/{svcContNo}"). Registration order breaks exact ties.
 *   - A path some pattern matches, but not with this method, gets 405 with an
 *     Allow header listing every method that would work. A path no pattern
 *     matches at all, whatever the method (any depth, a trailing '/', more
 *     than 16 segments, "*"), goes to the fallback handler when one is set
 *     (see bss_http_set_fallback), else gets 404 NOT_FOUND. Both are
 *     problem+json. HEAD is served by the GET route with the body left out
 *     (the fallback sees HEAD itself). Paths are matched after civetweb
 *     URL-decodes and cleans them ("//" collapses to "/", "." and ".."
 *     segments are resolved), so an encoded "/" (%2F) in a parameter splits
 *     the segment.
 *   - Requests civetweb rejects itself (malformed request line, headers over
 *     16 KiB) get a problem+json too, code BAD_REQUEST etc., and the
 *     connection is closed.
 *   - Built-in routes: GET /healthz (200 {"status":"ok"}), GET /readyz (see
 *     bss_http_set_readiness) and GET /metrics (Prometheus text).
 *   - Every response carries X-Request-Id (the client's if sane, else a new
 *     UUID), Cache-Control: no-store and an exact Content-Length, so
 *     keep-alive works. A handler that returns without replying, or returns
 *     < 0 without replying, produces 500 problem INTERNAL.
 *   - Every request counts in bss_http_requests_total{route,method,status}
 *     and bss_http_request_duration_seconds{route}, where route is the
 *     matched pattern, "fallback" for the fallback handler, or "unmatched"
 *     (404, and 503 while stopping), and is logged at debug level.
 *   - Request bodies are capped at max_body_bytes without buffering beyond
 *     the cap: Content-Length is checked first, and chunked bodies are
 *     counted while they are read. When a reply is sent while part of the
 *     request body is unread, up to max_body_bytes more are drained so the
 *     connection can be kept alive; past that the connection is closed after
 *     the response.
 *   - "Expect: 100-continue" (HTTP/1.1): bss_req_body and bss_req_read send
 *     "HTTP/1.1 100 Continue" once, just before the body is first read (not
 *     for a request without a body, nor when bss_req_body refuses it by
 *     Content-Length). A reply sent before that does not wait for the body,
 *     which the client has not sent: it goes out with Connection: close and
 *     nothing is drained.
 *   - Graceful stop: bss_http_stop first makes every new request get 503
 *     SHUTTING_DOWN (Retry-After: 1, Connection: close), lets the handlers
 *     already running finish and send their replies (with Connection:
 *     close), at most drain_timeout_ms, and only then stops civetweb.
 *
 * Threading: configure (route, set_readiness, set_fallback) before
 * bss_http_start; after that the route table is read-only and handlers run
 * concurrently on civetweb's worker threads. A bss_request is valid only inside its handler
 * call and belongs to that one thread.
 */
#ifndef BSS_HTTP_H
#define BSS_HTTP_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "log.h"
#include "metrics.h"

struct mg_connection;

typedef struct bss_http bss_http;
typedef struct bss_request bss_request;

/* A route handler. It must send exactly one reply (bss_reply_*, or write
 * to bss_req_conn itself and call bss_req_mark_replied) and return the HTTP
 * status it sent, or a negative BSS_ERR_* when it failed before replying
 * (the server then replies 500 INTERNAL). */
typedef int (*bss_http_handler)(bss_request *req, void *ctx);

typedef struct bss_http_options {
    const char *listen;        /* "127.0.0.1:8088", "8088" (all interfaces) or
                                  "127.0.0.1:0" (any free port, see
                                  bss_http_port); required */
    int num_threads;           /* worker threads = max connections; 0 -> 32 */
    size_t max_body_bytes;     /* bss_req_body/bss_req_json cap; 0 -> 1 MiB */
    int request_timeout_ms;    /* socket read/write timeout; 0 -> 30000 */
    int keep_alive_timeout_ms; /* idle keep-alive wait; 0 -> 5000 */
    int drain_timeout_ms;      /* how long bss_http_stop waits for running
                                  requests; 0 -> BSS_HTTP_DEFAULT_DRAIN_MS */
    const char *service;       /* for logs; may be NULL */
    bss_log *log;              /* may be NULL; not owned */
    bss_metrics *metrics;      /* may be NULL; not owned */
} bss_http_options;

#define BSS_HTTP_DEFAULT_THREADS 32
#define BSS_HTTP_DEFAULT_MAX_BODY (1024u * 1024u)
#define BSS_HTTP_DEFAULT_TIMEOUT_MS 30000
#define BSS_HTTP_DEFAULT_DRAIN_MS 10000
#define BSS_HTTP_MAX_ROUTES 256
#define BSS_HTTP_MAX_PARAMS 8
#define BSS_HTTP_MAX_JSON_DEPTH 32
#define BSS_REQUEST_ID_MAX 128

/* Creates a server (not yet listening) with the built-in routes registered,
 * and initializes the civetweb library (reference-counted by civetweb).
 * Options are copied; log and metrics must outlive the server. Returns NULL
 * with a reason in err (may be NULL) for a missing listen address, a
 * negative option or no memory. */
bss_http *bss_http_new(const bss_http_options *opts, char *err);

/* Adds a route. method is an uppercase HTTP method ("GET", "POST", ...);
 * pattern starts with '/', its segments are literals or "{name}" (name
 * 1-63 chars, unique within the pattern, at most BSS_HTTP_MAX_PARAMS per
 * pattern, at most 16 segments; no empty segments or trailing '/'; "/"
 * alone is the root). Only before start.
 * Returns BSS_OK; BSS_ERR_INVALID for a malformed pattern/method, NULL
 * handler, a call after start, or more than BSS_HTTP_MAX_ROUTES routes;
 * BSS_ERR_CONFLICT when the same method and pattern are already routed;
 * BSS_ERR_NOMEM. On error nothing is added. */
int bss_http_route(bss_http *h, const char *method, const char *pattern,
                   bss_http_handler fn, void *ctx);

/* Sets the handler for requests whose path matches no route pattern with
 * any method: instead of the 404 NOT_FOUND, fn(req, ctx) runs with the same
 * contract as a route handler (exactly one reply; bss_req_route gives
 * "fallback", which is also the metrics route label; bss_req_param finds
 * nothing). Any method reaches it, HEAD included as "HEAD". A path that a
 * pattern matches with another method still gets 405 and never reaches
 * the fallback, and the built-in routes stay. NULL fn removes it. Only
 * before start (ignored after). */
void bss_http_set_fallback(bss_http *h, bss_http_handler fn, void *ctx);

/* Sets a gate in front of every route: fn(req, ctx) runs before routing
 * for every request except GET/HEAD /healthz and /readyz (probes stay
 * open). When it replies (e.g. 401), the request ends there; when it
 * returns without replying, routing goes on as usual. NULL fn removes it.
 * Only before start (ignored after). */
void bss_http_set_gate(bss_http *h, bss_http_handler fn, void *ctx);

/* Sets the readiness check behind GET /readyz. ready() returns BSS_OK when
 * the service can take traffic, anything else when not, and then may write
 * a reason into why (whylen bytes). GET /readyz answers 200
 * {"status":"ready"} or 503 problem NOT_READY whose detail is the reason.
 * Without a check the service is always ready. Call before start, or from a
 * single thread while no /readyz request can run. */
void bss_http_set_readiness(bss_http *h, int (*ready)(void *ctx, char *why, size_t whylen),
                            void *ctx);

/* Binds and starts serving. Returns BSS_OK, BSS_ERR_IO with civetweb's
 * reason in err (e.g. the port is in use), or BSS_ERR_INVALID when already
 * started. Threads inherit the caller's signal mask. */
int bss_http_start(bss_http *h, char *err);

/* The bound TCP port after a successful start (the real one for port 0),
 * else -1. */
int bss_http_port(const bss_http *h);

/* Stops gracefully, in two steps:
 *   1. drain: from now on every new request (on a new or a kept-alive
 *      connection) is answered 503 problem SHUTTING_DOWN with Retry-After: 1
 *      and Connection: close, without running its handler or reading its
 *      body. The requests whose handlers are already running finish and
 *      their replies go out in full (with Connection: close). This waits
 *      until none is left, or drain_timeout_ms at most (then a warning is
 *      logged and the stragglers cannot reply any more). Idle keep-alive
 *      connections are not waited for.
 *   2. mg_stop: the listener closes and civetweb's threads are joined (a
 *      helper thread pokes the listening socket so civetweb's 2-second poll
 *      does not delay it); an idle keep-alive connection can still hold this
 *      step up to ~2 s.
 * So with nothing running it takes milliseconds. Call from one thread, not
 * from a handler. Idempotent; safe on a server that never started; NULL
 * no-op. A stopped server cannot be started again. */
void bss_http_stop(bss_http *h);

/* Stops (if needed) and frees the server, then releases the civetweb
 * library reference. NULL is a no-op. */
void bss_http_free(bss_http *h);

/* The server's max_body_bytes. */
size_t bss_http_max_body(const bss_http *h);

/* ---- request accessors (valid only during the handler call) ---------- */

/* Request method ("GET"), never NULL. */
const char *bss_req_method(const bss_request *req);
/* URL-decoded path without the query ("/customers/C1"), never NULL. */
const char *bss_req_path(const bss_request *req);
/* Raw (still encoded) query string after '?', or NULL when there is none. */
const char *bss_req_query(const bss_request *req);
/* The route pattern that matched ("/customers/{svcContNo}"), "fallback"
 * inside the fallback handler, or "unmatched". */
const char *bss_req_route(const bss_request *req);

/* Copies the URL-decoded value of query parameter `name` (first
 * occurrence; '+' decodes to space) into out. Returns BSS_OK,
 * BSS_ERR_NOTFOUND when absent, BSS_ERR_INVALID when it does not fit in
 * outlen (out is then ""). */
int bss_req_query_param(const bss_request *req, const char *name, char *out,
                        size_t outlen);

/* The value of path parameter `name` ("svcContNo" for pattern segment
 * "{svcContNo}"), or NULL when the route has no such parameter. */
const char *bss_req_param(const bss_request *req, const char *name);

/* The first request header named `name` (case-insensitive), or NULL. */
const char *bss_req_header(const bss_request *req, const char *name);

/* The request id: the X-Request-Id request header when it is 1-128
 * characters of printable ASCII without spaces, else a new UUID. Never
 * NULL. Echoed on every response. */
const char *bss_req_id(const bss_request *req);

/* The correlation id: the X-Correlation-Id request header when sane (same
 * rule as the request id), else the request id. Never NULL. */
const char *bss_req_correlation_id(const bss_request *req);

/* The civetweb connection, for handlers that stream (call
 * bss_req_mark_replied after writing a response directly). */
struct mg_connection *bss_req_conn(bss_request *req);

/* The server's log (may be NULL), for handlers logging with the ids. */
bss_log *bss_req_log(const bss_request *req);

/* Reads the whole body once and caches it (sending "100 Continue" first
 * when the client expects it): *body points to len bytes plus a
 * terminating NUL, owned by the request (freed after the handler returns).
 * Later calls return the same bytes. Returns BSS_OK; BSS_ERR_INVALID when
 * the body exceeds max_body_bytes (nothing beyond the cap is read; reply
 * 413, e.g. with bss_reply_problem(req, 413, "BODY_TOO_LARGE", ...));
 * BSS_ERR_IO when the client sent less than announced, timed out or hung
 * up; BSS_ERR when bss_req_read was used on this request before;
 * BSS_ERR_NOMEM. A request without a body gives len 0. */
int bss_req_body(bss_request *req, const char **body, size_t *len);

/* Streams the body: reads up to len bytes into buf (chunked encoding is
 * decoded); the first call with len > 0 sends "100 Continue" when the
 * client expects it. Returns the number of bytes read, 0 at the end of the
 * body, or a negative value on error (client gone, timeout). Not capped by
 * max_body_bytes: the caller enforces its own limit. Do not mix with
 * bss_req_body on one request. */
long long bss_req_read(bss_request *req, void *buf, size_t len);

/* Parses the body as a JSON object. Returns the object (caller frees with
 * cJSON_Delete) and sets *status_out to 200; or, having already replied
 * with a problem, returns NULL with *status_out set to the status sent:
 * 415 UNSUPPORTED_MEDIA_TYPE when Content-Type is not application/json
 * (parameters such as charset allowed) or application/<x>+json; 413
 * BODY_TOO_LARGE; 400 BODY_READ_FAILED when the body cannot be read; 422
 * JSON_TOO_DEEP when arrays/objects nest deeper than
 * BSS_HTTP_MAX_JSON_DEPTH (checked before parsing); 400 MALFORMED_JSON for
 * invalid JSON or UTF-8, trailing garbage, or a value that is not an object;
 * 500 INTERNAL when memory runs out. status_out may be NULL. */
cJSON *bss_req_json(bss_request *req, int *status_out);

/* Tells the server a handler wrote its response directly to bss_req_conn
 * with `status`, so no 500 is added and the status is counted. */
void bss_req_mark_replied(bss_request *req, int status);

/* 1 when a reply has been sent for this request, else 0. */
int bss_req_replied(const bss_request *req);

/* ---- replies: exactly one per request ---------------------------------
 *
 * Each writes the status line and headers Content-Type (when given),
 * Content-Length (omitted for 1xx/204/304, which carry no body),
 * X-Request-Id, Cache-Control: no-store, Connection, then the body (not for
 * HEAD). They return `status`, or BSS_ERR_INVALID when the request was
 * already replied to or status is outside 100-599 (nothing is sent), or
 * BSS_ERR_IO when the client went away mid-write (the status still counts
 * as sent). */

/* Replies with cJSON_PrintUnformatted(body) as application/json; a NULL
 * body sends no body. BSS_ERR_NOMEM (nothing sent) when printing fails. */
int bss_reply_json(bss_request *req, int status, const cJSON *body);

/* bss_reply_json for a body the handler built only to send: takes ownership
 * and frees it. A NULL body means building it ran out of memory: nothing is
 * sent and BSS_ERR_NOMEM is returned (the server then answers 500). */
int bss_reply_json_owned(bss_request *req, int status, cJSON *body);

/* Replies with len bytes of body. content_type may be NULL (no header).
 * extra_headers, when not NULL, is a block of complete header lines
 * "Name: value\r\n..." added verbatim (the caller guarantees no injected
 * CR/LF inside values). */
int bss_reply_raw(bss_request *req, int status, const char *content_type,
                  const char *body, size_t len, const char *extra_headers);

/* Replies with an RFC 9457 problem (application/problem+json):
 *   {"type":"https://bssiot.dev/problems/line-not-found",  (from code
 *    "LINE_NOT_FOUND": lowercase, '_' -> '-'), "title":..., "status":...,
 *    "detail":... (left out when NULL), "code":"LINE_NOT_FOUND",
 *    "instance":"<request path>", "requestId":"<request id>"} */
int bss_reply_problem(bss_request *req, int status, const char *code, const char *title,
                      const char *detail);

/* Like bss_reply_problem with printf-formatted detail. */
int bss_reply_problemf(bss_request *req, int status, const char *code, const char *title,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Like bss_reply_problem plus extra header lines (see bss_reply_raw), e.g.
 * "Allow: GET, POST\r\n" or "Retry-After: 1\r\n". */
int bss_reply_problem_h(bss_request *req, int status, const char *code, const char *title,
                        const char *detail, const char *extra_headers);

/* Writes the problem "type" URI for code into out (outlen bytes). Returns
 * BSS_OK or BSS_ERR_INVALID when it does not fit. */
int bss_problem_type(const char *code, char *out, size_t outlen);

#endif
