/*
 * view.c - the read side of mypage.h: a pool of read connections, each with
 * its statements prepared once and its own reply buffer, and the view
 * rendered straight from the rows into that buffer.
 *
 * A request borrows one reader for its whole life: BEGIN, the lines query,
 * the invoices query, COMMIT, and the reply is written from the reader's
 * buffer before it goes back to the pool. In the steady state nothing is
 * allocated per request (the buffer only grows, to the largest view seen).
 *
 * The pool is READERS readers, opened with it. It used to open one for
 * each request that found every reader busy and keep it for good, so its
 * descriptors and memory (each reader's page cache and buffer) grew with
 * the highest concurrency ever seen (bench/soak.py). A request that finds
 * the READERS lent out now waits for one: a request holds one reader and
 * never asks for a second, so the wait always ends. (A connection of its
 * own would not do: closing it while the others hold locks on the file,
 * SQLite keeps its descriptor for the next connection it opens.)
 * With a page cache (cache.h) a page read before and unchanged since is
 * copied into that buffer instead, and a page rendered is offered to it.
 */
#include "mypage.h"

#include "bss_error.h"
#include "isotime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RS_BEGIN, RS_COMMIT, RS_ROLLBACK, RS_LINES, RS_INVOICES, RS_COUNT };

static const char *const READ_SQL[RS_COUNT] = {
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    /* One row per line of the customer with its usage head, the usage of
     * the latest period and whether that period is closed: every join is a
     * primary-key lookup. */
    ("SELECT l.svc_cont_no, l.product_cd, l.product_nm, l.svc_cont_status, l.apn_cd,"
    " l.order_id, l.order_type, l.order_status, l.order_reason, l.customer_ms,"
    " h.latest_period, u.bytes, h.rater_ms, c.period IS NOT NULL"
    " FROM mypage_line l"
    " LEFT JOIN mypage_usage_line h ON h.svc_cont_no = l.svc_cont_no"
    " LEFT JOIN mypage_usage u ON u.svc_cont_no = l.svc_cont_no AND u.period = h.latest_period"
    " LEFT JOIN mypage_closed_period c ON c.period = h.latest_period"
    " WHERE l.customer_id = ?1 ORDER BY l.svc_cont_no"),
    ("SELECT invoice_id, period, total, status, billing_ms FROM mypage_invoice"
    " WHERE customer_id = ?1 ORDER BY period, invoice_id"),
};

/* Readers kept by the pool. */
#define READERS 4

struct mypage_reader {
    sqlite3 *db;
    sqlite3_stmt *st[RS_COUNT];
    char *buf; /* the rendered view */
    size_t len, cap;
    int oom;   /* a write to buf failed */
    mypage_reader *next;
};

struct mypage_reads {
    char *path;
    mypage_cache *cache; /* may be NULL */
    pthread_mutex_t lock;
    pthread_cond_t returned; /* a reader came back, or one may be opened */
    mypage_reader *idle;     /* readers not lent out */
    int readers;             /* open: idle and lent out, at most READERS */
};

static void reader_free(mypage_reader *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < RS_COUNT; i++)
        sqlite3_finalize(r->st[i]);
    sqlite3_close(r->db);
    free(r->buf);
    free(r);
}

static int reader_new(const char *path, mypage_reader **out, char *err)
{
    mypage_reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        bss_seterr(err, "open %s: %s", path, r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        reader_free(r);
        return BSS_ERR_IO;
    }
    sqlite3_busy_timeout(r->db, 5000);
    /* query_only: this connection can never write, whatever happens. A
     * small page cache: one per concurrent request, each would otherwise
     * fill to SQLite's 2 MB default, and pages read twice are mostly served
     * by the page cache of cache.h. */
    if (sqlite3_exec(r->db, "PRAGMA query_only=ON; PRAGMA cache_size=-256", NULL, NULL, NULL) !=
        SQLITE_OK) {
        bss_seterr(err, "configure %s: %s", path, sqlite3_errmsg(r->db));
        reader_free(r);
        return BSS_ERR_IO;
    }
    for (int i = 0; i < RS_COUNT; i++) {
        if (sqlite3_prepare_v3(r->db, READ_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i],
                               NULL) != SQLITE_OK) {
            bss_seterr(err, "mypage read prepare: %s", sqlite3_errmsg(r->db));
            reader_free(r);
            return BSS_ERR_IO;
        }
    }
    *out = r;
    return BSS_OK;
}

