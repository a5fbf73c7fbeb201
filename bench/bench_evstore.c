/*
 * bench_evstore.c - how fast the event store appends, next to how fast this
 * machine's SQLite commits at all.
 *
 * Every figure is measured in the same run, in a fresh temporary directory,
 * with the pragmas the store uses (journal_mode=WAL, synchronous=NORMAL):
 *
 *   raw single    BEGIN IMMEDIATE; INSERT one row (id TEXT(36), ~60 bytes of
 *                 JSON); COMMIT, all three statements prepared once. The
 *                 machine's limit for "one event per transaction".
 *   raw batched   the same rows, 1000 per transaction: the limit of SQLite
 *                 itself once commits are amortised.
 *   raw schema    one transaction per event into a copy of the store's own
 *                 tables (events with its two unique indexes, outbox) with
 *                 the store's statements, prepared once: separates what the
 *                 schema costs from what the store's code path costs.
 *   append any    bss_store_append_tx with one new event (bss_event_new,
 *                 similar data) per transaction over 1000 subjects,
 *                 BSS_ANY_VERSION.
 *   append exp    the same with explicit expected versions tracked per
 *                 subject (the optimistic-concurrency path).
 *   eventcore     the same appends through bss_eventcore, i.e. with the
 *                 relay thread draining the outbox onto an nng PUB socket
 *                 (no subscriber) concurrently, as in a running service.
 *
 * The figure that matters is the ratio append / raw single (target >= 0.5).
 * One human-readable block is printed, then one JSON line.
 *
 * Usage: bench_evstore [seconds-per-phase]   (default 2)
 */
#include "benchutil.h"

#include "bss_error.h"
#include "config.h"
#include "envelope.h"
#include "eventcore.h"
#include "evstore.h"
#include "uuid.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SINGLE_COUNT 20000
#define BATCHED_COUNT 500000
#define BATCH_ROWS 1000
#define SUBJECTS 1000

typedef struct phase_result {
    long long count;
    double seconds;
    double eps; /* events per second */
    bench_lat lat; /* per transaction, single-transaction phases only */
    double writes; /* write system calls (pwrite: WAL frames, checkpoints) per event */
} phase_result;

/* Write system calls this process has made so far (/proc/self/io syscw), or
 * -1 where the kernel does not say. Each WAL frame is written with two
 * pwrites (frame header, page), so per commit this counts the b-tree pages
 * a transaction dirties, plus checkpoint writes. */
static long long write_calls(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL)
        return -1;
    char line[128];
    long long n = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "syscw: %lld", &n) == 1)
            break;
    fclose(f);
    return n;
}

static void set_writes(phase_result *r, long long before)
{
    long long after = write_calls();
    r->writes = (before >= 0 && after >= 0 && r->count > 0)
                    ? (double)(after - before) / (double)r->count
                    : -1;
}

static double g_phase_seconds = 2.0;

/* ~60 bytes of JSON, the size of a small usage event. */
static void make_data(char *out, size_t cap, long long i)
{
    snprintf(out, cap, "{\"msisdn\":\"8210%08lld\",\"kind\":\"usage\",\"bytes\":%lld,\"n\":%lld}",
             i % 100000000LL, (i * 7919) % 1000000, i);
}

/* A UUID-shaped 36-character id, unique per i. */
static void make_id(char *out, size_t cap, long long i)
{
    unsigned long long h = (unsigned long long)i * 0x9E3779B97F4A7C15ULL;
    snprintf(out, cap, "%08llx-%04llx-4%03llx-8%03llx-%012llx", (h >> 32) & 0xffffffffULL,
             (h >> 16) & 0xffffULL, h & 0xfffULL, (h >> 52) & 0xfffULL,
             (unsigned long long)i & 0xffffffffffffULL);
}

static void finish(phase_result *r, long long count, int64_t start_ns, int64_t *lat)
{
    r->count = count;
    r->seconds = (double)(bench_now_ns() - start_ns) / 1e9;
    r->eps = r->seconds > 0 ? (double)count / r->seconds : 0;
    if (lat != NULL)
        bench_lat_summarise(lat, (size_t)count, &r->lat);
}

static int out_of_time(int64_t start_ns)
{
    return (double)(bench_now_ns() - start_ns) / 1e9 >= g_phase_seconds;
}

