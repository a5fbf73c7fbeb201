/*
 * test_usage_seen.c - the rater's memory of recordIds (rater/usage_seen.h),
 * checked against a plain sorted array on a real SQLite file.
 *
 * Pins down: every id is fresh exactly once whatever the order it arrives
 * in (in order, reversed, shuffled, before every stored id); blocks stay
 * sorted, keyed by their first id, within the size limit, and full when ids
 * arrive in order; 1- and 255-byte ids and bytes above 0x7f sort as SQLite
 * sorts them; unsorted input is refused without writing; the row-per-id
 * table of earlier versions is migrated into blocks.
 */
#include "bss_error.h"
#include "check.h"
#include "rater/usage_seen.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static check_counts C;

typedef struct id_list {
    char (*text)[256];
    unsigned char *len;
    size_t n;
} id_list;

static int cmp_text(const void *a, const void *b)
{
    const char *x = a, *y = b;
    return usage_seen_cmp(x + 1, (unsigned char)x[0], y + 1, (unsigned char)y[0]);
}

/* Adds ids (any order, possibly repeated) through usage_seen in batches of
 * `batch`, sorting and de-duplicating each batch as the ingest does, and
 * counts the ids reported fresh. */
static size_t add_all(sqlite3 *db, usage_seen *seen, char (*ids)[257], size_t n, size_t batch)
{
    size_t fresh_total = 0;
    const char **p = malloc(batch * sizeof *p);
    unsigned char *lens = malloc(batch), *fresh = malloc(batch);
    for (size_t from = 0; from < n; from += batch) {
        size_t count = n - from < batch ? n - from : batch;
        qsort(ids + from, count, sizeof *ids, cmp_text);
        size_t distinct = 0;
        for (size_t i = 0; i < count; i++) {
            const char *x = ids[from + i];
            if (distinct > 0 && usage_seen_cmp(p[distinct - 1], lens[distinct - 1], x + 1,
                                               (unsigned char)x[0]) == 0)
                continue;
            p[distinct] = x + 1;
            lens[distinct++] = (unsigned char)x[0];
        }
        char err[BSS_ERRLEN] = "";
        CHECK(&C, sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
        int rc = usage_seen_add_sorted(seen, p, lens, distinct, fresh, err);
        CHECK(&C, rc == BSS_OK);
        if (rc != BSS_OK)
            fprintf(stderr, "add_sorted: %s\n", err);
        CHECK(&C, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
        for (size_t i = 0; i < distinct; i++)
            fresh_total += fresh[i];
    }
    free(p);
    free(lens);
    free(fresh);
    return fresh_total;
}

/* Reads every block back: the ids must be strictly ascending across blocks,
 * each block keyed by its first id and within the size limit. Returns the
 * id count; *blocks gets the block count. */
static size_t check_blocks(sqlite3 *db, size_t *blocks)
{
    sqlite3_stmt *st = NULL;
    CHECK(&C, sqlite3_prepare_v2(db, "SELECT first_id, ids FROM usage_seen_block ORDER BY first_id",
                                 -1, &st, NULL) == SQLITE_OK);
    char last[256];
    size_t last_len = 0, count = 0;
    int ordered = 1, keyed = 1, sized = 1;
    *blocks = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        const char *key = (const char *)sqlite3_column_blob(st, 0);
        size_t key_len = (size_t)sqlite3_column_bytes(st, 0);
        (*blocks)++;
        if (n > USAGE_SEEN_BLOCK_BYTES && b[0] + 1u < n)
            sized = 0; /* only a single id may exceed the limit */
        if (n == 0 || usage_seen_cmp((const char *)b + 1, b[0], key, key_len) != 0)
            keyed = 0;
        for (size_t pos = 0; pos < n; pos += 1u + b[pos]) {
            if (count > 0 && usage_seen_cmp(last, last_len, (const char *)b + pos + 1, b[pos]) >= 0)
                ordered = 0;
            memcpy(last, b + pos + 1, b[pos]);
            last_len = b[pos];
            count++;
        }
    }
    sqlite3_finalize(st);
    CHECK(&C, ordered);
    CHECK(&C, keyed);
    CHECK(&C, sized);
    return count;
}

static sqlite3 *open_db(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sqlite3 *db = NULL;
    CHECK(&C, sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    return db;
}

/* usage_seen leaves its statements cached on the connection
 * (bss_store_prepare_cached): finalize them, as the store does, so the
 * connection closes. */
static void close_db(sqlite3 *db)
{
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
        sqlite3_finalize(st);
    CHECK(&C, sqlite3_close(db) == SQLITE_OK);
}

static void test_in_order_and_again(const char *dir)
{
    sqlite3 *db = open_db(dir, "order.db");
    char err[BSS_ERRLEN];
    CHECK(&C, usage_seen_schema(db, err) == BSS_OK);
    usage_seen *seen = NULL;
    CHECK(&C, usage_seen_open(db, &seen, err) == BSS_OK);
    size_t n = 100000;
    char(*ids)[257] = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i][0] = (char)snprintf(ids[i] + 1, 256, "R%09zu", i);
    CHECK(&C, add_all(db, seen, ids, n, 1000) == n);
    size_t blocks = 0;
    CHECK(&C, check_blocks(db, &blocks) == n);
    /* In order, blocks are filled: 11 bytes an id, at most one partial. */
    CHECK(&C, blocks <= n * 11 / USAGE_SEEN_BLOCK_BYTES + 2);
    CHECK(&C, add_all(db, seen, ids, n, 4096) == 0); /* all known */
    /* Reversed and in one batch with a new id in the middle. */
    for (size_t i = 0; i < n / 2; i++) {
        char t[257];
        memcpy(t, ids[i], sizeof t);
        memcpy(ids[i], ids[n - 1 - i], sizeof t);
        memcpy(ids[n - 1 - i], t, sizeof t);
    }
    ids[n / 2][0] = (char)snprintf(ids[n / 2] + 1, 256, "R%09zuX", n / 2);
    CHECK(&C, add_all(db, seen, ids, n, n) == 1);
    CHECK(&C, check_blocks(db, &blocks) == n + 1);
    usage_seen_close(seen);
    close_db(db);
    free(ids);
}

static void test_random_order(const char *dir)
{
    sqlite3 *db = open_db(dir, "random.db");
    char err[BSS_ERRLEN];
    CHECK(&C, usage_seen_schema(db, err) == BSS_OK);
    usage_seen *seen = NULL;
    CHECK(&C, usage_seen_open(db, &seen, err) == BSS_OK);
    size_t n = 30000;
    char(*ids)[257] = malloc(n * sizeof *ids);
    srand(7);
    /* Ids of 1 to 255 bytes, some with bytes above 0x7f, a third repeated. */
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && rand() % 3 == 0) {
            memcpy(ids[i], ids[(size_t)rand() % i], sizeof ids[i]);
            continue;
        }
        size_t len = i % 97 == 0 ? 255 : i % 89 == 0 ? 1 : 4 + (size_t)rand() % 30;
        for (size_t k = 0; k < len; k++)
            ids[i][1 + k] = (char)(k == 0 && i % 5 == 0 ? 0xC3 : 'A' + rand() % 26);
        ids[i][0] = (char)len;
    }
    /* The reference: how many distinct ids there are. */
    char(*ref)[257] = malloc(n * sizeof *ref);
    memcpy(ref, ids, n * sizeof *ref);
    qsort(ref, n, sizeof *ref, cmp_text);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cmp_text(ref[i - 1], ref[i]) != 0)
            distinct++;
    CHECK(&C, add_all(db, seen, ids, n, 777) == distinct);
    size_t blocks = 0;
    CHECK(&C, check_blocks(db, &blocks) == distinct);
    CHECK(&C, add_all(db, seen, ref, n, 5000) == 0);
    /* SQLite orders the keys as usage_seen_cmp does. */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM usage_seen_block WHERE first_id < 'B'", -1, &st,
                       NULL);
    CHECK(&C, sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0);
    sqlite3_finalize(st);
    usage_seen_close(seen);
    close_db(db);
    free(ids);
    free(ref);
}

