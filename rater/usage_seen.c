/*
 * usage_seen.c - see usage_seen.h.
 *
 * Adding a sorted run of ids walks the blocks in key order: for the next id
 * it loads the block whose range holds it (the last block whose first id is
 * not greater, or the first block when the id is smaller than every key),
 * takes every following id below the next block's first id, merges them in
 * and writes the block back (split when it grows past the size limit). A
 * block that gains nothing is not written.
 */
#include "usage_seen.h"

#include "bss_error.h"
#include "evstore.h"
#include "sqlutil.h"

#include <stdlib.h>
#include <string.h>

struct usage_seen {
    sqlite3 *db;
    sqlite3_stmt *floor_block; /* the block whose range holds ?1 */
    sqlite3_stmt *first_block; /* the block with the smallest key */
    sqlite3_stmt *next_key;    /* the first key after ?1 */
    sqlite3_stmt *update, *insert, *remove;
    unsigned char *block; /* the loaded block's ids */
    size_t block_len, block_cap;
    char key[256], upper[256];
    size_t key_len, upper_len;
    unsigned char *merged; /* the merge's output, as block bytes */
    size_t merged_cap;
    size_t *starts; /* offset in merged of each id */
    size_t starts_cap;
};

int usage_seen_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int grow(void *ptr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return BSS_OK;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *p = realloc(*(void **)ptr, n * size);
    if (p == NULL)
        return BSS_ERR_NOMEM;
    *(void **)ptr = p;
    *cap = n;
    return BSS_OK;
}

int usage_seen_open(sqlite3 *db, usage_seen **out, char *err)
{
    usage_seen *s = calloc(1, sizeof *s);
    if (s == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    s->db = db;
    const char *sql[] = {
        ("SELECT first_id, ids FROM usage_seen_block WHERE first_id <= ?1"
         " ORDER BY first_id DESC LIMIT 1"),
        "SELECT first_id, ids FROM usage_seen_block ORDER BY first_id LIMIT 1",
        "SELECT first_id FROM usage_seen_block WHERE first_id > ?1 ORDER BY first_id LIMIT 1",
        "UPDATE usage_seen_block SET ids = ?2 WHERE first_id = ?1",
        "INSERT INTO usage_seen_block(first_id, ids) VALUES(?1, ?2)",
        "DELETE FROM usage_seen_block WHERE first_id = ?1",
    };
    sqlite3_stmt **st[] = {&s->floor_block, &s->first_block, &s->next_key,
                           &s->update,      &s->insert,      &s->remove};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        int rc = bss_store_prepare_cached(db, sql[i], st[i], err);
        if (rc != BSS_OK) {
            usage_seen_close(s);
            return rc;
        }
    }
    *out = s;
    return BSS_OK;
}

void usage_seen_close(usage_seen *s)
{
    if (s == NULL)
        return;
    sqlite3_reset(s->floor_block);
    sqlite3_reset(s->first_block);
    sqlite3_reset(s->next_key);
    sqlite3_reset(s->update);
    sqlite3_reset(s->insert);
    sqlite3_reset(s->remove);
    free(s->block);
    free(s->merged);
    free(s->starts);
    free(s);
}

static int store_error(usage_seen *s, const char *what, char *err)
{
    bss_seterr(err, "%s: %s", what, sqlite3_errmsg(s->db));
    return BSS_ERR_IO;
}

/* Copies the current row (key, ids) of st into s->key / s->block. */
static int take_block(usage_seen *s, sqlite3_stmt *st, char *err)
{
    const void *key = sqlite3_column_blob(st, 0);
    size_t key_len = (size_t)sqlite3_column_bytes(st, 0);
    const void *ids = sqlite3_column_blob(st, 1);
    size_t ids_len = (size_t)sqlite3_column_bytes(st, 1);
    if (key_len == 0 || key_len >= sizeof s->key) {
        bss_seterr(err, "usage_seen_block: bad key");
        return BSS_ERR_IO;
    }
    memcpy(s->key, key, key_len);
    s->key_len = key_len;
    if (grow(&s->block, &s->block_cap, ids_len + 1, 1) != BSS_OK) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    if (ids_len > 0)
        memcpy(s->block, ids, ids_len);
    s->block_len = ids_len;
    return BSS_OK;
}

/* Loads the block whose range holds id. 1 loaded, 0 when there is no block
 * at all, < 0 on error. */