static int sql_fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench_evstore: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    return -1;
}

static int raw_open(const char *dir, const char *name, const char *schema, sqlite3 **db)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return sql_fail(*db, "open");
    if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(*db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(*db, "configure");
    return 0;
}

static int prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK)
            return sql_fail(db, sql[i]);
    return 0;
}

static void finalize_all(sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize(st[i]);
}

/* Steps a statement that returns no row (or whose row is ignored). */
static int run(sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

enum { RAW_BEGIN, RAW_INSERT, RAW_COMMIT, RAW_NSTMT };

static const char *RAW_SCHEMA =
    "CREATE TABLE IF NOT EXISTS t(seq INTEGER PRIMARY KEY, id TEXT NOT NULL, data TEXT NOT NULL)";
static const char *const RAW_SQL[RAW_NSTMT] = {
    "BEGIN IMMEDIATE", "INSERT INTO t(id, data) VALUES(?1, ?2)", "COMMIT"};

/* rows_per_tx 1: one transaction per row, each timed; else batched. */
static int bench_raw(const char *dir, const char *name, int rows_per_tx, long long max_count,
                     phase_result *r)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st[RAW_NSTMT] = {0};
    int64_t *lat = rows_per_tx == 1 ? calloc((size_t)max_count, sizeof *lat) : NULL;
    int rc = (rows_per_tx == 1 && lat == NULL) ? -1 : 0;
    if (rc == 0)
        rc = raw_open(dir, name, RAW_SCHEMA, &db);
    if (rc == 0)
        rc = prepare_all(db, RAW_SQL, st, RAW_NSTMT);
    long long i = 0;
    long long writes0 = write_calls();
    int64_t start = bench_now_ns();
    while (rc == 0 && i < max_count && !out_of_time(start)) {
        int64_t t0 = bench_now_ns();
        if (run(st[RAW_BEGIN]) != 0) {
            rc = sql_fail(db, "begin");
            break;
        }
        for (int k = 0; k < rows_per_tx && i < max_count; k++, i++) {
            char id[40], data[128];
            make_id(id, sizeof id, i);
            make_data(data, sizeof data, i);
            sqlite3_bind_text(st[RAW_INSERT], 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st[RAW_INSERT], 2, data, -1, SQLITE_STATIC);
            if (run(st[RAW_INSERT]) != 0) {
                rc = sql_fail(db, "insert");
                break;
            }
        }
        if (rc == 0 && run(st[RAW_COMMIT]) != 0)
            rc = sql_fail(db, "commit");
        if (lat != NULL && rc == 0)
            lat[i - 1] = bench_now_ns() - t0;
    }
    finish(r, i, start, lat);
    set_writes(r, writes0);
    free(lat);
    finalize_all(st, RAW_NSTMT);
    sqlite3_close(db);
    return rc;
}

/* The store's own tables and statements (see evstore.c), driven directly. */
static const char *STORE_SCHEMA =
    "CREATE TABLE IF NOT EXISTS events("
    "  sequence INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
    "  subject TEXT NOT NULL, version INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
    "  correlation_id TEXT NOT NULL DEFAULT '', causation_id TEXT NOT NULL DEFAULT '',"
    "  data TEXT NOT NULL, UNIQUE(subject, version));"
    "CREATE TABLE IF NOT EXISTS outbox(sequence INTEGER PRIMARY KEY);";

enum { SC_BEGIN, SC_VERSION, SC_FIND_ID, SC_INSERT, SC_OUTBOX, SC_COMMIT, SC_NSTMT };

static const char *const SC_SQL[SC_NSTMT] = {
    "BEGIN IMMEDIATE",
    "SELECT COALESCE(MAX(version), 0) FROM events WHERE subject = ?1",
    "SELECT sequence, version FROM events WHERE id = ?1",
    ("INSERT INTO events(id, type, subject, version, time_ms, correlation_id,"
     " causation_id, data) VALUES(?1, ?2, ?3, ?4, ?5, '', '', ?6)"),
    "INSERT INTO outbox(sequence) VALUES(?1)",
    "COMMIT"};

/* minimal 0: the store's statements (version lookup, id lookup, insert,
 * outbox); minimal 1: the floor, only what any transaction that keeps the
 * store's guarantees must write: the event row (with its two unique
 * indexes) and its outbox row, versions taken from memory. Ids are UUIDv7,
 * as the store's. */
