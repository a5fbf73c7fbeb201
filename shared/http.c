/* http.c - see http.h.
 *
 * civetweb calls one catch-all handler (its begin_request callback) for
 * every request; it builds a bss_request on the worker thread's stack,
 * routes it through our own table, runs the handler, adds a 500 if the
 * handler sent nothing, then records the metrics and the access log.
 * Responses are written by hand (status line, headers, body in one mg_write
 * when small) so that Content-Length, X-Request-Id and Connection are
 * always exact.
 *
 * Graceful stop: every request is counted in `inflight` for the whole of
 * on_request. bss_http_stop sets `stopping` (new requests then get 503),
 * waits on drain_cv until inflight is 0 (bounded by drain_ms), and only then
 * calls mg_stop, because civetweb refuses every write once its own stop
 * flag is set. */
#include "http.h"

#include "bss_error.h"
#include "isotime.h"
#include "uuid.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEGMENTS 16
#define METHOD_MAX 16
#define SMALL_REPLY 65536
#define HEAD_MAX 1024     /* status line and our headers, without extra ones */
#define REPLY_INLINE 4096 /* answers up to this size are built on the stack */
#define PATH_INLINE 512   /* request paths up to this length are split on the stack */
#define LISTEN_MAX 256

struct route {
    char method[METHOD_MAX];
    char *pattern;
    int nseg;
    char *segs[MAX_SEGMENTS]; /* literal text, or the parameter name */
    unsigned char is_param[MAX_SEGMENTS];
    bss_http_handler fn;
    void *ctx;
};

struct bss_http {
    struct mg_context *mg;
    int lib_ref;
    int started;
    int port;
    char listen[LISTEN_MAX];
    char threads[16], timeout[16], keepalive[16];
    size_t max_body;
    char service[64];
    bss_log *log;
    bss_metrics *metrics;
    struct route *routes;
    size_t nroutes;
    int (*ready)(void *ctx, char *why, size_t whylen);
    void *ready_ctx;
    bss_http_handler fallback;
    void *fallback_ctx;
    bss_http_handler gate;
    void *gate_ctx;
    /* graceful stop: requests inside on_request, and the drain */
    int drain_ms;
    atomic_int stopping;
    atomic_long inflight;
    int sync_ok; /* drain_mu/drain_cv initialized */
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;
};

enum body_state { BODY_NONE, BODY_CACHED, BODY_STREAMED, BODY_TOO_LARGE, BODY_IO_ERROR };

struct bss_request {
    bss_http *http;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const char *method;
    const char *path;
    const struct route *route;
    int fallback; /* served by the fallback handler */
    const char *pnames[BSS_HTTP_MAX_PARAMS];
    const char *pvalues[BSS_HTTP_MAX_PARAMS];
    int nparams;
    char *pathbuf; /* split copy of the path that pvalues point into */
    char id[BSS_REQUEST_ID_MAX + 1];
    char corr[BSS_REQUEST_ID_MAX + 1];
    /* body */
    int body_state;
    char *body;
    size_t body_len;
    long long content_length; /* -1 when unknown */
    int chunked;
    long long consumed;
    int eof;
    int expect_continue; /* HTTP/1.1 "Expect: 100-continue" */
    int continue_sent;
    /* reply */
    int replied;
    int status;
    int is_head;
    int force_close; /* close after the reply without draining the body */
    /* Headers the runtime itself looks at, found in one pass (NULL: absent). */
    const char *h_connection, *h_request_id, *h_correlation_id, *h_transfer_encoding,
        *h_expect;
};

/* ---- small helpers ----------------------------------------------------- */

static int sane_id(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > BSS_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static int valid_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n >= METHOD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

static int utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* ---- server lifecycle ---------------------------------------------------- */

static int builtin_healthz(bss_request *req, void *ctx);
static int builtin_readyz(bss_request *req, void *ctx);

static int no_file_authorization(struct mg_connection *conn, void *cbdata)
{
    (void)conn;
    (void)cbdata;
    return 1;
}
static int builtin_metrics(bss_request *req, void *ctx);

bss_http *bss_http_new(const bss_http_options *opts, char *err)
{
    if (opts == NULL || opts->listen == NULL || opts->listen[0] == '\0') {
        bss_seterr(err, "http: no listen address");
        return NULL;
    }
    if (opts->num_threads < 0 || opts->request_timeout_ms < 0 ||
        opts->keep_alive_timeout_ms < 0 || opts->drain_timeout_ms < 0) {
        bss_seterr(err, "http: negative option");
        return NULL;
    }
    if (strlen(opts->listen) >= LISTEN_MAX) {
        bss_seterr(err, "http: listen address too long");
        return NULL;
    }
    bss_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        bss_seterr(err, "http: out of memory");
        return NULL;
    }
    snprintf(h->listen, sizeof h->listen, "%s", opts->listen);
    snprintf(h->threads, sizeof h->threads, "%d",
             opts->num_threads ? opts->num_threads : BSS_HTTP_DEFAULT_THREADS);
    snprintf(h->timeout, sizeof h->timeout, "%d",
             opts->request_timeout_ms ? opts->request_timeout_ms
                                      : BSS_HTTP_DEFAULT_TIMEOUT_MS);
    snprintf(h->keepalive, sizeof h->keepalive, "%d",
             opts->keep_alive_timeout_ms ? opts->keep_alive_timeout_ms : 5000);
    h->max_body = opts->max_body_bytes ? opts->max_body_bytes : BSS_HTTP_DEFAULT_MAX_BODY;
    snprintf(h->service, sizeof h->service, "%s", opts->service ? opts->service : "");
    h->log = opts->log;
    h->metrics = opts->metrics;
    h->port = -1;
    h->drain_ms = opts->drain_timeout_ms ? opts->drain_timeout_ms : BSS_HTTP_DEFAULT_DRAIN_MS;
    atomic_init(&h->stopping, 0);
    atomic_init(&h->inflight, 0);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        bss_seterr(err, "http: out of memory");
        free(h);
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&h->drain_mu, NULL) != 0) {
        pthread_condattr_destroy(&ca);
        bss_seterr(err, "http: out of memory");
        free(h);
        return NULL;
    }
    if (pthread_cond_init(&h->drain_cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&h->drain_mu);
        bss_seterr(err, "http: out of memory");
        free(h);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    h->sync_ok = 1;
    mg_init_library(0);
    h->lib_ref = 1;
    if (bss_http_route(h, "GET", "/healthz", builtin_healthz, h) != BSS_OK ||
        bss_http_route(h, "GET", "/readyz", builtin_readyz, h) != BSS_OK ||
        bss_http_route(h, "GET", "/metrics", builtin_metrics, h) != BSS_OK) {
        bss_seterr(err, "http: out of memory");
        bss_http_free(h);
        return NULL;
    }
    bss_metrics_describe(h->metrics, "bss_http_requests_total",
                         "HTTP requests by route pattern, method and status.");
    bss_metrics_describe(h->metrics, "bss_http_request_duration_seconds",
                         "HTTP request latency by route pattern.");
    return h;
}

