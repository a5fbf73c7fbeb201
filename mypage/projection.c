/*
 * projection.c - see projection.h.
 *
 * Each event becomes one or two prepared upserts. The "applied already?"
 * check lives inside the statements themselves (WHERE <row's seq> < the
 * event's sequence), so a re-applied event is a no-op without a table of
 * applied ids, and a rebuild writes exactly what the live consumer wrote.
 * Times only ever come from the events (ev->time_ms), so rebuilding a day
 * later gives the same `asOf`.
 */
#include "projection.h"

#include "bss_error.h"
#include "customer_events.h"
#include "jsonfield.h"
#include "period.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *const mypage_projection_streams[] = {"customer", "rater", "billing"};
const size_t mypage_projection_nstreams =
    sizeof mypage_projection_streams / sizeof *mypage_projection_streams;
const char *const mypage_projection_types[] = {
    "OrderCreated", "LineStatusChanged", "OrderCompleted", "OrderRejected", /* customer */
    "UsageRated", "AuCloseStarted",                                         /* rater */
    "InvoiceIssued",                                                        /* billing */
    NULL};

static const char *const SCHEMA[] = {
    "CREATE TABLE IF NOT EXISTS mypage_line("
    "  svc_cont_no TEXT PRIMARY KEY,"
    "  customer_id TEXT NOT NULL,"
    "  product_cd TEXT NOT NULL,"
    "  product_nm TEXT NOT NULL,"
    "  svc_cont_status TEXT,"       /* NULL until the first LineStatusChanged */
    "  apn_cd TEXT NOT NULL,"
    "  order_id TEXT NOT NULL,"     /* the line's last order */
    "  order_type TEXT NOT NULL,"
    "  order_status TEXT,"          /* NULL when OrderCreated carried none */
    "  order_reason TEXT,"          /* OrderRejected's reason, else NULL */
    "  customer_seq INTEGER NOT NULL,"
    "  customer_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS mypage_line_by_customer"
    "  ON mypage_line(customer_id, svc_cont_no);",
    "CREATE TABLE IF NOT EXISTS mypage_usage("
    "  svc_cont_no TEXT NOT NULL,"
    "  period TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  records INTEGER NOT NULL,"
    "  PRIMARY KEY(svc_cont_no, period)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS mypage_usage_line("
    "  svc_cont_no TEXT PRIMARY KEY,"
    "  latest_period TEXT NOT NULL,"
    "  rater_seq INTEGER NOT NULL,"
    "  rater_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS mypage_closed_period("
    "  period TEXT PRIMARY KEY,"
    "  rater_seq INTEGER NOT NULL) WITHOUT ROWID;",
    "CREATE TABLE IF NOT EXISTS mypage_invoice("
    "  invoice_id TEXT PRIMARY KEY,"
    "  customer_id TEXT NOT NULL,"
    "  period TEXT NOT NULL,"
    "  total INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  billing_seq INTEGER NOT NULL,"
    "  billing_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS mypage_invoice_by_customer"
    "  ON mypage_invoice(customer_id, period, invoice_id);",
};

const mypage_projection_table mypage_projection_tables[] = {
    {"mypage_line",
     "SELECT svc_cont_no, customer_id, product_cd, product_nm, svc_cont_status, apn_cd,"
     " order_id, order_type, order_status, order_reason, customer_seq, customer_ms"
     " FROM mypage_line ORDER BY svc_cont_no"},
    {"mypage_usage",
     "SELECT svc_cont_no, period, bytes, records FROM mypage_usage"
     " ORDER BY svc_cont_no, period"},
    {"mypage_usage_line",
     "SELECT svc_cont_no, latest_period, rater_seq, rater_ms FROM mypage_usage_line"
     " ORDER BY svc_cont_no"},
    {"mypage_closed_period",
     "SELECT period, rater_seq FROM mypage_closed_period ORDER BY period"},
    {"mypage_invoice",
     "SELECT invoice_id, customer_id, period, total, status, billing_seq, billing_ms"
     " FROM mypage_invoice ORDER BY invoice_id"},
    {NULL, NULL},
};

/* Every write of the projection. The WHERE clauses of the upserts are the
 * idempotency guard described at the top. MAX() on times keeps a clock
 * step backwards at the producer from moving asOf back. */
