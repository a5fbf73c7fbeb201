/*
 * test_http_runtime.c - the service runtime: config precedence, JSON logs,
 * metrics rendering, and the HTTP server spoken to over real sockets
 * (routing, problems, request ids, body limits, JSON checks, built-in
 * routes, keep-alive, the fallback handler, Expect: 100-continue, the
 * graceful stop), plus the service skeleton's start/stop cycle.
 */
#include "bss_error.h"
#include "check.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "uuid.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static check_counts C;

/* ---- a tiny blocking HTTP/1.1 client ------------------------------------ */

struct resp {
    int status;
    char headers[8192];
    char *body;
    size_t body_len;
};

/* A port nothing listens on, below the kernel's ephemeral range: a port
 * from bind(0) is what the next outgoing connection of a test running in
 * parallel may take before the server here binds it. */
static int free_port(void)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int attempt = 0; attempt < 500; attempt++) {
        int port = 10000 + (int)(rand_r(&seed) % 22000u);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        if (fd < 0) {
            perror("free_port");
            exit(2);
        }
        int ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                 bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    fprintf(stderr, "free_port: no free port\n");
    exit(2);
}

static int conn_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *resp_header(const struct resp *r, const char *name)
{
    static _Thread_local char value[1024]; /* test-only scratch, one per thread */
    size_t nl = strlen(name);
    const char *p = strstr(r->headers, "\r\n");
    while (p != NULL && p[2] != '\0') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= sizeof value)
                n = sizeof value - 1;
            memcpy(value, v, n);
            value[n] = '\0';
            return value;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Reads one response from fd. head_only: the request was HEAD. Returns 0 or
 * -1 (timeout, closed early, malformed). */
