/*
 * raw_rows.c - the machine's own limit for rating usage: raw SQLite inserts
 * of usage-record rows (recordId TEXT PRIMARY KEY, svcContNo, bytes) in
 * batches of 10000 per transaction, with the pragmas the stores use (WAL,
 * synchronous=NORMAL). Prints rows/s.
 *
 *   raw_rows DIR COUNT
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR COUNT\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/raw_rows.db", argv[1]);
    long long count = atoll(argv[2]);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE IF NOT EXISTS rec(record_id TEXT PRIMARY KEY,"
                     " svc_cont_no TEXT NOT NULL, bytes INTEGER NOT NULL) WITHOUT ROWID;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO rec VALUES(?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_rows: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long long i = 0; i < count; i++) {
        if (i % 10000 == 0)
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        char id[32], svc[32];
        snprintf(id, sizeof id, "R%09lld", i);
        snprintf(svc, sizeof svc, "%lld", 7000000001LL + i % 100000);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, svc, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, i % 5000000);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "raw_rows: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(st);
        if (i % 10000 == 9999 || i == count - 1)
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)count / secs);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}
