#include "idempotency.h"

#include "bss_error.h"
#include "sqlutil.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Expired keys are purged at most this often, inside a begin. */
#define PURGE_EVERY_MS 60000

enum { STATE_RUNNING = 0, STATE_DONE = 1 };

struct gw_idem {
    sqlite3 *db;
    sqlite3_stmt *select, *claim, *take_over, *complete, *release, *purge;
    pthread_mutex_t lock;
    int64_t ttl_ms, stale_ms, purged_ms;
};

struct gw_idem_hasher {
    EVP_MD_CTX *md;
};

int gw_idem_key_valid(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > GW_IDEM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 1;
}

int gw_idem_status_stored(int status)
{
    return !(status == 429 || status == 502 || status == 503 || status == 504);
}

static const char *const SCHEMA[] = {
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "CREATE TABLE IF NOT EXISTS idempotency_keys ("
    " scope TEXT NOT NULL,"
    " idem_key TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL,"
    " state INTEGER NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " content_type TEXT NOT NULL DEFAULT '',"
    " location TEXT NOT NULL DEFAULT '',"
    " body BLOB,"
    " created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (scope, idem_key))",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_ms)",
};

int gw_idem_open(const char *path, int64_t ttl_s, int64_t stale_ms, gw_idem **out, char *err)
{
    gw_idem *idem = calloc(1, sizeof *idem);
    if (idem == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    if (pthread_mutex_init(&idem->lock, NULL) != 0) {
        free(idem);
        bss_seterr(err, "cannot create a mutex");
        return BSS_ERR;
    }
    idem->ttl_ms = ttl_s * 1000;
    idem->stale_ms = stale_ms;
    int rc = sqlite3_open_v2(path, &idem->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        bss_seterr(err, "%s: %s", path, idem->db ? sqlite3_errmsg(idem->db) : sqlite3_errstr(rc));
        gw_idem_close(idem);
        return BSS_ERR_IO;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } statements[] = {
        {&idem->select, "SELECT fingerprint, state, status, content_type, location, body,"
                        " created_ms FROM idempotency_keys WHERE scope = ?1 AND idem_key = ?2"},
        {&idem->claim, "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, state,"
                       " created_ms) VALUES (?1, ?2, ?3, 0, ?4)"},
        {&idem->take_over, "UPDATE idempotency_keys SET fingerprint = ?3, state = 0, status = 0,"
                           " content_type = '', location = '', body = NULL, created_ms = ?4"
                           " WHERE scope = ?1 AND idem_key = ?2"},
        {&idem->complete, "UPDATE idempotency_keys SET state = 1, status = ?3,"
                          " content_type = ?4, location = ?5, body = ?6,"
                          " fingerprint = coalesce(?7, fingerprint)"
                          " WHERE scope = ?1 AND idem_key = ?2 AND state = 0"},
        {&idem->release, "DELETE FROM idempotency_keys"
                         " WHERE scope = ?1 AND idem_key = ?2 AND state = 0"},
        {&idem->purge, "DELETE FROM idempotency_keys WHERE created_ms < ?1"},
    };
    rc = bss_sql_exec_all(idem->db, SCHEMA, sizeof SCHEMA / sizeof SCHEMA[0], "idempotency store",
                          err);
    for (size_t i = 0; rc == BSS_OK && i < sizeof statements / sizeof statements[0]; i++)
        rc = bss_sql_prepare(idem->db, statements[i].sql, statements[i].st, "idempotency store",
                             err);
    if (rc != BSS_OK) {
        gw_idem_close(idem);
        return BSS_ERR_IO;
    }
    *out = idem;
    return BSS_OK;
}

void gw_idem_close(gw_idem *idem)
{
    if (idem == NULL)
        return;
    sqlite3_stmt *all[] = {idem->select, idem->claim, idem->take_over,
                           idem->complete, idem->release, idem->purge};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(idem->db);
    pthread_mutex_destroy(&idem->lock);
    free(idem);
}

gw_idem_hasher *gw_idem_hasher_start(const char *method, const char *path, const char *query)
{
    gw_idem_hasher *h = malloc(sizeof *h);
    if (h == NULL)
        return NULL;
    h->md = EVP_MD_CTX_new();
    if (h->md == NULL || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        free(h);
        return NULL;
    }
    /* Each part with its terminating NUL, so ("a", "bc") and ("ab", "c")
     * differ. */
    const char *parts[] = {method, path, query ? query : ""};
    for (size_t i = 0; i < 3; i++)
        EVP_DigestUpdate(h->md, parts[i], strlen(parts[i]) + 1);
    return h;
}

void gw_idem_hasher_update(gw_idem_hasher *h, const void *data, size_t len)
{
    if (len > 0)
        EVP_DigestUpdate(h->md, data, len);
}

void gw_idem_hasher_finish(gw_idem_hasher *h, unsigned char out[GW_IDEM_FINGERPRINT_LEN])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->md, out, &n) != 1 || n != GW_IDEM_FINGERPRINT_LEN)
        memset(out, 0, GW_IDEM_FINGERPRINT_LEN); /* fails closed: matches no real request */
    EVP_MD_CTX_free(h->md);
    free(h);
}

