/*
 * tokens.h - the gateway's API keys: issued by an operator with
 * bssiot-admin, shown once, stored only as a SHA-256 hash, revocable.
 *
 * A token reads "bss_<id>_<secret>": <id> is 16 lowercase hex characters
 * (public: it names the token in listings, logs and revocations), <secret>
 * 43 base64url characters (32 random bytes from getrandom). The store keeps
 * the id, SHA-256 of the whole token, the role, the customer a customer
 * token is bound to, a label and the creation and revocation times, in the
 * table `api_tokens` of the gateway's SQLite file (BSS_GATEWAY_DB, default
 * <data_dir>/gateway.db). The token itself is never stored or logged.
 *
 * Verification hashes the presented token and compares the hash with the
 * stored one in constant time (CRYPTO_memcmp), so timing reveals nothing
 * about the secret. Rows are cached in memory for at most cache_ms
 * (default 1000): a revocation takes effect within that time on every
 * running gateway, without a database read per request.
 *
 * Roles: see gw_role below and access.h for what each may do.
 *
 * Threading: gw_tokens_verify may be called from any number of threads;
 * create/list/revoke are for the admin tool (one thread).
 */
#ifndef GW_TOKENS_H
#define GW_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define GW_TOKEN_ID_LEN 16
#define GW_TOKEN_SECRET_LEN 43
#define GW_TOKEN_LEN (4 + GW_TOKEN_ID_LEN + 1 + GW_TOKEN_SECRET_LEN) /* "bss_" id "_" secret */
#define GW_CUSTOMER_ID_MAX 64
#define GW_TOKEN_LABEL_MAX 128

typedef enum gw_role {
    GW_ROLE_OPERATOR = 1,  /* everything */
    GW_ROLE_MEDIATION = 2, /* usage files and AU close only */
    GW_ROLE_CUSTOMER = 3   /* one customer's own lines, orders, invoices, my page */
} gw_role;

/* Who a verified token belongs to. */
typedef struct gw_principal {
    char token_id[GW_TOKEN_ID_LEN + 1];
    gw_role role;
    char customer_id[GW_CUSTOMER_ID_MAX + 1]; /* "" unless role is customer */
} gw_principal;

/* A row of the store, as the admin tool lists it. */
typedef struct gw_token_info {
    char token_id[GW_TOKEN_ID_LEN + 1];
    gw_role role;
    char customer_id[GW_CUSTOMER_ID_MAX + 1];
    char label[GW_TOKEN_LABEL_MAX + 1];
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while valid */
} gw_token_info;

typedef struct gw_tokens gw_tokens;

/* "operator" / "mediation" / "customer"; NULL for anything else. */
const char *gw_role_name(gw_role role);
/* Parses a role name; BSS_ERR_INVALID for an unknown one. */
int gw_role_parse(const char *name, gw_role *out);

/* Opens (creating when absent) the token table in the SQLite file at path.
 * cache_ms: how long a verified row may be trusted without re-reading it
 * (0 = read every time). */
int gw_tokens_open(const char *path, int cache_ms, gw_tokens **out, char *err);
void gw_tokens_close(gw_tokens *t);

/* Issues a token. A customer token needs customer_id (1..64 characters
 * without control characters); other roles must not have one. label may be
 * NULL. The token text (GW_TOKEN_LEN characters + NUL) goes to token_out
 * and is not kept anywhere. */
int gw_tokens_create(gw_tokens *t, gw_role role, const char *customer_id, const char *label,
                     char token_out[GW_TOKEN_LEN + 1], gw_token_info *info, char *err);

/* Marks a token revoked. BSS_ERR_NOTFOUND when no such id. Revoking twice
 * is harmless. */
int gw_tokens_revoke(gw_tokens *t, const char *token_id, char *err);

/* Every token, oldest first: *out is malloc'd (free it), *count its length. */
int gw_tokens_list(gw_tokens *t, gw_token_info **out, size_t *count, char *err);

/* Checks a presented token (the text after "Bearer "). BSS_OK with *who
 * filled; BSS_ERR_NOTFOUND for anything that is not a valid, unrevoked
 * token (malformed, unknown id, wrong secret, revoked: one answer, so a
 * caller cannot tell them apart); BSS_ERR_IO when the store cannot be read. */
int gw_tokens_verify(gw_tokens *t, const char *token, gw_principal *who, char *err);

#endif