static int bench_raw_schema(const char *dir, int minimal, phase_result *r)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st[SC_NSTMT] = {0};
    int64_t *lat = calloc(SINGLE_COUNT, sizeof *lat);
    int64_t *versions = calloc(SUBJECTS, sizeof *versions);
    int rc = (lat == NULL || versions == NULL)
                 ? -1
                 : raw_open(dir, minimal ? "raw_floor.db" : "raw_schema.db", STORE_SCHEMA, &db);
    if (rc == 0)
        rc = prepare_all(db, SC_SQL, st, SC_NSTMT);
    long long i = 0;
    long long writes0 = write_calls();
    int64_t start = bench_now_ns();
    while (rc == 0 && i < SINGLE_COUNT && !out_of_time(start)) {
        int64_t t0 = bench_now_ns();
        char id[40], data[128], subject[32];
        if (bss_uuid_v7(id) != BSS_OK)
            make_id(id, sizeof id, i);
        make_data(data, sizeof data, i);
        snprintf(subject, sizeof subject, "line-%04lld", i % SUBJECTS);
        rc = run(st[SC_BEGIN]);
        sqlite3_int64 version = versions[i % SUBJECTS];
        if (rc == 0 && !minimal) {
            sqlite3_bind_text(st[SC_VERSION], 1, subject, -1, SQLITE_STATIC);
            if (sqlite3_step(st[SC_VERSION]) == SQLITE_ROW)
                version = sqlite3_column_int64(st[SC_VERSION], 0);
            sqlite3_reset(st[SC_VERSION]);
            sqlite3_bind_text(st[SC_FIND_ID], 1, id, -1, SQLITE_STATIC);
            rc = run(st[SC_FIND_ID]);
        }
        if (rc == 0) {
            sqlite3_bind_text(st[SC_INSERT], 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st[SC_INSERT], 2, "UsageRecorded", -1, SQLITE_STATIC);
            sqlite3_bind_text(st[SC_INSERT], 3, subject, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st[SC_INSERT], 4, version + 1);
            sqlite3_bind_int64(st[SC_INSERT], 5, (sqlite3_int64)(bench_realtime_ns() / 1000000));
            sqlite3_bind_text(st[SC_INSERT], 6, data, -1, SQLITE_STATIC);
            rc = run(st[SC_INSERT]);
        }
        if (rc == 0) {
            sqlite3_bind_int64(st[SC_OUTBOX], 1, sqlite3_last_insert_rowid(db));
            rc = run(st[SC_OUTBOX]);
        }
        if (rc == 0)
            rc = run(st[SC_COMMIT]);
        if (rc != 0) {
            sql_fail(db, "raw schema insert");
            break;
        }
        versions[i % SUBJECTS] = version + 1;
        lat[i++] = bench_now_ns() - t0;
    }
    finish(r, i, start, lat);
    set_writes(r, writes0);
    free(lat);
    free(versions);
    finalize_all(st, SC_NSTMT);
    sqlite3_close(db);
    return rc;
}

/* Appends one new event per transaction through `store`. When versions is
 * not NULL the expected version of each subject is tracked there. */
static int append_loop(bss_store *store, int64_t *versions, phase_result *r)
{
    char err[BSS_ERRLEN];
    int64_t *lat = calloc(SINGLE_COUNT, sizeof *lat);
    if (lat == NULL)
        return -1;
    int rc = 0;
    long long i = 0;
    long long writes0 = write_calls();
    int64_t start = bench_now_ns();
    while (i < SINGLE_COUNT && !out_of_time(start)) {
        int64_t t0 = bench_now_ns();
        char data[128], subject[32];
        int s = (int)(i % SUBJECTS);
        snprintf(subject, sizeof subject, "line-%04d", s);
        make_data(data, sizeof data, i);
        bss_event *ev = bss_event_new("UsageRecorded", subject, data, err);
        if (ev == NULL) {
            fprintf(stderr, "bench_evstore: event: %s\n", err);
            rc = -1;
            break;
        }
        int64_t expected = versions != NULL ? versions[s] : BSS_ANY_VERSION;
        int st = bss_store_append_tx(store, subject, expected, &ev, 1, err);
        if (st != BSS_OK) {
            fprintf(stderr, "bench_evstore: append: %s (%s)\n", err, bss_strerror(st));
            bss_event_free(ev);
            rc = -1;
            break;
        }
        if (versions != NULL)
            versions[s] = ev->version;
        bss_event_free(ev);
        lat[i++] = bench_now_ns() - t0;
    }
    finish(r, i, start, lat);
    set_writes(r, writes0);
    free(lat);
    return rc;
}

