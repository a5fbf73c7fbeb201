/*
 * ratelimit.h - a token bucket per API token: each token may make `rate`
 * requests a second on average and `burst` in a row after a quiet spell.
 * A request over the limit gets 429 TOO_MANY_REQUESTS with Retry-After (the
 * whole seconds until the bucket holds one request again).
 *
 * Buckets live in a fixed table (GW_RATELIMIT_SLOTS) under one mutex; when
 * it is full, the bucket unused for longest is recycled: a recycled bucket
 * starts full, which only ever errs on the side of letting a request in.
 * Amounts are integers in thousandths of a request, so refills add up
 * exactly.
 */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdint.h>

#define GW_RATELIMIT_SLOTS 4096

typedef struct gw_ratelimit gw_ratelimit;

/* rate_per_s >= 1, burst >= 1; NULL when out of memory. */
gw_ratelimit *gw_ratelimit_new(int64_t rate_per_s, int64_t burst);
void gw_ratelimit_free(gw_ratelimit *rl);

/* Takes one request from key's bucket at time now_ms (monotonic). Returns 1
 * when allowed; 0 when limited, with *retry_after_s (>= 1) set. */
int gw_ratelimit_take(gw_ratelimit *rl, const char *key, int64_t now_ms, int *retry_after_s);

#endif