enum {
    ST_LINE_UPSERT,
    ST_LINE_ORDER,
    ST_LINE_STATUS,
    ST_LINE_OUTCOME,
    ST_USAGE_HEAD,
    ST_USAGE_ADD,
    ST_CLOSED,
    ST_INVOICE,
    ST_COUNT
};

static const char *const STMT_SQL[ST_COUNT] = {
    /* OrderCreated with the line's snapshot: the line's fields and the new
     * last order. */
    "INSERT INTO mypage_line(svc_cont_no, customer_id, product_cd, product_nm, apn_cd,"
    " order_id, order_type, order_status, order_reason, customer_seq, customer_ms)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10)"
    " ON CONFLICT(svc_cont_no) DO UPDATE SET customer_id = excluded.customer_id,"
    " product_cd = excluded.product_cd, product_nm = excluded.product_nm,"
    " apn_cd = excluded.apn_cd, order_id = excluded.order_id,"
    " order_type = excluded.order_type, order_status = excluded.order_status,"
    " order_reason = NULL, customer_seq = excluded.customer_seq,"
    " customer_ms = MAX(customer_ms, excluded.customer_ms)"
    " WHERE excluded.customer_seq > mypage_line.customer_seq",
    /* OrderCreated without a (well-formed) snapshot: only the last order. */
    "UPDATE mypage_line SET order_id = ?2, order_type = ?3, order_status = ?4,"
    " order_reason = NULL, customer_seq = ?5, customer_ms = MAX(customer_ms, ?6)"
    " WHERE svc_cont_no = ?1 AND customer_seq < ?5",
    "UPDATE mypage_line SET svc_cont_status = ?2, customer_seq = ?3,"
    " customer_ms = MAX(customer_ms, ?4) WHERE svc_cont_no = ?1 AND customer_seq < ?3",
    /* OrderCompleted / OrderRejected: only about the order the line shows. */
    "UPDATE mypage_line SET order_status = ?3, order_reason = ?4, customer_seq = ?5,"
    " customer_ms = MAX(customer_ms, ?6)"
    " WHERE svc_cont_no = ?1 AND order_id = ?2 AND customer_seq < ?5",
    /* UsageRated, first statement: claims the event for the line (no change
     * = applied before) and moves the latest period forward. */
    "INSERT INTO mypage_usage_line(svc_cont_no, latest_period, rater_seq, rater_ms)"
    " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(svc_cont_no) DO UPDATE SET"
    " latest_period = MAX(latest_period, excluded.latest_period),"
    " rater_seq = excluded.rater_seq, rater_ms = MAX(rater_ms, excluded.rater_ms)"
    " WHERE excluded.rater_seq > mypage_usage_line.rater_seq",
    /* ... then one per period; sums saturate rather than turn into REAL. */
    "INSERT INTO mypage_usage(svc_cont_no, period, bytes, records) VALUES(?1, ?2, ?3, ?4)"
    " ON CONFLICT(svc_cont_no, period) DO UPDATE SET"
    " bytes = CASE WHEN bytes > 9223372036854775807 - excluded.bytes"
    "   THEN 9223372036854775807 ELSE bytes + excluded.bytes END,"
    " records = CASE WHEN records > 9223372036854775807 - excluded.records"
    "   THEN 9223372036854775807 ELSE records + excluded.records END",
    "INSERT INTO mypage_closed_period(period, rater_seq) VALUES(?1, ?2)"
    " ON CONFLICT(period) DO NOTHING",
    "INSERT INTO mypage_invoice(invoice_id, customer_id, period, total, status,"
    " billing_seq, billing_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT(invoice_id) DO UPDATE SET customer_id = excluded.customer_id,"
    " period = excluded.period, total = excluded.total, status = excluded.status,"
    " billing_seq = excluded.billing_seq, billing_ms = MAX(billing_ms, excluded.billing_ms)"
    " WHERE excluded.billing_seq > mypage_invoice.billing_seq",
};

struct mypage_projection {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT]; /* prepared on first use */
};

