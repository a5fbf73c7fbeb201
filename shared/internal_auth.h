/*
 * internal_auth.h - services trust only the gateway.
 *
 * The gateway checks who the caller is (tokens, roles); a service behind it
 * must not be reachable around it. Two layers: services listen on loopback
 * by default, and when BSS_INTERNAL_TOKEN is set (the launcher sets a
 * random one for every run, the Helm chart takes it from a Secret) every
 * service refuses any request that does not carry it in
 * X-Bss-Internal-Token, which only the gateway adds:
 *
 *   401 GATEWAY_ONLY   "requests reach this service through the gateway"
 *
 * The probes (/healthz, /readyz) and /metrics (scraped from inside the
 * deployment, like the probes) stay open. The comparison takes the same
 * time whatever the presented value.
 */
#ifndef BSS_INTERNAL_AUTH_H
#define BSS_INTERNAL_AUTH_H

#include "config.h"
#include "http.h"

#define BSS_INTERNAL_TOKEN_HEADER "X-Bss-Internal-Token"
#define BSS_INTERNAL_TOKEN_MAX 256

typedef struct bss_internal_auth bss_internal_auth;

/* Installs the gate on http when BSS_INTERNAL_TOKEN is set in cfg (*out
 * then holds it; free after the server stopped); does nothing (BSS_OK,
 * *out NULL) when it is not. BSS_ERR_INVALID for a token longer than
 * BSS_INTERNAL_TOKEN_MAX or with characters not allowed in a header. */
int bss_internal_auth_install(bss_http *http, const bss_config *cfg, bss_internal_auth **out,
                              char *err);
void bss_internal_auth_free(bss_internal_auth *auth);

/* 1 when value is a token a header can carry (visible ASCII), else 0. */
int bss_internal_token_valid(const char *value);

#endif