static int bench_append(const char *dir, const char *name, int explicit_versions,
                        phase_result *r)
{
    char path[600], err[BSS_ERRLEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    bss_store_options o = {.path = path, .source = "bench"};
    bss_store *store = NULL;
    if (bss_store_open(&o, &store, err) != BSS_OK) {
        fprintf(stderr, "bench_evstore: store: %s\n", err);
        return -1;
    }
    int64_t versions[SUBJECTS] = {0};
    int rc = append_loop(store, explicit_versions ? versions : NULL, r);
    bss_store_close(store);
    return rc;
}

/* Appends through a whole event core (relay running); *drain_s is the time
 * bss_eventcore_close took to flush the rest of the outbox. */
static int bench_eventcore(const char *dir, phase_result *r, double *drain_s)
{
    char data_dir[600], err[BSS_ERRLEN];
    snprintf(data_dir, sizeof data_dir, "%s/core", dir);
    if (mkdir(data_dir, 0755) != 0) {
        perror("bench_evstore: mkdir");
        return -1;
    }
    bss_config *config = bss_config_new();
    if (config == NULL)
        return -1;
    bss_eventcore_options o = {.service = "bench", .config = config, .data_dir = data_dir};
    bss_eventcore *core = NULL;
    if (bss_eventcore_open(&o, &core, err) != BSS_OK) {
        fprintf(stderr, "bench_evstore: event core: %s\n", err);
        bss_config_free(config);
        return -1;
    }
    int64_t versions[SUBJECTS] = {0};
    int rc = append_loop(bss_eventcore_store(core), versions, r);
    int64_t t0 = bench_now_ns();
    bss_eventcore_close(core);
    *drain_s = (double)(bench_now_ns() - t0) / 1e9;
    bss_config_free(config);
    return rc;
}

/* Cost of bss_event_new + bss_event_free alone (uuid, JSON check, time). */
static double event_new_us(void)
{
    char err[BSS_ERRLEN], data[128];
    const int n = 20000;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        make_data(data, sizeof data, i);
        bss_event_free(bss_event_new("UsageRecorded", "line-0001", data, err));
    }
    return (double)(bench_now_ns() - t0) / 1e3 / n;
}