static int read_response(int fd, struct resp *r, int head_only)
{
    memset(r, 0, sizeof *r);
    size_t hl = 0;
    char *end = NULL;
    while (end == NULL) {
        if (hl + 1 >= sizeof r->headers)
            return -1;
        ssize_t n = recv(fd, r->headers + hl, 1, 0); /* byte-wise: never over-read */
        if (n <= 0)
            return -1;
        hl++;
        r->headers[hl] = '\0';
        end = strstr(r->headers, "\r\n\r\n");
    }
    if (sscanf(r->headers, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    const char *cl = resp_header(r, "Content-Length");
    size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
    if (head_only)
        want = 0;
    r->body = malloc(want + 1);
    while (r->body_len < want) {
        ssize_t n = recv(fd, r->body + r->body_len, want - r->body_len, 0);
        if (n <= 0)
            return -1;
        r->body_len += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* One request on a fresh connection. extra: header lines ("A: b\r\n"). */
static int request(int port, const char *method, const char *path, const char *extra,
                   const char *body, struct resp *r)
{
    int fd = conn_open(port);
    if (fd < 0)
        return -1;
    char head[4096];
    size_t blen = body ? strlen(body) : 0;
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
             extra ? extra : "");
    char *req = malloc(strlen(head) + blen + 64);
    int n = sprintf(req, "%s", head);
    if (body != NULL)
        n += sprintf(req + n, "Content-Length: %zu\r\n", blen);
    n += sprintf(req + n, "\r\n");
    if (body != NULL) {
        memcpy(req + n, body, blen);
        n += (int)blen;
    }
    int rc = send_all(fd, req, (size_t)n);
    free(req);
    if (rc == 0)
        rc = read_response(fd, r, strcmp(method, "HEAD") == 0);
    close(fd);
    return rc;
}

static cJSON *body_json(const struct resp *r)
{
    return r->body ? cJSON_Parse(r->body) : NULL;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Checks that r is a problem+json with status and code, and type derived
 * from code. */
static void check_problem(const struct resp *r, int status, const char *code, int line)
{
    int ok = r->status == status;
    const char *ct = resp_header(r, "Content-Type");
    ok = ok && ct && strcmp(ct, "application/problem+json") == 0;
    cJSON *j = body_json(r);
    char type[256];
    bss_problem_type(code, type, sizeof type);
    ok = ok && j && strcmp(jstr(j, "code"), code) == 0 && strcmp(jstr(j, "type"), type) == 0;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    ok = ok && cJSON_IsNumber(st) && st->valueint == status;
    ok = ok && jstr(j, "title")[0] != '\0' && jstr(j, "instance")[0] == '/';
    ok = ok && resp_header(r, "X-Request-Id") &&
         strcmp(jstr(j, "requestId"), resp_header(r, "X-Request-Id")) == 0;
    if (!ok)
        fprintf(stderr, "line %d: expected problem %d %s, got %d %s\n", line, status, code,
                r->status, r->body ? r->body : "");
    CHECK(&C, ok);
    cJSON_Delete(j);
}
#define CHECK_PROBLEM(r, status, code) check_problem((r), (status), (code), __LINE__)

/* ---- handlers ---------------------------------------------------------------- */

static int h_order(bss_request *req, void *ctx)
{
    (void)ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "svcContNo", bss_req_param(req, "svcContNo"));
    cJSON_AddStringToObject(o, "orderId", bss_req_param(req, "orderId"));
    cJSON_AddStringToObject(o, "route", bss_req_route(req));
    int rc = bss_reply_json(req, 200, o);
    cJSON_Delete(o);
    return rc;
}

static int h_tag(bss_request *req, void *ctx)
{
    const char *tag = ctx;
    return bss_reply_raw(req, 200, "text/plain", tag, strlen(tag), NULL);
}

static int h_echo_json(bss_request *req, void *ctx)
{
    (void)ctx;
    int status;
    cJSON *j = bss_req_json(req, &status);
    if (j == NULL)
        return status;
    int rc = bss_reply_json(req, 201, j);
    cJSON_Delete(j);
    return rc;
}

static int h_echo_raw(bss_request *req, void *ctx)
{
    (void)ctx;
    const char *b;
    size_t n;
    int rc = bss_req_body(req, &b, &n);
    if (rc == BSS_ERR_INVALID)
        return bss_reply_problem(req, 413, "BODY_TOO_LARGE", "Too large", NULL);
    if (rc != BSS_OK)
        return bss_reply_problem(req, 400, "BODY_READ_FAILED", "Bad body", NULL);
    return bss_reply_raw(req, 200, "application/octet-stream", b, n, NULL);
}

static int h_stream_count(bss_request *req, void *ctx)
{
    (void)ctx;
    char buf[1000];
    long long total = 0, n;
    while ((n = bss_req_read(req, buf, sizeof buf)) > 0)
        total += n;
    if (n < 0)
        return bss_reply_problem(req, 400, "BODY_READ_FAILED", "Bad body", NULL);
    char out[32];
    int len = snprintf(out, sizeof out, "%lld", total);
    return bss_reply_raw(req, 200, "text/plain", out, (size_t)len, NULL);
}

static int h_query(bss_request *req, void *ctx)
{
    (void)ctx;
    char v[64];
    int rc = bss_req_query_param(req, "name", v, sizeof v);
    if (rc == BSS_ERR_NOTFOUND)
        snprintf(v, sizeof v, "(absent)");
    return bss_reply_raw(req, 200, "text/plain", v, strlen(v), "X-Extra: yes\r\n");
}

static int h_silent(bss_request *req, void *ctx)
{
    (void)req;
    (void)ctx;
    return 200; /* claims success but sends nothing */
}

static int h_fail(bss_request *req, void *ctx)
{
    (void)req;
    (void)ctx;
    return BSS_ERR_IO;
}

static int h_ids(bss_request *req, void *ctx)
{
    (void)ctx;
    char out[300];
    int n = snprintf(out, sizeof out, "%s|%s", bss_req_id(req), bss_req_correlation_id(req));
    return bss_reply_raw(req, 200, "text/plain", out, (size_t)n, NULL);
}

struct readiness {
    int ready;
};

static int check_ready(void *ctx, char *why, size_t whylen)
{
    const struct readiness *r = ctx;
    if (!r->ready) {
        snprintf(why, whylen, "warming up");
        return BSS_ERR_BUSY;
    }
    return BSS_OK;
}

static int64_t backlog_fn(void *ctx) { return *(const int64_t *)ctx; }

static int h_fallback(bss_request *req, void *ctx)
{
    (void)ctx;
    char out[2048];
    int n = snprintf(out, sizeof out, "fb|%s|%s|%s|%s", bss_req_method(req), bss_req_path(req),
                     bss_req_route(req), bss_req_query(req) ? bss_req_query(req) : "-");
    return bss_reply_raw(req, 200, "text/plain", out, (size_t)n, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A handler that blocks until the test releases it, then replies with a
 * large body (several writes). */
#define BLOCK_REPLY_LEN 200000
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered;
    int released;
};

static int h_block(bss_request *req, void *ctx)
{
    struct gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->released)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    char *body = malloc(BLOCK_REPLY_LEN);
    if (body == NULL)
        return BSS_ERR_NOMEM;
    memset(body, 'r', BLOCK_REPLY_LEN);
    int rc = bss_reply_raw(req, 200, "text/plain", body, BLOCK_REPLY_LEN, NULL);
    free(body);
    return rc;
}

static void gate_release(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->released = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits (up to 5 s) until the handler has been entered. */
static int gate_wait_entered(struct gate *g)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (!g->entered && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
    int entered = g->entered;
    pthread_mutex_unlock(&g->mu);
    return entered;
}

/* A client request on its own thread. */
struct client_call {
    int port;
    const char *path;
    int rc;
    struct resp r;
    char connection[32];
};

static void *client_run(void *arg)
{
    struct client_call *cc = arg;
    cc->rc = request(cc->port, "GET", cc->path, NULL, NULL, &cc->r);
    const char *c = cc->rc == 0 ? resp_header(&cc->r, "Connection") : NULL;
    snprintf(cc->connection, sizeof cc->connection, "%s", c ? c : "");
    return NULL;
}

struct stopper {
    bss_http *h;
    double done_at; /* 0 until bss_http_stop returned */
    pthread_mutex_t mu;
};

static void *stop_run(void *arg)
{
    struct stopper *st = arg;
    bss_http_stop(st->h);
    pthread_mutex_lock(&st->mu);
    st->done_at = now_s();
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static double stopper_done(struct stopper *st)
{
    pthread_mutex_lock(&st->mu);
    double d = st->done_at;
    pthread_mutex_unlock(&st->mu);
    return d;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_config(void)
{
    setenv("BSS_DATA_DIR", "/from/env", 1);
    setenv("BSS_ONLY_ENV", "e", 1);
    setenv("BSS_PORT_NUM", "12x", 1);
    setenv("NOT_BSS_THING", "x", 1);
    char *argv[] = {"prog", "--data-dir=/from/flag", "--foo", "2", "--bss-bar_baz=", NULL};
    char err[BSS_ERRLEN] = "";
    bss_config *c = bss_config_load(5, argv, err);
    CHECK(&C, c != NULL);
    CHECK(&C, strcmp(bss_config_get(c, "BSS_DATA_DIR", "?"), "/from/flag") == 0);
    CHECK(&C, strcmp(bss_config_get(c, "BSS_ONLY_ENV", "?"), "e") == 0);
    CHECK(&C, strcmp(bss_config_get(c, "BSS_FOO", "?"), "2") == 0);
    CHECK(&C, strcmp(bss_config_get(c, "BSS_BAR_BAZ", "?"), "") == 0);
    CHECK(&C, bss_config_get(c, "NOT_BSS_THING", NULL) == NULL);
    CHECK(&C, strcmp(bss_config_get(c, "BSS_MISSING", "fb"), "fb") == 0);
    long long v = 0;
    CHECK(&C, bss_config_get_int(c, "BSS_FOO", 7, &v, err) == BSS_OK && v == 2);
    CHECK(&C, bss_config_get_int(c, "BSS_MISSING", 7, &v, err) == BSS_OK && v == 7);
    v = 99;
    CHECK(&C, bss_config_get_int(c, "BSS_PORT_NUM", 7, &v, err) == BSS_ERR_INVALID && v == 99);
    CHECK(&C, strstr(err, "BSS_PORT_NUM") != NULL);
    CHECK(&C, bss_config_set(c, "BSS_FOO", "-15") == BSS_OK);
    CHECK(&C, bss_config_get_int(c, "BSS_FOO", 7, &v, err) == BSS_OK && v == -15);
    CHECK(&C, bss_config_set_default(c, "BSS_FOO", "1") == BSS_OK);
    CHECK(&C, strcmp(bss_config_get(c, "BSS_FOO", "?"), "-15") == 0);
    int b = 0;
    CHECK(&C, bss_config_set(c, "BSS_FLAG", "Yes") == BSS_OK);
    CHECK(&C, bss_config_get_bool(c, "BSS_FLAG", 0, &b, err) == BSS_OK && b == 1);
    CHECK(&C, bss_config_get_bool(c, "BSS_ONLY_ENV", 0, &b, err) == BSS_ERR_INVALID);
    bss_config_free(c);

    char *bad1[] = {"prog", "positional", NULL};
    err[0] = '\0';
    CHECK(&C, bss_config_load(2, bad1, err) == NULL && err[0] != '\0');
    char *bad2[] = {"prog", "--data-dir", NULL};
    CHECK(&C, bss_config_load(2, bad2, err) == NULL);
    char *bad3[] = {"prog", "--da/ta=1", NULL};
    CHECK(&C, bss_config_load(2, bad3, err) == NULL);
    char *bad4[] = {"prog", "--=1", NULL};
    CHECK(&C, bss_config_load(2, bad4, err) == NULL);
    char *stop[] = {"prog", "--x=1", "--", "whatever", NULL};
    c = bss_config_load(4, stop, err);
    CHECK(&C, c != NULL && strcmp(bss_config_get(c, "BSS_X", "?"), "1") == 0);
    bss_config_free(c);
    unsetenv("BSS_DATA_DIR");
    unsetenv("BSS_ONLY_ENV");
    unsetenv("BSS_PORT_NUM");
    unsetenv("NOT_BSS_THING");
}

/* Reads the whole file into a malloc'd string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_log(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    bss_log *log = bss_log_open("customer", path, BSS_LOG_INFO);
    CHECK(&C, log != NULL);
    bss_log_write(log, BSS_LOG_INFO, "rid-1", "cid-1", "quote \" backslash \\ nl\n tab\t %s",
                  "bad\xff utf8 \xed\xa0\x80 ok \xea\xb0\x80");
    bss_log_debug(log, "dropped below min level");
    bss_log_warn(log, "plain %d", 42);
    bss_log_writex(log, BSS_LOG_ERROR, NULL, NULL, "\"status\":500", "with fields");
    bss_log_close(log);
    bss_log_info(NULL, "NULL log is a no-op");

    char *text = slurp(path);
    CHECK(&C, text != NULL);
    int lines = 0;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        CHECK(&C, j != NULL);
        CHECK(&C, strcmp(jstr(j, "service"), "customer") == 0);
        CHECK(&C, strlen(jstr(j, "ts")) == 29 && jstr(j, "ts")[10] == 'T');
        if (lines == 0) {
            CHECK(&C, strcmp(jstr(j, "level"), "info") == 0);
            CHECK(&C, strcmp(jstr(j, "requestId"), "rid-1") == 0);
            CHECK(&C, strcmp(jstr(j, "correlationId"), "cid-1") == 0);
            CHECK(&C, strncmp(jstr(j, "msg"), "quote \" backslash \\ nl\n tab\t bad", 32) == 0);
            CHECK(&C, strstr(jstr(j, "msg"), "ok \xea\xb0\x80") != NULL);
            CHECK(&C, strstr(jstr(j, "msg"), "\xef\xbf\xbd") != NULL); /* U+FFFD */
        } else if (lines == 1) {
            CHECK(&C, strcmp(jstr(j, "level"), "warn") == 0);
            CHECK(&C, strcmp(jstr(j, "msg"), "plain 42") == 0);
            CHECK(&C, cJSON_GetObjectItem(j, "requestId") == NULL);
        } else if (lines == 2) {
            CHECK(&C, cJSON_GetObjectItem(j, "status") != NULL &&
                          cJSON_GetObjectItem(j, "status")->valueint == 500);
        }
        cJSON_Delete(j);
        lines++;
    }
    CHECK(&C, lines == 3);
    free(text);

    int lv = -1;
    CHECK(&C, bss_log_level_parse("WARNING", &lv) == BSS_OK && lv == BSS_LOG_WARN);
    CHECK(&C, bss_log_level_parse("loud", &lv) == BSS_ERR_INVALID);
    char small[8];
    CHECK(&C, bss_json_escape("a\"bcdefgh", small, sizeof small) == 10);
    CHECK(&C, strcmp(small, "a\\\"bcde") == 0);
}

static void test_metrics(void)
{
    bss_metrics *m = bss_metrics_new();
    int64_t backlog = 17;
    bss_metrics_describe(m, "jobs_total", "Jobs done.");
    bss_metrics_counter_add(m, "jobs_total", "kind=\"a\"", 2);
    bss_metrics_counter_add(m, "jobs_total", "kind=\"a\"", 3);
    bss_metrics_counter_add(m, "jobs_total", "kind=\"b\"", 1);
    bss_metrics_gauge_set(m, "temp", NULL, -4);
    bss_metrics_gauge_set(m, "jobs_total", NULL, 9); /* wrong type: ignored */
    bss_metrics_gauge_fn(m, "outbox_backlog", NULL, backlog_fn, &backlog);
    bss_metrics_observe(m, "lat_seconds", "r=\"x\"", 0.003);
    bss_metrics_observe(m, "lat_seconds", "r=\"x\"", 7.0);
    bss_metrics_counter_add(m, "bad name", NULL, 1); /* invalid: ignored */
    backlog = 23;
    char *out = NULL;
    size_t len = 0;
    CHECK(&C, bss_metrics_render(m, &out, &len) == BSS_OK && out && strlen(out) == len);
    if (out == NULL) {
        bss_metrics_free(m);
        return;
    }
    CHECK(&C, strstr(out, "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\n") != NULL);
    CHECK(&C, strstr(out, "jobs_total{kind=\"a\"} 5\n") != NULL);
    CHECK(&C, strstr(out, "jobs_total{kind=\"b\"} 1\n") != NULL);
    CHECK(&C, strstr(out, "jobs_total 9") == NULL);
    CHECK(&C, strstr(out, "# TYPE temp gauge\ntemp -4\n") != NULL);
    CHECK(&C, strstr(out, "outbox_backlog 23\n") != NULL);
    CHECK(&C, strstr(out, "# TYPE lat_seconds histogram\n") != NULL);
    CHECK(&C, strstr(out, "lat_seconds_bucket{r=\"x\",le=\"0.0025\"} 0\n") != NULL);
    CHECK(&C, strstr(out, "lat_seconds_bucket{r=\"x\",le=\"0.005\"} 1\n") != NULL);
    CHECK(&C, strstr(out, "lat_seconds_bucket{r=\"x\",le=\"5\"} 1\n") != NULL);
    CHECK(&C, strstr(out, "lat_seconds_bucket{r=\"x\",le=\"+Inf\"} 2\n") != NULL);
    CHECK(&C, strstr(out, "lat_seconds_count{r=\"x\"} 2\n") != NULL);
    CHECK(&C, strstr(out, "lat_seconds_sum{r=\"x\"} 7.003") != NULL);
    CHECK(&C, strstr(out, "bad name") == NULL);
    /* TYPE once per name */
    const char *first = strstr(out, "# TYPE jobs_total");
    CHECK(&C, first && strstr(first + 1, "# TYPE jobs_total") == NULL);
    free(out);
    bss_metrics_free(m);

    CHECK(&C, bss_metrics_render(NULL, &out, &len) == BSS_OK && len == 0);
    free(out);
    bss_metrics_counter_add(NULL, "x", NULL, 1);
    char esc[32];
    bss_metrics_label_escape("a\"b\\c\nd", esc, sizeof esc);
    CHECK(&C, strcmp(esc, "a\\\"b\\\\c\\nd") == 0);
}

/* Counters and histograms are updated without the registry's lock once a
 * series exists (and created under it on first use): threads updating the
 * same and new series at once must lose no update, and a scrape meanwhile
 * must never show a bucket above the count. */
#define METRIC_THREADS 4
#define METRIC_ROUNDS 20000

struct metric_worker {
    bss_metrics *m;
    int id;
};

static void *metric_worker_run(void *arg)
{
    const struct metric_worker *w = arg;
    char own[32];
    snprintf(own, sizeof own, "t=\"%d\"", w->id);
    for (int i = 0; i < METRIC_ROUNDS; i++) {
        bss_metrics_counter_add(w->m, "shared_total", "k=\"v\"", 1);
        bss_metrics_counter_add(w->m, "own_total", own, 2);
        bss_metrics_observe(w->m, "shared_seconds", NULL, (i % 2) ? 0.0001 : 3.0);
        if (i % 1000 == 0) {
            char fresh[48];
            snprintf(fresh, sizeof fresh, "t=\"%d\",n=\"%d\"", w->id, i / 1000);
            bss_metrics_counter_add(w->m, "fresh_total", fresh, 1);
        }
    }
    return NULL;
}

static long long metric_value(const char *text, const char *series)
{
    const char *at = strstr(text, series);
    return at != NULL ? atoll(at + strlen(series)) : -1;
}

static void test_metrics_concurrent(void)
{
    bss_metrics *m = bss_metrics_new();
    CHECK(&C, m != NULL);
    if (m == NULL)
        return;
    pthread_t t[METRIC_THREADS];
    struct metric_worker w[METRIC_THREADS];
    int started = 0;
    for (int i = 0; i < METRIC_THREADS; i++) {
        w[i].m = m;
        w[i].id = i;
        if (pthread_create(&t[i], NULL, metric_worker_run, &w[i]) != 0)
            break;
        started++;
    }
    CHECK(&C, started == METRIC_THREADS);
    int scrapes_ok = 1;
    for (int k = 0; k < 50; k++) {
        char *out = NULL;
        size_t len = 0;
        if (bss_metrics_render(m, &out, &len) != BSS_OK)
            scrapes_ok = 0;
        long long low = out ? metric_value(out, "shared_seconds_bucket{le=\"0.0005\"} ") : -1;
        long long count = out ? metric_value(out, "shared_seconds_count ") : -1;
        if (out != NULL && count >= 0 && low > count)
            scrapes_ok = 0;
        free(out);
    }
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    CHECK(&C, scrapes_ok);
    if (started != METRIC_THREADS) {
        bss_metrics_free(m);
        return;
    }
    char *out = NULL;
    size_t len = 0;
    CHECK(&C, bss_metrics_render(m, &out, &len) == BSS_OK && out != NULL);
    if (out != NULL) {
        CHECK(&C, metric_value(out, "shared_total{k=\"v\"} ") ==
                      (long long)METRIC_THREADS * METRIC_ROUNDS);
        CHECK(&C, metric_value(out, "own_total{t=\"3\"} ") == 2LL * METRIC_ROUNDS);
        CHECK(&C, metric_value(out, "shared_seconds_count ") ==
                      (long long)METRIC_THREADS * METRIC_ROUNDS);
        CHECK(&C, metric_value(out, "shared_seconds_bucket{le=\"0.0005\"} ") ==
                      (long long)METRIC_THREADS * METRIC_ROUNDS / 2);
        const char *sum = strstr(out, "shared_seconds_sum ");
        double total = sum != NULL ? atof(sum + 19) : 0; /* 40000 x 3 s + 40000 x 0.1 ms */
        CHECK(&C, total > 120003.99 && total < 120004.01);
        CHECK(&C, metric_value(out, "fresh_total{t=\"2\",n=\"19\"} ") == 1);
        /* Families in order of first use, each named once. */
        const char *a = strstr(out, "# TYPE shared_total"), *b = strstr(out, "# TYPE own_total");
        CHECK(&C, a != NULL && b != NULL && a < b && strstr(a + 1, "# TYPE shared_total") == NULL);
    }
    free(out);
    bss_metrics_free(m);
}

static void test_problem_type(void)
{
    char t[128];
    CHECK(&C, bss_problem_type("LINE_NOT_FOUND", t, sizeof t) == BSS_OK);
    CHECK(&C, strcmp(t, "https://bssiot.dev/problems/line-not-found") == 0);
    CHECK(&C, bss_problem_type("LINE_NOT_FOUND", t, 20) == BSS_ERR_INVALID);
}

static void test_routes_table(void)
{
    bss_http_options o = {.listen = "127.0.0.1:0"};
    char err[BSS_ERRLEN];
    bss_http *h = bss_http_new(&o, err);
    CHECK(&C, h != NULL);
    CHECK(&C, bss_http_route(h, "GET", "/a/{x}", h_tag, "t") == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/a/{x}", h_tag, "t") == BSS_ERR_CONFLICT);
    CHECK(&C, bss_http_route(h, "get", "/a", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "a", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "/a//b", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "/a/", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "/a/{}", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "/a/x{y}", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "/a/{x}/b/{x}", h_tag, "t") == BSS_ERR_INVALID);
    CHECK(&C, bss_http_route(h, "GET", "/", h_tag, "t") == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/b", NULL, NULL) == BSS_ERR_INVALID);
    CHECK(&C, bss_http_port(h) == -1);
    /* port 0: civetweb 1.15 binds an ephemeral port and reports it */
    CHECK(&C, bss_http_start(h, err) == BSS_OK);
    CHECK(&C, bss_http_port(h) > 0);
    CHECK(&C, bss_http_route(h, "GET", "/late", h_tag, "t") == BSS_ERR_INVALID);
    bss_http_stop(h);
    bss_http_stop(h);
    bss_http_free(h);
    CHECK(&C, bss_http_new(&(bss_http_options){.listen = NULL}, err) == NULL);
}

/* Requests that reach a server while bss_http_start is still starting it
 * (queued in the listen backlog before it returned) are answered by the
 * routes, never by civetweb's own 404: a service restarted under load gets
 * such requests at once. */
#define EARLY_CONNS 16

struct early_client {
    int port;
    int answered; /* requests answered by the route */
    int other;    /* anything else: another status, no answer */
};

static void *early_client_run(void *arg)
{
    struct early_client *c = arg;
    int fds[EARLY_CONNS];
    int n = 0;
    /* Connects from before the server listens: refused until it does. */
    double deadline = now_s() + 10.0;
    while (n == 0 && now_s() < deadline) {
        fds[0] = conn_open(c->port);
        if (fds[0] >= 0)
            n = 1;
    }
    const char req[] = "GET /early HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (n == 1 && send_all(fds[0], req, sizeof req - 1) != 0) {
        close(fds[0]);
        n = 0;
    }
    while (n > 0 && n < EARLY_CONNS) {
        fds[n] = conn_open(c->port);
        if (fds[n] < 0)
            break;
        if (send_all(fds[n], req, sizeof req - 1) != 0) {
            close(fds[n]);
            break;
        }
        n++;
    }
    c->other = EARLY_CONNS - n;
    for (int i = 0; i < n; i++) {
        struct resp r;
        if (read_response(fds[i], &r, 0) == 0 && r.status == 200 &&
            strcmp(r.body, "early") == 0)
            c->answered++;
        else
            c->other++;
        resp_free(&r);
        close(fds[i]);
    }
    return NULL;
}

static void test_first_requests_once(void)
{
    int port = free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    bss_http_options o = {.listen = listen, .num_threads = 8};
    char err[BSS_ERRLEN] = "";
    bss_http *h = bss_http_new(&o, err);
    CHECK(&C, h != NULL);
    if (h == NULL)
        return;
    CHECK(&C, bss_http_route(h, "GET", "/early", h_tag, "early") == BSS_OK);
    struct early_client c = {port, 0, 0};
    pthread_t t;
    int started = pthread_create(&t, NULL, early_client_run, &c) == 0;
    CHECK(&C, started);
    CHECK(&C, bss_http_start(h, err) == BSS_OK);
    if (started)
        pthread_join(t, NULL);
    CHECK(&C, c.answered == EARLY_CONNS && c.other == 0);
    if (c.other != 0)
        fprintf(stderr, "early requests: %d answered by the route, %d not\n", c.answered,
                c.other);
    bss_http_stop(h);
    bss_http_free(h);
}

/* The window was microseconds wide (it opened when the starting thread was
 * preempted right after civetweb began to listen): several starts, to meet
 * it more often than never. */
static void test_first_requests(void)
{
    for (int round = 0; round < 5; round++)
        test_first_requests_once();
}

static void test_server(const char *dir)
{
    int port = free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    char logpath[512];
    snprintf(logpath, sizeof logpath, "%s/http.jsonl", dir);
    bss_log *log = bss_log_open("test", logpath, BSS_LOG_DEBUG);
    bss_metrics *m = bss_metrics_new();
    bss_http_options o = {.listen = listen,
                          .num_threads = 8,
                          .max_body_bytes = 1024,
                          .service = "test",
                          .log = log,
                          .metrics = m};
    char err[BSS_ERRLEN] = "";
    bss_http *h = bss_http_new(&o, err);
    CHECK(&C, h != NULL);
    struct readiness rd = {0};
    bss_http_set_readiness(h, check_ready, &rd);
    CHECK(&C, bss_http_route(h, "GET", "/customers/{svcContNo}/orders/{orderId}", h_order, NULL) ==
                  BSS_OK);
    /* the param route first: the literal must still win */
    CHECK(&C, bss_http_route(h, "GET", "/raters/{svcContNo}", h_tag, "param") == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/raters/usage-files", h_tag, "literal") == BSS_OK);
    CHECK(&C, bss_http_route(h, "POST", "/raters/usage-files", h_stream_count, NULL) == BSS_OK);
    CHECK(&C, bss_http_route(h, "POST", "/echo", h_echo_json, NULL) == BSS_OK);
    CHECK(&C, bss_http_route(h, "PUT", "/echo", h_echo_raw, NULL) == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/q", h_query, NULL) == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/silent", h_silent, NULL) == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/fail", h_fail, NULL) == BSS_OK);
    CHECK(&C, bss_http_route(h, "GET", "/ids", h_ids, NULL) == BSS_OK);
    CHECK(&C, bss_http_start(h, err) == BSS_OK);
    CHECK(&C, bss_http_port(h) == port);
    if (bss_http_port(h) != port) {
        fprintf(stderr, "start failed: %s\n", err);
        bss_http_free(h);
        return;
    }

    struct resp r;
    cJSON *j;

    /* routing with params */
    CHECK(&C, request(port, "GET", "/customers/C-1/orders/O%209", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200);
    j = body_json(&r);
    CHECK(&C, j && strcmp(jstr(j, "svcContNo"), "C-1") == 0 &&
                  strcmp(jstr(j, "orderId"), "O 9") == 0 &&
                  strcmp(jstr(j, "route"), "/customers/{svcContNo}/orders/{orderId}") == 0);
    cJSON_Delete(j);
    CHECK(&C, strcmp(resp_header(&r, "Cache-Control"), "no-store") == 0);
    CHECK(&C, bss_uuid_valid(resp_header(&r, "X-Request-Id")));
    resp_free(&r);

    CHECK(&C, request(port, "GET", "/raters/usage-files", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "literal") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/raters/L100", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "param") == 0);
    resp_free(&r);

    /* 404 / 405 */
    CHECK(&C, request(port, "GET", "/nope/x", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 404, "NOT_FOUND");
    j = body_json(&r);
    CHECK(&C, j && strcmp(jstr(j, "instance"), "/nope/x") == 0);
    cJSON_Delete(j);
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/customers/C1/orders", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 404, "NOT_FOUND");
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/raters/", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 404, "NOT_FOUND");
    resp_free(&r);
    CHECK(&C, request(port, "DELETE", "/healthz", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 405, "METHOD_NOT_ALLOWED");
    CHECK(&C, resp_header(&r, "Allow") && strcmp(resp_header(&r, "Allow"), "GET, HEAD") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "DELETE", "/raters/usage-files", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 405, "METHOD_NOT_ALLOWED");
    CHECK(&C, resp_header(&r, "Allow") &&
                  strcmp(resp_header(&r, "Allow"), "GET, POST, HEAD") == 0);
    resp_free(&r);

    /* HEAD served by GET, without a body */
    CHECK(&C, request(port, "HEAD", "/healthz", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && r.body_len == 0 &&
                  strcmp(resp_header(&r, "Content-Length"), "15") == 0);
    resp_free(&r);

    /* request ids */
    CHECK(&C, request(port, "GET", "/ids", "X-Request-Id: abc-123\r\n", NULL, &r) == 0);
    CHECK(&C, strcmp(resp_header(&r, "X-Request-Id"), "abc-123") == 0);
    CHECK(&C, strcmp(r.body, "abc-123|abc-123") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/ids",
                      "X-Request-Id: abc-123\r\nX-Correlation-Id: corr-9\r\n", NULL, &r) == 0);
    CHECK(&C, strcmp(r.body, "abc-123|corr-9") == 0);
    resp_free(&r);
    char longid[300];
    memset(longid, 'a', 200);
    longid[200] = '\0';
    char hdr[400];
    snprintf(hdr, sizeof hdr, "X-Request-Id: %s\r\n", longid);
    CHECK(&C, request(port, "GET", "/nope", hdr, NULL, &r) == 0);
    CHECK(&C, bss_uuid_valid(resp_header(&r, "X-Request-Id")));
    CHECK_PROBLEM(&r, 404, "NOT_FOUND");
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/ids", "X-Request-Id: has space\r\n", NULL, &r) == 0);
    CHECK(&C, bss_uuid_valid(resp_header(&r, "X-Request-Id")));
    resp_free(&r);

    /* query parameters */
    CHECK(&C, request(port, "GET", "/q?x=1&name=a%20b+c", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "a b c") == 0);
    CHECK(&C, resp_header(&r, "X-Extra") && strcmp(resp_header(&r, "X-Extra"), "yes") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/q", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "(absent)") == 0);
    resp_free(&r);

    /* JSON bodies */
    const char *ctj = "Content-Type: application/json\r\n";
    CHECK(&C, request(port, "POST", "/echo", ctj, "{\"a\":[1,2,{\"b\":\"\xea\xb0\x80\"}]}", &r) ==
                  0);
    CHECK(&C, r.status == 201 && strcmp(r.body, "{\"a\":[1,2,{\"b\":\"\xea\xb0\x80\"}]}") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/echo", "Content-Type: Application/JSON; charset=utf-8\r\n",
                      "{}", &r) == 0);
    CHECK(&C, r.status == 201);
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/echo", "Content-Type: application/merge-patch+json\r\n",
                      "{}", &r) == 0);
    CHECK(&C, r.status == 201);
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/echo", "Content-Type: text/plain\r\n", "{}", &r) == 0);
    CHECK_PROBLEM(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/echo", NULL, "{}", &r) == 0);
    CHECK_PROBLEM(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/echo", "Content-Type: application/jsonx\r\n", "{}", &r) ==
                  0);
    CHECK_PROBLEM(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    resp_free(&r);
    const char *malformed[] = {"{bad", "{} x", "[1]", "", "\"s\"", "{\"a\":\"\xff\"}"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        CHECK(&C, request(port, "POST", "/echo", ctj, malformed[i], &r) == 0);
        CHECK_PROBLEM(&r, 400, "MALFORMED_JSON");
        resp_free(&r);
    }
    char deep[200], ok32[200];
    {
        /* {"a": + 32 '[' ... is depth 33; 31 '[' is depth 32 */
        int n = sprintf(deep, "{\"a\":");
        for (int i = 0; i < 32; i++)
            deep[n++] = '[';
        for (int i = 0; i < 32; i++)
            deep[n++] = ']';
        sprintf(deep + n, "}");
        n = sprintf(ok32, "{\"a\":\"[[[[\",\"b\":");
        for (int i = 0; i < 31; i++)
            ok32[n++] = '[';
        for (int i = 0; i < 31; i++)
            ok32[n++] = ']';
        sprintf(ok32 + n, "}");
    }
    CHECK(&C, request(port, "POST", "/echo", ctj, deep, &r) == 0);
    CHECK_PROBLEM(&r, 422, "JSON_TOO_DEEP");
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/echo", ctj, ok32, &r) == 0);
    CHECK(&C, r.status == 201);
    resp_free(&r);

    /* 413 by Content-Length: the body is never sent, the server must not wait for it */
    {
        int fd = conn_open(port);
        const char *hreq = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: 100000000\r\n\r\n{\"a\":";
        CHECK(&C, send_all(fd, hreq, strlen(hreq)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0);
        CHECK_PROBLEM(&r, 413, "BODY_TOO_LARGE");
        CHECK(&C, strcmp(resp_header(&r, "Connection"), "close") == 0);
        resp_free(&r);
        close(fd);
    }
    /* exactly at the cap is fine, one over is not */
    {
        char big[1100];
        memset(big, 'x', sizeof big);
        big[1024] = '\0';
        CHECK(&C, request(port, "PUT", "/echo", NULL, big, &r) == 0);
        CHECK(&C, r.status == 200 && r.body_len == 1024);
        resp_free(&r);
        big[1024] = 'x';
        big[1025] = '\0';
        CHECK(&C, request(port, "PUT", "/echo", NULL, big, &r) == 0);
        CHECK_PROBLEM(&r, 413, "BODY_TOO_LARGE");
        resp_free(&r);
    }
    /* 413 for a chunked body over the cap (two 600-byte chunks), 201 for one
     * under it. Each over-cap request goes out in one send() so the server,
     * which stops reading past the cap and closes, cannot race the client. */
    {
        const char *jreq = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Type: application/json\r\n\r\n";
        const char *heads[] = {
            "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", jreq};
        for (int k = 0; k < 2; k++) {
            char buf[2048];
            size_t n = (size_t)sprintf(buf, "%s", heads[k]);
            for (int i = 0; i < 2; i++) {
                n += (size_t)sprintf(buf + n, "258\r\n"); /* 0x258 = 600 */
                memset(buf + n, 'y', 600);
                n += 600;
                n += (size_t)sprintf(buf + n, "\r\n");
            }
            int fd = conn_open(port);
            CHECK(&C, send_all(fd, buf, n) == 0);
            CHECK(&C, read_response(fd, &r, 0) == 0);
            CHECK_PROBLEM(&r, 413, "BODY_TOO_LARGE");
            CHECK(&C, resp_header(&r, "Connection") &&
                          strcmp(resp_header(&r, "Connection"), "close") == 0);
            resp_free(&r);
            close(fd);
        }

        int fd = conn_open(port);
        const char *small = "5\r\n{\"a\":\r\n3\r\n12}\r\n0\r\n\r\n";
        CHECK(&C, send_all(fd, jreq, strlen(jreq)) == 0);
        CHECK(&C, send_all(fd, small, strlen(small)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0);
        CHECK(&C, r.status == 201 && strcmp(r.body, "{\"a\":12}") == 0);
        resp_free(&r);
        /* the connection stays usable */
        const char *again = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(&C, send_all(fd, again, strlen(again)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0);
        CHECK(&C, r.status == 200);
        resp_free(&r);
        close(fd);
    }

    /* streaming reads are not capped by max_body_bytes */
    {
        size_t n = 300000;
        char *big = malloc(n + 1);
        memset(big, 'z', n);
        big[n] = '\0';
        CHECK(&C, request(port, "POST", "/raters/usage-files", NULL, big, &r) == 0);
        CHECK(&C, r.status == 200 && strcmp(r.body, "300000") == 0);
        resp_free(&r);
        free(big);
    }

    /* keep-alive: several requests on one connection, including a 404 with a
     * small unread body (drained) */
    {
        int fd = conn_open(port);
        const char *reqs[] = {
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            "GET /raters/usage-files HTTP/1.1\r\nHost: x\r\n\r\n",
        };
        const int expect[] = {200, 404, 200};
        for (int i = 0; i < 3; i++) {
            CHECK(&C, send_all(fd, reqs[i], strlen(reqs[i])) == 0);
            CHECK(&C, read_response(fd, &r, 0) == 0);
            CHECK(&C, r.status == expect[i]);
            CHECK(&C, resp_header(&r, "Connection") &&
                          strcmp(resp_header(&r, "Connection"), "keep-alive") == 0);
            resp_free(&r);
        }
        close(fd);
    }

    /* Expect: 100-continue: one 100 just before the body is read (bss_req_json
     * and bss_req_read alike), then the reply; the connection stays usable */
    {
        int fd = conn_open(port);
        const char *body = "{\"e\":1}";
        char head[512];
        snprintf(head, sizeof head,
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                 strlen(body));
        CHECK(&C, send_all(fd, head, strlen(head)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0 && r.status == 100 && r.body_len == 0);
        resp_free(&r);
        CHECK(&C, send_all(fd, body, strlen(body)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0);
        CHECK(&C, r.status == 201 && strcmp(r.body, body) == 0);
        CHECK(&C, resp_header(&r, "Connection") &&
                      strcmp(resp_header(&r, "Connection"), "keep-alive") == 0);
        resp_free(&r);
        snprintf(head, sizeof head,
                 "POST /raters/usage-files HTTP/1.1\r\nHost: x\r\n"
                 "Expect: 100-Continue\r\nContent-Length: 3000\r\n\r\n");
        CHECK(&C, send_all(fd, head, strlen(head)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0 && r.status == 100);
        resp_free(&r);
        char csv[3000];
        memset(csv, 'c', sizeof csv);
        CHECK(&C, send_all(fd, csv, sizeof csv) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0);
        CHECK(&C, r.status == 200 && strcmp(r.body, "3000") == 0);
        resp_free(&r);
        close(fd);
    }
    /* Expect: 100-continue answered without reading the body (unknown path,
     * wrong media type, too large by Content-Length): the reply comes at once,
     * without a 100, although the body is never sent, and the connection is
     * closed instead of waiting for the body */
    {
        const char *heads[] = {
            "POST /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            "Content-Length: 5\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
        };
        const int want[] = {404, 415, 413};
        const char *codes[] = {"NOT_FOUND", "UNSUPPORTED_MEDIA_TYPE", "BODY_TOO_LARGE"};
        for (int i = 0; i < 3; i++) {
            int fd = conn_open(port);
            double t0 = now_s();
            CHECK(&C, send_all(fd, heads[i], strlen(heads[i])) == 0);
            CHECK(&C, read_response(fd, &r, 0) == 0);
            double took = now_s() - t0;
            if (took >= 0.5)
                fprintf(stderr, "Expect reply %d took %.3f s\n", i, took);
            CHECK(&C, took < 0.5);
            CHECK_PROBLEM(&r, want[i], codes[i]);
            CHECK(&C, resp_header(&r, "Connection") &&
                          strcmp(resp_header(&r, "Connection"), "close") == 0);
            resp_free(&r);
            char c;
            CHECK(&C, recv(fd, &c, 1, 0) == 0); /* closed, nothing more (no late 100) */
            close(fd);
        }
    }

    /* handlers that send nothing */
    CHECK(&C, request(port, "GET", "/silent", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 500, "INTERNAL");
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/fail", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 500, "INTERNAL");
    resp_free(&r);

    /* built-ins */
    CHECK(&C, request(port, "GET", "/healthz", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "{\"status\":\"ok\"}") == 0);
    CHECK(&C, strcmp(resp_header(&r, "Content-Type"), "application/json") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/readyz", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 503, "NOT_READY");
    j = body_json(&r);
    CHECK(&C, j && strcmp(jstr(j, "detail"), "warming up") == 0);
    cJSON_Delete(j);
    resp_free(&r);
    /* read by check_ready on a server thread (through the pointer it was given) */
    struct readiness *rdp = &rd;
    rdp->ready = 1;
    CHECK(&C, request(port, "GET", "/readyz", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "{\"status\":\"ready\"}") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/metrics", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200);
    CHECK(&C, strncmp(resp_header(&r, "Content-Type"), "text/plain; version=0.0.4", 25) == 0);
    CHECK(&C, strstr(r.body, "# TYPE bss_http_requests_total counter\n") != NULL);
    CHECK(&C, strstr(r.body,
                     "bss_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} ") !=
                  NULL);
    CHECK(&C, strstr(r.body, "bss_http_requests_total{route=\"unmatched\",method=\"GET\","
                             "status=\"404\"} ") != NULL);
    CHECK(&C, strstr(r.body, "bss_http_requests_total{route=\"/raters/usage-files\","
                             "method=\"DELETE\",status=\"405\"} 1\n") != NULL);
    CHECK(&C, strstr(r.body, "# TYPE bss_http_request_duration_seconds histogram\n") != NULL);
    CHECK(&C, strstr(r.body, "bss_http_request_duration_seconds_bucket{route=\"/healthz\","
                             "le=\"+Inf\"} ") != NULL);
    resp_free(&r);

    /* a request line civetweb itself rejects still gets a problem */
    {
        int fd = conn_open(port);
        const char *junk = "BLAH\r\n\r\n";
        CHECK(&C, send_all(fd, junk, strlen(junk)) == 0);
        int got = read_response(fd, &r, 0);
        CHECK(&C, got == 0 && r.status >= 400 && r.status < 500);
        resp_free(&r);
        close(fd);
    }

    bss_http_stop(h);
    bss_http_free(h);
    bss_metrics_free(m);
    bss_log_close(log);

    /* the access log: one debug line per request, with the request id */
    char *text = slurp(logpath);
    int access = 0, valid = 1;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        cJSON *lj = cJSON_Parse(line);
        if (lj == NULL)
            valid = 0;
        if (lj && strcmp(jstr(lj, "requestId"), "abc-123") == 0 &&
            strcmp(jstr(lj, "route"), "/ids") == 0 &&
            cJSON_GetObjectItem(lj, "status")->valueint == 200 &&
            strcmp(jstr(lj, "level"), "debug") == 0)
            access++;
        cJSON_Delete(lj);
    }
    CHECK(&C, valid);
    CHECK(&C, access == 2);
    free(text);
}

/* The fallback handler gets every path no pattern matches, at any depth, with
 * empty segments and trailing slashes; a pattern with another method still
 * gives 405. */
static void test_fallback(void)
{
    bss_metrics *m = bss_metrics_new();
    bss_http_options o = {.listen = "127.0.0.1:0", .num_threads = 4, .metrics = m};
    char err[BSS_ERRLEN] = "";
    bss_http *h = bss_http_new(&o, err);
    CHECK(&C, h != NULL);
    CHECK(&C, bss_http_route(h, "GET", "/a/{x}", h_tag, "route") == BSS_OK);
    bss_http_set_fallback(h, h_fallback, NULL);
    CHECK(&C, bss_http_start(h, err) == BSS_OK);
    bss_http_set_fallback(h, NULL, NULL); /* after start: ignored */
    int port = bss_http_port(h);
    struct resp r;

    CHECK(&C, request(port, "GET", "/a/1", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "route") == 0);
    resp_free(&r);
    CHECK(&C, request(port, "DELETE", "/a/1", NULL, NULL, &r) == 0);
    CHECK_PROBLEM(&r, 405, "METHOD_NOT_ALLOWED");
    resp_free(&r);
    CHECK(&C, request(port, "POST", "/healthz", NULL, "x", &r) == 0);
    CHECK_PROBLEM(&r, 405, "METHOD_NOT_ALLOWED");
    resp_free(&r);
    CHECK(&C, request(port, "GET", "/healthz", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strcmp(r.body, "{\"status\":\"ok\"}") == 0);
    resp_free(&r);

    static const struct {
        const char *method, *target, *want;
    } cases[] = {
        {"GET", "/", "fb|GET|/|fallback|-"},
        {"GET", "/nope", "fb|GET|/nope|fallback|-"},
        {"PUT", "/a/1/b", "fb|PUT|/a/1/b|fallback|-"},
        {"GET", "/a/", "fb|GET|/a/|fallback|-"},
        /* civetweb cleans the path: "//" collapses, dot segments resolve */
        {"GET", "/a//x/./y/../?q=1", "fb|GET|/a/x/|fallback|q=1"},
        {"PATCH", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/",
         "fb|PATCH|/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/|fallback|-"},
        {"PROPFIND", "/dav", "fb|PROPFIND|/dav|fallback|-"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(&C, request(port, cases[i].method, cases[i].target, NULL, NULL, &r) == 0);
        int ok = r.status == 200 && r.body && strcmp(r.body, cases[i].want) == 0;
        if (!ok)
            fprintf(stderr, "fallback %s %s: %d %s\n", cases[i].method, cases[i].target,
                    r.status, r.body ? r.body : "");
        CHECK(&C, ok);
        resp_free(&r);
    }
    /* HEAD reaches the fallback as HEAD, and the body is left out */
    CHECK(&C, request(port, "HEAD", "/x/y", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && r.body_len == 0 &&
                  strcmp(resp_header(&r, "Content-Length"), "23") == 0); /* fb|HEAD|/x/y|fallback|- */
    resp_free(&r);

    CHECK(&C, request(port, "GET", "/metrics", NULL, NULL, &r) == 0);
    CHECK(&C, r.status == 200 && strstr(r.body, "bss_http_requests_total{route=\"fallback\","
                                                "method=\"GET\",status=\"200\"} 4\n") != NULL);
    CHECK(&C, strstr(r.body, "route=\"unmatched\"") == NULL);
    resp_free(&r);
    bss_http_free(h);
    bss_metrics_free(m);
}

/* bss_http_stop lets a running handler finish and send its whole reply,
 * while requests arriving during the drain get 503 SHUTTING_DOWN. */
static void test_drain(void)
{
    bss_http_options o = {.listen = "127.0.0.1:0", .num_threads = 8};
    char err[BSS_ERRLEN] = "";
    bss_http *h = bss_http_new(&o, err);
    CHECK(&C, h != NULL);
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    CHECK(&C, bss_http_route(h, "GET", "/block", h_block, &g) == BSS_OK);
    CHECK(&C, bss_http_start(h, err) == BSS_OK);
    int port = bss_http_port(h);
    struct resp r;

    /* an idle kept-alive connection, opened before the stop */
    int idle = conn_open(port);
    const char *hz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(&C, send_all(idle, hz, strlen(hz)) == 0);
    CHECK(&C, read_response(idle, &r, 0) == 0 && r.status == 200);
    resp_free(&r);

    struct client_call cc;
    memset(&cc, 0, sizeof cc);
    cc.port = port;
    cc.path = "/block";
    pthread_t ct, stt;
    pthread_create(&ct, NULL, client_run, &cc);
    CHECK(&C, gate_wait_entered(&g));

    struct stopper st = {h, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_create(&stt, NULL, stop_run, &st);

    /* new requests get 503 as soon as the drain has begun */
    int got503 = 0;
    for (int i = 0; i < 500 && !got503; i++) {
        if (request(port, "GET", "/healthz", NULL, NULL, &r) == 0) {
            if (r.status == 503) {
                got503 = 1;
                CHECK_PROBLEM(&r, 503, "SHUTTING_DOWN");
                CHECK(&C, resp_header(&r, "Retry-After") &&
                              strcmp(resp_header(&r, "Retry-After"), "1") == 0);
                CHECK(&C, resp_header(&r, "Connection") &&
                              strcmp(resp_header(&r, "Connection"), "close") == 0);
            }
            resp_free(&r);
        }
        if (!got503)
            usleep(2000);
    }
    CHECK(&C, got503);
    /* the kept-alive connection too, and it is closed afterwards */
    CHECK(&C, send_all(idle, hz, strlen(hz)) == 0);
    CHECK(&C, read_response(idle, &r, 0) == 0);
    CHECK_PROBLEM(&r, 503, "SHUTTING_DOWN");
    resp_free(&r);
    char c;
    CHECK(&C, recv(idle, &c, 1, 0) == 0);
    close(idle);
    /* a request with a body is refused without the body being awaited */
    {
        int fd = conn_open(port);
        const char *post = "POST /block HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                           "Content-Length: 10\r\n\r\n";
        CHECK(&C, send_all(fd, post, strlen(post)) == 0);
        CHECK(&C, read_response(fd, &r, 0) == 0);
        CHECK_PROBLEM(&r, 503, "SHUTTING_DOWN");
        resp_free(&r);
        close(fd);
    }
    usleep(100000);
    CHECK(&C, stopper_done(&st) == 0); /* still draining: the handler runs */

    double released = now_s();
    gate_release(&g);
    pthread_join(ct, NULL);
    CHECK(&C, cc.rc == 0 && cc.r.status == 200 && cc.r.body_len == BLOCK_REPLY_LEN);
    CHECK(&C, strcmp(cc.connection, "close") == 0);
    resp_free(&cc.r);
    pthread_join(stt, NULL);
    double took = stopper_done(&st) - released;
    if (took >= 1.5)
        fprintf(stderr, "stop took %.3f s after the release\n", took);
    CHECK(&C, took < 1.5);
    CHECK(&C, conn_open(port) < 0); /* the listener is gone */
    bss_http_free(h);

    /* the drain is bounded: with drain_timeout_ms 200 the listener closes
     * while the handler is still blocked */
    o.drain_timeout_ms = 200;
    h = bss_http_new(&o, err);
    CHECK(&C, h != NULL);
    struct gate g2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    CHECK(&C, bss_http_route(h, "GET", "/block", h_block, &g2) == BSS_OK);
    CHECK(&C, bss_http_start(h, err) == BSS_OK);
    port = bss_http_port(h);
    memset(&cc, 0, sizeof cc);
    cc.port = port;
    cc.path = "/block";
    pthread_create(&ct, NULL, client_run, &cc);
    CHECK(&C, gate_wait_entered(&g2));
    struct stopper st2 = {h, 0, PTHREAD_MUTEX_INITIALIZER};
    double t0 = now_s();
    pthread_create(&stt, NULL, stop_run, &st2);
    int closed = 0;
    while (!closed && now_s() - t0 < 5) {
        int fd = conn_open(port);
        if (fd < 0)
            closed = 1;
        else
            close(fd);
        usleep(10000);
    }
    double closed_after = now_s() - t0;
    CHECK(&C, closed && closed_after >= 0.15 && closed_after < 3.0);
    gate_release(&g2);
    pthread_join(ct, NULL);
    resp_free(&cc.r);
    pthread_join(stt, NULL);
    bss_http_free(h);
}

/* ---- the service skeleton ---------------------------------------------- */

struct hook_log {
    char order[16];
    int n;
};

static void hook_a(void *ctx)
{
    struct hook_log *hl = ctx;
    hl->order[hl->n++] = 'a';
}

static void hook_b(void *ctx)
{
    struct hook_log *hl = ctx;
    hl->order[hl->n++] = 'b';
}

static void *run_thread(void *arg)
{
    bss_service *svc = arg;
    static int rc; /* test-only: the thread's result */
    char err[BSS_ERRLEN];
    rc = bss_service_run(svc, err);
    return &rc;
}

static void test_service(const char *dir)
{
    char datadir[512], logfile[600], listen[64];
    snprintf(datadir, sizeof datadir, "%s/svc/a/b", dir);
    snprintf(logfile, sizeof logfile, "%s/svc.log", dir);
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    setenv("BSS_LISTEN", "127.0.0.1:1", 1); /* overridden by the service-specific key */
    setenv("BSS_TEST_SVC_LISTEN", listen, 1);
    setenv("BSS_LOG_FILE", logfile, 1);
    char flag_dir[600];
    snprintf(flag_dir, sizeof flag_dir, "--data-dir=%s", datadir);
    char *argv[] = {"test-svc", flag_dir, "--log-level", "debug", NULL};
    bss_service svc;
    char err[BSS_ERRLEN] = "";
    int rc = bss_service_init(&svc, "test-svc", 4, argv, err);
    CHECK(&C, rc == BSS_OK);
    if (rc != BSS_OK) {
        fprintf(stderr, "service init: %s\n", err);
        return;
    }
    struct stat st;
    CHECK(&C, stat(datadir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(&C, strcmp(svc.data_dir, datadir) == 0);
    CHECK(&C, strcmp(svc.name, "test-svc") == 0);
    struct hook_log hl = {{0}, 0};
    CHECK(&C, bss_service_add_shutdown(&svc, hook_a, &hl) == BSS_OK);
    CHECK(&C, bss_service_add_shutdown(&svc, hook_b, &hl) == BSS_OK);

    pthread_t t;
    pthread_create(&t, NULL, run_thread, &svc);
    struct resp r;
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) {
        if (request(port, "GET", "/healthz", NULL, NULL, &r) == 0) {
            up = r.status == 200;
            resp_free(&r);
        } else {
            usleep(10000);
        }
    }
    CHECK(&C, up);
    CHECK(&C, bss_service_request_stop(&svc) == BSS_OK);
    void *res = NULL;
    pthread_join(t, &res);
    CHECK(&C, res && *(int *)res == BSS_OK);
    CHECK(&C, strcmp(hl.order, "ba") == 0);
    bss_service_free(&svc);

    char *text = slurp(logfile);
    CHECK(&C, text && strstr(text, "\"msg\":\"started on port") && strstr(text, "\"msg\":\"stopping") &&
                  strstr(text, "\"msg\":\"stopped\"") && strstr(text, "\"service\":\"test-svc\""));
    free(text);

    /* failures leave nothing behind */
    setenv("BSS_TZ", "Nowhere/Atlantis", 1);
    CHECK(&C, bss_service_init(&svc, "test-svc", 1, argv, err) == BSS_ERR_INVALID);
    CHECK(&C, strstr(err, "BSS_TZ") != NULL && svc.http == NULL);
    bss_service_free(&svc);
    unsetenv("BSS_TZ");
    CHECK(&C, bss_service_init(&svc, "Bad Name", 1, argv, err) == BSS_ERR_INVALID);
    setenv("BSS_MAX_BODY_BYTES", "lots", 1);
    CHECK(&C, bss_service_init(&svc, "test-svc", 1, argv, err) == BSS_ERR_INVALID);
    unsetenv("BSS_MAX_BODY_BYTES");
    unsetenv("BSS_LISTEN");
    unsetenv("BSS_TEST_SVC_LISTEN");
    unsetenv("BSS_LOG_FILE");
    CHECK(&C, strcmp(bss_service_default_listen("gateway"), "8088") == 0);
}

int main(void)
{
    char dir[] = "/tmp/bss-http-runtime-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    /* The service test first: bss_service_init must run before any thread. */
    test_service(dir);
    test_config();
    test_log(dir);
    test_metrics();
    test_metrics_concurrent();
    test_problem_type();
    test_routes_table();
    test_server(dir);
    test_first_requests();
    test_fallback();
    test_drain();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE(&C);
}