static void test_refusals_and_migration(const char *dir)
{
    sqlite3 *db = open_db(dir, "migrate.db");
    char err[BSS_ERRLEN];
    CHECK(&C, sqlite3_exec(db,
                           "CREATE TABLE usage_seen(record_id TEXT PRIMARY KEY,"
                           " file_id INTEGER NOT NULL) WITHOUT ROWID;"
                           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                           " WHERE i < 10000) INSERT INTO usage_seen SELECT 'old-' || i, 1 FROM n;",
                           NULL, NULL, NULL) == SQLITE_OK);
    CHECK(&C, sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(&C, usage_seen_schema(db, err) == BSS_OK);
    CHECK(&C, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    size_t blocks = 0;
    CHECK(&C, check_blocks(db, &blocks) == 10000);
    CHECK(&C, sqlite3_exec(db, "SELECT 1 FROM usage_seen", NULL, NULL, NULL) != SQLITE_OK);
    usage_seen *seen = NULL;
    CHECK(&C, usage_seen_open(db, &seen, err) == BSS_OK);
    const char *ids[3] = {"old-5", "new", "old-7"};
    unsigned char lens[3] = {5, 3, 5}, fresh[3] = {9, 9, 9};
    /* Not ascending: refused, nothing written. */
    CHECK(&C, usage_seen_add_sorted(seen, ids, lens, 3, fresh, err) == BSS_ERR_INVALID);
    const char *sorted[3] = {"new", "old-5", "old-7"};
    unsigned char sorted_lens[3] = {3, 5, 5};
    CHECK(&C, usage_seen_add_sorted(seen, sorted, sorted_lens, 3, fresh, err) == BSS_OK);
    CHECK(&C, fresh[0] == 1 && fresh[1] == 0 && fresh[2] == 0);
    CHECK(&C, check_blocks(db, &blocks) == 10001);
    const char *empty[1] = {""};
    unsigned char zero[1] = {0};
    CHECK(&C, usage_seen_add_sorted(seen, empty, zero, 1, fresh, err) == BSS_ERR_INVALID);
    usage_seen_close(seen);
    close_db(db);
}

int main(void)
{
    char dir[] = "/tmp/bss-seen-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_in_order_and_again(dir);
    test_random_order(dir);
    test_refusals_and_migration(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return CHECK_DONE(&C);
}
