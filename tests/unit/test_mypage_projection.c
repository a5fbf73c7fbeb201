/*
 * test_mypage_projection.c - the "my page" projection and its read side on
 * real SQLite stores, without a bus.
 *
 * Pins down: the same events give byte-identical tables whether the three
 * streams are interleaved event by event (one transaction each, the
 * per-call path), applied stream after stream (the kept-statements path of
 * a rebuild), or in the reverse stream order and then all over again
 * (re-applying changes nothing); usage sums beyond 2^53 stay exact up to
 * the JSON; currentUsage is the latest period and says when it is closed;
 * lastOrder follows the order's outcome (reason only when rejected);
 * asOf is the latest event time touching the customer, formatted in the
 * billing time zone; strings are JSON-escaped; contract violations are
 * BSS_ERR_INVALID and leave nothing half-applied; events from the wrong
 * source are ignored; the route answers 200 application/json and 404
 * problem+json over real HTTP. The page cache: a page read twice is served
 * from memory; every committed event that changes a customer's view drops
 * that page (and only that one), AuCloseStarted drops them all, a rolled
 * back change drops it too; a page rendered from a snapshot older than a
 * commit is never stored after it; the byte bound holds.
 */
#include "bss_error.h"
#include "check.h"
#include "http.h"
#include "isotime.h"
#include "mypage/mypage.h"
#include "mypage/projection.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static check_counts C;

#define T0 1792800000000LL /* 2026-10-25T... UTC, a base for event times */

/* One event of the fixture: its stream's sequence is its position in the
 * stream's array (1-based), its time T0 + ms. */
typedef struct fx_event {
    const char *type;
    const char *subject;
    const char *data;
    long long ms;
} fx_event;

static const fx_event CUSTOMER[] = {
    {"OrderCreated", "L1",
     "{\"orderId\":\"o1\",\"type\":\"OPEN\",\"status\":\"COMPLETED\","
     "\"effectiveAt\":\"2026-09-01T00:00:00+09:00\",\"line\":{\"customerId\":\"C1\","
     "\"svcContNo\":\"L1\",\"svcContStatus\":\"ACTIVE\",\"productCd\":\"IOT-BASIC\","
     "\"productNm\":\"Basic \\\"q\\\" \\\\ \\u0001 \xed\x95\x9c\",\"productTarif\":3000,"
     "\"apnCd\":\"iot.meter\",\"email\":\"\"}}",
     10},
    {"LineStatusChanged", "L1",
     "{\"orderId\":\"o1\",\"from\":null,\"to\":\"ACTIVE\","
     "\"effectiveAt\":\"2026-09-01T00:00:00+09:00\",\"customerId\":\"C1\"}",
     11},
    {"OrderCompleted", "L1",
     "{\"orderId\":\"o1\",\"type\":\"OPEN\",\"effectiveAt\":\"2026-09-01T00:00:00+09:00\"}", 12},
    {"OrderCreated", "L2",
     "{\"orderId\":\"o2\",\"type\":\"OPEN\",\"status\":\"COMPLETED\","
     "\"effectiveAt\":\"2026-09-01T00:00:00+09:00\",\"line\":{\"customerId\":\"C1\","
     "\"svcContNo\":\"L2\",\"productCd\":\"IOT-PLUS\",\"productNm\":\"IoT Plus\","
     "\"productTarif\":9900,\"apnCd\":\"iot.tracker\"}}",
     20},
    {"LineStatusChanged", "L2",
     "{\"orderId\":\"o2\",\"from\":null,\"to\":\"ACTIVE\","
     "\"effectiveAt\":\"2026-09-01T00:00:00+09:00\",\"customerId\":\"C1\"}",
     21},
    {"OrderCompleted", "L2",
     "{\"orderId\":\"o2\",\"type\":\"OPEN\",\"effectiveAt\":\"2026-09-01T00:00:00+09:00\"}", 22},
    {"OrderCreated", "L2",
     "{\"orderId\":\"o3\",\"type\":\"TERMINATE\",\"status\":\"PENDING\","
     "\"effectiveAt\":\"2026-10-20T00:00:00+09:00\",\"line\":{\"customerId\":\"C1\","
     "\"svcContNo\":\"L2\",\"productCd\":\"IOT-PLUS\",\"productNm\":\"IoT Plus\","
     "\"productTarif\":9900,\"apnCd\":\"iot.tracker\"}}",
     30},
    {"TerminationRequested", "L2",
     "{\"orderId\":\"o3\",\"effectiveAt\":\"2026-10-20T00:00:00+09:00\"}", 31},
    {"OrderRejected", "L2", "{\"orderId\":\"o3\",\"type\":\"TERMINATE\","
                            "\"reason\":\"ALREADY_TERMINATED\"}", 40},
    {"OrderCreated", "L3",
     "{\"orderId\":\"o4\",\"type\":\"OPEN\",\"status\":\"COMPLETED\","
     "\"effectiveAt\":\"2026-09-01T00:00:00+09:00\",\"line\":{\"customerId\":\"C2\","
     "\"svcContNo\":\"L3\",\"productCd\":\"IOT-BASIC\",\"productNm\":\"IoT Basic\","
     "\"productTarif\":3000,\"apnCd\":\"iot.vend\"}}",
     50},
    /* A SUSPEND of L1 completing at once, without a line snapshot. */
    {"OrderCreated", "L1",
     "{\"orderId\":\"o5\",\"type\":\"SUSPEND\",\"status\":\"COMPLETED\","
     "\"effectiveAt\":\"2026-10-21T00:00:00+09:00\"}",
     60},
    {"LineStatusChanged", "L1",
     "{\"orderId\":\"o5\",\"from\":\"ACTIVE\",\"to\":\"SUSPENDED\","
     "\"effectiveAt\":\"2026-10-21T00:00:00+09:00\",\"customerId\":\"C1\"}",
     61},
    {"OrderCompleted", "L1",
     "{\"orderId\":\"o5\",\"type\":\"SUSPEND\",\"effectiveAt\":\"2026-10-21T00:00:00+09:00\"}",
     62},
};