int mypage_reads_open(bss_store *store, mypage_cache *cache, mypage_reads **out, char *err)
{
    sqlite3 *db = NULL;
    int rc = bss_store_reader_acquire(store, &db, err);
    if (rc != BSS_OK)
        return rc;
    const char *file = sqlite3_db_filename(db, "main");
    mypage_reads *reads = calloc(1, sizeof *reads);
    if (reads != NULL && file != NULL)
        reads->path = strdup(file);
    bss_store_reader_release(store, db);
    if (reads == NULL || reads->path == NULL) {
        if (reads != NULL)
            free(reads);
        bss_seterr(err, file == NULL ? "the store has no file name" : "out of memory");
        return file == NULL ? BSS_ERR_IO : BSS_ERR_NOMEM;
    }
    pthread_mutex_init(&reads->lock, NULL);
    pthread_cond_init(&reads->returned, NULL);
    reads->cache = cache;
    for (int i = 0; i < READERS; i++) {
        mypage_reader *r = NULL;
        rc = reader_new(reads->path, &r, err);
        if (rc != BSS_OK) {
            mypage_reads_close(reads);
            return rc;
        }
        r->next = reads->idle;
        reads->idle = r;
        reads->readers++;
    }
    *out = reads;
    return BSS_OK;
}

void mypage_reads_close(void *ctx)
{
    mypage_reads *reads = ctx;
    if (reads == NULL)
        return;
    while (reads->idle != NULL) {
        mypage_reader *r = reads->idle;
        reads->idle = r->next;
        reader_free(r);
    }
    pthread_cond_destroy(&reads->returned);
    pthread_mutex_destroy(&reads->lock);
    free(reads->path);
    free(reads);
}

/* An idle reader, or a new one while fewer than READERS are open (one was
 * dropped, or could not be opened), else waits for one to come back. */
static int reader_acquire(mypage_reads *reads, mypage_reader **out, char *err)
{
    pthread_mutex_lock(&reads->lock);
    while (reads->idle == NULL && reads->readers >= READERS)
        pthread_cond_wait(&reads->returned, &reads->lock);
    mypage_reader *r = reads->idle;
    if (r != NULL)
        reads->idle = r->next;
    else
        reads->readers++;
    pthread_mutex_unlock(&reads->lock);
    if (r != NULL) {
        *out = r;
        return BSS_OK;
    }
    int rc = reader_new(reads->path, out, err);
    if (rc != BSS_OK) {
        pthread_mutex_lock(&reads->lock);
        reads->readers--;
        pthread_cond_signal(&reads->returned);
        pthread_mutex_unlock(&reads->lock);
    }
    return rc;
}

void mypage_reads_done(mypage_reads *reads, mypage_reader *r)
{
    if (r == NULL)
        return;
    int stuck = !sqlite3_get_autocommit(r->db);
    if (stuck) {
        /* Its read transaction could not be ended: a reader stuck on an old
         * snapshot must not serve another request. The next request that
         * finds no idle reader opens one in its place. */
        reader_free(r);
    }
    pthread_mutex_lock(&reads->lock);
    if (stuck) {
        reads->readers--;
    } else {
        r->next = reads->idle;
        reads->idle = r;
    }
    pthread_cond_signal(&reads->returned);
    pthread_mutex_unlock(&reads->lock);
}

/* ---- writing JSON into the reader's buffer ----------------------------- */

