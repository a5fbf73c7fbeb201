/*
 * outbound.h - talking to the outside world with libcurl: JSON posts to HTTP
 * gateways (SMS, webhooks). Each call classifies failures the way the
 * notification queue needs them: worth retrying, or never going to work.
 *
 * A bss_outbound holds one curl easy handle so connections are reused; it is
 * used by one thread at a time (the notifier thread). Call
 * curl_global_init(CURL_GLOBAL_DEFAULT) once in main before creating one.
 */
#ifndef BSS_OUTBOUND_H
#define BSS_OUTBOUND_H

#include <stddef.h>

typedef struct bss_outbound bss_outbound;

/* Creates a client with a total timeout per request. NULL on no memory. */
bss_outbound *bss_outbound_new(int timeout_ms);

void bss_outbound_free(bss_outbound *out);

/* POSTs json to url with Content-Type: application/json and, when
 * idempotency_key is not NULL, an Idempotency-Key header. Returns BSS_OK on
 * 2xx; BSS_ERR_INVALID on a 4xx other than 408/429 (the request will never
 * be accepted); BSS_ERR_IO on connection errors, timeouts, 408, 429 and 5xx
 * (retry later). err says what happened. */
int bss_outbound_post_json(bss_outbound *out, const char *url, const char *idempotency_key,
                           const char *json, char *err);

#endif
