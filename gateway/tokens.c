#include "tokens.h"

#include "bss_error.h"
#include "isotime.h"
#include "sqlutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define HASH_LEN 32
#define CACHE_SLOTS 1024

/* One cached row: the stored hash and who it belongs to. */
struct cached {
    int used;
    int64_t loaded_ms;
    int revoked;
    unsigned char hash[HASH_LEN];
    gw_principal who;
};

struct gw_tokens {
    sqlite3 *db;
    sqlite3_stmt *by_id;
    pthread_mutex_t lock; /* guards db, by_id and cache */
    int cache_ms;
    struct cached cache[CACHE_SLOTS];
    /* Fetched once: OpenSSL 3 looks the algorithm up again on every digest
     * given EVP_sha256(), a lock and a hash lookup per request. */
    EVP_MD *sha256;
};

static const char *const ROLE_NAMES[] = {NULL, "operator", "mediation", "customer"};

const char *gw_role_name(gw_role role)
{
    if (role < GW_ROLE_OPERATOR || role > GW_ROLE_CUSTOMER)
        return NULL;
    return ROLE_NAMES[role];
}

int gw_role_parse(const char *name, gw_role *out)
{
    for (int r = GW_ROLE_OPERATOR; r <= GW_ROLE_CUSTOMER; r++) {
        if (name != NULL && strcmp(name, ROLE_NAMES[r]) == 0) {
            *out = (gw_role)r;
            return BSS_OK;
        }
    }
    return BSS_ERR_INVALID;
}

static int sha256(const gw_tokens *t, const char *text, size_t len, unsigned char out[HASH_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(text, len, out, &n, t->sha256, NULL) != 1 || n != HASH_LEN)
        return BSS_ERR;
    return BSS_OK;
}

static const char *const SCHEMA[] = {
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "CREATE TABLE IF NOT EXISTS api_tokens ("
    " token_id TEXT PRIMARY KEY,"
    " token_hash BLOB NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('operator','mediation','customer')),"
    " customer_id TEXT,"
    " label TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER NOT NULL DEFAULT 0)",
};

int gw_tokens_open(const char *path, int cache_ms, gw_tokens **out, char *err)
{
    gw_tokens *t = calloc(1, sizeof *t);
    if (t == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    t->cache_ms = cache_ms < 0 ? 0 : cache_ms;
    t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (t->sha256 == NULL || pthread_mutex_init(&t->lock, NULL) != 0) {
        EVP_MD_free(t->sha256);
        free(t);
        bss_seterr(err, "cannot set up SHA-256 and a mutex");
        return BSS_ERR;
    }
    int rc = sqlite3_open_v2(path, &t->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        bss_seterr(err, "%s: %s", path, t->db ? sqlite3_errmsg(t->db) : sqlite3_errstr(rc));
        gw_tokens_close(t);
        return BSS_ERR_IO;
    }
    if (bss_sql_exec_all(t->db, SCHEMA, sizeof SCHEMA / sizeof SCHEMA[0], "token store", err) !=
            BSS_OK ||
        bss_sql_prepare(t->db,
                        "SELECT token_hash, role, coalesce(customer_id, ''), revoked_ms"
                        " FROM api_tokens WHERE token_id = ?1",
                        &t->by_id, "token lookup", err) != BSS_OK) {
        gw_tokens_close(t);
        return BSS_ERR_IO;
    }
    *out = t;
    return BSS_OK;
}

void gw_tokens_close(gw_tokens *t)
{
    if (t == NULL)
        return;
    sqlite3_finalize(t->by_id);
    sqlite3_close(t->db);
    pthread_mutex_destroy(&t->lock);
    OPENSSL_cleanse(t->cache, sizeof t->cache);
    EVP_MD_free(t->sha256);
    free(t);
}

static void hex_encode(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* base64url without padding: 32 bytes -> 43 characters. */
static void base64url_encode32(const unsigned char in[32], char out[GW_TOKEN_SECRET_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < 32; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

static int random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0)
            return BSS_ERR_IO;
        got += (size_t)r;
    }
    return BSS_OK;
}

static int customer_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > GW_CUSTOMER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

int gw_tokens_create(gw_tokens *t, gw_role role, const char *customer_id, const char *label,
                     char token_out[GW_TOKEN_LEN + 1], gw_token_info *info, char *err)
{
    if (gw_role_name(role) == NULL) {
        bss_seterr(err, "unknown role");
        return BSS_ERR_INVALID;
    }
    if (role == GW_ROLE_CUSTOMER && !customer_id_ok(customer_id)) {
        bss_seterr(err, "a customer token needs --customer (1..%d characters)", GW_CUSTOMER_ID_MAX);
        return BSS_ERR_INVALID;
    }
    if (role != GW_ROLE_CUSTOMER && customer_id != NULL) {
        bss_seterr(err, "only customer tokens are bound to a customer");
        return BSS_ERR_INVALID;
    }
    if (label == NULL)
        label = "";
    if (strlen(label) > GW_TOKEN_LABEL_MAX) {
        bss_seterr(err, "label longer than %d characters", GW_TOKEN_LABEL_MAX);
        return BSS_ERR_INVALID;
    }
    unsigned char id_bytes[GW_TOKEN_ID_LEN / 2], secret[32];
    if (random_bytes(id_bytes, sizeof id_bytes) != BSS_OK ||
        random_bytes(secret, sizeof secret) != BSS_OK) {
        bss_seterr(err, "getrandom failed");
        return BSS_ERR_IO;
    }
    char id[GW_TOKEN_ID_LEN + 1], secret_text[GW_TOKEN_SECRET_LEN + 1];
    hex_encode(id_bytes, sizeof id_bytes, id);
    base64url_encode32(secret, secret_text);
    OPENSSL_cleanse(secret, sizeof secret);
    char token[GW_TOKEN_LEN + 1];
    snprintf(token, sizeof token, "bss_%s_%s", id, secret_text);
    OPENSSL_cleanse(secret_text, sizeof secret_text);
    unsigned char hash[HASH_LEN];
    if (sha256(t, token, GW_TOKEN_LEN, hash) != BSS_OK) {
        OPENSSL_cleanse(token, sizeof token);
        bss_seterr(err, "SHA-256 failed");
        return BSS_ERR;
    }
    int64_t created = bss_now_ms();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&t->lock);
    int rc = bss_sql_prepare(t->db,
                             "INSERT INTO api_tokens (token_id, token_hash, role, customer_id,"
                             " label, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                             &st, "token insert", err);
    if (rc == BSS_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, hash, HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, gw_role_name(role), -1, SQLITE_STATIC);
        if (customer_id != NULL)
            sqlite3_bind_text(st, 4, customer_id, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, label, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, created);
        rc = bss_sql_step_done(t->db, st, "token insert", NULL, err); /* finalizes st */
    }
    pthread_mutex_unlock(&t->lock);
    if (rc != BSS_OK) {
        OPENSSL_cleanse(token, sizeof token);
        return rc;
    }
    memcpy(token_out, token, sizeof token);
    OPENSSL_cleanse(token, sizeof token);
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        memcpy(info->token_id, id, sizeof id);
        info->role = role;
        snprintf(info->customer_id, sizeof info->customer_id, "%s", customer_id ? customer_id : "");
        snprintf(info->label, sizeof info->label, "%s", label);
        info->created_ms = created;
    }
    return BSS_OK;
}

