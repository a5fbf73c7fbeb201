/* proxy.c - see proxy.h.
 *
 * One forwarded request is one libcurl transfer driven by a multi handle on
 * the civetweb worker thread that received it. The multi interface (rather
 * than curl_easy_perform) is used so that the loop can look at the clock
 * every POLL_MS and apply the gateway's own timeout rules, which distinguish
 * a slow client upload from a slow upstream; the multi handle also owns the
 * connection cache that keeps upstream connections alive between requests.
 * A (multi, easy) pair is borrowed from the pool for one request at a time,
 * so no libcurl handle is ever used by two threads at once. */
#include "proxy.h"

#include "bss_error.h"
#include "internal_auth.h"
#include "isotime.h"
#include "upstream.h"
#include "uuid.h"

#include <civetweb.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POLL_MS 50
#define HEADER_BLOCK_MAX 8192
#define CONTENT_TYPE_MAX 512
#define UPLOAD_BUFFER (128 * 1024)

struct gw_slot {
    CURLM *multi;
    CURL *easy;
};

struct gw_proxy {
    const gw_routes *routes;
    long long max_body;
    long long max_response;
    long timeout_ms;
    int max_idle;
    bss_log *log;
    bss_metrics *metrics;
    pthread_mutex_t mu;
    struct gw_slot *idle; /* max_idle entries */
    int nidle;
    gw_upstream_pool *direct; /* connections of the direct client */
    unsigned char direct_route[GW_ROUTES_MAX]; /* the client supports the
                                                  route's base (by index) */
    gw_guard *guard;          /* NULL: no checks */
    char internal_token[BSS_INTERNAL_TOKEN_MAX + 1];
};

/* Response headers passed back to the client (Content-Type is handled on
 * its own, as bss_reply_raw takes it separately). */
static const char *const RESPONSE_HEADERS[] = {
    "Location", "Retry-After", "Allow", "WWW-Authenticate", "Content-Disposition", NULL};

/* Request headers forwarded as they are (besides the ones built here). */
static const char *const REQUEST_HEADERS[] = {"Content-Type", "Accept", "Authorization",
                                              "Idempotency-Key", NULL};

/* The state of one transfer, shared with the libcurl callbacks. */
struct xfer {
    gw_proxy *p;
    bss_request *req;
    gw_guard_pass *pass; /* NULL without a guard */
    /* request body (streamed) */
    long long content_length; /* -1 when chunked */
    long long body_read;
    int body_done;
    int64_t body_done_ns;
    int64_t last_activity_ns;
    int client_error;
    int too_large;
    /* response */
    char *resp;
    size_t resp_len, resp_cap;
    int resp_too_large;
    char content_type[CONTENT_TYPE_MAX];
    char headers[HEADER_BLOCK_MAX];
    size_t headers_len;
};

/* Clears everything but the header block's unused bytes: zeroing the whole
 * struct (9 KB, mostly that block) was the largest single cost of a
 * forwarded GET. */