static void free_route(struct route *r)
{
    free(r->pattern);
    for (int i = 0; i < r->nseg; i++)
        free(r->segs[i]);
}

int bss_http_route(bss_http *h, const char *method, const char *pattern,
                   bss_http_handler fn, void *ctx)
{
    if (h == NULL || method == NULL || pattern == NULL || fn == NULL || h->started ||
        !valid_method(method) || pattern[0] != '/' || h->nroutes >= BSS_HTTP_MAX_ROUTES)
        return BSS_ERR_INVALID;
    struct route r;
    memset(&r, 0, sizeof r);
    snprintf(r.method, sizeof r.method, "%s", method);
    r.fn = fn;
    r.ctx = ctx;
    int nparams = 0;
    const char *p = pattern + 1;
    int rc = BSS_OK;
    while (*p != '\0' && rc == BSS_OK) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || r.nseg >= MAX_SEGMENTS) {
            rc = BSS_ERR_INVALID;
            break;
        }
        int is_param = p[0] == '{';
        if (is_param) {
            if (n < 3 || n > 65 || p[n - 1] != '}' || ++nparams > BSS_HTTP_MAX_PARAMS) {
                rc = BSS_ERR_INVALID;
                break;
            }
            for (size_t i = 1; i + 1 < n; i++)
                if (p[i] == '{' || p[i] == '}')
                    rc = BSS_ERR_INVALID;
            r.segs[r.nseg] = strndup(p + 1, n - 2);
        } else {
            if (memchr(p, '{', n) != NULL || memchr(p, '}', n) != NULL) {
                rc = BSS_ERR_INVALID;
                break;
            }
            r.segs[r.nseg] = strndup(p, n);
        }
        if (r.segs[r.nseg] == NULL) {
            rc = BSS_ERR_NOMEM;
            break;
        }
        r.is_param[r.nseg] = (unsigned char)is_param;
        r.nseg++;
        if (slash == NULL)
            break;
        p = slash + 1;
        if (*p == '\0')
            rc = BSS_ERR_INVALID; /* trailing slash */
    }
    for (int i = 0; rc == BSS_OK && i < r.nseg; i++)
        for (int k = i + 1; k < r.nseg; k++)
            if (r.is_param[i] && r.is_param[k] && strcmp(r.segs[i], r.segs[k]) == 0)
                rc = BSS_ERR_INVALID; /* the same {name} twice */
    if (rc == BSS_OK) {
        for (size_t i = 0; i < h->nroutes; i++)
            if (strcmp(h->routes[i].method, method) == 0 &&
                strcmp(h->routes[i].pattern, pattern) == 0)
                rc = BSS_ERR_CONFLICT;
    }
    if (rc == BSS_OK) {
        r.pattern = strdup(pattern);
        struct route *nr = r.pattern ? realloc(h->routes, (h->nroutes + 1) * sizeof *nr) : NULL;
        if (nr == NULL) {
            rc = BSS_ERR_NOMEM;
        } else {
            h->routes = nr;
            h->routes[h->nroutes++] = r;
            return BSS_OK;
        }
    }
    free_route(&r);
    return rc;
}

void bss_http_set_readiness(bss_http *h, int (*ready)(void *ctx, char *why, size_t whylen),
                            void *ctx)
{
    if (h == NULL)
        return;
    h->ready = ready;
    h->ready_ctx = ctx;
}

void bss_http_set_gate(bss_http *h, bss_http_handler fn, void *ctx)
{
    if (h == NULL || h->started)
        return;
    h->gate = fn;
    h->gate_ctx = ctx;
}

/* The probes a gate never sees: an orchestrator must reach them without
 * credentials. */
static int is_probe(const bss_request *req)
{
    return (strcmp(req->method, "GET") == 0 || req->is_head) &&
           (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0);
}

void bss_http_set_fallback(bss_http *h, bss_http_handler fn, void *ctx)
{
    if (h == NULL || h->started)
        return;
    h->fallback = fn;
    h->fallback_ctx = ctx;
}

size_t bss_http_max_body(const bss_http *h) { return h ? h->max_body : 0; }

int bss_http_port(const bss_http *h) { return h ? h->port : -1; }

static int on_request(struct mg_connection *conn, void *cbdata);

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    const struct mg_context *ctx = conn ? mg_get_context(conn) : NULL;
    bss_http *h = ctx ? mg_get_user_data(ctx) : NULL;
    if (h == NULL)
        return 0;
    bss_log_warn(h->log, "civetweb: %s", message);
    return 1;
}

static int on_http_error(struct mg_connection *conn, int status, const char *msg);

/* Every request is served from begin_request, not from a handler set with
 * mg_set_request_handler: that can only be set once mg_start2 listens, and
 * a request accepted in between got civetweb's own 404 (seen right after a
 * service restarted under the chaos test). The callbacks are in place
 * before the first accept, and the routes are frozen by then. */