int gw_tokens_revoke(gw_tokens *t, const char *token_id, char *err)
{
    sqlite3_stmt *st = NULL;
    int changed = 0;
    pthread_mutex_lock(&t->lock);
    int rc = bss_sql_prepare(t->db,
                             "UPDATE api_tokens SET revoked_ms = ?2"
                             " WHERE token_id = ?1 AND revoked_ms = 0",
                             &st, "token revoke", err);
    if (rc == BSS_OK) {
        sqlite3_bind_text(st, 1, token_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, bss_now_ms());
        rc = bss_sql_step_done(t->db, st, "token revoke", &changed, err); /* finalizes st */
    }
    if (rc == BSS_OK && changed == 0) {
        sqlite3_stmt *exists = NULL;
        rc = bss_sql_prepare(t->db, "SELECT 1 FROM api_tokens WHERE token_id = ?1", &exists,
                             "token lookup", err);
        if (rc == BSS_OK) {
            sqlite3_bind_text(exists, 1, token_id, -1, SQLITE_STATIC);
            int step = sqlite3_step(exists);
            if (step == SQLITE_DONE) {
                bss_seterr(err, "no token with id %s", token_id);
                rc = BSS_ERR_NOTFOUND;
            } else if (step != SQLITE_ROW) {
                bss_seterr(err, "token lookup: %s", sqlite3_errmsg(t->db));
                rc = BSS_ERR_IO;
            }
        }
        sqlite3_finalize(exists);
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        t->cache[i].used = 0;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static void row_to_info(sqlite3_stmt *st, gw_token_info *info)
{
    memset(info, 0, sizeof *info);
    bss_sql_copy_text(st, 0, info->token_id, sizeof info->token_id);
    gw_role role = GW_ROLE_OPERATOR;
    (void)gw_role_parse((const char *)sqlite3_column_text(st, 1), &role);
    info->role = role;
    bss_sql_copy_text(st, 2, info->customer_id, sizeof info->customer_id);
    bss_sql_copy_text(st, 3, info->label, sizeof info->label);
    info->created_ms = sqlite3_column_int64(st, 4);
    info->revoked_ms = sqlite3_column_int64(st, 5);
}

int gw_tokens_list(gw_tokens *t, gw_token_info **out, size_t *count, char *err)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&t->lock);
    int rc = bss_sql_prepare(t->db,
                             "SELECT token_id, role, coalesce(customer_id, ''), label, created_ms,"
                             " revoked_ms FROM api_tokens ORDER BY created_ms, token_id",
                             &st, "token list", err);
    size_t cap = 0;
    gw_token_info *rows = NULL;
    while (rc == BSS_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            bss_seterr(err, "token list: %s", sqlite3_errmsg(t->db));
            rc = BSS_ERR_IO;
            break;
        }
        if (*count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            gw_token_info *grown = realloc(rows, ncap * sizeof *rows);
            if (grown == NULL) {
                bss_seterr(err, "out of memory");
                rc = BSS_ERR_NOMEM;
                break;
            }
            rows = grown;
            cap = ncap;
        }
        row_to_info(st, &rows[(*count)++]);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->lock);
    if (rc != BSS_OK) {
        free(rows);
        *count = 0;
        return rc;
    }
    *out = rows;
    return BSS_OK;
}