static void xfer_init(struct xfer *x, gw_proxy *p, bss_request *req, gw_guard_pass *pass)
{
    x->p = p;
    x->req = req;
    x->pass = pass;
    x->content_length = 0;
    x->body_read = 0;
    x->body_done = 0;
    x->body_done_ns = 0;
    x->last_activity_ns = 0;
    x->client_error = 0;
    x->too_large = 0;
    x->resp = NULL;
    x->resp_len = 0;
    x->resp_cap = 0;
    x->resp_too_large = 0;
    x->content_type[0] = '\0';
    x->headers[0] = '\0';
    x->headers_len = 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

gw_proxy *gw_proxy_new(const gw_proxy_options *opts, char *err)
{
    if (opts == NULL || opts->routes == NULL) {
        bss_seterr(err, "proxy: no route table");
        return NULL;
    }
    if (opts->max_body_bytes < 0 || opts->max_response_bytes < 0 || opts->timeout_ms < 0 ||
        opts->max_idle_handles < 0) {
        bss_seterr(err, "proxy: negative option");
        return NULL;
    }
    gw_proxy *p = calloc(1, sizeof *p);
    if (p == NULL) {
        bss_seterr(err, "proxy: out of memory");
        return NULL;
    }
    p->routes = opts->routes;
    p->max_body = opts->max_body_bytes ? opts->max_body_bytes : GW_PROXY_DEFAULT_MAX_BODY;
    p->max_response =
        opts->max_response_bytes ? opts->max_response_bytes : GW_PROXY_DEFAULT_MAX_RESPONSE;
    p->timeout_ms = opts->timeout_ms ? opts->timeout_ms : GW_PROXY_DEFAULT_TIMEOUT_MS;
    p->max_idle = opts->max_idle_handles ? opts->max_idle_handles : GW_PROXY_DEFAULT_IDLE_HANDLES;
    p->log = opts->log;
    p->metrics = opts->metrics;
    p->guard = opts->guard;
    if (opts->internal_token != NULL && opts->internal_token[0] != '\0') {
        if (!bss_internal_token_valid(opts->internal_token)) {
            free(p);
            bss_seterr(err, "proxy: BSS_INTERNAL_TOKEN must be 1-%d visible ASCII characters",
                       BSS_INTERNAL_TOKEN_MAX);
            return NULL;
        }
        snprintf(p->internal_token, sizeof p->internal_token, "%s", opts->internal_token);
    }
    p->idle = calloc((size_t)p->max_idle, sizeof *p->idle);
    p->direct = gw_upstream_pool_new(p->max_idle);
    if (p->idle == NULL || p->direct == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
        gw_upstream_pool_free(p->direct);
        free(p->idle);
        free(p);
        bss_seterr(err, "proxy: out of memory");
        return NULL;
    }
    for (int i = 0; i < p->routes->count && i < GW_ROUTES_MAX; i++)
        p->direct_route[i] = (unsigned char)gw_upstream_supports(p->routes->routes[i].base);
    bss_metrics_describe(p->metrics, "bss_gateway_upstream_requests_total",
                         "Requests forwarded by the gateway, by upstream and the status "
                         "the gateway answered with.");
    bss_metrics_describe(p->metrics, "bss_gateway_upstream_duration_seconds",
                         "Time from receiving a request to having the upstream's answer, "
                         "by upstream.");
    return p;
}

static void slot_free(struct gw_slot *s)
{
    if (s->easy != NULL)
        curl_easy_cleanup(s->easy);
    if (s->multi != NULL)
        curl_multi_cleanup(s->multi);
    s->easy = NULL;
    s->multi = NULL;
}

void gw_proxy_free(gw_proxy *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->nidle; i++)
        slot_free(&p->idle[i]);
    gw_upstream_pool_free(p->direct);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Borrows a handle pair: an idle one (its connections still cached) or a
 * new one. Returns BSS_OK or BSS_ERR_NOMEM. */
static int slot_acquire(gw_proxy *p, struct gw_slot *out)
{
    pthread_mutex_lock(&p->mu);
    int have = p->nidle > 0;
    if (have)
        *out = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    if (!have) {
        out->multi = curl_multi_init();
        out->easy = curl_easy_init();
        if (out->multi == NULL || out->easy == NULL) {
            slot_free(out);
            return BSS_ERR_NOMEM;
        }
        curl_multi_setopt(out->multi, CURLMOPT_MAXCONNECTS, 8L);
    }
    return BSS_OK;
}

static void slot_release(gw_proxy *p, struct gw_slot *s)
{
    /* Drops every option (the header list, buffers and callbacks pointing
     * into the finished request) but keeps the cached connections. */
    curl_easy_reset(s->easy);
    pthread_mutex_lock(&p->mu);
    int kept = p->nidle < p->max_idle;
    if (kept)
        p->idle[p->nidle++] = *s;
    pthread_mutex_unlock(&p->mu);
    if (!kept)
        slot_free(s);
}

/* ---- small pure helpers ---------------------------------------------------- */

static int is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* 1 when s[from..to) is lowercase hex and not all '0'. */
static int hex_field(const char *s, int from, int to)
{
    int nonzero = 0;
    for (int i = from; i < to; i++) {
        if (!is_lower_hex(s[i]))
            return 0;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

int gw_traceparent_valid(const char *s)
{
    if (s == NULL || strlen(s) != GW_TRACEPARENT_LEN)
        return 0;
    if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return 0;
    return hex_field(s, 3, 35) && hex_field(s, 36, 52) && is_lower_hex(s[53]) &&
           is_lower_hex(s[54]);
}

int gw_traceparent_new(char out[GW_TRACEPARENT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[24];
    out[0] = '\0';
    if (bss_random_bytes(rnd, sizeof rnd) != BSS_OK)
        return BSS_ERR_IO;
    rnd[0] |= 0x01;  /* never an all-zero trace id */
    rnd[16] |= 0x01; /* nor parent id */
    char *o = out;
    memcpy(o, "00-", 3);
    o += 3;
    for (int i = 0; i < 24; i++) {
        if (i == 16)
            *o++ = '-';
        *o++ = hex[rnd[i] >> 4];
        *o++ = hex[rnd[i] & 0x0f];
    }
    memcpy(o, "-01", 4);
    return BSS_OK;
}

static int path_char_ok(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

long gw_path_encode(const char *path, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)path; *s != '\0'; s++) {
        size_t need = path_char_ok(*s) ? 1 : 3;
        if (o + need >= outlen) {
            if (outlen > 0)
                out[0] = '\0';
            return BSS_ERR_INVALID;
        }
        if (need == 1) {
            out[o++] = (char)*s;
        } else {
            out[o++] = '%';
            out[o++] = hex[*s >> 4];
            out[o++] = hex[*s & 0x0f];
        }
    }
    if (o >= outlen)
        return BSS_ERR_INVALID;
    out[o] = '\0';
    return (long)o;
}

/* 1 when a header value can be copied into a header line verbatim. */
static int value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Where the upstream request's headers go: libcurl's list, or one
 * "Name: value\r\n" block for the direct client (upstream.h). */
struct header_sink {
    int for_curl;
    struct curl_slist *list;
    char block[HEADER_BLOCK_MAX];
    size_t len;
};

/* Adds "name: value". Returns BSS_OK, or BSS_ERR_NOMEM (also when the
 * direct block is full: the request then cannot go out as asked). */
static int add_header(struct header_sink *sink, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    if (!sink->for_curl) {
        if (sink->len + nlen + vlen + 4 >= sizeof sink->block)
            return BSS_ERR_NOMEM;
        char *o = sink->block + sink->len;
        memcpy(o, name, nlen);
        memcpy(o + nlen, ": ", 2);
        memcpy(o + nlen + 2, value, vlen);
        memcpy(o + nlen + 2 + vlen, "\r\n", 2);
        sink->len += nlen + vlen + 4;
        return BSS_OK;
    }
    size_t n = nlen + vlen + 3;
    char *line = malloc(n);
    if (line == NULL)
        return BSS_ERR_NOMEM;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(sink->list, line);
    free(line);
    if (l == NULL)
        return BSS_ERR_NOMEM;
    sink->list = l;
    return BSS_OK;
}

/* Tells libcurl not to send its default for name (a bare "name:"); the
 * direct client sends no defaults, so nothing to do there. */
static int suppress_header(struct header_sink *sink, const char *name)
{
    if (!sink->for_curl)
        return BSS_OK;
    char line[64];
    snprintf(line, sizeof line, "%s:", name);
    struct curl_slist *l = curl_slist_append(sink->list, line);
    if (l == NULL)
        return BSS_ERR_NOMEM;
    sink->list = l;
    return BSS_OK;
}

/* ---- libcurl callbacks ---------------------------------------------------- */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    long long n = bss_req_read(x->req, buf, size * nitems);
    int64_t now = bss_monotonic_ns();
    x->last_activity_ns = now;
    if (n < 0) {
        x->client_error = 1;
        return CURL_READFUNC_ABORT;
    }
    if (n > 0 && x->pass != NULL)
        gw_guard_body(x->pass, buf, (size_t)n);
    x->body_read += n;
    if (x->body_read > x->p->max_body) {
        x->too_large = 1;
        return CURL_READFUNC_ABORT;
    }
    if (!x->body_done &&
        (n == 0 || (x->content_length >= 0 && x->body_read >= x->content_length))) {
        x->body_done = 1;
        x->body_done_ns = now;
    }
    return (size_t)n;
}

/* Appends n bytes of the answer's body. 0, or -1 when it is too large
 * (resp_too_large set) or memory ran out. */
static int keep_body(struct xfer *x, const char *data, size_t n)
{
    if ((long long)(x->resp_len + n) > x->p->max_response) {
        x->resp_too_large = 1;
        return -1;
    }
    if (x->resp_len + n > x->resp_cap) {
        size_t cap = x->resp_cap ? x->resp_cap : 16384;
        while (cap < x->resp_len + n)
            cap *= 2;
        if ((long long)cap > x->p->max_response)
            cap = (size_t)x->p->max_response;
        char *nb = realloc(x->resp, cap);
        if (nb == NULL)
            return -1;
        x->resp = nb;
        x->resp_cap = cap;
    }
    memcpy(x->resp + x->resp_len, data, n);
    x->resp_len += n;
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb;
    struct xfer *x = userdata;
    x->last_activity_ns = bss_monotonic_ns(); /* the stall rule of run_transfer */
    return keep_body(x, data, n) == 0 ? n : 0; /* 0: CURLE_WRITE_ERROR */
}

/* Looks at one response header line (with or without its CRLF): a status
 * line starts a new header block; Content-Type and RESPONSE_HEADERS are
 * kept for the answer to the client. */
static void keep_header(struct xfer *x, const char *line, size_t n)
{
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new header block (after a 100 Continue, say): start over. */
        x->headers_len = 0;
        x->headers[0] = '\0';
        x->content_type[0] = '\0';
        return;
    }
    size_t len = n;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return;
    size_t name_len = (size_t)(colon - line);
    /* Only the headers kept are looked at further (names compared by
     * length first: an answer has a handful of headers, most not kept). */
    const char *name = NULL;
    int is_type = name_len == 12 && strncasecmp(line, "Content-Type", 12) == 0;
    for (int i = 0; !is_type && RESPONSE_HEADERS[i] != NULL; i++) {
        if (strlen(RESPONSE_HEADERS[i]) == name_len &&
            strncasecmp(line, RESPONSE_HEADERS[i], name_len) == 0) {
            name = RESPONSE_HEADERS[i];
            break;
        }
    }
    if (!is_type && name == NULL)
        return;
    const char *v = colon + 1;
    size_t vlen = len - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (!value_ok(v, vlen))
        return;
    if (is_type) {
        if (vlen < sizeof x->content_type) {
            memcpy(x->content_type, v, vlen);
            x->content_type[vlen] = '\0';
        }
        return;
    }
    size_t need = name_len + 2 + vlen + 2;
    if (x->headers_len + need < sizeof x->headers) {
        char *o = x->headers + x->headers_len;
        memcpy(o, name, name_len);
        memcpy(o + name_len, ": ", 2);
        memcpy(o + name_len + 2, v, vlen);
        memcpy(o + name_len + 2 + vlen, "\r\n", 3);
        x->headers_len += need;
    }
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    x->last_activity_ns = bss_monotonic_ns();
    keep_header(x, line, size * nitems);
    return size * nitems;
}

/* ---- the transfer ------------------------------------------------------------- */

/* Runs the transfer set up on s->easy. Returns libcurl's result; *timed_out
 * is set when the gateway's own timeout rule stopped it. */
static CURLcode run_transfer(const gw_proxy *p, struct gw_slot *s, struct xfer *x,
                             int *timed_out)
{
    *timed_out = 0;
    if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    const int64_t limit_ns = (int64_t)p->timeout_ms * 1000000;
    curl_off_t last_up = 0, last_down = 0;
    CURLcode result = CURLE_OK;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        int done = 0, left = 0;
        const CURLMsg *msg;
        while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                result = msg->data.result;
                done = 1;
            }
        }
        if (done || running == 0)
            break;
        curl_off_t up = 0, down = 0;
        curl_easy_getinfo(s->easy, CURLINFO_SIZE_UPLOAD_T, &up);
        curl_easy_getinfo(s->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
        int64_t now = bss_monotonic_ns();
        if (up != last_up || down != last_down) {
            x->last_activity_ns = now;
            last_up = up;
            last_down = down;
        }
        int64_t since = x->body_done ? now - x->body_done_ns : now - x->last_activity_ns;
        if (since > limit_ns) {
            *timed_out = 1;
            result = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        if (curl_multi_poll(s->multi, NULL, 0, POLL_MS, NULL) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
    }
    curl_multi_remove_handle(s->multi, s->easy); /* aborts an unfinished transfer */
    return result;
}

/* Reads a small body (content_length bytes) whole. Returns a malloc'd
 * buffer, or NULL with *client_error set (client sent less) or not (no
 * memory). */
static char *read_small_body(bss_request *req, long long content_length, int *client_error)
{
    *client_error = 0;
    char *buf = malloc((size_t)content_length + 1);
    if (buf == NULL)
        return NULL;
    long long got = 0;
    while (got < content_length) {
        long long n = bss_req_read(req, buf + got, (size_t)(content_length - got));
        if (n <= 0) {
            free(buf);
            *client_error = 1;
            return NULL;
        }
        got += n;
    }
    return buf;
}

/* Builds the upstream request headers. Returns BSS_OK or BSS_ERR_NOMEM. */
static int build_headers(const gw_proxy *p, bss_request *req, int has_body, int chunked,
                         struct header_sink *list)
{
    int rc = BSS_OK;
    if (p->internal_token[0] != '\0')
        rc = add_header(list, BSS_INTERNAL_TOKEN_HEADER, p->internal_token);
    for (int i = 0; REQUEST_HEADERS[i] != NULL && rc == BSS_OK; i++) {
        const char *v = bss_req_header(req, REQUEST_HEADERS[i]);
        if (v != NULL && value_ok(v, strlen(v)))
            rc = add_header(list, REQUEST_HEADERS[i], v);
        else if (strcmp(REQUEST_HEADERS[i], "Accept") == 0 ||
                 (has_body && strcmp(REQUEST_HEADERS[i], "Content-Type") == 0))
            rc = suppress_header(list, REQUEST_HEADERS[i]); /* no libcurl default */
    }
    if (rc == BSS_OK)
        rc = add_header(list, "X-Request-Id", bss_req_id(req));
    if (rc == BSS_OK)
        rc = add_header(list, "X-Correlation-Id", bss_req_correlation_id(req));

    const char *tp = bss_req_header(req, "traceparent");
    if (rc == BSS_OK && gw_traceparent_valid(tp)) {
        rc = add_header(list, "traceparent", tp);
        const char *ts = bss_req_header(req, "tracestate");
        if (rc == BSS_OK && ts != NULL && value_ok(ts, strlen(ts)))
            rc = add_header(list, "tracestate", ts);
    } else if (rc == BSS_OK) {
        char fresh[GW_TRACEPARENT_LEN + 1];
        if (gw_traceparent_new(fresh) == BSS_OK)
            rc = add_header(list, "traceparent", fresh);
    }

    if (rc == BSS_OK) {
        const struct mg_request_info *ri = mg_get_request_info(bss_req_conn(req));
        const char *xff = bss_req_header(req, "X-Forwarded-For");
        char buf[1024];
        size_t xlen = xff != NULL ? strlen(xff) : 0;
        size_t alen = strnlen(ri->remote_addr, sizeof ri->remote_addr);
        size_t n = 0;
        if (xff != NULL && value_ok(xff, xlen) && xlen < 900) {
            memcpy(buf, xff, xlen);
            memcpy(buf + xlen, ", ", 2);
            n = xlen + 2;
        }
        memcpy(buf + n, ri->remote_addr, alen);
        buf[n + alen] = '\0';
        rc = add_header(list, "X-Forwarded-For", buf);
        if (rc == BSS_OK)
            rc = add_header(list, "X-Forwarded-Proto", ri->is_ssl ? "https" : "http");
        const char *host = bss_req_header(req, "Host");
        if (rc == BSS_OK && host != NULL && value_ok(host, strlen(host)))
            rc = add_header(list, "X-Forwarded-Host", host);
    }
    if (rc == BSS_OK)
        rc = suppress_header(list, "Expect"); /* no 100-continue round trip */
    if (rc == BSS_OK && chunked)
        rc = add_header(list, "Transfer-Encoding", "chunked");
    return rc;
}

/* base (may be "") + the encoded path + "?query"; malloc'd, NULL when out
 * of memory or the path cannot be encoded. */
static char *build_target(bss_request *req, const char *base)
{
    const char *path = bss_req_path(req);
    const char *query = bss_req_query(req);
    size_t base_len = strlen(base);
    size_t plen = strlen(path) * 3 + 1;
    size_t qlen = query ? strlen(query) + 1 : 0;
    char *url = malloc(base_len + plen + qlen + 1);
    if (url == NULL)
        return NULL;
    memcpy(url, base, base_len);
    long n = gw_path_encode(path, url + base_len, plen);
    if (n < 0) {
        free(url);
        return NULL;
    }
    if (query != NULL) {
        url[base_len + (size_t)n] = '?';
        memcpy(url + base_len + (size_t)n + 1, query, qlen); /* with its NUL */
    }
    return url;
}

struct outcome {
    int status;           /* what the gateway answered */
    const char *error;    /* NULL, or the problem code sent */
    char detail[CURL_ERROR_SIZE];
};

static void record(gw_proxy *p, bss_request *req, const gw_route *route,
                   const struct outcome *o, int64_t start_ns, long long bytes_in,
                   size_t bytes_out)
{
    double secs = (double)(bss_monotonic_ns() - start_ns) / 1e9;
    if (p->metrics != NULL) {
        /* upstream="<service>",status="<n>", by hand (every request); the
         * upstream part alone is the histogram's. */
        char labels[128];
        size_t slen = strlen(route->service);
        if (slen > 64)
            slen = 64;
        memcpy(labels, "upstream=\"", 10);
        memcpy(labels + 10, route->service, slen);
        size_t n = 10 + slen;
        labels[n++] = '"';
        size_t upstream_len = n;
        memcpy(labels + n, ",status=\"", 9);
        n += 9;
        unsigned status = o->status > 0 && o->status < 1000 ? (unsigned)o->status : 0;
        if (status >= 100)
            labels[n++] = (char)('0' + status / 100);
        if (status >= 10)
            labels[n++] = (char)('0' + status / 10 % 10);
        labels[n++] = (char)('0' + status % 10);
        labels[n++] = '"';
        labels[n] = '\0';
        bss_metrics_counter_add(p->metrics, "bss_gateway_upstream_requests_total", labels, 1);
        labels[upstream_len] = '\0';
        bss_metrics_observe(p->metrics, "bss_gateway_upstream_duration_seconds", labels, secs);
    }

    int level = o->error != NULL && o->status >= 500 ? BSS_LOG_WARN : BSS_LOG_INFO;
    if (!bss_log_enabled(p->log, level))
        return;
    char epath[1024], edetail[2 * CURL_ERROR_SIZE], fields[2600];
    bss_json_escape(bss_req_path(req), epath, sizeof epath);
    bss_json_escape(o->detail, edetail, sizeof edetail);
    const char *method = bss_req_method(req);
    int n = snprintf(fields, sizeof fields,
                     "\"method\":\"%s\",\"path\":\"%s\",\"upstream\":\"%s\",\"status\":%d,"
                     "\"durationMs\":%.3f,\"bytesIn\":%lld,\"bytesOut\":%zu",
                     method, epath, route->service, o->status, secs * 1000.0, bytes_in,
                     bytes_out);
    if (o->error != NULL && n > 0 && (size_t)n < sizeof fields)
        snprintf(fields + n, sizeof fields - (size_t)n, ",\"error\":\"%s\",\"detail\":\"%s\"",
                 o->error, edetail);
    bss_log_writex(p->log, level, bss_req_id(req), bss_req_correlation_id(req), fields,
                   "%s %s -> %s %d", method, epath, route->service, o->status);
}

static int reply_problem(bss_request *req, struct outcome *o, int status, const char *code,
                         const char *title, const char *detail)
{
    o->status = status;
    o->error = code;
    return bss_reply_problem(req, status, code, title, detail);
}

/* How the request body goes upstream. */
struct body_plan {
    const char *method;
    int is_head;
    int send_body;   /* the upstream request carries a body (maybe empty) */
    int chunked;     /* the client's body is chunked */
    long long clen;  /* its Content-Length, -1 when unknown */
    const char *buf; /* a small body read whole, or NULL to stream */
};

/* Sets every option of the upstream request on e. */
static void setup_easy(CURL *e, const gw_proxy *p, const struct body_plan *b, const char *url,
                       struct curl_slist *headers, struct xfer *x, char *errbuf)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)GW_PROXY_MAX_CONN_AGE_S);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (b->is_head) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (!b->send_body) {
        if (strcmp(b->method, "GET") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, b->method);
        return;
    }
    /* CURLOPT_POST sends a body; CUSTOMREQUEST then names the real method. */
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, b->method);
    if (b->buf != NULL || (!b->chunked && b->clen <= 0)) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(b->clen > 0 ? b->clen : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, b->buf != NULL ? b->buf : "");
    } else {
        /* Streamed: a known length goes out as Content-Length, else chunked.
         * A streamed body cannot be rewound, so libcurl could not resend it
         * if a kept-alive connection turned out dead (an upstream that
         * restarted): such requests always get a fresh connection. */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(b->chunked ? -1 : b->clen));
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
    }
}

