/*
 * idempotency.h - Idempotency-Key for every POST through the gateway.
 *
 * A client that sends `Idempotency-Key: K` with a POST may send the same
 * request again (after a timeout, a dropped connection, a crash of its own)
 * and get the first answer back instead of a second effect:
 *
 *   - same key, same request (method, path, query and body, compared by
 *     their SHA-256 fingerprint) -> the stored response is replayed byte for
 *     byte (status, Content-Type, Location, body) with
 *     `Idempotent-Replayed: true`; nothing reaches the service;
 *   - same key, different request -> 422 IDEMPOTENCY_KEY_REUSED;
 *   - same key while the first request is still running -> 409
 *     IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After: 1.
 *
 * Keys are scoped to the API token that sent them (two clients never see
 * each other's answers) and kept for ttl_s (24 h by default) after the
 * first request; a key is 1..255 printable ASCII characters, anything else
 * is 400 INVALID_IDEMPOTENCY_KEY.
 *
 * What is stored: every answer the service gave, success or error, except
 * those that say "nothing happened, try again" (429, 503) and the
 * gateway's own failures to reach the service (502, 504): for those the
 * key is released so the retry goes through. A request whose key stays "in
 * progress" longer than stale_ms (the gateway crashed mid-request) is taken
 * over by the next request with that key.
 *
 * The records live in the table `idempotency_keys` of the gateway's SQLite
 * file (WAL, synchronous NORMAL: a stored answer survives a crash of the
 * gateway). Thread-safe.
 */
#ifndef GW_IDEMPOTENCY_H
#define GW_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#define GW_IDEM_KEY_MAX 255
#define GW_IDEM_FINGERPRINT_LEN 32

typedef struct gw_idem gw_idem;
typedef struct gw_idem_hasher gw_idem_hasher;

typedef enum gw_idem_state {
    GW_IDEM_NEW = 0,      /* first use: the caller forwards, then completes or releases */
    GW_IDEM_REPLAY,       /* a stored answer is in *stored */
    GW_IDEM_MISMATCH,     /* the key was used for a different request */
    GW_IDEM_IN_PROGRESS   /* the first request with this key is still running */
} gw_idem_state;

typedef struct gw_idem_response {
    int status;
    char content_type[128];
    char location[512];
    char *body; /* malloc'd, may be NULL when len is 0 */
    size_t len;
} gw_idem_response;

/* 1 when key is 1..GW_IDEM_KEY_MAX printable ASCII characters. */
int gw_idem_key_valid(const char *key);

int gw_idem_open(const char *path, int64_t ttl_s, int64_t stale_ms, gw_idem **out, char *err);
void gw_idem_close(gw_idem *idem);

/* Fingerprints a request incrementally: start with the request line, feed
 * the body in pieces, finish. NULL from start when out of memory. */
gw_idem_hasher *gw_idem_hasher_start(const char *method, const char *path, const char *query);
void gw_idem_hasher_update(gw_idem_hasher *h, const void *data, size_t len);
/* Writes the fingerprint and frees h. */
void gw_idem_hasher_finish(gw_idem_hasher *h, unsigned char out[GW_IDEM_FINGERPRINT_LEN]);

/* Claims (scope, key) for a request with this fingerprint at now_ms (wall
 * clock). On GW_IDEM_REPLAY *stored is filled (free with
 * gw_idem_response_clear). */
int gw_idem_begin(gw_idem *idem, const char *scope, const char *key,
                  const unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN], int64_t now_ms,
                  gw_idem_state *state, gw_idem_response *stored, char *err);

/* Records the answer of a request begun with GW_IDEM_NEW. fingerprint, when
 * not NULL, replaces the one given to begin: a streamed body is
 * fingerprinted only once it has passed through (begin then claims the key
 * with any placeholder, and the key stays IN_PROGRESS meanwhile). */
int gw_idem_complete(gw_idem *idem, const char *scope, const char *key,
                     const unsigned char *fingerprint, const gw_idem_response *response,
                     char *err);

/* Looks (scope, key) up without claiming it: 1 and *fingerprint filled when
 * a finished answer is stored and not expired at now_ms, else 0 (<0 error).
 * For a streamed body, which must be read whole before it can be compared. */
int gw_idem_peek_done(gw_idem *idem, const char *scope, const char *key, int64_t now_ms,
                      unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN], char *err);

/* Forgets a request begun with GW_IDEM_NEW (its answer is not to be
 * replayed: see above), so the key can be used again. */
int gw_idem_release(gw_idem *idem, const char *scope, const char *key, char *err);

/* 1 when an answer with this status is stored, 0 when the key is released. */
int gw_idem_status_stored(int status);

void gw_idem_response_clear(gw_idem_response *r);

#endif