/* A token is "bss_" + 16 lowercase hex + "_" + 43 base64url characters. */
static int token_shape_ok(const char *token)
{
    if (strlen(token) != GW_TOKEN_LEN || strncmp(token, "bss_", 4) != 0 ||
        token[4 + GW_TOKEN_ID_LEN] != '_')
        return 0;
    for (size_t i = 4; i < 4 + GW_TOKEN_ID_LEN; i++) {
        char c = token[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    for (size_t i = 5 + GW_TOKEN_ID_LEN; i < GW_TOKEN_LEN; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static size_t slot_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % CACHE_SLOTS;
}

/* Fills slot from the store (lock held). BSS_ERR_NOTFOUND for no such id. */
static int load(gw_tokens *t, const char *id, struct cached *slot, char *err)
{
    sqlite3_reset(t->by_id);
    sqlite3_bind_text(t->by_id, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(t->by_id);
    if (step == SQLITE_DONE) {
        sqlite3_reset(t->by_id);
        return BSS_ERR_NOTFOUND;
    }
    if (step != SQLITE_ROW) {
        bss_seterr(err, "token lookup: %s", sqlite3_errmsg(t->db));
        sqlite3_reset(t->by_id);
        return BSS_ERR_IO;
    }
    memset(slot, 0, sizeof *slot);
    const void *hash = sqlite3_column_blob(t->by_id, 0);
    if (hash == NULL || sqlite3_column_bytes(t->by_id, 0) != HASH_LEN) {
        sqlite3_reset(t->by_id);
        return BSS_ERR_NOTFOUND;
    }
    memcpy(slot->hash, hash, HASH_LEN);
    gw_role role = GW_ROLE_OPERATOR;
    if (gw_role_parse((const char *)sqlite3_column_text(t->by_id, 1), &role) != BSS_OK) {
        sqlite3_reset(t->by_id);
        return BSS_ERR_NOTFOUND;
    }
    slot->who.role = role;
    bss_sql_copy_text(t->by_id, 2, slot->who.customer_id, sizeof slot->who.customer_id);
    slot->revoked = sqlite3_column_int64(t->by_id, 3) != 0;
    snprintf(slot->who.token_id, sizeof slot->who.token_id, "%s", id);
    slot->loaded_ms = bss_monotonic_ms();
    slot->used = 1;
    sqlite3_reset(t->by_id);
    return BSS_OK;
}

int gw_tokens_verify(gw_tokens *t, const char *token, gw_principal *who, char *err)
{
    if (token == NULL || !token_shape_ok(token))
        return BSS_ERR_NOTFOUND;
    char id[GW_TOKEN_ID_LEN + 1];
    memcpy(id, token + 4, GW_TOKEN_ID_LEN);
    id[GW_TOKEN_ID_LEN] = '\0';
    unsigned char presented[HASH_LEN];
    if (sha256(t, token, GW_TOKEN_LEN, presented) != BSS_OK) {
        bss_seterr(err, "SHA-256 failed");
        return BSS_ERR;
    }
    pthread_mutex_lock(&t->lock);
    struct cached *slot = &t->cache[slot_of(id)];
    int rc = BSS_OK;
    if (!slot->used || strcmp(slot->who.token_id, id) != 0 ||
        bss_monotonic_ms() - slot->loaded_ms >= t->cache_ms)
        rc = load(t, id, slot, err);
    if (rc == BSS_OK &&
        (slot->revoked || CRYPTO_memcmp(slot->hash, presented, HASH_LEN) != 0))
        rc = BSS_ERR_NOTFOUND;
    if (rc == BSS_OK)
        *who = slot->who;
    pthread_mutex_unlock(&t->lock);
    return rc == BSS_ERR_NOTFOUND || rc == BSS_OK ? rc : BSS_ERR_IO;
}
