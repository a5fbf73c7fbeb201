#include "guard.h"

#include "bss_error.h"
#include "isotime.h"
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw_guard {
    gw_tokens *tokens;
    gw_ratelimit *limits;
    gw_idem *idem;
    bss_log *log;
    bss_metrics *metrics;
};

static int setting(const bss_config *cfg, const char *key, long long fallback, long long min,
                   long long max, long long *out, char *err)
{
    if (bss_config_get_int(cfg, key, fallback, out, err) != BSS_OK)
        return BSS_ERR_INVALID;
    if (*out < min || *out > max) {
        bss_seterr(err, "%s: %lld is out of range %lld..%lld", key, *out, min, max);
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

int gw_guard_open(const bss_config *cfg, const char *data_dir, bss_log *log,
                  bss_metrics *metrics, gw_guard **out, char *err)
{
    long long cache_ms, rate, burst, ttl_s, timeout_ms;
    if (setting(cfg, "BSS_GATEWAY_TOKEN_CACHE_MS", 1000, 0, 3600000, &cache_ms, err) != BSS_OK ||
        setting(cfg, "BSS_GATEWAY_RATE_PER_S", 100, 1, 100000000, &rate, err) != BSS_OK ||
        setting(cfg, "BSS_GATEWAY_RATE_BURST", 2 * rate, 1, 1000000000, &burst, err) != BSS_OK ||
        setting(cfg, "BSS_GATEWAY_IDEMPOTENCY_TTL_S", 86400, 1, 30 * 86400, &ttl_s, err) !=
            BSS_OK ||
        setting(cfg, "BSS_GATEWAY_UPSTREAM_TIMEOUT_MS", 30000, 1, 3600000, &timeout_ms, err) !=
            BSS_OK)
        return BSS_ERR_INVALID;
    char path[1024];
    const char *configured = bss_config_get(cfg, "BSS_GATEWAY_DB", NULL);
    if (configured != NULL && configured[0] != '\0')
        snprintf(path, sizeof path, "%s", configured);
    else if (snprintf(path, sizeof path, "%s/gateway.db", data_dir) >= (int)sizeof path) {
        bss_seterr(err, "data dir path too long");
        return BSS_ERR_INVALID;
    }
    gw_guard *g = calloc(1, sizeof *g);
    if (g == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    g->log = log;
    g->metrics = metrics;
    int rc = gw_tokens_open(path, (int)cache_ms, &g->tokens, err);
    /* A request still "in progress" after twice the upstream timeout was
     * lost with a gateway that died: its key may be taken over. */
    if (rc == BSS_OK)
        rc = gw_idem_open(path, ttl_s, 2 * timeout_ms, &g->idem, err);
    if (rc == BSS_OK) {
        g->limits = gw_ratelimit_new(rate, burst);
        if (g->limits == NULL) {
            bss_seterr(err, "out of memory");
            rc = BSS_ERR_NOMEM;
        }
    }
    if (rc != BSS_OK) {
        gw_guard_free(g);
        return rc;
    }
    bss_metrics_describe(metrics, "bss_gateway_refused_total",
                         "Requests the gateway refused itself, by reason.");
    bss_metrics_describe(metrics, "bss_gateway_idempotent_replays_total",
                         "POSTs answered from a stored Idempotency-Key answer.");
    *out = g;
    return BSS_OK;
}

void gw_guard_free(gw_guard *g)
{
    if (g == NULL)
        return;
    gw_tokens_close(g->tokens);
    gw_idem_close(g->idem);
    gw_ratelimit_free(g->limits);
    free(g);
}

static int refuse(gw_guard *g, bss_request *req, gw_guard_pass *pass, int status,
                  const char *code, const char *title, const char *detail, const char *headers)
{
    pass->status = status;
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", code);
    bss_metrics_counter_add(g->metrics, "bss_gateway_refused_total", labels, 1);
    bss_reply_problem_h(req, status, code, title, detail, headers);
    return GW_GUARD_REPLIED;
}

static int not_found(gw_guard *g, bss_request *req, gw_guard_pass *pass)
{
    return refuse(g, req, pass, 404, "NOT_FOUND", "Not found", "no such resource", NULL);
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer(bss_request *req)
{
    const char *h = bss_req_header(req, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static int authenticate(gw_guard *g, bss_request *req, gw_guard_pass *pass)
{
    const char *token = bearer(req);
    if (token == NULL)
        return refuse(g, req, pass, 401, "UNAUTHORIZED", "Authentication required",
                      "send Authorization: Bearer <token> (bssiot-admin token create)",
                      "WWW-Authenticate: Bearer realm=\"bssiot\"\r\n");
    char err[BSS_ERRLEN] = "";
    int rc = gw_tokens_verify(g->tokens, token, &pass->who, err);
    if (rc == BSS_ERR_NOTFOUND)
        return refuse(g, req, pass, 401, "INVALID_TOKEN", "Invalid token",
                      "the token is unknown, malformed or revoked",
                      "WWW-Authenticate: Bearer realm=\"bssiot\", error=\"invalid_token\"\r\n");
    if (rc != BSS_OK) {
        bss_log_error(g->log, "token store: %s", err);
        return refuse(g, req, pass, 503, "STORE_UNAVAILABLE", "Try again",
                      "the token store cannot be read", "Retry-After: 1\r\n");
    }
    return GW_GUARD_GO;
}

static int rate_limit(gw_guard *g, bss_request *req, gw_guard_pass *pass)
{
    int retry = 1;
    if (gw_ratelimit_take(g->limits, pass->who.token_id, bss_monotonic_ms(), &retry))
        return GW_GUARD_GO;
    char headers[64];
    snprintf(headers, sizeof headers, "Retry-After: %d\r\n", retry);
    return refuse(g, req, pass, 429, "TOO_MANY_REQUESTS", "Too many requests",
                  "this token's request rate is over its limit", headers);
}

static int check_line(gw_guard *g, bss_request *req, gw_guard_pass *pass,
                      gw_guard_fetch_fn fetch, void *fetch_ctx)
{
    char path[16 + GW_SVC_CONT_NO_MAX];
    snprintf(path, sizeof path, "/customers/%s", pass->decision.svc_cont_no);
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    if (fetch == NULL || fetch(fetch_ctx, path, &status, &body, &len) != BSS_OK) {
        free(body);
        return refuse(g, req, pass, 502, "UPSTREAM_UNAVAILABLE", "Upstream unavailable",
                      "the customer service cannot be reached", NULL);
    }
    int owned = status == 200 && gw_access_owned_by(body, len, pass->who.customer_id);
    free(body);
    return owned ? GW_GUARD_GO : not_found(g, req, pass);
}

static int replay(gw_guard *g, bss_request *req, gw_guard_pass *pass, gw_idem_response *stored)
{
    pass->status = stored->status;
    char headers[700];
    int n = snprintf(headers, sizeof headers, "Idempotent-Replayed: true\r\n");
    if (stored->location[0] != '\0')
        snprintf(headers + n, sizeof headers - (size_t)n, "Location: %s\r\n", stored->location);
    bss_metrics_counter_add(g->metrics, "bss_gateway_idempotent_replays_total", NULL, 1);
    bss_reply_raw(req, stored->status,
                  stored->content_type[0] ? stored->content_type : NULL, stored->body,
                  stored->len, headers);
    gw_idem_response_clear(stored);
    return GW_GUARD_REPLIED;
}

static int idem_refusal(gw_guard *g, bss_request *req, gw_guard_pass *pass, gw_idem_state state)
{
    if (state == GW_IDEM_MISMATCH)
        return refuse(g, req, pass, 422, "IDEMPOTENCY_KEY_REUSED", "Idempotency-Key reused",
                      "this Idempotency-Key was used for a different request", NULL);
    return refuse(g, req, pass, 409, "IDEMPOTENCY_KEY_IN_PROGRESS", "Request in progress",
                  "a request with this Idempotency-Key is still running", "Retry-After: 1\r\n");
}

/* A streamed body whose key already has an answer: read it whole (it is
 * not forwarded) to see whether it is the same request. */
static int streamed_known_key(gw_guard *g, bss_request *req, gw_guard_pass *pass,
                              const unsigned char stored_fp[GW_IDEM_FINGERPRINT_LEN])
{
    static const size_t chunk = 64 * 1024;
    char *buf = malloc(chunk);
    if (buf == NULL)
        return refuse(g, req, pass, 503, "OUT_OF_MEMORY", "Try again", NULL, "Retry-After: 1\r\n");
    long long n;
    while ((n = bss_req_read(req, buf, chunk)) > 0)
        gw_idem_hasher_update(pass->hasher, buf, (size_t)n);
    free(buf);
    gw_idem_hasher_finish(pass->hasher, pass->fingerprint);
    pass->hasher = NULL;
    if (n < 0)
        return refuse(g, req, pass, 400, "BODY_READ_FAILED", "Body read failed",
                      "the client sent less than announced", NULL);
    if (memcmp(pass->fingerprint, stored_fp, GW_IDEM_FINGERPRINT_LEN) != 0)
        return idem_refusal(g, req, pass, GW_IDEM_MISMATCH);
    gw_idem_state state;
    gw_idem_response stored;
    char err[BSS_ERRLEN] = "";
    if (gw_idem_begin(g->idem, pass->who.token_id, pass->idem_key, pass->fingerprint,
                      bss_now_ms(), &state, &stored, err) != BSS_OK)
        return refuse(g, req, pass, 503, "STORE_BUSY", "Try again", err, "Retry-After: 1\r\n");
    if (state == GW_IDEM_REPLAY)
        return replay(g, req, pass, &stored);
    if (state == GW_IDEM_NEW) { /* expired meanwhile: cannot forward a consumed body */
        gw_idem_release(g->idem, pass->who.token_id, pass->idem_key, err);
        return refuse(g, req, pass, 409, "IDEMPOTENCY_KEY_IN_PROGRESS", "Send again",
                      "the stored answer expired while the body was read", "Retry-After: 1\r\n");
    }
    return idem_refusal(g, req, pass, state);
}

int gw_guard_idempotency(gw_guard *g, bss_request *req, const char *body, size_t len,
                         int streamed, gw_guard_pass *pass)
{
    const char *key = bss_req_header(req, "Idempotency-Key");
    if (key == NULL || strcmp(bss_req_method(req), "POST") != 0)
        return GW_GUARD_GO;
    if (!gw_idem_key_valid(key))
        return refuse(g, req, pass, 400, "INVALID_IDEMPOTENCY_KEY", "Invalid Idempotency-Key",
                      "an Idempotency-Key is 1 to 255 printable ASCII characters", NULL);
    snprintf(pass->idem_key, sizeof pass->idem_key, "%s", key);
    pass->hasher = gw_idem_hasher_start(bss_req_method(req), bss_req_path(req),
                                        bss_req_query(req));
    if (pass->hasher == NULL)
        return refuse(g, req, pass, 503, "OUT_OF_MEMORY", "Try again", NULL, "Retry-After: 1\r\n");
    char err[BSS_ERRLEN] = "";
    int64_t now = bss_now_ms();
    if (streamed) {
        pass->streamed = 1;
        unsigned char stored_fp[GW_IDEM_FINGERPRINT_LEN];
        int done = gw_idem_peek_done(g->idem, pass->who.token_id, key, now, stored_fp, err);
        if (done < 0)
            return refuse(g, req, pass, 503, "STORE_BUSY", "Try again", err, "Retry-After: 1\r\n");
        if (done == 1)
            return streamed_known_key(g, req, pass, stored_fp);
        /* Claimed with a placeholder; the real fingerprint is stored with
         * the answer, once the body has streamed through. */
        memset(pass->fingerprint, 0, sizeof pass->fingerprint);
    } else {
        gw_idem_hasher_update(pass->hasher, body, len);
        gw_idem_hasher_finish(pass->hasher, pass->fingerprint);
        pass->hasher = NULL;
    }
    gw_idem_state state;
    gw_idem_response stored;
    if (gw_idem_begin(g->idem, pass->who.token_id, key, pass->fingerprint, now, &state, &stored,
                      err) != BSS_OK)
        return refuse(g, req, pass, 503, "STORE_BUSY", "Try again", err, "Retry-After: 1\r\n");
    if (state == GW_IDEM_NEW) {
        pass->idem_claimed = 1;
        return GW_GUARD_GO;
    }
    if (state == GW_IDEM_REPLAY)
        return replay(g, req, pass, &stored);
    /* A streamed body's placeholder never matches: a key in flight says so */
    return idem_refusal(g, req, pass, streamed && state == GW_IDEM_MISMATCH ? GW_IDEM_IN_PROGRESS
                                                                      : state);
}

int gw_guard_admit(gw_guard *g, bss_request *req, gw_guard_fetch_fn fetch, void *fetch_ctx,
                   gw_guard_pass *pass)
{
    memset(pass, 0, sizeof *pass);
    if (authenticate(g, req, pass) != GW_GUARD_GO || rate_limit(g, req, pass) != GW_GUARD_GO)
        return GW_GUARD_REPLIED;
    pass->decision = gw_access_decide(&pass->who, bss_req_method(req), bss_req_path(req),
                                      bss_req_query(req));
    switch (pass->decision.access) {
    case GW_ACCESS_FORBID:
        return refuse(g, req, pass, 403, "FORBIDDEN", "Forbidden",
                      "this token's role may not use this route", NULL);
    case GW_ACCESS_HIDE:
        return not_found(g, req, pass);
    case GW_ACCESS_CHECK_LINE:
        if (check_line(g, req, pass, fetch, fetch_ctx) != GW_GUARD_GO)
            return GW_GUARD_REPLIED;
        break;
    default:
        break;
    }
    return GW_GUARD_GO;
}

void gw_guard_body(gw_guard_pass *pass, const void *data, size_t len)
{
    if (pass->hasher != NULL)
        gw_idem_hasher_update(pass->hasher, data, len);
}

int gw_guard_answer(gw_guard *g, bss_request *req, gw_guard_pass *pass, int status,
                    const char *content_type, const char *location, const char *body,
                    size_t len)
{
    int hide = pass->decision.access == GW_ACCESS_CHECK_RESPONSE && status == 200 &&
               !gw_access_owned_by(body, len, pass->who.customer_id);
    if (pass->idem_claimed && gw_idem_status_stored(status)) {
        const unsigned char *fp = NULL;
        if (pass->streamed && pass->hasher != NULL) {
            gw_idem_hasher_finish(pass->hasher, pass->fingerprint);
            pass->hasher = NULL;
            fp = pass->fingerprint;
        }
        gw_idem_response r;
        memset(&r, 0, sizeof r);
        r.status = status;
        snprintf(r.content_type, sizeof r.content_type, "%s", content_type ? content_type : "");
        snprintf(r.location, sizeof r.location, "%s", location ? location : "");
        r.body = (char *)body; /* not freed: r is not cleared */
        r.len = len;
        char err[BSS_ERRLEN] = "";
        if (gw_idem_complete(g->idem, pass->who.token_id, pass->idem_key, fp, &r, err) ==
            BSS_OK)
            pass->idem_done = 1;
        else
            bss_log_error(g->log, "idempotency key %s not stored: %s", pass->idem_key, err);
    }
    if (hide)
        return not_found(g, req, pass);
    return GW_GUARD_GO;
}

void gw_guard_end(gw_guard *g, gw_guard_pass *pass)
{
    if (pass->hasher != NULL) {
        unsigned char discard[GW_IDEM_FINGERPRINT_LEN];
        gw_idem_hasher_finish(pass->hasher, discard);
        pass->hasher = NULL;
    }
    if (pass->idem_claimed && !pass->idem_done) {
        char err[BSS_ERRLEN] = "";
        if (gw_idem_release(g->idem, pass->who.token_id, pass->idem_key, err) != BSS_OK)
            bss_log_error(g->log, "idempotency key %s not released: %s", pass->idem_key, err);
    }
    pass->idem_claimed = 0;
}