void gw_idem_response_clear(gw_idem_response *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void bind_key(sqlite3_stmt *st, const char *scope, const char *key)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
}

/* Steps a prepared-once statement that returns no row, then resets it. */
static int run(gw_idem *idem, sqlite3_stmt *st, char *err)
{
    int step = sqlite3_step(st);
    int rc = BSS_OK;
    if (step != SQLITE_DONE) {
        bss_seterr(err, "idempotency store: %s", sqlite3_errmsg(idem->db));
        rc = step == SQLITE_BUSY ? BSS_ERR_BUSY : BSS_ERR_IO;
    }
    sqlite3_reset(st);
    return rc;
}

static int purge_expired(gw_idem *idem, int64_t now_ms, char *err)
{
    if (now_ms - idem->purged_ms < PURGE_EVERY_MS)
        return BSS_OK;
    idem->purged_ms = now_ms;
    sqlite3_reset(idem->purge);
    sqlite3_bind_int64(idem->purge, 1, now_ms - idem->ttl_ms);
    return run(idem, idem->purge, err);
}

/* Reads the row for (scope, key) (lock held). 0 none, 1 found, <0 error. */
static int read_row(gw_idem *idem, const char *scope, const char *key,
                    unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN], int *state,
                    int64_t *created_ms, gw_idem_response *stored, char *err)
{
    bind_key(idem->select, scope, key);
    int step = sqlite3_step(idem->select);
    if (step == SQLITE_DONE) {
        sqlite3_reset(idem->select);
        return 0;
    }
    if (step != SQLITE_ROW) {
        bss_seterr(err, "idempotency lookup: %s", sqlite3_errmsg(idem->db));
        sqlite3_reset(idem->select);
        return step == SQLITE_BUSY ? BSS_ERR_BUSY : BSS_ERR_IO;
    }
    const void *fp = sqlite3_column_blob(idem->select, 0);
    if (fp != NULL && sqlite3_column_bytes(idem->select, 0) == GW_IDEM_FINGERPRINT_LEN)
        memcpy(fingerprint, fp, GW_IDEM_FINGERPRINT_LEN);
    else
        memset(fingerprint, 0, GW_IDEM_FINGERPRINT_LEN);
    *state = sqlite3_column_int(idem->select, 1);
    *created_ms = sqlite3_column_int64(idem->select, 6);
    memset(stored, 0, sizeof *stored);
    stored->status = sqlite3_column_int(idem->select, 2);
    bss_sql_copy_text(idem->select, 3, stored->content_type, sizeof stored->content_type);
    bss_sql_copy_text(idem->select, 4, stored->location, sizeof stored->location);
    int len = sqlite3_column_bytes(idem->select, 5);
    if (len > 0) {
        stored->body = malloc((size_t)len);
        if (stored->body == NULL) {
            sqlite3_reset(idem->select);
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
        memcpy(stored->body, sqlite3_column_blob(idem->select, 5), (size_t)len);
        stored->len = (size_t)len;
    }
    sqlite3_reset(idem->select);
    return 1;
}

static int write_claim(gw_idem *idem, sqlite3_stmt *st, const char *scope, const char *key,
                       const unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN], int64_t now_ms,
                       char *err)
{
    bind_key(st, scope, key);
    sqlite3_bind_blob(st, 3, fingerprint, GW_IDEM_FINGERPRINT_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    return run(idem, st, err);
}

int gw_idem_begin(gw_idem *idem, const char *scope, const char *key,
                  const unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN], int64_t now_ms,
                  gw_idem_state *state, gw_idem_response *stored, char *err)
{
    memset(stored, 0, sizeof *stored);
    pthread_mutex_lock(&idem->lock);
    int rc = purge_expired(idem, now_ms, err);
    unsigned char seen[GW_IDEM_FINGERPRINT_LEN];
    int row_state = 0;
    int64_t created = 0;
    int found = rc == BSS_OK ? read_row(idem, scope, key, seen, &row_state, &created, stored, err)
                             : rc;
    if (found < 0) {
        rc = found;
    } else if (found == 0) {
        rc = write_claim(idem, idem->claim, scope, key, fingerprint, now_ms, err);
        *state = GW_IDEM_NEW;
    } else if (now_ms - created >= idem->ttl_ms ||
               (row_state == STATE_RUNNING && now_ms - created >= idem->stale_ms)) {
        /* Expired, or left running by a gateway that died: start afresh. */
        gw_idem_response_clear(stored);
        rc = write_claim(idem, idem->take_over, scope, key, fingerprint, now_ms, err);
        *state = GW_IDEM_NEW;
    } else if (memcmp(seen, fingerprint, GW_IDEM_FINGERPRINT_LEN) != 0) {
        gw_idem_response_clear(stored);
        *state = GW_IDEM_MISMATCH;
    } else if (row_state == STATE_RUNNING) {
        gw_idem_response_clear(stored);
        *state = GW_IDEM_IN_PROGRESS;
    } else {
        *state = GW_IDEM_REPLAY;
    }
    pthread_mutex_unlock(&idem->lock);
    if (rc != BSS_OK)
        gw_idem_response_clear(stored);
    return rc;
}