static int on_begin_request(struct mg_connection *conn)
{
    return on_request(conn, mg_get_user_data(mg_get_context(conn)));
}

int bss_http_start(bss_http *h, char *err)
{
    if (h == NULL || h->started) {
        bss_seterr(err, "http: already started");
        return BSS_ERR_INVALID;
    }
    const char *options[] = {"listening_ports",       h->listen,
                             "num_threads",           h->threads,
                             "request_timeout_ms",    h->timeout,
                             "keep_alive_timeout_ms", h->keepalive,
                             "enable_keep_alive",     "yes",
                             "max_request_size",      "16384",
                             "tcp_nodelay",           "1",
                             NULL};
    struct mg_callbacks cbs;
    memset(&cbs, 0, sizeof cbs);
    cbs.log_message = on_log_message;
    cbs.http_error = on_http_error;
    cbs.begin_request = on_begin_request;
    struct mg_init_data init = {&cbs, h, options};
    char text[BSS_ERRLEN] = "";
    unsigned code = 0;
    struct mg_error_data error = {&code, text, sizeof text};
    h->mg = mg_start2(&init, &error);
    if (h->mg == NULL) {
        bss_seterr(err, "http: cannot listen on %s: %s", h->listen,
                   text[0] ? text : "unknown civetweb error");
        return BSS_ERR_IO;
    }
    h->started = 1;
    /* Access is decided in the handlers (the gateway's guard, the internal
     * token gate). begin_request answers every request, so civetweb never
     * gets to its own file serving; should it ever, it must not obey a
     * .htpasswd file that appeared. */
    mg_set_auth_handler(h->mg, "/", no_file_authorization, NULL);
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(h->mg, 4, ports);
    h->port = n > 0 ? ports[0].port : -1;
    return BSS_OK;
}

/* civetweb's master thread notices the stop flag only when its poll() on the
 * listening socket returns, which takes up to two seconds when idle. While
 * mg_stop waits, a helper thread connects to the listening port every 20 ms
 * to wake it, so a stop takes milliseconds plus the in-flight requests. */
struct stop_waker {
    atomic_int done;
    struct sockaddr_in addr;
};

static void *stop_waker_run(void *arg)
{
    struct stop_waker *w = arg;
    while (!atomic_load(&w->done)) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            (void)connect(fd, (const struct sockaddr *)&w->addr, sizeof w->addr);
            close(fd);
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Fills addr with an IPv4 address that reaches the listening socket: the
 * host part of "host:port" (0.0.0.0 becomes loopback), or loopback for a
 * bare port. Returns 0 when the listen spec is not IPv4 (no waker then). */
static int waker_address(const bss_http *h, struct sockaddr_in *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)h->port);
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char *colon = strrchr(h->listen, ':');
    if (colon == NULL || h->port <= 0)
        return h->port > 0;
    char host[64];
    size_t n = (size_t)(colon - h->listen);
    if (n == 0 || n >= sizeof host || strchr(h->listen, ',') != NULL)
        return 0;
    memcpy(host, h->listen, n);
    host[n] = '\0';
    struct in_addr in;
    if (inet_pton(AF_INET, host, &in) != 1)
        return 0;
    if (in.s_addr != htonl(INADDR_ANY))
        addr->sin_addr = in;
    return 1;
}

/* Waits until no request is inside on_request, at most drain_ms. New
 * requests are answered 503 as soon as `stopping` is set, so only the
 * handlers already running are waited for. */
static void drain_requests(bss_http *h)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += h->drain_ms / 1000;
    deadline.tv_nsec += (long)(h->drain_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    long left;
    pthread_mutex_lock(&h->drain_mu);
    while ((left = atomic_load(&h->inflight)) > 0) {
        if (pthread_cond_timedwait(&h->drain_cv, &h->drain_mu, &deadline) == ETIMEDOUT) {
            left = atomic_load(&h->inflight);
            break;
        }
    }
    pthread_mutex_unlock(&h->drain_mu);
    if (left > 0)
        bss_log_warn(h->log, "http: %ld request(s) still running after %d ms; stopping anyway",
                     left, h->drain_ms);
}

void bss_http_stop(bss_http *h)
{
    if (h == NULL || h->mg == NULL)
        return;
    atomic_store(&h->stopping, 1);
    drain_requests(h);
    struct stop_waker w;
    atomic_init(&w.done, 0);
    pthread_t t;
    int have_waker = waker_address(h, &w.addr) &&
                     pthread_create(&t, NULL, stop_waker_run, &w) == 0;
    mg_stop(h->mg);
    if (have_waker) {
        atomic_store(&w.done, 1);
        pthread_join(t, NULL);
    }
    h->mg = NULL;
}

void bss_http_free(bss_http *h)
{
    if (h == NULL)
        return;
    bss_http_stop(h);
    for (size_t i = 0; i < h->nroutes; i++)
        free_route(&h->routes[i]);
    free(h->routes);
    if (h->lib_ref)
        mg_exit_library();
    if (h->sync_ok) {
        pthread_cond_destroy(&h->drain_cv);
        pthread_mutex_destroy(&h->drain_mu);
    }
    free(h);
}

/* ---- routing --------------------------------------------------------------- */

/* Splits path (a copy, modified in place) into segments. Returns the count,
 * or -1 when there are more than MAX_SEGMENTS. */