/* The value of header `name` in a kept header block ("Name: value\r\n"...)
 * into out, or "" when absent. */
static void kept_header(const struct xfer *x, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t name_len = strlen(name);
    const char *line = x->headers;
    while (line < x->headers + x->headers_len) {
        const char *eol = strstr(line, "\r\n");
        if (eol == NULL)
            return;
        if ((size_t)(eol - line) > name_len + 2 && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            size_t vlen = (size_t)(eol - line) - name_len - 2;
            if (vlen < outlen) {
                memcpy(out, line + name_len + 2, vlen);
                out[vlen] = '\0';
            }
            return;
        }
        line = eol + 2;
    }
}

/* The upstream's answer, as received, to the client: after the guard has
 * seen it (it may hide a foreign resource, and keeps it for an
 * Idempotency-Key). */
static int reply_answer(bss_request *req, struct outcome *o, const struct xfer *x, int status)
{
    o->status = status;
    o->detail[0] = '\0';
    if (x->pass != NULL) {
        char location[512];
        kept_header(x, "Location", location, sizeof location);
        if (gw_guard_answer(x->p->guard, req, x->pass, status, x->content_type, location,
                            x->resp, x->resp_len) == GW_GUARD_REPLIED) {
            o->status = x->pass->status;
            o->error = "HIDDEN";
            return o->status;
        }
    }
    return bss_reply_raw(req, status, x->content_type[0] ? x->content_type : NULL, x->resp,
                         x->resp_len, x->headers_len ? x->headers : NULL);
}