int gw_idem_complete(gw_idem *idem, const char *scope, const char *key,
                     const unsigned char *fingerprint, const gw_idem_response *response,
                     char *err)
{
    pthread_mutex_lock(&idem->lock);
    bind_key(idem->complete, scope, key);
    if (fingerprint != NULL)
        sqlite3_bind_blob(idem->complete, 7, fingerprint, GW_IDEM_FINGERPRINT_LEN,
                          SQLITE_STATIC);
    sqlite3_bind_int(idem->complete, 3, response->status);
    sqlite3_bind_text(idem->complete, 4, response->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(idem->complete, 5, response->location, -1, SQLITE_STATIC);
    if (response->len > 0)
        sqlite3_bind_blob64(idem->complete, 6, response->body, response->len, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(idem->complete, 6, 0);
    int rc = run(idem, idem->complete, err);
    pthread_mutex_unlock(&idem->lock);
    return rc;
}

int gw_idem_peek_done(gw_idem *idem, const char *scope, const char *key, int64_t now_ms,
                      unsigned char fingerprint[GW_IDEM_FINGERPRINT_LEN], char *err)
{
    gw_idem_response stored;
    int state = 0;
    int64_t created = 0;
    pthread_mutex_lock(&idem->lock);
    int found = read_row(idem, scope, key, fingerprint, &state, &created, &stored, err);
    pthread_mutex_unlock(&idem->lock);
    if (found == 1) {
        gw_idem_response_clear(&stored);
        found = state == STATE_DONE && now_ms - created < idem->ttl_ms;
    }
    return found;
}

int gw_idem_release(gw_idem *idem, const char *scope, const char *key, char *err)
{
    pthread_mutex_lock(&idem->lock);
    bind_key(idem->release, scope, key);
    int rc = run(idem, idem->release, err);
    pthread_mutex_unlock(&idem->lock);
    return rc;
}