int mypage_projection_schema(sqlite3 *db, char *err)
{
    for (size_t i = 0; i < sizeof SCHEMA / sizeof *SCHEMA; i++) {
        char *msg = NULL;
        if (sqlite3_exec(db, SCHEMA[i], NULL, NULL, &msg) != SQLITE_OK) {
            bss_seterr(err, "mypage schema: %s", msg != NULL ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return BSS_ERR_IO;
        }
    }
    return BSS_OK;
}

int mypage_projection_open(sqlite3 *db, mypage_projection **out, char *err)
{
    mypage_projection *p = calloc(1, sizeof *p);
    if (p == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    p->db = db;
    *out = p;
    return BSS_OK;
}

static void finalize_all(mypage_projection *p)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(p->st[i]);
        p->st[i] = NULL;
    }
}

void mypage_projection_close(mypage_projection *p)
{
    if (p == NULL)
        return;
    finalize_all(p);
    free(p);
}

/* The statement `which`, prepared now if it is not yet, reset and unbound. */
static int stmt(mypage_projection *p, int which, sqlite3_stmt **out, char *err)
{
    if (p->st[which] == NULL &&
        sqlite3_prepare_v3(p->db, STMT_SQL[which], -1, SQLITE_PREPARE_PERSISTENT,
                           &p->st[which], NULL) != SQLITE_OK) {
        bss_seterr(err, "mypage prepare: %s", sqlite3_errmsg(p->db));
        sqlite3_finalize(p->st[which]);
        p->st[which] = NULL;
        return BSS_ERR_IO;
    }
    *out = p->st[which];
    return BSS_OK;
}

/* Steps a bound write to its end and resets it; *changed (may be NULL) is
 * 1 when it wrote a row. */