static void direct_header(void *ctx, const char *line, size_t len) { keep_header(ctx, line, len); }
static int direct_body(void *ctx, const char *data, size_t len) { return keep_body(ctx, data, len); }

/* 1 when the direct client can reach the route's upstream (plain http);
 * decided once per route of the table in gw_proxy_new. */
static int route_direct(const gw_proxy *p, const gw_route *route)
{
    ptrdiff_t i = route - p->routes->routes;
    if (i >= 0 && i < p->routes->count && i < GW_ROUTES_MAX)
        return p->direct_route[i];
    return gw_upstream_supports(route->base);
}

/* 1 when the request can go through the direct client: its body (if any)
 * is in memory, it is not HEAD, and the upstream is plain http. */
static int direct_possible(const gw_proxy *p, const gw_route *route, const struct body_plan *b)
{
    return !b->is_head && !b->chunked && (b->buf != NULL || b->clen <= 0) &&
           route_direct(p, route);
}

/* exchange() through upstream.h's client. */
static int exchange_direct(gw_proxy *p, bss_request *req, const gw_route *route,
                           const struct body_plan *b, struct xfer *x, struct outcome *o)
{
    struct header_sink hs;
    hs.for_curl = 0;
    hs.list = NULL;
    hs.len = 0;
    char *target = build_target(req, "");
    if (target == NULL || build_headers(p, req, b->send_body, 0, &hs) != BSS_OK) {
        free(target);
        return reply_problem(req, o, 500, "INTERNAL", "Internal error", "out of memory");
    }
    gw_upstream_request rq = {route->base, b->method, target, hs.block, hs.len, b->send_body,
                              b->buf, b->buf != NULL && b->clen > 0 ? (size_t)b->clen : 0,
                              p->timeout_ms};
    gw_upstream_answer answer = {direct_header, direct_body, x};
    int status = 0;
    gw_upstream_result res =
        gw_upstream_exchange(p->direct, &rq, &answer, &status, o->detail, sizeof o->detail);
    free(target);
    char d[160];
    switch (res) {
    case GW_UPSTREAM_OK:
        return reply_answer(req, o, x, status);
    case GW_UPSTREAM_TIMEOUT:
        snprintf(d, sizeof d, "%s did not answer within %ld ms", route->service, p->timeout_ms);
        return reply_problem(req, o, 504, "UPSTREAM_TIMEOUT", "Upstream timeout", d);
    case GW_UPSTREAM_UNAVAILABLE:
        snprintf(d, sizeof d, "%s is unavailable", route->service);
        return reply_problem(req, o, 502, "UPSTREAM_UNAVAILABLE", "Upstream unavailable", d);
    case GW_UPSTREAM_NOMEM:
        return reply_problem(req, o, 500, "INTERNAL", "Internal error", "out of memory");
    case GW_UPSTREAM_ABORTED:
        if (x->resp_too_large) {
            snprintf(d, sizeof d, "the answer of %s exceeds %lld bytes", route->service,
                     p->max_response);
            return reply_problem(req, o, 502, "UPSTREAM_RESPONSE_TOO_LARGE",
                                 "Upstream response too large", d);
        }
        break;
    case GW_UPSTREAM_BAD_ANSWER:
        break;
    }
    snprintf(d, sizeof d, "%s answered badly", route->service);
    return reply_problem(req, o, 502, "UPSTREAM_ERROR", "Bad gateway", d);
}

