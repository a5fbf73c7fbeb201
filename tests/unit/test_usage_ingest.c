/*
 * test_usage_ingest.c - what rating a usage file leaves behind on the
 * rater's write connection: the statements of a file are prepared once and
 * found again by the next file (bss_store_prepare_cached), so rating files
 * one after another neither grows the connection's statements nor parses
 * SQL per file. Parsing them per file was most of a small file's
 * allocations, and the civetweb workers' malloc caches filled with them
 * (issue 9's soak).
 */
#include "bss_error.h"
#include "check.h"
#include "rater/rater.h"
#include "rater/usage.h"
#include "statushistory.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static check_counts C;

typedef struct text_source {
    const char *text;
    size_t at;
} text_source;

static long long read_text(void *ctx, char *buf, size_t len)
{
    text_source *t = ctx;
    size_t left = strlen(t->text) - t->at;
    size_t n = left < len ? left : len;
    memcpy(buf, t->text + t->at, n);
    t->at += n;
    return (long long)n;
}

/* Statements prepared on db, finalized or not. */
static int statements(sqlite3 *db)
{
    int n = 0;
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st != NULL; st = sqlite3_next_stmt(db, st))
        n++;
    return n;
}

/* The statement on db whose SQL starts with sql_start, or NULL. */
static sqlite3_stmt *find_statement(sqlite3 *db, const char *sql_start)
{
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st != NULL; st = sqlite3_next_stmt(db, st))
        if (strncmp(sqlite3_sql(st), sql_start, strlen(sql_start)) == 0)
            return st;
    return NULL;
}

static void add_line(bss_store *store, const char *svc)
{
    char err[BSS_ERRLEN];
    CHECK(&C, bss_store_begin(store, err) == BSS_OK);
    sqlite3 *db = bss_store_db(store);
    rater_info info = {.use_yn = "Y", .created_ms = 1000, .updated_ms = 1000};
    snprintf(info.svc_cont_no, sizeof info.svc_cont_no, "%s", svc);
    snprintf(info.customer_id, sizeof info.customer_id, "C-%s", svc);
    snprintf(info.apn_cd, sizeof info.apn_cd, "iot.test");
    snprintf(info.product_cd, sizeof info.product_cd, "IOT-BASIC");
    snprintf(info.open_order_id, sizeof info.open_order_id, "O-%s", svc);
    CHECK(&C, rater_info_insert(db, &info, NULL, err) == BSS_OK);
    char event_id[64];
    snprintf(event_id, sizeof event_id, "E-%s", svc);
    bss_status_entry e = {svc, "ACTIVE", 1000, "1970-01-01T09:00:01.000+09:00", info.open_order_id,
                          event_id};
    CHECK(&C, bss_statushistory_record(db, &e, NULL, err) == BSS_OK);
    CHECK(&C, bss_store_commit(store, err) == BSS_OK);
}

/* Rates a file of `records` records over lines L1..L3, ids starting at
 * first_id; returns the report. */
static usage_report rate(bss_store *store, int file, int first_id, int records)
{
    static char text[64 * 1024];
    size_t n = (size_t)snprintf(text, sizeof text, "recordId,svcContNo,apnCd,usageStart,bytes\n");
    for (int i = 0; i < records; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "R%06d,L%d,iot.test,2026-10-05T10:15:00+09:00,%d\n", first_id + i,
                              1 + i % 3, 100 + i);
    /* every file also has one duplicate and one malformed record */
    snprintf(text + n, sizeof text - n,
             "R%06d,L1,iot.test,2026-10-05T10:15:00+09:00,1\nbroken-%d\n", first_id, file);
    char name[64], err[BSS_ERRLEN] = "";
    snprintf(name, sizeof name, "file-%d.csv", file);
    text_source src = {text, 0};
    usage_origin origin = {"http", 0, 0, 0};
    usage_report report;
    int rc = usage_ingest(store, name, &origin, read_text, &src, &report, err);
    if (rc != BSS_OK)
        fprintf(stderr, "usage_ingest: %s\n", err);
    CHECK(&C, rc == BSS_OK);
    return report;
}

static void test_statements_are_kept_per_connection(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rater.db", dir);
    bss_store *store = NULL;
    CHECK(&C, tu_open_store(path, "rater", &store) == BSS_OK);
    CHECK(&C, tu_apply_schema(store, rater_schema) == BSS_OK);
    for (int i = 1; i <= 3; i++) {
        char svc[8];
        snprintf(svc, sizeof svc, "L%d", i);
        add_line(store, svc);
    }
    /* The statements on the write connection after a first file of each
     * shape: a small one and one past the 64-row upserts. */
    usage_report r = rate(store, 1, 0, 10);
    CHECK(&C, r.records == 12 && r.rated == 10 && r.duplicates == 1 && r.rejected == 1);
    r = rate(store, 2, 100, 200);
    CHECK(&C, r.records == 202 && r.rated == 200 && r.duplicates == 1 && r.rejected == 1);
    char err[BSS_ERRLEN];
    CHECK(&C, bss_store_begin(store, err) == BSS_OK);
    int kept = statements(bss_store_db(store));
    sqlite3_stmt *file_insert = find_statement(bss_store_db(store), "INSERT INTO usage_file");
    sqlite3_stmt *totals = find_statement(bss_store_db(store), "INSERT INTO usage_period");
    sqlite3_stmt *seen = find_statement(bss_store_db(store), "SELECT first_id, ids");
    CHECK(&C, file_insert != NULL && totals != NULL && seen != NULL);
    bss_store_rollback(store);
    for (int file = 3; file < 23; file++) {
        r = rate(store, file, file * 1000, file % 2 ? 10 : 200);
        CHECK(&C, r.rated == (file % 2 ? 10 : 200) && r.duplicates == 1 && r.rejected == 1);
    }
    CHECK(&C, bss_store_begin(store, err) == BSS_OK);
    CHECK(&C, statements(bss_store_db(store)) == kept);
    CHECK(&C, find_statement(bss_store_db(store), "INSERT INTO usage_file") == file_insert);
    CHECK(&C, find_statement(bss_store_db(store), "INSERT INTO usage_period") == totals);
    CHECK(&C, find_statement(bss_store_db(store), "SELECT first_id, ids") == seen);
    bss_store_rollback(store);
    CHECK(&C, tu_count_rows(store, "SELECT COUNT(*) FROM usage_file") == 22);
    CHECK(&C, tu_count_rows(store, "SELECT SUM(records) FROM usage_period") == 10 * 11 + 200 * 11);
    bss_store_close(store);
}

int main(void)
{
    char dir[] = "/tmp/bss-usage-ingest-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    test_statements_are_kept_per_connection(dir);
    tu_end(dir);
    return CHECK_DONE(&C);
}