static const fx_event RATER[] = {
    {"RaterCreated", "L1",
     "{\"customerId\":\"C1\",\"apnCd\":\"iot.meter\",\"useYn\":\"Y\",\"productCd\":\"IOT-BASIC\"}",
     13},
    {"UsageRated", "L1",
     "{\"fileName\":\"a.csv\",\"fileId\":1,\"periods\":[{\"period\":\"2026-09\",\"bytes\":\"100\","
     "\"records\":1},{\"period\":\"2026-10\",\"bytes\":\"9007199254740993\",\"records\":2}]}",
     70},
    {"UsageRated", "L1",
     "{\"fileName\":\"b.csv\",\"fileId\":2,\"periods\":[{\"period\":\"2026-10\",\"bytes\":\"7\","
     "\"records\":1}]}",
     80},
    {"UsageRated", "L2",
     "{\"fileName\":\"b.csv\",\"fileId\":2,\"periods\":[{\"period\":\"2026-09\",\"bytes\":\"5\","
     "\"records\":1}]}",
     81},
    {"AuCloseStarted", "2026-10", "{\"period\":\"2026-10\",\"customerPosition\":9}", 90},
    {"UsageMoved", "L1",
     "{\"period\":\"2026-10\",\"customerId\":\"C1\",\"usageBytes\":\"9007199254741000\","
     "\"records\":3}",
     91},
    {"UsageRated", "L3",
     "{\"fileName\":\"c.csv\",\"fileId\":3,\"periods\":[{\"period\":\"2026-11\",\"bytes\":\"5\","
     "\"records\":1}]}",
     95},
};

static const fx_event BILLING[] = {
    {"ChargeInfoCreated", "L1",
     "{\"customerId\":\"C1\",\"productCd\":\"IOT-BASIC\",\"productNm\":\"IoT Basic\","
     "\"productTarif\":3000,\"includedMb\":100,\"perMbRate\":20}",
     14},
    {"InvoiceIssued", "INV-202610-C1",
     "{\"invoiceId\":\"INV-202610-C1\",\"customerId\":\"C1\",\"period\":\"2026-10\","
     "\"email\":\"\",\"lines\":[],\"subtotal\":3000,\"vat\":300,\"total\":3300,"
     "\"status\":\"ISSUED\",\"issuedAt\":\"2026-11-01T00:00:00+09:00\"}",
     100},
    {"InvoiceIssued", "INV-202609-C1",
     "{\"invoiceId\":\"INV-202609-C1\",\"customerId\":\"C1\",\"period\":\"2026-09\","
     "\"email\":\"\",\"lines\":[],\"subtotal\":1000,\"vat\":100,\"total\":1100,"
     "\"status\":\"ISSUED\",\"issuedAt\":\"2026-10-01T00:00:00+09:00\"}",
     85},
};