static void put(mypage_reader *r, const char *s, size_t n)
{
    if (r->oom)
        return;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (r->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(r->buf, cap);
        if (grown == NULL) {
            r->oom = 1;
            return;
        }
        r->buf = grown;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

#define PUT_LIT(r, lit) put((r), (lit), sizeof(lit) - 1)

/* A JSON string: quotes, backslashes and control characters escaped; other
 * bytes (UTF-8 from the events) as they are. */
static void put_string(mypage_reader *r, const unsigned char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(r, "\"", 1);
    const unsigned char *run = s;
    for (; *s != '\0'; s++) {
        if (*s >= 0x20 && *s != '"' && *s != '\\')
            continue;
        put(r, (const char *)run, (size_t)(s - run));
        char esc[6] = {'\\', (char)*s, 0, 0, 0, 0};
        size_t n = 2;
        if (*s < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*s >> 4];
            esc[5] = hex[*s & 15];
            n = 6;
        }
        put(r, esc, n);
        run = s + 1;
    }
    put(r, (const char *)run, (size_t)(s - run));
    put(r, "\"", 1);
}

/* "name":<column text or null> */
static void put_field(mypage_reader *r, const char *name_lit, size_t name_len, sqlite3_stmt *st,
                      int col)
{
    put(r, name_lit, name_len);
    const unsigned char *text = sqlite3_column_text(st, col);
    if (text == NULL)
        PUT_LIT(r, "null");
    else
        put_string(r, text);
}

#define PUT_FIELD(r, lit, st, col) put_field((r), (lit), sizeof(lit) - 1, (st), (col))

/* A decimal integer, written by hand: printf's machinery was a visible
 * share of a request's time. */
static void put_int(mypage_reader *r, int64_t v)
{
    char text[24];
    char *end = text + sizeof text, *p = end;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    put(r, p, (size_t)(end - p));
}

static int64_t max_ms(int64_t a, int64_t b) { return a > b ? a : b; }

/* Steps a rendering query: 1 on a row, 0 at the end, -1 on failure. */
static int step_row(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Writes the view into r's buffer inside the open read transaction. *found
 * is set to the number of lines and invoices. Returns BSS_OK or BSS_ERR_IO. */
static int render(mypage_reader *r, const char *customer_id, int *found, char *err)
{
    int64_t as_of = INT64_MIN;
    int n = 0, rc;
    r->len = 0;
    r->oom = 0;
    PUT_LIT(r, "{\"customerId\":");
    put_string(r, (const unsigned char *)customer_id);
    PUT_LIT(r, ",\"lines\":[");
    sqlite3_stmt *st = r->st[RS_LINES];
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    while ((rc = step_row(st)) == 1) {
        if (n++ > 0)
            PUT_LIT(r, ",");
        PUT_FIELD(r, "{\"svcContNo\":", st, 0);
        PUT_FIELD(r, ",\"productCd\":", st, 1);
        PUT_FIELD(r, ",\"productNm\":", st, 2);
        PUT_FIELD(r, ",\"svcContStatus\":", st, 3);
        PUT_FIELD(r, ",\"apnCd\":", st, 4);
        PUT_LIT(r, ",\"currentUsage\":");
        if (sqlite3_column_type(st, 10) == SQLITE_NULL) {
            PUT_LIT(r, "null");
        } else {
            PUT_FIELD(r, "{\"period\":", st, 10);
            PUT_LIT(r, ",\"bytes\":");
            put_int(r, sqlite3_column_int64(st, 11));
            if (sqlite3_column_int(st, 13))
                PUT_LIT(r, ",\"closed\":true}");
            else
                PUT_LIT(r, ",\"closed\":false}");
            as_of = max_ms(as_of, sqlite3_column_int64(st, 12));
        }
        PUT_FIELD(r, ",\"lastOrder\":{\"orderId\":", st, 5);
        PUT_FIELD(r, ",\"type\":", st, 6);
        PUT_FIELD(r, ",\"status\":", st, 7);
        if (sqlite3_column_type(st, 8) != SQLITE_NULL)
            PUT_FIELD(r, ",\"reason\":", st, 8);
        PUT_LIT(r, "}}");
        as_of = max_ms(as_of, sqlite3_column_int64(st, 9));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc < 0) {
        bss_seterr(err, "mypage lines: %s", sqlite3_errmsg(r->db));
        return BSS_ERR_IO;
    }
    PUT_LIT(r, "],\"invoices\":[");
    st = r->st[RS_INVOICES];
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    int invoices = 0;
    while ((rc = step_row(st)) == 1) {
        if (invoices++ > 0)
            PUT_LIT(r, ",");
        PUT_FIELD(r, "{\"invoiceId\":", st, 0);
        PUT_FIELD(r, ",\"period\":", st, 1);
        PUT_LIT(r, ",\"total\":");
        put_int(r, sqlite3_column_int64(st, 2));
        PUT_FIELD(r, ",\"status\":", st, 3);
        PUT_LIT(r, "}");
        as_of = max_ms(as_of, sqlite3_column_int64(st, 4));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc < 0) {
        bss_seterr(err, "mypage invoices: %s", sqlite3_errmsg(r->db));
        return BSS_ERR_IO;
    }
    *found = n + invoices;
    char when[BSS_TIME_LEN + 8] = "";
    if (*found > 0 && bss_time_format(as_of, when, sizeof when) != BSS_OK) {
        bss_seterr(err, "mypage: event time %" PRId64 " cannot be formatted", as_of);
        return BSS_ERR_IO;
    }
    PUT_LIT(r, "],\"asOf\":");
    put_string(r, (const unsigned char *)when);
    PUT_LIT(r, "}");
    return BSS_OK;
}

/* Steps BEGIN / COMMIT / ROLLBACK. */
static int exec_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
}

int mypage_reads_render(mypage_reads *reads, const char *customer_id, mypage_reader **lease,
                        const char **json, size_t *len, char *err)
{
    mypage_reader *r = NULL;
    *lease = NULL;
    int rc = reader_acquire(reads, &r, err);
    if (rc != BSS_OK)
        return rc;
    *lease = r;
    mypage_cache_ticket ticket = {0, 0};
    if (reads->cache != NULL) {
        if (mypage_cache_get(reads->cache, customer_id, &r->buf, &r->cap, &r->len, &ticket) ==
            1) {
            *json = r->buf;
            *len = r->len;
            return BSS_OK;
        }
    }
    if (exec_stmt(r->st[RS_BEGIN]) != BSS_OK) {
        bss_seterr(err, "mypage begin read: %s", sqlite3_errmsg(r->db));
        return BSS_ERR_IO;
    }
    int found = 0;
    rc = render(r, customer_id, &found, err);
    if (exec_stmt(r->st[rc == BSS_OK ? RS_COMMIT : RS_ROLLBACK]) != BSS_OK && rc == BSS_OK) {
        bss_seterr(err, "mypage end read: %s", sqlite3_errmsg(r->db));
        rc = BSS_ERR_IO;
    }
    if (rc != BSS_OK)
        return rc;
    if (r->oom) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    if (found == 0)
        return BSS_ERR_NOTFOUND;
    if (reads->cache != NULL)
        mypage_cache_put(reads->cache, customer_id, ticket, r->buf, r->len);
    *json = r->buf;
    *len = r->len;
    return BSS_OK;
}