static int load_block(usage_seen *s, const char *id, size_t len, char *err)
{
    sqlite3_bind_text(s->floor_block, 1, id, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(s->floor_block);
    sqlite3_stmt *st = s->floor_block;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s->floor_block);
        st = s->first_block;
        rc = sqlite3_step(st);
    }
    int result = 0;
    if (rc == SQLITE_ROW)
        result = take_block(s, st, err) == BSS_OK ? 1 : BSS_ERR_IO;
    else if (rc != SQLITE_DONE)
        result = store_error(s, "read usage_seen_block", err);
    sqlite3_reset(st);
    return result;
}

/* The first key after s->key into s->upper: 1 found, 0 none, < 0 error. */
static int load_upper(usage_seen *s, char *err)
{
    sqlite3_bind_text(s->next_key, 1, s->key, (int)s->key_len, SQLITE_STATIC);
    int rc = sqlite3_step(s->next_key);
    int result = 0;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s->next_key, 0);
        const void *key = sqlite3_column_blob(s->next_key, 0);
        if (n == 0 || n >= sizeof s->upper) {
            bss_seterr(err, "usage_seen_block: bad key");
            result = BSS_ERR_IO;
        } else {
            memcpy(s->upper, key, n);
            s->upper_len = n;
            result = 1;
        }
    } else if (rc != SQLITE_DONE) {
        result = store_error(s, "read usage_seen_block", err);
    }
    sqlite3_reset(s->next_key);
    return result;
}

/* Appends one id to the merge output. */
static int put(usage_seen *s, size_t *len, size_t *count, const char *id, size_t n)
{
    if (grow(&s->merged, &s->merged_cap, *len + n + 1, 1) != BSS_OK ||
        grow(&s->starts, &s->starts_cap, *count + 1, sizeof *s->starts) != BSS_OK)
        return BSS_ERR_NOMEM;
    s->starts[(*count)++] = *len;
    s->merged[*len] = (unsigned char)n;
    memcpy(s->merged + *len + 1, id, n);
    *len += n + 1;
    return BSS_OK;
}

static int write_chunk(usage_seen *s, sqlite3_stmt *st, size_t from, size_t to, char *err)
{
    const unsigned char *first = s->merged + from;
    sqlite3_bind_text(st, 1, (const char *)first + 1, first[0], SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, s->merged + from, (int)(to - from), SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? BSS_OK : store_error(s, "write usage_seen_block", err);
}

/* Writes merged[0..len) (count ids) back as blocks, replacing the loaded
 * block when had_block. An append (every new id after the block's last)
 * fills blocks up to the limit, so ids that arrive in order leave full
 * blocks behind; an insert in the middle splits evenly, as a B-tree does. */
static int write_blocks(usage_seen *s, int had_block, int append, size_t len, size_t count,
                        char *err)
{
    size_t pieces = (len + USAGE_SEEN_BLOCK_BYTES - 1) / USAGE_SEEN_BLOCK_BYTES;
    size_t target = append || pieces <= 1 ? USAGE_SEEN_BLOCK_BYTES : (len + pieces - 1) / pieces;
    int first = 1;
    for (size_t k = 0; k < count;) {
        /* ids k..end-1 form the next block: at least one, then as many as
         * keep it within the target size. */
        size_t from = s->starts[k], end = k + 1;
        while (end < count && (end + 1 < count ? s->starts[end + 1] : len) - from <= target)
            end++;
        size_t to = end < count ? s->starts[end] : len;
        k = end;
        int rc;
        if (first && had_block) {
            const unsigned char *id = s->merged + from;
            if (usage_seen_cmp((const char *)id + 1, id[0], s->key, s->key_len) == 0) {
                rc = write_chunk(s, s->update, from, to, err);
            } else {
                sqlite3_bind_text(s->remove, 1, s->key, (int)s->key_len, SQLITE_STATIC);
                rc = sqlite3_step(s->remove) == SQLITE_DONE
                         ? BSS_OK
                         : store_error(s, "delete usage_seen_block", err);
                sqlite3_reset(s->remove);
                if (rc == BSS_OK)
                    rc = write_chunk(s, s->insert, from, to, err);
            }
        } else {
            rc = write_chunk(s, s->insert, from, to, err);
        }
        if (rc != BSS_OK)
            return rc;
        first = 0;
    }
    return BSS_OK;
}

int usage_seen_add_sorted(usage_seen *s, const char *const *ids, const unsigned char *lens,
                          size_t n, unsigned char *fresh, char *err)
{
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 ||
            (i > 0 && usage_seen_cmp(ids[i - 1], lens[i - 1], ids[i], lens[i]) >= 0)) {
            bss_seterr(err, "usage_seen: ids must be non-empty and strictly ascending");
            return BSS_ERR_INVALID;
        }
    }
    size_t i = 0;
    while (i < n) {
        int had_block = load_block(s, ids[i], lens[i], err);
        if (had_block < 0)
            return had_block;
        int has_upper = had_block ? load_upper(s, err) : 0;
        if (has_upper < 0)
            return has_upper;
        size_t j = i;
        while (j < n &&
               (!has_upper || usage_seen_cmp(ids[j], lens[j], s->upper, s->upper_len) < 0))
            j++;
        /* Merge the block's ids with ids[i..j). */
        size_t pos = 0, len = 0, count = 0, added = 0, k = i;
        size_t block_len = had_block ? s->block_len : 0;
        int append = 1;
        while (pos < block_len || k < j) {
            const char *b = NULL;
            size_t blen = 0;
            if (pos < block_len) {
                blen = s->block[pos];
                if (blen == 0 || pos + 1 + blen > block_len) {
                    bss_seterr(err, "usage_seen_block: corrupt block");
                    return BSS_ERR_IO;
                }
                b = (const char *)s->block + pos + 1;
            }
            int c = b == NULL ? 1 : k == j ? -1 : usage_seen_cmp(b, blen, ids[k], lens[k]);
            int rc;
            if (c <= 0) {
                rc = put(s, &len, &count, b, blen);
                pos += 1 + blen;
                if (added > 0)
                    append = 0; /* an old id after a new one */
                if (c == 0)
                    fresh[k++] = 0;
            } else {
                rc = put(s, &len, &count, ids[k], lens[k]);
                fresh[k++] = 1;
                added++;
            }
            if (rc != BSS_OK) {
                bss_seterr(err, "out of memory");
                return rc;
            }
        }
        if (added > 0) {
            int rc = write_blocks(s, had_block, append, len, count, err);
            if (rc != BSS_OK)
                return rc;
        }
        i = j;
    }
    return BSS_OK;
}