#define COUNT(a) (sizeof(a) / sizeof *(a))

typedef struct stream {
    const char *source;
    const fx_event *events;
    size_t n;
} stream;

static const stream STREAMS[] = {
    {"customer", CUSTOMER, COUNT(CUSTOMER)},
    {"rater", RATER, COUNT(RATER)},
    {"billing", BILLING, COUNT(BILLING)},
};

/* The i-th (0-based) event of s as the consumer would hand it over. */
static bss_event *make(const stream *s, size_t i)
{
    bss_event *ev = tu_event(&C, s->source, s->events[i].type, s->events[i].subject,
                             s->events[i].data);
    if (ev != NULL) {
        ev->sequence = (int64_t)i + 1;
        ev->time_ms = T0 + s->events[i].ms;
    }
    return ev;
}

static bss_store *open_store(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    bss_store *store = NULL;
    CHECK(&C, tu_open_store(path, "mypage", &store) == BSS_OK);
    CHECK(&C, store != NULL && tu_apply_schema(store, mypage_projection_schema) == BSS_OK);
    return store;
}

/* Applies one event in a transaction of its own with the per-call path. */
static int apply_alone(bss_store *store, const bss_event *ev)
{
    char err[BSS_ERRLEN] = "";
    CHECK(&C, bss_store_begin(store, err) == BSS_OK);
    int rc = mypage_projection_apply(bss_store_db(store), ev, err);
    if (rc == BSS_OK)
        CHECK(&C, bss_store_commit(store, err) == BSS_OK);
    else
        bss_store_rollback(store);
    return rc;
}

/* Every projection table dumped as text (columns '|', rows '\n'). */
static char *dump(bss_store *store)
{
    sqlite3 *db = NULL;
    char err[BSS_ERRLEN] = "";
    CHECK(&C, bss_store_snapshot_begin(store, &db, err) == BSS_OK);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    for (const mypage_projection_table *t = mypage_projection_tables; t->name != NULL; t++) {
        sqlite3_stmt *st = NULL;
        CHECK(&C, sqlite3_prepare_v2(db, t->dump_sql, -1, &st, NULL) == SQLITE_OK);
        len += (size_t)snprintf(out + len, cap - len, "[%s]\n", t->name);
        while (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const char *v = (const char *)sqlite3_column_text(st, c);
                len += (size_t)snprintf(out + len, cap - len, "%s%s", c ? "|" : "",
                                        v ? v : "NULL");
            }
            len += (size_t)snprintf(out + len, cap - len, "\n");
        }
        sqlite3_finalize(st);
        CHECK(&C, len < cap - 1);
    }
    bss_store_snapshot_end(store, db);
    return out;
}

/* ---- order independence and idempotency ------------------------------ */