static void print_single(const char *label, const phase_result *r, double base_eps)
{
    printf("  %-34s %9.0f ev/s  (%6lld in %.2f s)  p50 %6.1f us  p99 %7.1f us", label,
           r->eps, r->count, r->seconds, (double)r->lat.p50 / 1e3, (double)r->lat.p99 / 1e3);
    if (r->writes >= 0)
        printf("  %5.1f writes/txn", r->writes);
    if (base_eps > 0)
        printf("  x%.2f of raw single", r->eps / base_eps);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        g_phase_seconds = atof(argv[1]);
        if (g_phase_seconds <= 0) {
            fprintf(stderr, "usage: %s [seconds-per-phase]\n", argv[0]);
            return 2;
        }
    }
    double load = 0;
    getloadavg(&load, 1);
    char dir[256];
    if (bench_mkdtemp("bench-evstore", dir, sizeof dir) != 0) {
        perror("bench_evstore: mkdtemp");
        return 1;
    }
    phase_result raw1 = {0}, rawb = {0}, raws = {0}, rawf = {0}, any = {0}, exp = {0},
                 core = {0};
    double drain_s = 0;
    int rc = bench_raw(dir, "raw_single.db", 1, SINGLE_COUNT, &raw1);
    if (rc == 0)
        rc = bench_raw(dir, "raw_batched.db", BATCH_ROWS, BATCHED_COUNT, &rawb);
    if (rc == 0)
        rc = bench_raw_schema(dir, 1, &rawf);
    if (rc == 0)
        rc = bench_raw_schema(dir, 0, &raws);
    if (rc == 0)
        rc = bench_append(dir, "append_any.db", 0, &any);
    if (rc == 0)
        rc = bench_append(dir, "append_expected.db", 1, &exp);
    if (rc == 0)
        rc = bench_eventcore(dir, &core, &drain_s);
    double new_us = rc == 0 ? event_new_us() : 0;
    if (bench_rmtree(dir) != 0)
        fprintf(stderr, "bench_evstore: could not remove %s\n", dir);
    if (rc != 0)
        return 1;

    double ratio_any = any.eps / raw1.eps, ratio_exp = exp.eps / raw1.eps;
    double ratio_core = core.eps / raw1.eps;
    int pass = ratio_any >= 0.5 && ratio_exp >= 0.5;
    printf("bench_evstore: SQLite %s, WAL, synchronous=NORMAL, %.1f s or fixed count per "
           "phase\n",
           sqlite3_libversion(), g_phase_seconds);
    printf(" machine: %ld cores, load average %.2f before the run (other work skews all "
           "figures)\n",
           sysconf(_SC_NPROCESSORS_ONLN), load);
    printf(" machine limits (raw SQLite, prepared statements):\n");
    print_single("raw single (1 row/txn)", &raw1, 0);
    printf("  %-34s %9.0f ev/s  (%6lld in %.2f s)  x%.1f of raw single\n",
           "raw batched (1000 rows/txn)", rawb.eps, rawb.count, rawb.seconds,
           rawb.eps / raw1.eps);
    print_single("floor: events+outbox rows only", &rawf, raw1.eps);
    print_single("raw, store schema (1 event/txn)", &raws, raw1.eps);
    printf(" event store (bss_store_append_tx, 1 event/txn, %d subjects):\n", SUBJECTS);
    print_single("append, BSS_ANY_VERSION", &any, raw1.eps);
    print_single("append, expected versions", &exp, raw1.eps);
    print_single("append via eventcore (relay on)", &core, raw1.eps);
    printf("  %-34s %9.2f us/event (included above)\n", "bss_event_new + free", new_us);
    printf("  eventcore close flushed the outbox in %.3f s\n", drain_s);
    printf(" ratio append/raw single: any %.2f, expected %.2f (target >= 0.50): %s\n", ratio_any,
           ratio_exp, pass ? "PASS" : "MISS");
    printf(" ratio floor/raw single: %.2f; append/floor: any %.2f, expected %.2f\n",
           rawf.eps / raw1.eps, any.eps / rawf.eps, exp.eps / rawf.eps);

    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    printf("{\"bench\":\"evstore\",\"date\":\"%s\",\"sqlite\":\"%s\","
           "\"raw_single_eps\":%.0f,\"raw_single_p50_us\":%.1f,\"raw_single_p99_us\":%.1f,"
           "\"raw_batched_eps\":%.0f,\"raw_schema_eps\":%.0f,"
           "\"append_any_eps\":%.0f,\"append_expected_eps\":%.0f,\"eventcore_append_eps\":%.0f,"
           "\"append_p50_us\":%.1f,\"append_p99_us\":%.1f,\"event_new_us\":%.2f,"
           "\"ratio_append_any_raw\":%.3f,\"ratio_append_expected_raw\":%.3f,"
           "\"ratio_eventcore_raw\":%.3f,\"ratio_raw_schema_raw\":%.3f,"
           "\"ratio_raw_batched_raw\":%.1f,\"floor_eps\":%.0f,\"ratio_floor_raw\":%.3f,"
           "\"ratio_append_expected_floor\":%.3f,\"writes_raw_single\":%.1f,"
           "\"writes_floor\":%.1f,\"writes_append\":%.1f,"
           "\"loadavg\":%.2f,\"target_ratio\":0.5,\"pass\":%s}\n",
           date, sqlite3_libversion(), raw1.eps, (double)raw1.lat.p50 / 1e3,
           (double)raw1.lat.p99 / 1e3, rawb.eps, raws.eps, any.eps, exp.eps, core.eps,
           (double)exp.lat.p50 / 1e3, (double)exp.lat.p99 / 1e3, new_us, ratio_any, ratio_exp,
           ratio_core, raws.eps / raw1.eps, rawb.eps / raw1.eps, rawf.eps, rawf.eps / raw1.eps,
           exp.eps / rawf.eps, raw1.writes, rawf.writes, exp.writes, load,
           pass ? "true" : "false");
    return 0;
}