/* exchange() through libcurl: streamed bodies, https, HEAD. */
static int exchange_curl(gw_proxy *p, bss_request *req, const gw_route *route,
                         const struct body_plan *b, struct xfer *x, struct outcome *o)
{
    struct gw_slot slot = {NULL, NULL};
    struct header_sink hs;
    hs.for_curl = 1;
    hs.list = NULL;
    hs.len = 0;
    char *url = build_target(req, route->base);
    if (url == NULL || build_headers(p, req, b->send_body, b->chunked, &hs) != BSS_OK ||
        slot_acquire(p, &slot) != BSS_OK) {
        curl_slist_free_all(hs.list);
        free(url);
        return reply_problem(req, o, 500, "INTERNAL", "Internal error", "out of memory");
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    setup_easy(slot.easy, p, b, url, hs.list, x, curl_err);
    int timed_out = 0;
    CURLcode res = run_transfer(p, &slot, x, &timed_out);
    long status = 0;
    curl_easy_getinfo(slot.easy, CURLINFO_RESPONSE_CODE, &status);
    slot_release(p, &slot);
    curl_slist_free_all(hs.list);
    free(url);
    snprintf(o->detail, sizeof o->detail, "%s", curl_err[0] ? curl_err : curl_easy_strerror(res));

    char d[160];
    if (x->too_large) {
        snprintf(d, sizeof d, "the body exceeds %lld bytes", p->max_body);
        return reply_problem(req, o, 413, "BODY_TOO_LARGE", "Request body too large", d);
    }
    if (x->client_error)
        return reply_problem(req, o, 400, "BODY_READ_FAILED", "Cannot read the body",
                             "the request body is incomplete");
    if (x->resp_too_large) {
        snprintf(d, sizeof d, "the answer of %s exceeds %lld bytes", route->service,
                 p->max_response);
        return reply_problem(req, o, 502, "UPSTREAM_RESPONSE_TOO_LARGE",
                             "Upstream response too large", d);
    }
    if (timed_out || res == CURLE_OPERATION_TIMEDOUT) {
        snprintf(d, sizeof d, "%s did not answer within %ld ms", route->service, p->timeout_ms);
        return reply_problem(req, o, 504, "UPSTREAM_TIMEOUT", "Upstream timeout", d);
    }
    if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
        res == CURLE_COULDNT_RESOLVE_PROXY || res == CURLE_GOT_NOTHING) {
        snprintf(d, sizeof d, "%s is unavailable", route->service);
        return reply_problem(req, o, 502, "UPSTREAM_UNAVAILABLE", "Upstream unavailable", d);
    }
    if (res != CURLE_OK || status < 100 || status > 599) {
        snprintf(d, sizeof d, "%s answered badly", route->service);
        return reply_problem(req, o, 502, "UPSTREAM_ERROR", "Bad gateway", d);
    }
    return reply_answer(req, o, x, (int)status);
}