static void test_any_order_same_tables(const char *dir, char **reference)
{
    /* A: interleaved, one event per transaction, per-call statements. */
    bss_store *a = open_store(dir, "interleaved");
    size_t longest = COUNT(CUSTOMER);
    for (size_t i = 0; i < longest; i++) {
        for (size_t s = 0; s < COUNT(STREAMS); s++) {
            if (i >= STREAMS[s].n)
                continue;
            bss_event *ev = make(&STREAMS[s], i);
            CHECK(&C, ev != NULL && apply_alone(a, ev) == BSS_OK);
            bss_event_free(ev);
        }
    }
    /* B: stream after stream in one transaction, kept statements. */
    bss_store *b = open_store(dir, "streams");
    char err[BSS_ERRLEN] = "";
    mypage_projection *p = NULL;
    CHECK(&C, bss_store_begin(b, err) == BSS_OK);
    CHECK(&C, mypage_projection_open(bss_store_db(b), &p, err) == BSS_OK);
    for (size_t s = 0; s < COUNT(STREAMS); s++) {
        for (size_t i = 0; i < STREAMS[s].n; i++) {
            bss_event *ev = make(&STREAMS[s], i);
            CHECK(&C, ev != NULL && mypage_projection_apply_with(p, ev, err) == BSS_OK);
            bss_event_free(ev);
        }
    }
    CHECK(&C, bss_store_commit(b, err) == BSS_OK);
    /* C: the reverse stream order, then everything once more. */
    bss_store *c = open_store(dir, "reverse");
    mypage_projection *q = NULL;
    CHECK(&C, bss_store_begin(c, err) == BSS_OK);
    CHECK(&C, mypage_projection_open(bss_store_db(c), &q, err) == BSS_OK);
    for (int round = 0; round < 2; round++) {
        for (size_t s = COUNT(STREAMS); s-- > 0;) {
            for (size_t i = 0; i < STREAMS[s].n; i++) {
                bss_event *ev = make(&STREAMS[s], i);
                CHECK(&C, ev != NULL && mypage_projection_apply_with(q, ev, err) == BSS_OK);
                bss_event_free(ev);
            }
        }
    }
    CHECK(&C, bss_store_commit(c, err) == BSS_OK);
    /* And single events again, behind the rows' positions: no change. */
    bss_event *again = make(&STREAMS[1], 2);
    CHECK(&C, again != NULL && apply_alone(a, again) == BSS_OK);
    bss_event_free(again);

    char *da = dump(a), *db = dump(b), *dc = dump(c);
    CHECK(&C, strcmp(da, db) == 0);
    CHECK(&C, strcmp(da, dc) == 0);
    if (strcmp(da, db) != 0 || strcmp(da, dc) != 0)
        fprintf(stderr, "interleaved:\n%s\nstreams:\n%s\nreverse:\n%s\n", da, db, dc);
    CHECK(&C, strstr(da, "L1|2026-10|9007199254741000|3\n") != NULL);
    CHECK(&C, strstr(da, "L1|2026-09|100|1\n") != NULL);
    CHECK(&C, strstr(da, "L1|2026-10|3|") != NULL); /* 3 = the rater seq of its last file */
    *reference = da;
    free(db);
    free(dc);
    mypage_projection_close(p);
    mypage_projection_close(q);
    bss_store_close(b);
    bss_store_close(c);
    bss_store_close(a);
}

/* ---- the view ------------------------------------------------------- */

