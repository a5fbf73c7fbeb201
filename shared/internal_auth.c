#include "internal_auth.h"

#include "bss_error.h"

#include <stdlib.h>
#include <string.h>

struct bss_internal_auth {
    size_t len;
    char token[BSS_INTERNAL_TOKEN_MAX + 1];
};

int bss_internal_token_valid(const char *value)
{
    size_t n = value ? strlen(value) : 0;
    if (n == 0 || n > BSS_INTERNAL_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x21 || (unsigned char)value[i] > 0x7e)
            return 0;
    return 1;
}

/* Compares in time that depends only on the expected token's length. */
static int same_token(const struct bss_internal_auth *auth, const char *presented)
{
    size_t n = strnlen(presented, BSS_INTERNAL_TOKEN_MAX + 1);
    unsigned char diff = (unsigned char)(n != auth->len);
    for (size_t i = 0; i < auth->len; i++)
        diff |= (unsigned char)(auth->token[i] ^ (i < n ? presented[i] : 0));
    return diff == 0;
}

static int gate(bss_request *req, void *ctx)
{
    const struct bss_internal_auth *auth = ctx;
    if (strcmp(bss_req_path(req), "/metrics") == 0)
        return 0;
    const char *presented = bss_req_header(req, BSS_INTERNAL_TOKEN_HEADER);
    if (presented != NULL && same_token(auth, presented))
        return 0;
    return bss_reply_problem(req, 401, "GATEWAY_ONLY", "Gateway only",
                             "requests reach this service through the gateway");
}

int bss_internal_auth_install(bss_http *http, const bss_config *cfg, bss_internal_auth **out,
                              char *err)
{
    *out = NULL;
    const char *token = bss_config_get(cfg, "BSS_INTERNAL_TOKEN", NULL);
    if (token == NULL || token[0] == '\0')
        return BSS_OK;
    if (!bss_internal_token_valid(token)) {
        bss_seterr(err, "BSS_INTERNAL_TOKEN must be 1-%d visible ASCII characters",
                   BSS_INTERNAL_TOKEN_MAX);
        return BSS_ERR_INVALID;
    }
    struct bss_internal_auth *auth = calloc(1, sizeof *auth);
    if (auth == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    auth->len = strlen(token);
    memcpy(auth->token, token, auth->len);
    bss_http_set_gate(http, gate, auth);
    *out = auth;
    return BSS_OK;
}

void bss_internal_auth_free(bss_internal_auth *auth) { free(auth); }