/* Sends the request upstream and replies with the answer or a problem. */
static int exchange(gw_proxy *p, bss_request *req, const gw_route *route,
                    const struct body_plan *b, struct xfer *x, struct outcome *o)
{
    if (direct_possible(p, route, b))
        return exchange_direct(p, req, route, b, x, o);
    return exchange_curl(p, req, route, b, x, o);
}

static int forward(gw_proxy *p, bss_request *req, const gw_route *route, gw_guard_pass *pass)
{
    int64_t start = bss_monotonic_ns();
    struct outcome o;
    memset(&o, 0, sizeof o);
    struct xfer x;
    xfer_init(&x, p, req, pass);
    x.last_activity_ns = start;

    struct body_plan b;
    memset(&b, 0, sizeof b);
    b.method = bss_req_method(req);
    b.is_head = strcmp(b.method, "HEAD") == 0;
    const char *te = bss_req_header(req, "Transfer-Encoding");
    b.chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    b.clen = b.chunked ? -1 : mg_get_request_info(bss_req_conn(req))->content_length;
    int has_body = b.chunked || b.clen > 0;
    b.send_body = !b.is_head && (has_body || strcmp(b.method, "POST") == 0 ||
                                 strcmp(b.method, "PUT") == 0 || strcmp(b.method, "PATCH") == 0);
    x.content_length = b.clen;

    char *small = NULL;
    int rc = BSS_ERR, refused = 1;
    if (b.clen > p->max_body) {
        char d[128];
        snprintf(d, sizeof d, "the body exceeds %lld bytes", p->max_body);
        rc = reply_problem(req, &o, 413, "BODY_TOO_LARGE", "Request body too large", d);
    } else if (has_body && !b.chunked && b.clen <= GW_PROXY_SMALL_BODY) {
        /* Small: read whole, so libcurl can resend it on a stale connection. */
        int client_error = 0;
        small = read_small_body(req, b.clen, &client_error);
        if (small == NULL && client_error) {
            rc = reply_problem(req, &o, 400, "BODY_READ_FAILED", "Cannot read the body",
                               "the request body is incomplete");
        } else if (small == NULL) {
            rc = reply_problem(req, &o, 500, "INTERNAL", "Internal error", "out of memory");
        } else {
            x.body_read = b.clen;
            refused = 0;
        }
    } else {
        refused = 0;
    }
    if (!refused && pass != NULL &&
        gw_guard_idempotency(p->guard, req, small, small != NULL ? (size_t)b.clen : 0,
                             has_body && small == NULL, pass) == GW_GUARD_REPLIED) {
        refused = 1;
        rc = o.status = pass->status;
        o.error = "GUARD";
    }
    if (!refused) {
        b.buf = small;
        if (small != NULL || !has_body) {
            x.body_done = 1; /* the upstream's deadline starts now */
            x.body_done_ns = start;
        }
        rc = exchange(p, req, route, &b, &x, &o);
    }
    record(p, req, route, &o, start, x.body_read, x.resp_len);
    free(small);
    free(x.resp);
    return rc;
}