static void test_view(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/interleaved.db", dir);
    bss_store *store = NULL;
    CHECK(&C, tu_open_store(path, "mypage", &store) == BSS_OK);
    mypage_reads *reads = NULL;
    char err[BSS_ERRLEN] = "";
    CHECK(&C, mypage_reads_open(store, NULL, &reads, err) == BSS_OK);
    mypage_reader *lease = NULL;
    const char *json = NULL;
    size_t len = 0;
    CHECK(&C, mypage_reads_render(reads, "C1", &lease, &json, &len, err) == BSS_OK);
    CHECK(&C, json != NULL && strlen(json) == len);
    /* Exact beyond 2^53: checked in the text, since a double cannot. */
    CHECK(&C, json != NULL && strstr(json, "\"currentUsage\":{\"period\":\"2026-10\","
                                           "\"bytes\":9007199254741000,\"closed\":true}") != NULL);
    cJSON *v = json != NULL ? cJSON_Parse(json) : NULL;
    CHECK(&C, v != NULL);
    mypage_reads_done(reads, lease);
    CHECK(&C, strcmp(tu_jstr(v, "customerId"), "C1") == 0);
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(v, "lines");
    CHECK(&C, cJSON_GetArraySize(lines) == 2);
    const cJSON *l1 = cJSON_GetArrayItem(lines, 0), *l2 = cJSON_GetArrayItem(lines, 1);
    CHECK(&C, strcmp(tu_jstr(l1, "svcContNo"), "L1") == 0);
    CHECK(&C, strcmp(tu_jstr(l1, "productNm"), "Basic \"q\" \\ \x01 \xed\x95\x9c") == 0);
    CHECK(&C, strcmp(tu_jstr(l1, "svcContStatus"), "SUSPENDED") == 0);
    CHECK(&C, strcmp(tu_jstr(l1, "apnCd"), "iot.meter") == 0);
    const cJSON *o1 = cJSON_GetObjectItemCaseSensitive(l1, "lastOrder");
    CHECK(&C, strcmp(tu_jstr(o1, "orderId"), "o5") == 0);
    CHECK(&C, strcmp(tu_jstr(o1, "type"), "SUSPEND") == 0);
    CHECK(&C, strcmp(tu_jstr(o1, "status"), "COMPLETED") == 0);
    CHECK(&C, cJSON_GetObjectItemCaseSensitive(o1, "reason") == NULL);
    CHECK(&C, strcmp(tu_jstr(l2, "svcContNo"), "L2") == 0);
    CHECK(&C, strcmp(tu_jstr(l2, "productCd"), "IOT-PLUS") == 0);
    CHECK(&C, strcmp(tu_jstr(l2, "svcContStatus"), "ACTIVE") == 0);
    const cJSON *o2 = cJSON_GetObjectItemCaseSensitive(l2, "lastOrder");
    CHECK(&C, strcmp(tu_jstr(o2, "orderId"), "o3") == 0);
    CHECK(&C, strcmp(tu_jstr(o2, "status"), "REJECTED") == 0);
    CHECK(&C, strcmp(tu_jstr(o2, "reason"), "ALREADY_TERMINATED") == 0);
    const cJSON *u2 = cJSON_GetObjectItemCaseSensitive(l2, "currentUsage");
    CHECK(&C, strcmp(tu_jstr(u2, "period"), "2026-09") == 0);
    CHECK(&C, tu_jnum(u2, "bytes") == 5);
    CHECK(&C, cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(u2, "closed")));
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(v, "invoices");
    CHECK(&C, cJSON_GetArraySize(inv) == 2);
    CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(inv, 0), "invoiceId"), "INV-202609-C1") == 0);
    CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(inv, 1), "period"), "2026-10") == 0);
    CHECK(&C, tu_jnum(cJSON_GetArrayItem(inv, 1), "total") == 3300);
    CHECK(&C, strcmp(tu_jstr(cJSON_GetArrayItem(inv, 1), "status"), "ISSUED") == 0);
    /* asOf: the InvoiceIssued at T0+100 is C1's latest event (L3's usage at
     * T0+95 is C2's). */
    char expected[BSS_TIME_LEN + 8];
    CHECK(&C, bss_time_format(T0 + 100, expected, sizeof expected) == BSS_OK);
    CHECK(&C, strcmp(tu_jstr(v, "asOf"), expected) == 0);
    CHECK(&C, strstr(tu_jstr(v, "asOf"), "+09:00") != NULL);
    cJSON_Delete(v);

    /* C2: one line, no invoices, no status change seen yet. */
    CHECK(&C, mypage_reads_render(reads, "C2", &lease, &json, &len, err) == BSS_OK);
    v = cJSON_Parse(json);
    mypage_reads_done(reads, lease);
    const cJSON *l3 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v, "lines"), 0);
    CHECK(&C, cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l3, "svcContStatus")));
    CHECK(&C, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "invoices")) == 0);
    CHECK(&C, bss_time_format(T0 + 95, expected, sizeof expected) == BSS_OK);
    CHECK(&C, strcmp(tu_jstr(v, "asOf"), expected) == 0);
    cJSON_Delete(v);

    CHECK(&C, mypage_reads_render(reads, "NOBODY", &lease, &json, &len, err) ==
                  BSS_ERR_NOTFOUND);
    mypage_reads_done(reads, lease);

    /* Over HTTP. */
    bss_http *http = tu_http_new("mypage");
    CHECK(&C, http != NULL && mypage_routes_register(http, reads, err) == BSS_OK);
    CHECK(&C, http != NULL && bss_http_start(http, err) == BSS_OK);
    int port = http != NULL ? bss_http_port(http) : -1;
    static tu_body body;
    char ctype[128] = "";
    CHECK(&C, tu_http_get(port, "/mypage/C1", NULL, &body, ctype) == 200);
    CHECK(&C, strncmp(ctype, "application/json", 16) == 0);
    CHECK(&C, strstr(body.buf, "\"bytes\":9007199254741000") != NULL);
    CHECK(&C, tu_http_get(port, "/mypage/NOBODY", NULL, &body, ctype) == 404);
    CHECK(&C, strncmp(ctype, "application/problem+json", 24) == 0);
    CHECK(&C, strstr(body.buf, "\"code\":\"CUSTOMER_NOT_FOUND\"") != NULL);
    bss_http_free(http);
    mypage_reads_close(reads);
    bss_store_close(store);
}

/* ---- the page cache -------------------------------------------------- */