static int run(mypage_projection *p, sqlite3_stmt *st, const char *what, int *changed,
               char *err)
{
    int rc = sqlite3_step(st);
    if (changed != NULL)
        *changed = rc == SQLITE_DONE && sqlite3_changes(p->db) > 0;
    if (rc != SQLITE_DONE)
        bss_seterr(err, "mypage %s: %s", what, sqlite3_errmsg(p->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
}

static void bind_text_or_null(sqlite3_stmt *st, int col, const char *s)
{
    if (s != NULL && s[0] != '\0')
        sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

/* ---- customer ---------------------------------------------------------- */

static int on_order_created(mypage_projection *p, const bss_event *ev, char *err)
{
    bss_cev_order_created o;
    int rc = bss_cev_parse_order_created(ev, &o, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if (o.has_line) {
        rc = stmt(p, ST_LINE_UPSERT, &st, err);
        if (rc != BSS_OK)
            return rc;
        sqlite3_bind_text(st, 1, ev->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, o.line.customer_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, o.line.product_cd, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, o.line.product_nm, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, o.line.apn_cd, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, o.order_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, o.type, -1, SQLITE_STATIC);
        bind_text_or_null(st, 8, o.status);
        sqlite3_bind_int64(st, 9, ev->sequence);
        sqlite3_bind_int64(st, 10, ev->time_ms);
        return run(p, st, "line upsert", NULL, err);
    }
    rc = stmt(p, ST_LINE_ORDER, &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, ev->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o.order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o.type, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, o.status);
    sqlite3_bind_int64(st, 5, ev->sequence);
    sqlite3_bind_int64(st, 6, ev->time_ms);
    return run(p, st, "line order", NULL, err);
}

static int on_status_changed(mypage_projection *p, const bss_event *ev, char *err)
{
    bss_cev_status_changed s;
    int rc = bss_cev_parse_status_changed(ev, &s, err);
    sqlite3_stmt *st = NULL;
    if (rc == BSS_OK)
        rc = stmt(p, ST_LINE_STATUS, &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, ev->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s.to, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ev->sequence);
    sqlite3_bind_int64(st, 4, ev->time_ms);
    return run(p, st, "line status", NULL, err);
}

/* OrderCompleted {orderId, type, effectiveAt} / OrderRejected {orderId,
 * type, reason}. */
static int on_order_outcome(mypage_projection *p, const bss_event *ev, int rejected, char *err)
{
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    char order_id[BSS_CEV_ID_MAX + 1], reason[64] = "";
    int rc = bss_jfield_string(data, "orderId", order_id, sizeof order_id, err);
    if (rc == BSS_OK && rejected)
        rc = bss_jfield_string(data, "reason", reason, sizeof reason, err);
    cJSON_Delete(data);
    sqlite3_stmt *st = NULL;
    if (rc == BSS_OK)
        rc = stmt(p, ST_LINE_OUTCOME, &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, ev->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rejected ? "REJECTED" : "COMPLETED", -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, reason);
    sqlite3_bind_int64(st, 5, ev->sequence);
    sqlite3_bind_int64(st, 6, ev->time_ms);
    return run(p, st, "line outcome", NULL, err);
}

/* ---- rater ------------------------------------------------------------- */

/* A 64-bit count carried as a decimal string (see the event catalog):
 * digits only, no sign, no overflow. */
static int parse_count(const cJSON *item, const char *name, int64_t *out, char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, name);
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9') {
        bss_seterr(err, "field '%s' is not a decimal string", name);
        return BSS_ERR_INVALID;
    }
    char *end = NULL;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        bss_seterr(err, "field '%s' is not a 64-bit count: '%.32s'", name, s);
        return BSS_ERR_INVALID;
    }
    *out = n;
    return BSS_OK;
}

typedef struct usage_period {
    char period[BSS_PERIOD_LEN + 1];
    int64_t bytes;
    int64_t records;
} usage_period;

/* Reads one element of UsageRated.periods. */
static int parse_usage_period(const cJSON *item, usage_period *out, char *err)
{
    bss_period parsed;
    int rc = bss_jfield_string(item, "period", out->period, sizeof out->period, err);
    if (rc == BSS_OK && bss_period_parse(out->period, &parsed) != BSS_OK) {
        bss_seterr(err, "field 'period' is not YYYY-MM: '%s'", out->period);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = parse_count(item, "bytes", &out->bytes, err);
    if (rc == BSS_OK)
        rc = bss_jfield_int64(item, "records", &out->records, err);
    if (rc == BSS_OK && out->records < 0) {
        bss_seterr(err, "field 'records' is negative");
        rc = BSS_ERR_INVALID;
    }
    return rc;
}

/* UsageRated {fileName, fileId, periods: [{period, bytes, records}]}. The
 * whole event is validated before anything is written, so a bad element
 * late in the list does not leave the first ones applied. */
static int on_usage_rated(mypage_projection *p, const bss_event *ev, char *err)
{
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    const cJSON *periods = cJSON_GetObjectItemCaseSensitive(data, "periods");
    int n = cJSON_IsArray(periods) ? cJSON_GetArraySize(periods) : -1;
    int rc = BSS_OK;
    if (n < 1) {
        bss_seterr(err, "UsageRated %s: field 'periods' is not a non-empty array", ev->id);
        rc = BSS_ERR_INVALID;
    }
    char latest[BSS_PERIOD_LEN + 1] = "";
    const cJSON *item;
    if (rc == BSS_OK) {
        cJSON_ArrayForEach(item, periods) {
            usage_period u;
            rc = parse_usage_period(item, &u, err);
            if (rc != BSS_OK)
                break;
            if (strcmp(u.period, latest) > 0)
                memcpy(latest, u.period, sizeof latest);
        }
    }
    sqlite3_stmt *st = NULL;
    int claimed = 0;
    if (rc == BSS_OK)
        rc = stmt(p, ST_USAGE_HEAD, &st, err);
    if (rc == BSS_OK) {
        sqlite3_bind_text(st, 1, ev->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, latest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, ev->sequence);
        sqlite3_bind_int64(st, 4, ev->time_ms);
        rc = run(p, st, "usage head", &claimed, err);
    }
    if (rc == BSS_OK && claimed) {
        cJSON_ArrayForEach(item, periods) {
            usage_period u;
            rc = parse_usage_period(item, &u, err);
            if (rc == BSS_OK)
                rc = stmt(p, ST_USAGE_ADD, &st, err);
            if (rc != BSS_OK)
                break;
            sqlite3_bind_text(st, 1, ev->subject, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, u.period, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, u.bytes);
            sqlite3_bind_int64(st, 4, u.records);
            rc = run(p, st, "usage add", NULL, err);
            if (rc != BSS_OK)
                break;
        }
    }
    cJSON_Delete(data);
    return rc;
}

/* AuCloseStarted {period, customerPosition}: the period's usage is final. */
static int on_au_close_started(mypage_projection *p, const bss_event *ev, char *err)
{
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    char period[BSS_PERIOD_LEN + 1];
    bss_period parsed;
    int rc = bss_jfield_string(data, "period", period, sizeof period, err);
    cJSON_Delete(data);
    if (rc == BSS_OK && bss_period_parse(period, &parsed) != BSS_OK) {
        bss_seterr(err, "AuCloseStarted: field 'period' is not YYYY-MM: '%s'", period);
        rc = BSS_ERR_INVALID;
    }
    sqlite3_stmt *st = NULL;
    if (rc == BSS_OK)
        rc = stmt(p, ST_CLOSED, &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ev->sequence);
    return run(p, st, "closed period", NULL, err);
}

/* ---- billing ----------------------------------------------------------- */

/* InvoiceIssued {invoiceId, customerId, period, email, lines, subtotal,
 * vat, total, status, issuedAt}: the invoice's summary. */
static int on_invoice_issued(mypage_projection *p, const bss_event *ev, char *err)
{
    cJSON *data = bss_jfield_event_data(ev, err);
    if (data == NULL)
        return BSS_ERR_INVALID;
    char invoice_id[BSS_EVENT_SUBJECT_MAX + 1], customer_id[BSS_CEV_ID_MAX + 1];
    char period[BSS_PERIOD_LEN + 1], status[BSS_CEV_WORD_MAX + 1];
    int64_t total = 0;
    bss_period parsed;
    int rc = bss_jfield_string(data, "invoiceId", invoice_id, sizeof invoice_id, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(data, "customerId", customer_id, sizeof customer_id, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(data, "period", period, sizeof period, err);
    if (rc == BSS_OK)
        rc = bss_jfield_int64(data, "total", &total, err);
    if (rc == BSS_OK)
        rc = bss_jfield_string(data, "status", status, sizeof status, err);
    cJSON_Delete(data);
    if (rc == BSS_OK && bss_period_parse(period, &parsed) != BSS_OK) {
        bss_seterr(err, "field 'period' is not YYYY-MM: '%s'", period);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK && strcmp(invoice_id, ev->subject) != 0) {
        bss_seterr(err, "invoiceId '%s' differs from the event subject '%s'", invoice_id,
                   ev->subject);
        rc = BSS_ERR_INVALID;
    }
    sqlite3_stmt *st = NULL;
    if (rc == BSS_OK)
        rc = stmt(p, ST_INVOICE, &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, invoice_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, total);
    sqlite3_bind_text(st, 5, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, ev->sequence);
    sqlite3_bind_int64(st, 7, ev->time_ms);
    return run(p, st, "invoice", NULL, err);
}

/* ---- dispatch ---------------------------------------------------------- */

int mypage_projection_apply_with(mypage_projection *p, const bss_event *ev, char *err)
{
    const char *type = ev->type;
    int customer = strcmp(ev->source, "customer") == 0;
    int rater = !customer && strcmp(ev->source, "rater") == 0;
    int billing = !customer && !rater && strcmp(ev->source, "billing") == 0;
    if (!customer && !rater && !billing)
        return BSS_OK;
    if (ev->sequence < 1) {
        bss_seterr(err, "%s %s: no source sequence", type, ev->id);
        return BSS_ERR_INVALID;
    }
    if (customer) {
        if (strcmp(type, "OrderCreated") == 0)
            return on_order_created(p, ev, err);
        if (strcmp(type, "LineStatusChanged") == 0)
            return on_status_changed(p, ev, err);
        if (strcmp(type, "OrderCompleted") == 0)
            return on_order_outcome(p, ev, 0, err);
        if (strcmp(type, "OrderRejected") == 0)
            return on_order_outcome(p, ev, 1, err);
    } else if (rater) {
        if (strcmp(type, "UsageRated") == 0)
            return on_usage_rated(p, ev, err);
        if (strcmp(type, "AuCloseStarted") == 0)
            return on_au_close_started(p, ev, err);
    } else if (strcmp(type, "InvoiceIssued") == 0) {
        return on_invoice_issued(p, ev, err);
    }
    return BSS_OK;
}

int mypage_projection_apply(sqlite3 *db, const bss_event *ev, char *err)
{
    mypage_projection once = {.db = db};
    int rc = mypage_projection_apply_with(&once, ev, err);
    finalize_all(&once);
    return rc;
}
