/*
 * raw_rows.c - the machine's own limit for rating a usage file: raw SQLite
 * writes of the file's recordIds, the rows a rater must write so that it
 * never counts a record twice. Both phases use the stores' pragmas (WAL,
 * synchronous=NORMAL), statements prepared once (BEGIN and COMMIT too) and
 * 10000 rows per transaction, and take the recordIds of the benchmark's own
 * file, in the file's order, read into memory before the clock starts.
 *
 *   rows     one row per record: seen(record_id TEXT PRIMARY KEY, file_id)
 *            WITHOUT ROWID, INSERT .. ON CONFLICT DO NOTHING (the file
 *            repeats some ids). The straightforward dedup store, and what
 *            the rater wrote before its ids were kept in blocks.
 *   blocks   what the rater writes now (rater/usage_seen.h): the distinct
 *            ids, sorted, packed as length-prefixed ids into blobs of up to
 *            2048 bytes, one row per blob keyed by its first id. Sorting and
 *            packing happen before the clock starts: this is the floor of
 *            the rater's own schema, not of its code.
 *
 * Prints "<rows records/s> <blocks records/s>" (records of the file per
 * second, duplicates included, as the benchmark counts its own rate).
 *
 *   raw_rows DIR USAGE_CSV
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 10000
#define BLOCK_BYTES 2048

typedef struct id {
    char text[65];
    unsigned char len;
} id;

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int id_cmp(const void *a, const void *b)
{
    const id *x = a, *y = b;
    int c = memcmp(x->text, y->text, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* The first field of every line after the header (1-64 bytes, unquoted as
 * the benchmark writes them). */
static id *read_ids(const char *path, size_t *count)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    id *ids = malloc(cap * sizeof *ids);
    if (ids == NULL) {
        fclose(f);
        return NULL;
    }
    char line[4200];
    int header = 1;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strcspn(line, ",\r\n");
        if (header || len == 0 || len > 64) {
            header = 0;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            id *more = realloc(ids, cap * sizeof *ids);
            if (more == NULL) {
                free(ids);
                fclose(f);
                return NULL;
            }
            ids = more;
        }
        memcpy(ids[n].text, line, len);
        ids[n++].len = (unsigned char)len;
    }
    fclose(f);
    *count = n;
    return ids;
}

static sqlite3 *open_db(const char *dir, const char *name, const char *schema)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_rows: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    return db;
}

static void step(sqlite3 *db, sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE) {
        fprintf(stderr, "raw_rows: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_reset(st);
}

static void prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_rows: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
}

static double rows_phase(const char *dir, const id *ids, size_t n)
{
    sqlite3 *db = open_db(dir, "raw_rows.db",
                          "CREATE TABLE seen(record_id TEXT PRIMARY KEY,"
                          " file_id INTEGER NOT NULL) WITHOUT ROWID;");
    sqlite3_stmt *begin, *commit, *insert;
    prepare(db, "BEGIN", &begin);
    prepare(db, "COMMIT", &commit);
    prepare(db, "INSERT INTO seen(record_id, file_id) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
            &insert);
    double t0 = seconds();
    for (size_t i = 0; i < n; i++) {
        if (i % BATCH == 0)
            step(db, begin);
        sqlite3_bind_text(insert, 1, ids[i].text, ids[i].len, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 2, 1);
        step(db, insert);
        if (i % BATCH == BATCH - 1 || i == n - 1)
            step(db, commit);
    }
    double rate = (double)n / (seconds() - t0);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    return rate;
}

static double blocks_phase(const char *dir, id *ids, size_t n)
{
    /* Untimed: sort, drop repeats, pack. */
    id *sorted = malloc((n ? n : 1) * sizeof *sorted);
    unsigned char *packed = malloc(n * 66 + 1);
    size_t *starts = malloc((n + 1) * sizeof *starts), blocks = 0, len = 0, distinct = 0;
    if (sorted == NULL || packed == NULL || starts == NULL) {
        fprintf(stderr, "raw_rows: out of memory\n");
        exit(1);
    }
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, id_cmp);
    for (size_t i = 0; i < n; i++) {
        if (distinct > 0 && id_cmp(&sorted[distinct - 1], &sorted[i]) == 0)
            continue;
        sorted[distinct++] = sorted[i];
    }
    for (size_t i = 0; i < distinct; i++) {
        if (blocks == 0 || len + 1 + sorted[i].len - starts[blocks - 1] > BLOCK_BYTES)
            starts[blocks++] = len;
        packed[len] = sorted[i].len;
        memcpy(packed + len + 1, sorted[i].text, sorted[i].len);
        len += 1 + sorted[i].len;
    }
    starts[blocks] = len;
    sqlite3 *db = open_db(dir, "raw_blocks.db",
                          "CREATE TABLE seen_block(first_id TEXT PRIMARY KEY,"
                          " ids BLOB NOT NULL) WITHOUT ROWID;");
    sqlite3_stmt *begin, *commit, *insert;
    prepare(db, "BEGIN", &begin);
    prepare(db, "COMMIT", &commit);
    prepare(db, "INSERT INTO seen_block(first_id, ids) VALUES(?1, ?2)", &insert);
    /* As many transactions as the rows phase, so both pay the same commits. */
    size_t per_txn = (blocks + (n + BATCH - 1) / BATCH - 1) / ((n + BATCH - 1) / BATCH);
    if (per_txn == 0)
        per_txn = 1;
    double t0 = seconds();
    for (size_t b = 0; b < blocks; b++) {
        if (b % per_txn == 0)
            step(db, begin);
        const unsigned char *first = packed + starts[b];
        sqlite3_bind_text(insert, 1, (const char *)first + 1, first[0], SQLITE_STATIC);
        sqlite3_bind_blob(insert, 2, first, (int)(starts[b + 1] - starts[b]), SQLITE_STATIC);
        step(db, insert);
        if (b % per_txn == per_txn - 1 || b == blocks - 1)
            step(db, commit);
    }
    double rate = (double)n / (seconds() - t0);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    free(sorted);
    free(packed);
    free(starts);
    return rate;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR USAGE_CSV\n", argv[0]);
        return 2;
    }
    size_t n = 0;
    id *ids = read_ids(argv[2], &n);
    if (ids == NULL || n == 0) {
        fprintf(stderr, "raw_rows: cannot read record ids from %s\n", argv[2]);
        return 1;
    }
    double rows = rows_phase(argv[1], ids, n);
    double blocks = blocks_phase(argv[1], ids, n);
    printf("%.0f %.0f\n", rows, blocks);
    free(ids);
    return 0;
}