/* Applies ev through the live handler in a transaction of its own. */
static int apply_live(bss_store *store, mypage_live *live, bss_event *ev, int commit)
{
    char err[BSS_ERRLEN] = "";
    CHECK(&C, bss_store_begin(store, err) == BSS_OK);
    int rc = mypage_live_handle(live, store, ev, err);
    if (rc == BSS_OK && commit)
        CHECK(&C, bss_store_commit(store, err) == BSS_OK);
    else
        bss_store_rollback(store);
    bss_event_free(ev);
    return rc;
}

static char *render_copy(mypage_reads *reads, const char *customer)
{
    mypage_reader *lease = NULL;
    const char *json = NULL;
    size_t len = 0;
    char err[BSS_ERRLEN] = "";
    int rc = mypage_reads_render(reads, customer, &lease, &json, &len, err);
    char *copy = rc == BSS_OK ? strdup(json) : NULL;
    mypage_reads_done(reads, lease);
    return copy;
}

static size_t cached_pages(mypage_cache *cache)
{
    size_t pages = 0, bytes = 0;
    mypage_cache_usage(cache, &pages, &bytes);
    return pages;
}

static void test_page_cache(const char *dir)
{
    mypage_cache *cache = mypage_cache_new(1 << 20);
    CHECK(&C, cache != NULL);
    if (cache == NULL)
        return;
    bss_store *store = open_store(dir, "cached");
    if (store == NULL)
        return;
    bss_store_on_txn_end(store, mypage_cache_txn_end, cache);
    mypage_live live;
    mypage_live_init(&live, cache);
    /* Every event but the last SUSPEND of L1 (customer 11-13) and the close. */
    for (size_t i = 0; i < 10; i++)
        CHECK(&C, apply_live(store, &live, make(&STREAMS[0], i), 1) == BSS_OK);
    for (size_t i = 0; i < 4; i++)
        CHECK(&C, apply_live(store, &live, make(&STREAMS[1], i), 1) == BSS_OK);
    for (size_t i = 0; i < COUNT(BILLING); i++)
        CHECK(&C, apply_live(store, &live, make(&STREAMS[2], i), 1) == BSS_OK);
    mypage_reads *reads = NULL;
    char err[BSS_ERRLEN] = "";
    CHECK(&C, mypage_reads_open(store, cache, &reads, err) == BSS_OK);
    if (reads == NULL)
        return;

    /* Read twice: the second answer is the cached copy of the first. */
    char *c1 = render_copy(reads, "C1"), *c2 = render_copy(reads, "C2");
    CHECK(&C, c1 != NULL && c2 != NULL && cached_pages(cache) == 2);
    char *again = render_copy(reads, "C1");
    CHECK(&C, again != NULL && c1 != NULL && strcmp(again, c1) == 0);
    free(again);

    /* L1 suspended: C1's page goes, C2's stays; the next read shows it. */
    CHECK(&C, apply_live(store, &live, make(&STREAMS[0], 10), 1) == BSS_OK);
    CHECK(&C, apply_live(store, &live, make(&STREAMS[0], 11), 1) == BSS_OK);
    CHECK(&C, cached_pages(cache) == 1);
    again = render_copy(reads, "C1");
    CHECK(&C, again != NULL && strstr(again, "\"SUSPENDED\"") != NULL);
    free(again);
    CHECK(&C, cached_pages(cache) == 2);

    /* A rolled-back change costs the page, never shows. */
    CHECK(&C, apply_live(store, &live, make(&STREAMS[0], 12), 0) == BSS_OK);
    CHECK(&C, cached_pages(cache) == 1);

    /* A page read from before a commit is not stored after it: the ticket
     * is older than the commit's notes. */
    mypage_cache_ticket stale = mypage_cache_ticket_for(cache, "C1");
    char *before = render_copy(reads, "C1"); /* stored: nothing committed yet */
    CHECK(&C, cached_pages(cache) == 2);
    CHECK(&C, apply_live(store, &live, make(&STREAMS[0], 12), 1) == BSS_OK);
    CHECK(&C, cached_pages(cache) == 1);
    if (before != NULL)
        mypage_cache_put(cache, "C1", stale, before, strlen(before));
    CHECK(&C, cached_pages(cache) == 1);
    free(before);

    /* The usage of L3 (C2's) drops C2's page alone. */
    again = render_copy(reads, "C1");
    CHECK(&C, again != NULL);
    free(again);
    size_t pages = cached_pages(cache);
    CHECK(&C, pages == 2);
    CHECK(&C, apply_live(store, &live, make(&STREAMS[1], 6), 1) == BSS_OK);
    CHECK(&C, cached_pages(cache) == pages - 1);
    again = render_copy(reads, "C2");
    CHECK(&C, again != NULL && strstr(again, "\"2026-11\"") != NULL);
    free(again);

    /* AuCloseStarted can change every page ("closed"): all go. */
    CHECK(&C, cached_pages(cache) == 2);
    CHECK(&C, apply_live(store, &live, make(&STREAMS[1], 4), 1) == BSS_OK);
    CHECK(&C, cached_pages(cache) == 0);
    again = render_copy(reads, "C1");
    CHECK(&C, again != NULL && strstr(again, "\"closed\":true") != NULL);
    free(again);

    /* The bound: pages beyond it push the least recently read out. */
    mypage_cache *small = mypage_cache_new(8192);
    CHECK(&C, small != NULL);
    size_t bytes = 0;
    for (int i = 0; small != NULL && i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "K%d", i);
        mypage_cache_ticket t = mypage_cache_ticket_for(small, id);
        mypage_cache_put(small, id, t, c1 != NULL ? c1 : "{}", c1 != NULL ? strlen(c1) : 2);
        mypage_cache_usage(small, &pages, &bytes);
        CHECK(&C, bytes <= 8192);
    }
    CHECK(&C, pages > 1 && pages < 100);
    mypage_cache_free(small);

    free(c1);
    free(c2);
    mypage_reads_close(reads);
    mypage_live_stop(&live);
    bss_store_close(store);
    mypage_live_destroy(&live);
    mypage_cache_free(cache);
}