int gw_proxy_forward(gw_proxy *p, bss_request *req, const gw_route *route)
{
    return forward(p, req, route, NULL);
}

/* A line-ownership check for the guard: GET path from the service that
 * serves it, through the direct client. */
struct fetch_ctx {
    gw_proxy *p;
    bss_request *req;
};

static int fetch_for_guard(void *ctx, const char *path, int *status, char **body, size_t *len)
{
    const struct fetch_ctx *f = ctx;
    const gw_route *route = gw_routes_match(f->p->routes, path);
    if (route == NULL || !route_direct(f->p, route))
        return BSS_ERR_INVALID;
    char target[512], headers[BSS_INTERNAL_TOKEN_MAX + 256];
    if (gw_path_encode(path, target, sizeof target) < 0)
        return BSS_ERR_INVALID;
    int n = snprintf(headers, sizeof headers, "Accept: application/json\r\nX-Request-Id: %s\r\n",
                     bss_req_id(f->req));
    if (f->p->internal_token[0] != '\0' && n > 0 && (size_t)n < sizeof headers)
        n += snprintf(headers + n, sizeof headers - (size_t)n, "%s: %s\r\n",
                      BSS_INTERNAL_TOKEN_HEADER, f->p->internal_token);
    if (n < 0 || (size_t)n >= sizeof headers)
        return BSS_ERR_INVALID;
    struct xfer x;
    xfer_init(&x, f->p, f->req, NULL);
    gw_upstream_request rq = {route->base, "GET", target, headers, (size_t)n, 0, NULL, 0,
                              f->p->timeout_ms};
    gw_upstream_answer answer = {NULL, direct_body, &x};
    gw_upstream_result res = gw_upstream_exchange(f->p->direct, &rq, &answer, status, NULL, 0);
    if (res != GW_UPSTREAM_OK) {
        free(x.resp);
        return BSS_ERR_IO;
    }
    *body = x.resp;
    *len = x.resp_len;
    return BSS_OK;
}

int gw_proxy_handle(bss_request *req, void *ctx)
{
    gw_proxy *p = ctx;
    if (!gw_routes_method_allowed(bss_req_method(req)))
        return bss_reply_problem_h(req, 405, "METHOD_NOT_ALLOWED", "Method not allowed", NULL,
                                   "Allow: GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD\r\n");
    gw_guard_pass pass;
    struct fetch_ctx fetch = {p, req};
    if (p->guard != NULL &&
        gw_guard_admit(p->guard, req, fetch_for_guard, &fetch, &pass) == GW_GUARD_REPLIED)
        return pass.status;
    const gw_route *route = gw_routes_match(p->routes, bss_req_path(req));
    int rc;
    if (route == NULL)
        rc = bss_reply_problemf(req, 404, "ROUTE_NOT_FOUND", "No route", "no upstream serves %s",
                                bss_req_path(req));
    else
        rc = forward(p, req, route, p->guard != NULL ? &pass : NULL);
    if (p->guard != NULL)
        gw_guard_end(p->guard, &pass);
    return rc;
}