static int split_path(char *path, char **segs)
{
    int n = 0;
    if (path[0] != '/')
        return -1; /* "*" and the like: no pattern matches */
    char *p = path + 1;
    if (*p == '\0')
        return 0;
    for (;;) {
        if (n >= MAX_SEGMENTS)
            return -1;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

static int route_matches(const struct route *r, char **segs, int nseg)
{
    if (r->nseg != nseg)
        return 0;
    for (int i = 0; i < nseg; i++) {
        if (r->is_param[i]) {
            if (segs[i][0] == '\0')
                return 0;
        } else if (strcmp(r->segs[i], segs[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* 1 when a is strictly more specific than b (same segment count). */
static int more_specific(const struct route *a, const struct route *b)
{
    for (int i = 0; i < a->nseg; i++)
        if (a->is_param[i] != b->is_param[i])
            return !a->is_param[i];
    return 0;
}

static int method_matches(const struct route *r, const char *method, int is_head)
{
    return strcmp(r->method, method) == 0 || (is_head && strcmp(r->method, "GET") == 0);
}

/* ---- replies ------------------------------------------------------------- */

static int body_complete(const bss_request *req)
{
    if (req->eof)
        return 1;
    if (req->chunked)
        return 0;
    return req->content_length <= 0 || req->consumed >= req->content_length;
}

static long long raw_read(bss_request *req, void *buf, size_t len)
{
    if (body_complete(req))
        return 0;
    if (len > INT_MAX)
        len = INT_MAX;
    if (!req->chunked && req->content_length >= 0 &&
        (long long)len > req->content_length - req->consumed)
        len = (size_t)(req->content_length - req->consumed);
    int n = mg_read(req->conn, buf, len);
    if (n > 0) {
        req->consumed += n;
        return n;
    }
    if (n == 0 && req->chunked) {
        req->eof = 1;
        return 0;
    }
    return -1; /* error, or the client hung up before the announced length */
}

/* Reads and discards what is left of the body, up to max_body_bytes. Returns
 * 1 when the whole body has been consumed (the connection can stay open). */
static int drain_body(bss_request *req)
{
    if (body_complete(req))
        return 1;
    if (req->body_state == BODY_TOO_LARGE || req->body_state == BODY_IO_ERROR)
        return 0;
    if (!req->chunked && req->content_length - req->consumed > (long long)req->http->max_body)
        return 0;
    char scratch[4096];
    size_t budget = req->http->max_body;
    while (!body_complete(req) && budget > 0) {
        long long n = raw_read(req, scratch, budget < sizeof scratch ? budget : sizeof scratch);
        if (n < 0)
            return 0;
        if (n == 0)
            break;
        budget -= (size_t)n;
    }
    return body_complete(req);
}

static int keep_alive_requested(const bss_request *req)
{
    const char *c = req->h_connection;
    if (c != NULL)
        return strcasestr(c, "keep-alive") != NULL && strcasestr(c, "close") == NULL;
    return req->ri->http_version != NULL && strcmp(req->ri->http_version, "1.1") == 0;
}

static char *put_text(char *o, const char *text, size_t n)
{
    memcpy(o, text, n);
    return o + n;
}

/* Writes v in decimal (at most 20 digits). */
static char *put_uint(char *o, unsigned long long v)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *o++ = digits[--n];
    return o;
}

static int send_reply(bss_request *req, int status, const char *content_type,
                      const char *body, size_t len, const char *extra_headers)
{
    if (req->replied || status < 100 || status > 599)
        return BSS_ERR_INVALID;
    req->replied = 1;
    req->status = status;

    /* A client that sent "Expect: 100-continue" and got no 100 has not sent
     * its body and waits for this answer: closing beats waiting for a body
     * that may never come. */
    int may_drain = !req->force_close &&
                    !(req->expect_continue && !req->continue_sent && !body_complete(req));
    int keep = may_drain && drain_body(req) && keep_alive_requested(req) &&
               !atomic_load(&req->http->stopping);
    if (!keep)
        mg_disable_keep_alive(req->conn);
    int no_body = status < 200 || status == 204 || status == 304;
    if (no_body)
        len = 0;

    /* The head is written by hand into one buffer with the body (when small)
     * behind it, so the answer leaves in one send; small answers need no
     * heap. */
    const char *text = mg_get_response_code_text(req->conn, status);
    if (text == NULL)
        text = "";
    size_t text_len = strlen(text), ct_len = content_type ? strlen(content_type) : 0;
    size_t id_len = strlen(req->id);
    size_t head_len = 9 + 4 + text_len + 2 + (content_type ? 14 + ct_len + 2 : 0) +
                      (no_body ? 0 : 16 + 20 + 2) + 14 + id_len + 2 + 25 + 12 +
                      (keep ? 10 : 5) + 2;
    if (head_len >= HEAD_MAX)
        return BSS_ERR_INVALID;
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    size_t blen = (req->is_head || no_body) ? 0 : len;
    size_t cap = head_len + extra + 2 + (blen <= SMALL_REPLY ? blen : 0);
    char inline_out[REPLY_INLINE];
    char *out = cap <= sizeof inline_out ? inline_out : malloc(cap);
    if (out == NULL) {
        mg_disable_keep_alive(req->conn);
        return BSS_ERR_NOMEM;
    }
    char *o = put_text(out, "HTTP/1.1 ", 9);
    o = put_uint(o, (unsigned long long)status);
    *o++ = ' ';
    o = put_text(o, text, text_len);
    o = put_text(o, "\r\n", 2);
    if (content_type != NULL) {
        o = put_text(o, "Content-Type: ", 14);
        o = put_text(o, content_type, ct_len);
        o = put_text(o, "\r\n", 2);
    }
    if (!no_body) {
        o = put_text(o, "Content-Length: ", 16);
        o = put_uint(o, (unsigned long long)len);
        o = put_text(o, "\r\n", 2);
    }
    o = put_text(o, "X-Request-Id: ", 14);
    o = put_text(o, req->id, id_len);
    o = put_text(o, "\r\nCache-Control: no-store\r\nConnection: ", 39);
    o = keep ? put_text(o, "keep-alive\r\n", 12) : put_text(o, "close\r\n", 7);
    if (extra)
        o = put_text(o, extra_headers, extra);
    o = put_text(o, "\r\n", 2);
    if (body != NULL && blen > 0 && blen <= SMALL_REPLY)
        o = put_text(o, body, blen);
    size_t total = (size_t)(o - out);
    int ok = mg_write(req->conn, out, total) == (int)total;
    if (out != inline_out)
        free(out);
    if (ok && blen > SMALL_REPLY) {
        size_t off = 0;
        while (ok && off < blen) {
            size_t chunk = blen - off > (1u << 20) ? (1u << 20) : blen - off;
            ok = mg_write(req->conn, body + off, chunk) == (int)chunk;
            off += chunk;
        }
    }
    if (!ok) {
        mg_disable_keep_alive(req->conn);
        return BSS_ERR_IO;
    }
    return status;
}

int bss_reply_raw(bss_request *req, int status, const char *content_type,
                  const char *body, size_t len, const char *extra_headers)
{
    if (req == NULL)
        return BSS_ERR_INVALID;
    return send_reply(req, status, content_type, body, body ? len : 0, extra_headers);
}

int bss_reply_json(bss_request *req, int status, const cJSON *body)
{
    if (req == NULL || req->replied)
        return BSS_ERR_INVALID;
    if (body == NULL)
        return send_reply(req, status, NULL, NULL, 0, NULL);
    char *text = cJSON_PrintUnformatted(body);
    if (text == NULL)
        return BSS_ERR_NOMEM;
    int rc = send_reply(req, status, "application/json", text, strlen(text), NULL);
    cJSON_free(text);
    return rc;
}

int bss_reply_json_owned(bss_request *req, int status, cJSON *body)
{
    if (body == NULL)
        return BSS_ERR_NOMEM;
    int rc = bss_reply_json(req, status, body);
    cJSON_Delete(body);
    return rc;
}

int bss_problem_type(const char *code, char *out, size_t outlen)
{
    static const char base[] = "https://bssiot.dev/problems/";
    size_t blen = sizeof base - 1;
    if (code == NULL)
        code = "";
    size_t clen = strlen(code);
    if (blen + clen + 1 > outlen)
        return BSS_ERR_INVALID;
    memcpy(out, base, blen);
    for (size_t i = 0; i < clen; i++) {
        char c = code[i];
        out[blen + i] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[blen + clen] = '\0';
    return BSS_OK;
}

int bss_reply_problem_h(bss_request *req, int status, const char *code, const char *title,
                        const char *detail, const char *extra_headers)
{
    if (req == NULL || req->replied)
        return BSS_ERR_INVALID;
    char type[256];
    if (bss_problem_type(code, type, sizeof type) != BSS_OK)
        snprintf(type, sizeof type, "about:blank");
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "type", type) == NULL ||
        cJSON_AddStringToObject(o, "title", title ? title : "") == NULL ||
        cJSON_AddNumberToObject(o, "status", status) == NULL ||
        (detail != NULL && cJSON_AddStringToObject(o, "detail", detail) == NULL) ||
        cJSON_AddStringToObject(o, "code", code ? code : "") == NULL ||
        cJSON_AddStringToObject(o, "instance", req->path) == NULL ||
        cJSON_AddStringToObject(o, "requestId", req->id) == NULL) {
        cJSON_Delete(o);
        return BSS_ERR_NOMEM;
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        return BSS_ERR_NOMEM;
    int rc = send_reply(req, status, "application/problem+json", text, strlen(text),
                        extra_headers);
    cJSON_free(text);
    return rc;
}

int bss_reply_problem(bss_request *req, int status, const char *code, const char *title,
                      const char *detail)
{
    return bss_reply_problem_h(req, status, code, title, detail, NULL);
}

int bss_reply_problemf(bss_request *req, int status, const char *code, const char *title,
                       const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return bss_reply_problem_h(req, status, code, title, detail, NULL);
}

void bss_req_mark_replied(bss_request *req, int status)
{
    if (req == NULL)
        return;
    req->replied = 1;
    req->status = status;
}

int bss_req_replied(const bss_request *req) { return req ? req->replied : 0; }

/* ---- request accessors ------------------------------------------------------ */

const char *bss_req_method(const bss_request *req) { return req->method; }
const char *bss_req_path(const bss_request *req) { return req->path; }
const char *bss_req_query(const bss_request *req) { return req->ri->query_string; }
const char *bss_req_route(const bss_request *req)
{
    if (req->route != NULL)
        return req->route->pattern;
    return req->fallback ? "fallback" : "unmatched";
}
const char *bss_req_id(const bss_request *req) { return req->id; }
const char *bss_req_correlation_id(const bss_request *req) { return req->corr; }
struct mg_connection *bss_req_conn(bss_request *req) { return req->conn; }
bss_log *bss_req_log(const bss_request *req) { return req->http->log; }

const char *bss_req_header(const bss_request *req, const char *name)
{
    return name ? mg_get_header(req->conn, name) : NULL;
}

const char *bss_req_param(const bss_request *req, const char *name)
{
    if (name == NULL)
        return NULL;
    for (int i = 0; i < req->nparams; i++)
        if (strcmp(req->pnames[i], name) == 0)
            return req->pvalues[i];
    return NULL;
}

int bss_req_query_param(const bss_request *req, const char *name, char *out, size_t outlen)
{
    const char *q = req->ri->query_string;
    if (outlen > 0)
        out[0] = '\0';
    if (q == NULL || name == NULL || outlen == 0)
        return q == NULL || name == NULL ? BSS_ERR_NOTFOUND : BSS_ERR_INVALID;
    int n = mg_get_var2(q, strlen(q), name, out, outlen, 0);
    if (n == -1)
        return BSS_ERR_NOTFOUND;
    if (n < 0) {
        out[0] = '\0';
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

/* ---- bodies ------------------------------------------------------------------- */

/* Sends the interim "100 Continue" once, just before the body is first read,
 * when the client asked for it and a body is still to come. */
static void send_continue(bss_request *req)
{
    if (!req->expect_continue || req->continue_sent || req->replied || body_complete(req))
        return;
    req->continue_sent = 1;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (mg_write(req->conn, cont, sizeof cont - 1) != (int)(sizeof cont - 1))
        mg_disable_keep_alive(req->conn);
}

long long bss_req_read(bss_request *req, void *buf, size_t len)
{
    if (req == NULL || req->body_state == BODY_CACHED)
        return -1;
    req->body_state = BODY_STREAMED;
    if (len == 0)
        return 0;
    send_continue(req);
    return raw_read(req, buf, len);
}

int bss_req_body(bss_request *req, const char **body, size_t *len)
{
    switch (req->body_state) {
    case BODY_CACHED:
        *body = req->body;
        *len = req->body_len;
        return BSS_OK;
    case BODY_STREAMED:
        return BSS_ERR;
    case BODY_TOO_LARGE:
        return BSS_ERR_INVALID;
    case BODY_IO_ERROR:
        return BSS_ERR_IO;
    default:
        break;
    }
    size_t max = req->http->max_body;
    if (!req->chunked && req->content_length > (long long)max) {
        req->body_state = BODY_TOO_LARGE;
        return BSS_ERR_INVALID;
    }
    size_t cap = req->chunked ? (max < 16384 ? max : 16384)
                              : (req->content_length > 0 ? (size_t)req->content_length : 0);
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        return BSS_ERR_NOMEM;
    send_continue(req);
    size_t got = 0;
    int rc = BSS_OK;
    for (;;) {
        if (got == cap && req->chunked && cap < max) {
            size_t ncap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                rc = BSS_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        long long n;
        if (got < cap) {
            n = raw_read(req, buf + got, cap - got);
        } else {
            char extra;
            n = req->chunked ? raw_read(req, &extra, 1) : 0;
            if (n > 0) {
                req->body_state = BODY_TOO_LARGE;
                rc = BSS_ERR_INVALID;
                break;
            }
        }
        if (n < 0) {
            req->body_state = BODY_IO_ERROR;
            rc = BSS_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (rc != BSS_OK) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    req->body = buf;
    req->body_len = got;
    req->body_state = BODY_CACHED;
    *body = buf;
    *len = got;
    return BSS_OK;
}

static int json_media_type(const char *ct)
{
    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0 && memchr(ct, '/', n) == ct + 11 &&
           memchr(ct + 12, '/', n - 12) == NULL;
}

/* 0 when fine, 1 when nested deeper than max, 2 when not valid UTF-8. */
static int json_prescan(const char *s, size_t len, int max)
{
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            int n = utf8_seq_len((const unsigned char *)s + i);
            if (n == 0 || i + (size_t)n > len)
                return 2;
            i += (size_t)n - 1;
            esc = 0;
            continue;
        }
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

cJSON *bss_req_json(bss_request *req, int *status_out)
{
    int dummy;
    if (status_out == NULL)
        status_out = &dummy;
    if (!json_media_type(mg_get_header(req->conn, "Content-Type"))) {
        *status_out = bss_reply_problem(req, 415, "UNSUPPORTED_MEDIA_TYPE",
                                        "Unsupported media type",
                                        "Content-Type must be application/json");
        return NULL;
    }
    const char *body;
    size_t len;
    int rc = bss_req_body(req, &body, &len);
    if (rc == BSS_ERR_INVALID) {
        *status_out = bss_reply_problemf(req, 413, "BODY_TOO_LARGE", "Request body too large",
                                         "the body exceeds %zu bytes", req->http->max_body);
        return NULL;
    }
    if (rc == BSS_ERR_NOMEM) {
        *status_out = bss_reply_problem(req, 500, "INTERNAL", "Internal error", "out of memory");
        return NULL;
    }
    if (rc != BSS_OK) {
        *status_out = bss_reply_problem(req, 400, "BODY_READ_FAILED", "Cannot read the body",
                                        "the request body is incomplete or unreadable");
        return NULL;
    }
    int scan = json_prescan(body, len, BSS_HTTP_MAX_JSON_DEPTH);
    if (scan == 1) {
        *status_out = bss_reply_problemf(req, 422, "JSON_TOO_DEEP", "JSON nested too deeply",
                                         "arrays and objects may nest at most %d levels",
                                         BSS_HTTP_MAX_JSON_DEPTH);
        return NULL;
    }
    if (scan == 2) {
        *status_out = bss_reply_problem(req, 400, "MALFORMED_JSON", "Malformed JSON",
                                        "the body is not valid UTF-8");
        return NULL;
    }
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (json != NULL && end != NULL) {
        while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
    }
    if (json == NULL || end != body + len) {
        cJSON_Delete(json);
        size_t at = (end != NULL && end >= body) ? (size_t)(end - body) : 0;
        *status_out = bss_reply_problemf(req, 400, "MALFORMED_JSON", "Malformed JSON",
                                         "invalid JSON near byte %zu", at);
        return NULL;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        *status_out = bss_reply_problem(req, 400, "MALFORMED_JSON", "Malformed JSON",
                                        "the body must be a JSON object");
        return NULL;
    }
    *status_out = 200;
    return json;
}

/* ---- built-in routes ------------------------------------------------------ */

static int builtin_healthz(bss_request *req, void *ctx)
{
    (void)ctx;
    static const char ok[] = "{\"status\":\"ok\"}";
    return bss_reply_raw(req, 200, "application/json", ok, sizeof ok - 1, NULL);
}

static int builtin_readyz(bss_request *req, void *ctx)
{
    const bss_http *h = ctx;
    char why[512] = "";
    if (h->ready != NULL && h->ready(h->ready_ctx, why, sizeof why) != BSS_OK) {
        why[sizeof why - 1] = '\0';
        return bss_reply_problem(req, 503, "NOT_READY", "Service not ready",
                                 why[0] ? why : "not ready");
    }
    static const char ready[] = "{\"status\":\"ready\"}";
    return bss_reply_raw(req, 200, "application/json", ready, sizeof ready - 1, NULL);
}

static int builtin_metrics(bss_request *req, void *ctx)
{
    const bss_http *h = ctx;
    char *text;
    size_t len;
    if (bss_metrics_render(h->metrics, &text, &len) != BSS_OK)
        return BSS_ERR_NOMEM;
    int rc = bss_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
                           NULL);
    free(text);
    return rc;
}

/* ---- the catch-all civetweb handler ------------------------------------------ */

/* The first value of each header the runtime uses, as mg_get_header would
 * find it, from one pass over the request's headers instead of one
 * case-insensitive scan of all of them per name. */
static void find_own_headers(bss_request *req)
{
    for (int i = 0; i < req->ri->num_headers; i++) {
        const char *name = req->ri->http_headers[i].name;
        const char *value = req->ri->http_headers[i].value;
        const char **slot = NULL;
        switch (name != NULL ? strlen(name) : 0) {
        case 6:
            slot = strcasecmp(name, "Expect") == 0 ? &req->h_expect : NULL;
            break;
        case 10:
            slot = strcasecmp(name, "Connection") == 0 ? &req->h_connection : NULL;
            break;
        case 12:
            slot = strcasecmp(name, "X-Request-Id") == 0 ? &req->h_request_id : NULL;
            break;
        case 16:
            slot = strcasecmp(name, "X-Correlation-Id") == 0 ? &req->h_correlation_id : NULL;
            break;
        case 17:
            slot = strcasecmp(name, "Transfer-Encoding") == 0 ? &req->h_transfer_encoding
                                                                : NULL;
            break;
        default:
            break;
        }
        if (slot != NULL && *slot == NULL)
            *slot = value;
    }
}

static void set_ids(bss_request *req)
{
    const char *rid = req->h_request_id;
    if (sane_id(rid)) {
        memcpy(req->id, rid, strlen(rid) + 1); /* sane: fits */
    } else if (bss_uuid_v4(req->id) != BSS_OK) {
        snprintf(req->id, sizeof req->id, "req-%lld", (long long)bss_monotonic_ns());
    }
    const char *cid = req->h_correlation_id;
    const char *corr = sane_id(cid) ? cid : req->id;
    memcpy(req->corr, corr, strlen(corr) + 1);
}

static void record(const bss_request *req, int64_t start_ns)
{
    bss_http *h = req->http;
    double secs = (double)(bss_monotonic_ns() - start_ns) / 1e9;
    const char *route = bss_req_route(req);
    if (h->metrics != NULL) {
        /* route="<escaped>",method="<m>",status="<n>", built by hand: this
         * runs for every request. The route part alone is the histogram's. */
        char labels[384];
        char *o = put_text(labels, "route=\"", 7);
        bss_metrics_label_escape(route, o, 256);
        o += strlen(o);
        o = put_text(o, "\"", 1);
        size_t route_len = (size_t)(o - labels);
        const char *m = valid_method(req->method) ? req->method : "OTHER";
        o = put_text(o, ",method=\"", 9);
        o = put_text(o, m, strlen(m)); /* < METHOD_MAX */
        o = put_text(o, "\",status=\"", 10);
        if (req->status < 0)
            *o++ = '-';
        o = put_uint(o, (unsigned long long)(req->status < 0 ? -(long long)req->status
                                                             : req->status));
        o = put_text(o, "\"", 1);
        *o = '\0';
        bss_metrics_counter_add(h->metrics, "bss_http_requests_total", labels, 1);
        labels[route_len] = '\0';
        bss_metrics_observe(h->metrics, "bss_http_request_duration_seconds", labels, secs);
    }
    if (bss_log_enabled(h->log, BSS_LOG_DEBUG)) {
        char epath[1024], eroute[256], fields[1600];
        bss_json_escape(req->path, epath, sizeof epath);
        bss_json_escape(route, eroute, sizeof eroute);
        snprintf(fields, sizeof fields,
                 "\"method\":\"%s\",\"path\":\"%s\",\"route\":\"%s\",\"status\":%d,"
                 "\"durationMs\":%.3f",
                 valid_method(req->method) ? req->method : "OTHER", epath, eroute,
                 req->status, secs * 1000.0);
        bss_log_writex(h->log, BSS_LOG_DEBUG, req->id, req->corr, fields, "%s %s %d",
                       valid_method(req->method) ? req->method : "OTHER", epath, req->status);
    }
}

/* Runs a handler and makes sure exactly one reply went out. */
static void run_handler(bss_request *req, bss_http_handler fn, void *ctx, const char *method,
                        const char *pattern)
{
    bss_http *h = req->http;
    int rc = fn(req, ctx);
    if (!req->replied) {
        bss_log_write(h->log, BSS_LOG_ERROR, req->id, req->corr,
                      "handler for %s %s sent no reply (returned %d)", method, pattern, rc);
        bss_reply_problem(req, 500, "INTERNAL", "Internal error", NULL);
        if (!req->replied) /* even the problem could not be built */
            bss_reply_raw(req, 500, NULL, NULL, 0, NULL);
    } else if (rc < 0) {
        bss_log_write(h->log, BSS_LOG_WARN, req->id, req->corr,
                      "handler for %s %s failed after replying: %s", method, pattern,
                      bss_strerror(rc));
    }
}

static void dispatch(bss_request *req)
{
    bss_http *h = req->http;
    if (h->gate != NULL && !is_probe(req)) {
        h->gate(req, h->gate_ctx);
        if (req->replied)
            return;
    }
    char *segs[MAX_SEGMENTS];
    int nseg = split_path(req->pathbuf, segs);
    const struct route *best = NULL;     /* matches path and method */
    const struct route *any_best = NULL; /* matches path only */
    if (nseg >= 0) {
        for (size_t i = 0; i < h->nroutes; i++) {
            const struct route *r = &h->routes[i];
            if (!route_matches(r, segs, nseg))
                continue;
            if (any_best == NULL || more_specific(r, any_best))
                any_best = r;
            if (!method_matches(r, req->method, req->is_head))
                continue;
            /* Among equally specific routes, an exact HEAD route beats GET. */
            if (best == NULL || more_specific(r, best) ||
                (!more_specific(best, r) && strcmp(r->method, req->method) == 0 &&
                 strcmp(best->method, req->method) != 0))
                best = r;
        }
    }
    if (best == NULL && any_best == NULL) {
        if (h->fallback != NULL) {
            req->fallback = 1;
            run_handler(req, h->fallback, h->fallback_ctx, req->method, "fallback");
            return;
        }
        bss_reply_problemf(req, 404, "NOT_FOUND", "Not found", "no route for %s %s",
                           req->method, req->path);
        return;
    }
    if (best == NULL) {
        const char *methods[16] = {NULL};
        int nm = 0, has_get = 0, has_head = 0;
        for (size_t i = 0; i < h->nroutes && nm < 16; i++) {
            const struct route *r = &h->routes[i];
            if (!route_matches(r, segs, nseg))
                continue;
            int seen = 0;
            for (int k = 0; k < nm; k++)
                seen |= strcmp(methods[k], r->method) == 0;
            if (seen)
                continue;
            methods[nm++] = r->method;
            has_get |= strcmp(r->method, "GET") == 0;
            has_head |= strcmp(r->method, "HEAD") == 0;
        }
        if (has_get && !has_head && nm < 16)
            methods[nm++] = "HEAD";
        char allow[16 * (METHOD_MAX + 2) + 16] = "Allow: ";
        for (int k = 0; k < nm; k++) {
            if (k > 0)
                strcat(allow, ", ");
            strcat(allow, methods[k]);
        }
        strcat(allow, "\r\n");
        req->route = any_best;
        bss_reply_problem_h(req, 405, "METHOD_NOT_ALLOWED", "Method not allowed", NULL, allow);
        return;
    }
    req->route = best;
    for (int i = 0; i < best->nseg && req->nparams < BSS_HTTP_MAX_PARAMS; i++) {
        if (best->is_param[i]) {
            req->pnames[req->nparams] = best->segs[i];
            req->pvalues[req->nparams] = segs[i];
            req->nparams++;
        }
    }
    run_handler(req, best->fn, best->ctx, best->method, best->pattern);
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    int64_t start = bss_monotonic_ns();
    bss_http *h = cbdata;
    /* Counted before `stopping` is looked at: a stop that has not yet seen
     * this request waits for it (see drain_requests). */
    atomic_fetch_add(&h->inflight, 1);
    bss_request req;
    memset(&req, 0, sizeof req);
    char path_inline[PATH_INLINE];
    req.http = h;
    req.conn = conn;
    req.ri = mg_get_request_info(conn);
    req.method = req.ri->request_method ? req.ri->request_method : "";
    req.path = req.ri->local_uri ? req.ri->local_uri : "/";
    req.is_head = strcmp(req.method, "HEAD") == 0;
    req.content_length = req.ri->content_length;
    find_own_headers(&req);
    const char *te = req.h_transfer_encoding;
    req.chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    const char *expect = req.h_expect;
    req.expect_continue = expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
                          req.ri->http_version != NULL &&
                          strcmp(req.ri->http_version, "1.1") == 0;
    set_ids(&req);
    if (atomic_load(&h->stopping)) {
        req.force_close = 1;
        bss_reply_problem_h(&req, 503, "SHUTTING_DOWN", "Shutting down",
                            "the server is stopping; retry the request", "Retry-After: 1\r\n");
        if (!req.replied)
            bss_reply_raw(&req, 503, NULL, NULL, 0, "Retry-After: 1\r\n");
    } else {
        size_t path_len = strlen(req.path);
        req.pathbuf = path_len < sizeof path_inline ? memcpy(path_inline, req.path, path_len + 1)
                                                    : strdup(req.path);
        if (req.pathbuf == NULL)
            bss_reply_raw(&req, 500, NULL, NULL, 0, NULL);
        else
            dispatch(&req);
    }
    record(&req, start);
    if (req.pathbuf != path_inline)
        free(req.pathbuf);
    free(req.body);
    int status = req.status > 0 ? req.status : 500;
    if (atomic_fetch_sub(&h->inflight, 1) == 1 && atomic_load(&h->stopping)) {
        pthread_mutex_lock(&h->drain_mu);
        pthread_cond_broadcast(&h->drain_cv);
        pthread_mutex_unlock(&h->drain_mu);
    }
    return status;
}

/* Errors civetweb detects itself (malformed request line, headers too large)
 * become problem+json too. The connection is closed afterwards. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
    char id[BSS_UUID_LEN + 1];
    if (bss_uuid_v4(id) != BSS_OK)
        snprintf(id, sizeof id, "unknown");
    static const struct {
        int status;
        const char *code;
    } codes[] = {{400, "BAD_REQUEST"},      {404, "NOT_FOUND"},
                 {405, "METHOD_NOT_ALLOWED"}, {408, "REQUEST_TIMEOUT"},
                 {413, "BODY_TOO_LARGE"},   {414, "URI_TOO_LONG"},
                 {431, "HEADERS_TOO_LARGE"}, {500, "INTERNAL"},
                 {501, "NOT_IMPLEMENTED"},  {503, "UNAVAILABLE"}};
    char code[32];
    snprintf(code, sizeof code, "HTTP_%d", status);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].status == status)
            snprintf(code, sizeof code, "%s", codes[i].code);
    char type[128];
    bss_problem_type(code, type, sizeof type);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    const char *text = mg_get_response_code_text(conn, status);
    cJSON_AddStringToObject(o, "title", text ? text : "Error");
    cJSON_AddNumberToObject(o, "status", status);
    if (msg != NULL && msg[0] != '\0')
        cJSON_AddStringToObject(o, "detail", msg);
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "requestId", id);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (body == NULL)
        return 1; /* let civetweb send its own page */
    mg_disable_keep_alive(conn);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
              "Content-Length: %zu\r\nX-Request-Id: %s\r\nCache-Control: no-store\r\n"
              "Connection: close\r\n\r\n%s",
              status, text ? text : "", strlen(body), id, body);
    cJSON_free(body);
    return 0;
}