/* ---- contract violations -------------------------------------------- */

static void expect_invalid(bss_store *store, const char *source, const char *type,
                           const char *subject, const char *data, int64_t sequence)
{
    bss_event *ev = tu_event(&C, source, type, subject, data);
    if (ev == NULL)
        return;
    ev->sequence = sequence;
    int rc = apply_alone(store, ev);
    CHECK(&C, rc == BSS_ERR_INVALID);
    if (rc != BSS_ERR_INVALID)
        fprintf(stderr, "%s %s was not refused: %d\n", type, data, rc);
    bss_event_free(ev);
}

static void test_invalid_events(const char *dir, const char *reference)
{
    char path[512];
    snprintf(path, sizeof path, "%s/interleaved.db", dir);
    bss_store *store = NULL;
    CHECK(&C, tu_open_store(path, "mypage", &store) == BSS_OK);
    /* A good first period and a bad second one: nothing of it is kept. */
    expect_invalid(store, "rater", "UsageRated", "L1",
                   "{\"periods\":[{\"period\":\"2026-12\",\"bytes\":\"1\",\"records\":1},"
                   "{\"period\":\"2026-12\",\"bytes\":\"-1\",\"records\":1}]}",
                   100);
    expect_invalid(store, "rater", "UsageRated", "L1",
                   "{\"periods\":[{\"period\":\"2026-12\",\"bytes\":\"99999999999999999999\","
                   "\"records\":1}]}",
                   100);
    expect_invalid(store, "rater", "UsageRated", "L1",
                   "{\"periods\":[{\"period\":\"2026-13\",\"bytes\":\"1\",\"records\":1}]}", 100);
    expect_invalid(store, "rater", "UsageRated", "L1", "{\"periods\":[]}", 100);
    expect_invalid(store, "rater", "UsageRated", "L1",
                   "{\"periods\":[{\"period\":\"2026-12\",\"bytes\":1,\"records\":1}]}", 100);
    expect_invalid(store, "rater", "AuCloseStarted", "2026-12", "{\"period\":\"12/2026\"}", 100);
    expect_invalid(store, "customer", "OrderCreated", "L9",
                   "{\"type\":\"OPEN\",\"effectiveAt\":\"2026-09-01T00:00:00+09:00\"}", 100);
    expect_invalid(store, "customer", "LineStatusChanged", "L1",
                   "{\"orderId\":\"o9\",\"to\":\"ASLEEP\","
                   "\"effectiveAt\":\"2026-09-01T00:00:00+09:00\"}",
                   100);
    expect_invalid(store, "customer", "OrderRejected", "L1", "{\"orderId\":\"o5\"}", 100);
    expect_invalid(store, "billing", "InvoiceIssued", "INV-X",
                   "{\"invoiceId\":\"INV-Y\",\"customerId\":\"C1\",\"period\":\"2026-10\","
                   "\"total\":1,\"status\":\"ISSUED\"}",
                   100);
    expect_invalid(store, "billing", "InvoiceIssued", "INV-X",
                   "{\"invoiceId\":\"INV-X\",\"customerId\":\"C1\",\"period\":\"2026-10\","
                   "\"total\":1.5,\"status\":\"ISSUED\"}",
                   100);
    expect_invalid(store, "customer", "OrderCompleted", "L1", "{\"orderId\":\"o5\"}", 0);
    /* Known types from a source that does not own them change nothing. */
    bss_event *ev = tu_event(&C, "settlement", "InvoiceIssued", "INV-Z", "{}");
    if (ev != NULL) {
        ev->sequence = 1;
        CHECK(&C, apply_alone(store, ev) == BSS_OK);
        bss_event_free(ev);
    }
    char *after = dump(store);
    CHECK(&C, strcmp(after, reference) == 0);
    free(after);
    bss_store_close(store);
}

