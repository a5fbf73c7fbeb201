/*
 * guard.h - the gateway's checks around every forwarded request, in order:
 *
 *   1. authentication   `Authorization: Bearer <token>` (tokens.h); missing
 *                       or invalid -> 401 UNAUTHORIZED with
 *                       `WWW-Authenticate: Bearer realm="bssiot"` (plus
 *                       error="invalid_token" for a bad one)
 *   2. rate limit       per token (ratelimit.h) -> 429 TOO_MANY_REQUESTS
 *                       with Retry-After
 *   3. access           the role's policy (access.h) -> 403 FORBIDDEN or
 *                       404 NOT_FOUND; ownership checks that need the
 *                       resource run before forwarding (a line's owner, via
 *                       a sub-request the proxy makes) or on the answer
 *   4. idempotency      for a POST with Idempotency-Key (idempotency.h):
 *                       replay, 409, 422, or claim the key and forward
 *
 * The proxy calls gw_guard_admit first, gw_guard_idempotency once the body
 * is read (or about to stream), gw_guard_body for each piece of a streamed
 * body, gw_guard_answer with the service's answer before it relays it, and
 * gw_guard_end always. Each of admit/idempotency/answer returns
 * GW_GUARD_GO (go on) or GW_GUARD_REPLIED (the guard answered the client
 * itself; the proxy stops).
 *
 * Configuration:
 *   BSS_GATEWAY_DB                  tokens and idempotency keys
 *                                   (<data_dir>/gateway.db)
 *   BSS_GATEWAY_TOKEN_CACHE_MS      how long a verified token is trusted
 *                                   without re-reading it (1000)
 *   BSS_GATEWAY_RATE_PER_S          requests per second per token (100)
 *   BSS_GATEWAY_RATE_BURST          requests in a row per token (200)
 *   BSS_GATEWAY_IDEMPOTENCY_TTL_S   how long keys are kept (86400)
 */
#ifndef GW_GUARD_H
#define GW_GUARD_H

#include "access.h"
#include "config.h"
#include "http.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "tokens.h"

#include <stddef.h>

typedef struct gw_guard gw_guard;

enum { GW_GUARD_GO = 1, GW_GUARD_REPLIED = 0 };

/* Fetches path from the customer service (GET), for a line's owner. The
 * proxy implements it. Returns BSS_OK with the status and a malloc'd body,
 * or an error when the service cannot be reached. */
typedef int (*gw_guard_fetch_fn)(void *ctx, const char *path, int *status, char **body,
                                 size_t *len);

/* What the guard knows about one request, between admit and end. */
typedef struct gw_guard_pass {
    gw_principal who;
    gw_access_decision decision;
    int status;       /* what the guard answered, when it replied itself */
    int idem_claimed; /* the key is ours: complete or release at the end */
    int idem_done;
    int streamed;
    char idem_key[GW_IDEM_KEY_MAX + 1];
    gw_idem_hasher *hasher; /* streamed body being fingerprinted */
    unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN];
} gw_guard_pass;

int gw_guard_open(const bss_config *cfg, const char *data_dir, bss_log *log,
                  bss_metrics *metrics, gw_guard **out, char *err);
void gw_guard_free(gw_guard *g);

/* Steps 1-3 (authentication, rate limit, access) for a request, before
 * its route is looked up (so an unknown route needs a token too). fetch
 * answers a line-ownership check (GW_ACCESS_CHECK_LINE). */
int gw_guard_admit(gw_guard *g, bss_request *req, gw_guard_fetch_fn fetch, void *fetch_ctx,
                   gw_guard_pass *pass);

/* Step 4 for a POST with Idempotency-Key, once the proxy knows how the body
 * goes: body/len is the whole body when it was read first (small bodies),
 * or NULL with streamed = 1 when it will be streamed (then a replay needs
 * the body: the guard reads it from the client itself; otherwise it
 * fingerprints it as the proxy passes it through gw_guard_body). */
int gw_guard_idempotency(gw_guard *g, bss_request *req, const char *body, size_t len,
                         int streamed, gw_guard_pass *pass);

/* A piece of a streamed body on its way upstream. */
void gw_guard_body(gw_guard_pass *pass, const void *data, size_t len);

/* The service's answer, before the proxy relays it: checks ownership when
 * the policy asked for it (a foreign resource becomes 404) and stores the
 * answer for the idempotency key. */
int gw_guard_answer(gw_guard *g, bss_request *req, gw_guard_pass *pass, int status,
                    const char *content_type, const char *location, const char *body,
                    size_t len);

/* Releases what the pass holds (an idempotency key whose answer was not
 * stored is freed for a retry). Always call it after admit. */
void gw_guard_end(gw_guard *g, gw_guard_pass *pass);

#endif