/* Moves the ids of the row-per-id table of earlier versions into blocks. */
static int migrate(sqlite3 *db, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_sql_prepare(db,
                             "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                             " AND name = 'usage_seen'",
                             &st, "prepare", err);
    if (rc != BSS_OK)
        return rc;
    int exists = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (!exists)
        return BSS_OK;
    usage_seen *seen = NULL;
    rc = usage_seen_open(db, &seen, err);
    if (rc == BSS_OK)
        rc = bss_sql_prepare(db, "SELECT record_id FROM usage_seen ORDER BY record_id", &st,
                             "prepare", err);
    enum { CHUNK = 4096 };
    char(*text)[256] = rc == BSS_OK ? malloc(CHUNK * sizeof *text) : NULL;
    const char *ids[CHUNK];
    unsigned char lens[CHUNK], fresh[CHUNK];
    if (rc == BSS_OK && text == NULL) {
        bss_seterr(err, "out of memory");
        rc = BSS_ERR_NOMEM;
    }
    size_t count = 0;
    int step = SQLITE_ROW;
    while (rc == BSS_OK && step == SQLITE_ROW) {
        step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            size_t len = (size_t)sqlite3_column_bytes(st, 0);
            if (len == 0 || len > 255)
                continue; /* never stored: record ids are 1-64 bytes */
            memcpy(text[count], sqlite3_column_blob(st, 0), len);
            ids[count] = text[count];
            lens[count++] = (unsigned char)len;
        } else if (step != SQLITE_DONE) {
            bss_seterr(err, "read usage_seen: %s", sqlite3_errmsg(db));
            rc = BSS_ERR_IO;
        }
        if (rc == BSS_OK && (count == CHUNK || (step == SQLITE_DONE && count > 0))) {
            rc = usage_seen_add_sorted(seen, ids, lens, count, fresh, err);
            count = 0;
        }
    }
    sqlite3_finalize(st);
    free(text);
    usage_seen_close(seen);
    if (rc == BSS_OK && sqlite3_exec(db, "DROP TABLE usage_seen", NULL, NULL, NULL) != SQLITE_OK) {
        bss_seterr(err, "drop usage_seen: %s", sqlite3_errmsg(db));
        rc = BSS_ERR_IO;
    }
    return rc;
}

int usage_seen_schema(sqlite3 *db, char *err)
{
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS usage_seen_block("
                     "  first_id TEXT PRIMARY KEY, ids BLOB NOT NULL) WITHOUT ROWID",
                     NULL, NULL, NULL) != SQLITE_OK) {
        bss_seterr(err, "usage_seen_block: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return migrate(db, err);
}