/* ---- the read side's pool ------------------------------------------ */


typedef struct pool_reader {
    mypage_reads *reads;
    int rc;
    int done; /* set once its render returned */
    pthread_mutex_t *lock;
} pool_reader;

static void *render_one(void *arg)
{
    pool_reader *p = arg;
    mypage_reader *lease = NULL;
    const char *json = NULL;
    size_t len = 0;
    char err[BSS_ERRLEN];
    int rc = mypage_reads_render(p->reads, "C1", &lease, &json, &len, err);
    mypage_reads_done(p->reads, lease);
    pthread_mutex_lock(p->lock);
    p->rc = rc;
    p->done = 1;
    pthread_mutex_unlock(p->lock);
    return NULL;
}

static int render_done(pool_reader *p)
{
    pthread_mutex_lock(p->lock);
    int done = p->done;
    pthread_mutex_unlock(p->lock);
    return done;
}

/* The read side opens its readers up front and never more (issue 9's
 * soak counts descriptors): a fifth read while four are lent out waits for
 * one of them instead of opening a connection. */
static void test_reader_pool(const char *dir)
{
    char path[512], err[BSS_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/interleaved.db", dir);
    int unopened = tu_open_fds();
    bss_store *store = NULL;
    CHECK(&C, tu_open_store(path, "mypage", &store) == BSS_OK);
    int before = tu_open_fds();
    mypage_reads *reads = NULL;
    CHECK(&C, mypage_reads_open(store, NULL, &reads, err) == BSS_OK);
    int opened = tu_open_fds();
    CHECK(&C, opened == before + 4 * 2); /* four readers: the file and its WAL each */
    mypage_reader *lease[4] = {0};
    const char *json = NULL;
    size_t len = 0;
    for (int i = 0; i < 4; i++)
        CHECK(&C, mypage_reads_render(reads, "C1", &lease[i], &json, &len, err) == BSS_OK);
    CHECK(&C, tu_open_fds() == opened);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pool_reader fifth = {reads, -1, 0, &lock};
    pthread_t thread;
    CHECK(&C, pthread_create(&thread, NULL, render_one, &fifth) == 0);
    usleep(100 * 1000); /* long enough for a render that did not wait */
    CHECK(&C, !render_done(&fifth));
    CHECK(&C, tu_open_fds() == opened);
    mypage_reads_done(reads, lease[0]);
    pthread_join(thread, NULL);
    CHECK(&C, fifth.rc == BSS_OK);
    for (int i = 1; i < 4; i++)
        mypage_reads_done(reads, lease[i]);
    CHECK(&C, tu_open_fds() == opened);
    mypage_reads_close(reads);
    bss_store_close(store);
    /* Not before: SQLite keeps a closed connection's descriptor while other
     * connections of the process hold locks on the file. */
    CHECK(&C, tu_open_fds() == unopened);
}

int main(void)
{
    char dir[] = "/tmp/bss-mypage-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    char *reference = NULL;
    test_any_order_same_tables(dir, &reference);
    test_view(dir);
    test_reader_pool(dir);
    test_page_cache(dir);
    if (reference != NULL)
        test_invalid_events(dir, reference);
    free(reference);
    tu_end(dir);
    return CHECK_DONE(&C);
}
