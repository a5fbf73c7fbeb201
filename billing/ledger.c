/* ledger.c - see ledger.h. Statements prepared once per connection and
 * reused (sqlcache.h: every use ends with a reset); nothing here knows
 * the charge rules or the events. */
#include "ledger.h"

#include "bss_error.h"
#include "jsontext.h"
#include "sqlcache.h"
#include "sqlutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char LEDGER_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS au_close("
    " period TEXT PRIMARY KEY,"
    " customer_position INTEGER NOT NULL,"
    " event_id TEXT NOT NULL,"
    " started_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS usage_moved("
    " svc_cont_no TEXT NOT NULL,"
    " period TEXT NOT NULL,"
    " customer_id TEXT NOT NULL,"
    " usage_bytes INTEGER NOT NULL CHECK(usage_bytes >= 0),"
    " records INTEGER NOT NULL,"
    " event_id TEXT NOT NULL,"
    " moved_ms INTEGER NOT NULL,"
    " PRIMARY KEY(svc_cont_no, period));"
    "CREATE INDEX IF NOT EXISTS usage_moved_period ON usage_moved(period);"
    "CREATE TABLE IF NOT EXISTS charge("
    " id INTEGER PRIMARY KEY,"
    " svc_cont_no TEXT NOT NULL,"
    " period TEXT NOT NULL,"
    " customer_id TEXT NOT NULL,"
    " product_cd TEXT NOT NULL,"
    " product_tarif INTEGER NOT NULL,"
    " per_mb_rate INTEGER NOT NULL,"
    " usage_bytes INTEGER NOT NULL CHECK(usage_bytes >= 0),"
    " billable_mb INTEGER NOT NULL,"
    " included_mb INTEGER NOT NULL CHECK(included_mb >= -1),"
    " overage_mb INTEGER NOT NULL,"
    " overage_fee INTEGER NOT NULL,"
    " active_days INTEGER NOT NULL,"
    " days_in_period INTEGER NOT NULL,"
    " base_fee INTEGER NOT NULL,"
    " subtotal INTEGER NOT NULL,"
    " vat INTEGER NOT NULL,"
    " total INTEGER NOT NULL,"
    " calculated_ms INTEGER NOT NULL,"
    " UNIQUE(svc_cont_no, period));"
    "CREATE INDEX IF NOT EXISTS charge_period_customer"
    " ON charge(period, customer_id, svc_cont_no);"
    "CREATE TABLE IF NOT EXISTS invoice("
    " invoice_id TEXT PRIMARY KEY,"
    " customer_id TEXT NOT NULL,"
    " period TEXT NOT NULL,"
    " email TEXT NOT NULL,"
    " subtotal INTEGER NOT NULL,"
    " vat INTEGER NOT NULL,"
    " total INTEGER NOT NULL,"
    " status TEXT NOT NULL,"
    " issued_ms INTEGER NOT NULL,"
    " issued_at TEXT NOT NULL,"
    " UNIQUE(customer_id, period));"
    "CREATE INDEX IF NOT EXISTS invoice_period ON invoice(period, customer_id);"
    "CREATE TABLE IF NOT EXISTS invoice_line("
    " invoice_id TEXT NOT NULL,"
    " line_no INTEGER NOT NULL,"
    " svc_cont_no TEXT NOT NULL,"
    " period TEXT NOT NULL,"
    " PRIMARY KEY(invoice_id, line_no),"
    " UNIQUE(svc_cont_no, period));"
    "CREATE TABLE IF NOT EXISTS period_invoiced("
    " period TEXT PRIMARY KEY,"
    " invoice_count INTEGER NOT NULL,"
    " line_count INTEGER NOT NULL,"
    " charge_count INTEGER NOT NULL,"
    " close_line_count INTEGER NOT NULL,"
    " close_total_bytes INTEGER NOT NULL,"
    " event_id TEXT NOT NULL,"
    " invoiced_ms INTEGER NOT NULL);"
    /* Final documents: corrections are new documents, never edits. */
    "CREATE TRIGGER IF NOT EXISTS charge_final_u BEFORE UPDATE ON charge"
    " BEGIN SELECT RAISE(ABORT, 'charges are final'); END;"
    "CREATE TRIGGER IF NOT EXISTS charge_final_d BEFORE DELETE ON charge"
    " BEGIN SELECT RAISE(ABORT, 'charges are final'); END;"
    "CREATE TRIGGER IF NOT EXISTS invoice_final_u BEFORE UPDATE ON invoice"
    " BEGIN SELECT RAISE(ABORT, 'invoices are final'); END;"
    "CREATE TRIGGER IF NOT EXISTS invoice_final_d BEFORE DELETE ON invoice"
    " BEGIN SELECT RAISE(ABORT, 'invoices are final'); END;"
    "CREATE TRIGGER IF NOT EXISTS invoice_line_final_u BEFORE UPDATE ON invoice_line"
    " BEGIN SELECT RAISE(ABORT, 'invoices are final'); END;"
    "CREATE TRIGGER IF NOT EXISTS invoice_line_final_d BEFORE DELETE ON invoice_line"
    " BEGIN SELECT RAISE(ABORT, 'invoices are final'); END;";

/* The customer service's OrdersClosed barriers seen (monthend.h). A store
 * from before the barrier existed gets one for each close it holds: those
 * closes were started without one and must not wait for it. */
static const char ORDERS_CLOSED_SCHEMA[] =
    "CREATE TABLE orders_closed("
    " period TEXT PRIMARY KEY,"
    " event_id TEXT NOT NULL,"
    " closed_ms INTEGER NOT NULL);"
    "INSERT INTO orders_closed(period, event_id, closed_ms)"
    " SELECT period, event_id, started_ms FROM au_close;";

int billing_ledger_schema(sqlite3 *db, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_sql_prepare(db,
                             "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                             " AND name = 'orders_closed'",
                             &st, "ledger schema", err);
    if (rc != BSS_OK)
        return rc;
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        bss_seterr(err, "ledger schema: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    const char *const parts[] = {LEDGER_SCHEMA, ORDERS_CLOSED_SCHEMA};
    return bss_sql_exec_all(db, parts, step == SQLITE_ROW ? 1 : 2, "ledger schema", err);
}

/* ---- helpers ---------------------------------------------------------- */

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err)
{
    return bss_sqlc_prepare(db, sql, st, "ledger prepare", err);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* ---- status history --------------------------------------------------- */

static int status_point_row(sqlite3_stmt *st, void *elem)
{
    charge_status_point *p = elem;
    p->effective_ms = sqlite3_column_int64(st, 0);
    p->active = sqlite3_column_int(st, 1) != 0;
    return BSS_OK;
}

int billing_status_points(sqlite3 *db, const char *svc_cont_no, charge_status_point **points,
                          size_t *n, char *err)
{
    *points = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT effective_ms, status = 'ACTIVE' FROM line_status_history"
                     " WHERE svc_cont_no = ?1 ORDER BY effective_ms, id",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    return bss_sqlc_collect(db, st, sizeof **points, status_point_row, NULL, (void **)points, n,
                           "ledger select status history", err);
}

/* ---- closes and moved lines ------------------------------------------- */

int billing_close_insert(sqlite3 *db, const char *period, int64_t customer_position,
                         const char *event_id, int64_t started_ms, int *inserted, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT OR IGNORE INTO au_close(period, customer_position, event_id,"
                     " started_ms) VALUES(?1, ?2, ?3, ?4)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, customer_position);
    sqlite3_bind_text(st, 3, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, started_ms);
    return bss_sqlc_step_done(db, st, "ledger insert au_close", inserted, err);
}

int billing_orders_closed_insert(sqlite3 *db, const char *period, const char *event_id,
                                 int64_t closed_ms, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT OR IGNORE INTO orders_closed(period, event_id, closed_ms)"
                     " VALUES(?1, ?2, ?3)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, closed_ms);
    return bss_sqlc_step_done(db, st, "ledger insert orders_closed", NULL, err);
}

int billing_orders_closed(sqlite3 *db, const char *period, int *closed, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT 1 FROM orders_closed WHERE period = ?1", &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "ledger select orders_closed", err);
    *closed = step == SQLITE_ROW;
    bss_sqlc_done(st);
    return BSS_OK;
}

int billing_close_position(sqlite3 *db, const char *period, int64_t *position, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT customer_position FROM au_close WHERE period = ?1", &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        bss_sqlc_done(st);
        return BSS_ERR_NOTFOUND;
    }
    if (step != SQLITE_ROW)
        return bss_sqlc_fail(db, st, "ledger select au_close", err);
    *position = sqlite3_column_int64(st, 0);
    bss_sqlc_done(st);
    return BSS_OK;
}

int billing_moved_insert(sqlite3 *db, const char *svc_cont_no, const char *period,
                         const char *customer_id, int64_t usage_bytes, int64_t records,
                         const char *event_id, int64_t moved_ms, int *inserted, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT OR IGNORE INTO usage_moved(svc_cont_no, period, customer_id,"
                     " usage_bytes, records, event_id, moved_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, usage_bytes);
    sqlite3_bind_int64(st, 5, records);
    sqlite3_bind_text(st, 6, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, moved_ms);
    return bss_sqlc_step_done(db, st, "ledger insert usage_moved", inserted, err);
}

/* ---- charges ---------------------------------------------------------- */

#define CHARGE_COLUMNS                                                                     \
    "svc_cont_no, customer_id, product_cd, period, product_tarif, per_mb_rate,"            \
    " usage_bytes, billable_mb, included_mb, overage_mb, overage_fee, active_days,"        \
    " days_in_period, base_fee, subtotal, vat, total, calculated_ms"

int billing_charge_insert(sqlite3 *db, const billing_charge *c, int *inserted, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT OR IGNORE INTO charge(" CHARGE_COLUMNS ")"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                     " ?15, ?16, ?17, ?18)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, c->svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->product_cd, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, c->product_tarif);
    sqlite3_bind_int64(st, 6, c->per_mb_rate);
    sqlite3_bind_int64(st, 7, c->usage_bytes);
    sqlite3_bind_int64(st, 8, c->billable_mb);
    sqlite3_bind_int64(st, 9, c->included_mb);
    sqlite3_bind_int64(st, 10, c->overage_mb);
    sqlite3_bind_int64(st, 11, c->overage_fee);
    sqlite3_bind_int(st, 12, c->active_days);
    sqlite3_bind_int(st, 13, c->days_in_period);
    sqlite3_bind_int64(st, 14, c->base_fee);
    sqlite3_bind_int64(st, 15, c->subtotal);
    sqlite3_bind_int64(st, 16, c->vat);
    sqlite3_bind_int64(st, 17, c->total);
    sqlite3_bind_int64(st, 18, c->calculated_ms);
    return bss_sqlc_step_done(db, st, "ledger insert charge", inserted, err);
}

/* Reads a row selected as CHARGE_COLUMNS starting at column `at`. */
static void charge_from_row(sqlite3_stmt *st, int at, billing_charge *c)
{
    memset(c, 0, sizeof *c);
    bss_sql_copy_text(st, at + 0, c->svc_cont_no, sizeof c->svc_cont_no);
    bss_sql_copy_text(st, at + 1, c->customer_id, sizeof c->customer_id);
    bss_sql_copy_text(st, at + 2, c->product_cd, sizeof c->product_cd);
    bss_sql_copy_text(st, at + 3, c->period, sizeof c->period);
    c->product_tarif = sqlite3_column_int64(st, at + 4);
    c->per_mb_rate = sqlite3_column_int64(st, at + 5);
    c->usage_bytes = sqlite3_column_int64(st, at + 6);
    c->billable_mb = sqlite3_column_int64(st, at + 7);
    c->included_mb = sqlite3_column_int64(st, at + 8);
    c->overage_mb = sqlite3_column_int64(st, at + 9);
    c->overage_fee = sqlite3_column_int64(st, at + 10);
    c->active_days = sqlite3_column_int(st, at + 11);
    c->days_in_period = sqlite3_column_int(st, at + 12);
    c->base_fee = sqlite3_column_int64(st, at + 13);
    c->subtotal = sqlite3_column_int64(st, at + 14);
    c->vat = sqlite3_column_int64(st, at + 15);
    c->total = sqlite3_column_int64(st, at + 16);
    c->calculated_ms = sqlite3_column_int64(st, at + 17);
}

/* An integer member with its exact digits (a double would round past
 * 2^53). */
static int add_int(cJSON *o, const char *name, int64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    return cJSON_AddRawToObject(o, name, text) != NULL;
}

cJSON *billing_charge_to_json(const billing_charge *c, billing_json_form form)
{
    char bytes[24];
    snprintf(bytes, sizeof bytes, "%" PRId64, c->usage_bytes);
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "svcContNo", c->svc_cont_no) == NULL ||
        cJSON_AddStringToObject(o, "customerId", c->customer_id) == NULL ||
        cJSON_AddStringToObject(o, "productCd", c->product_cd) == NULL ||
        cJSON_AddStringToObject(o, "period", c->period) == NULL ||
        (form == BILLING_JSON_EVENT ? cJSON_AddStringToObject(o, "usageBytes", bytes) == NULL
                                    : !add_int(o, "usageBytes", c->usage_bytes)) ||
        !add_int(o, "billableMb", c->billable_mb) ||
        (c->included_mb < 0 ? cJSON_AddNullToObject(o, "includedMb") == NULL
                            : !add_int(o, "includedMb", c->included_mb)) ||
        !add_int(o, "overageMb", c->overage_mb) || !add_int(o, "overageFee", c->overage_fee) ||
        !add_int(o, "activeDays", c->active_days) ||
        !add_int(o, "daysInPeriod", c->days_in_period) ||
        !add_int(o, "baseFee", c->base_fee) || !add_int(o, "subtotal", c->subtotal) ||
        !add_int(o, "vat", c->vat) || !add_int(o, "total", c->total)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- event data as text ---------------------------------------------- */

/* ,"usageBytes":"<decimal>" (64-bit counts travel as strings) */
static void put_count_member(bss_jtext *b, const char *name, int64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    bss_jtext_string_member(b, name, text, 0);
}

/* The event form of billing_charge_to_json, member for member. */
static void put_charge(bss_jtext *b, const billing_charge *c)
{
    bss_jtext_raw(b, "{", 1);
    bss_jtext_string_member(b, "svcContNo", c->svc_cont_no, 1);
    bss_jtext_string_member(b, "customerId", c->customer_id, 0);
    bss_jtext_string_member(b, "productCd", c->product_cd, 0);
    bss_jtext_string_member(b, "period", c->period, 0);
    put_count_member(b, "usageBytes", c->usage_bytes);
    bss_jtext_int_member(b, "billableMb", c->billable_mb, 0);
    if (c->included_mb < 0)
        bss_jtext_str(b, ",\"includedMb\":null");
    else
        bss_jtext_int_member(b, "includedMb", c->included_mb, 0);
    bss_jtext_int_member(b, "overageMb", c->overage_mb, 0);
    bss_jtext_int_member(b, "overageFee", c->overage_fee, 0);
    bss_jtext_int_member(b, "activeDays", c->active_days, 0);
    bss_jtext_int_member(b, "daysInPeriod", c->days_in_period, 0);
    bss_jtext_int_member(b, "baseFee", c->base_fee, 0);
    bss_jtext_int_member(b, "subtotal", c->subtotal, 0);
    bss_jtext_int_member(b, "vat", c->vat, 0);
    bss_jtext_int_member(b, "total", c->total, 0);
    bss_jtext_raw(b, "}", 1);
}

static char *finish(bss_jtext *b)
{
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

char *billing_charge_event_text(const billing_charge *c)
{
    bss_jtext b = {0};
    put_charge(&b, c);
    return finish(&b);
}

/* One product's part of an invoice. */
typedef struct product_part {
    const char *product_cd; /* points into the invoice's lines */
    int64_t lines, usage_bytes, billable_mb, amount;
} product_part;

/* Usage sums beyond int64 (exabytes) stop at its maximum: settlement then
 * refuses the invoice as overflowing, as it refuses any such sum. */
static void add_saturating(int64_t *sum, int64_t v)
{
    if (__builtin_add_overflow(*sum, v, sum))
        *sum = INT64_MAX;
}

static int part_order(const void *a, const void *b)
{
    return strcmp(((const product_part *)a)->product_cd, ((const product_part *)b)->product_cd);
}

char *billing_invoice_event_text(const billing_invoice *inv)
{
    /* Products are few (the catalog's); lines may be many thousands. */
    product_part *parts = NULL;
    size_t nparts = 0;
    int64_t usage = 0, billable = 0;
    for (size_t i = 0; i < inv->nlines; i++) {
        const billing_charge *c = &inv->lines[i];
        size_t k = 0;
        while (k < nparts && strcmp(parts[k].product_cd, c->product_cd) != 0)
            k++;
        if (k == nparts) {
            product_part *grown = realloc(parts, (nparts + 1) * sizeof *parts);
            if (grown == NULL) {
                free(parts);
                return NULL;
            }
            parts = grown;
            memset(&parts[nparts], 0, sizeof *parts);
            parts[nparts++].product_cd = c->product_cd;
        }
        parts[k].lines++;
        add_saturating(&parts[k].usage_bytes, c->usage_bytes);
        add_saturating(&parts[k].billable_mb, c->billable_mb);
        add_saturating(&parts[k].amount, c->total);
        add_saturating(&usage, c->usage_bytes);
        add_saturating(&billable, c->billable_mb);
    }
    if (nparts > 1)
        qsort(parts, nparts, sizeof *parts, part_order);
    bss_jtext b = {0};
    bss_jtext_raw(&b, "{", 1);
    bss_jtext_string_member(&b, "invoiceId", inv->invoice_id, 1);
    bss_jtext_string_member(&b, "customerId", inv->customer_id, 0);
    bss_jtext_string_member(&b, "period", inv->period, 0);
    bss_jtext_string_member(&b, "email", inv->email, 0);
    bss_jtext_int_member(&b, "lineCount", (int64_t)inv->nlines, 0);
    put_count_member(&b, "usageBytes", usage);
    bss_jtext_int_member(&b, "billableMb", billable, 0);
    bss_jtext_str(&b, ",\"byProduct\":[");
    for (size_t k = 0; k < nparts; k++) {
        bss_jtext_raw(&b, k > 0 ? ",{" : "{", k > 0 ? 2 : 1);
        bss_jtext_string_member(&b, "productCd", parts[k].product_cd, 1);
        bss_jtext_int_member(&b, "lineCount", parts[k].lines, 0);
        put_count_member(&b, "usageBytes", parts[k].usage_bytes);
        bss_jtext_int_member(&b, "billableMb", parts[k].billable_mb, 0);
        bss_jtext_int_member(&b, "amount", parts[k].amount, 0);
        bss_jtext_raw(&b, "}", 1);
    }
    free(parts);
    bss_jtext_raw(&b, "]", 1);
    bss_jtext_int_member(&b, "subtotal", inv->subtotal, 0);
    bss_jtext_int_member(&b, "vat", inv->vat, 0);
    bss_jtext_int_member(&b, "total", inv->total, 0);
    bss_jtext_string_member(&b, "status", inv->status, 0);
    bss_jtext_string_member(&b, "issuedAt", inv->issued_at, 0);
    bss_jtext_raw(&b, "}", 1);
    return finish(&b);
}

int billing_charges_json(sqlite3 *db, const char *period, const char *svc_cont_no,
                         cJSON *array, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT " CHARGE_COLUMNS " FROM charge WHERE period = ?1"
                     " AND (?2 IS NULL OR svc_cont_no = ?2) ORDER BY svc_cont_no",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    bind_opt_text(st, 2, svc_cont_no);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        billing_charge c;
        charge_from_row(st, 0, &c);
        cJSON *o = billing_charge_to_json(&c, BILLING_JSON_API);
        if (o == NULL || !cJSON_AddItemToArray(array, o)) {
            cJSON_Delete(o);
            bss_sqlc_done(st);
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
    }
    if (step != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "ledger select charges", err);
    bss_sqlc_done(st);
    return BSS_OK;
}

void billing_strings_free(char **strings, size_t n)
{
    if (strings == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

static int customer_id_row(sqlite3_stmt *st, void *elem)
{
    const char *id = (const char *)sqlite3_column_text(st, 0);
    char **slot = elem;
    *slot = strdup(id != NULL ? id : "");
    return *slot != NULL ? BSS_OK : BSS_ERR_NOMEM;
}

static void free_string(void *elem) { free(*(char **)elem); }

int billing_period_customers(sqlite3 *db, const char *period, char ***ids, size_t *n,
                             char *err)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT DISTINCT customer_id FROM charge WHERE period = ?1"
                     " ORDER BY customer_id",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    return bss_sqlc_collect(db, st, sizeof **ids, customer_id_row, free_string, (void **)ids, n,
                           "ledger select customers", err);
}

/* Runs st (CHARGE_COLUMNS from column 0, bound) into a malloc'd array. */
static int charge_row(sqlite3_stmt *st, void *elem)
{
    charge_from_row(st, 0, elem);
    return BSS_OK;
}

static int collect_charges(sqlite3 *db, sqlite3_stmt *st, billing_charge **lines, size_t *n,
                           char *err)
{
    return bss_sqlc_collect(db, st, sizeof **lines, charge_row, NULL, (void **)lines, n,
                           "ledger select charges", err);
}

int billing_customer_charges(sqlite3 *db, const char *period, const char *customer_id,
                             billing_charge **lines, size_t *n, char *err)
{
    *lines = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT " CHARGE_COLUMNS " FROM charge WHERE period = ?1"
                     " AND customer_id = ?2 ORDER BY svc_cont_no",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, customer_id, -1, SQLITE_STATIC);
    return collect_charges(db, st, lines, n, err);
}

int billing_customer_email(sqlite3 *db, const char *period, const char *customer_id,
                           char *email, size_t len, char *err)
{
    email[0] = '\0';
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT ci.email FROM charge c JOIN charge_info ci"
                     " ON ci.svc_cont_no = c.svc_cont_no"
                     " WHERE c.period = ?1 AND c.customer_id = ?2 AND ci.email <> ''"
                     " ORDER BY ci.created_ms DESC, ci.svc_cont_no DESC LIMIT 1",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, customer_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        bss_sql_copy_text(st, 0, email, len);
    else if (step != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "ledger select email", err);
    bss_sqlc_done(st);
    return BSS_OK;
}

int billing_period_charges_by_customer(sqlite3 *db, const char *period,
                                       billing_customer_charges_fn fn, void *ctx, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT c.svc_cont_no, c.customer_id, c.product_cd, c.period,"
                     " c.product_tarif, c.per_mb_rate, c.usage_bytes, c.billable_mb,"
                     " c.included_mb, c.overage_mb, c.overage_fee, c.active_days,"
                     " c.days_in_period, c.base_fee, c.subtotal, c.vat, c.total,"
                     " c.calculated_ms, ci.email, ci.created_ms"
                     " FROM charge c LEFT JOIN charge_info ci ON ci.svc_cont_no = c.svc_cont_no"
                     " WHERE c.period = ?1 ORDER BY c.customer_id, c.svc_cont_no",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    billing_charge *lines = NULL;
    size_t n = 0, cap = 0;
    /* The address rule of billing_customer_email: the most recently opened
     * line (ties: the greatest svcContNo) among those with an email. */
    char email[BSS_CEV_EMAIL_MAX + 1] = "";
    char email_line[BSS_CEV_SVC_CONT_NO_MAX + 1] = "";
    int64_t email_created = 0;
    int step;
    while (rc == BSS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *customer = (const char *)sqlite3_column_text(st, 1);
        if (n > 0 && strcmp(lines[0].customer_id, customer != NULL ? customer : "") != 0) {
            rc = fn(ctx, lines[0].customer_id, lines, n, email, err);
            n = 0;
            email[0] = email_line[0] = '\0';
        }
        if (rc != BSS_OK)
            break;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            billing_charge *grown = realloc(lines, ncap * sizeof *grown);
            if (grown == NULL) {
                bss_seterr(err, "ledger scan charges: out of memory");
                rc = BSS_ERR_NOMEM;
                break;
            }
            lines = grown;
            cap = ncap;
        }
        billing_charge *c = &lines[n++];
        charge_from_row(st, 0, c);
        const char *line_email = (const char *)sqlite3_column_text(st, 18);
        int64_t created = sqlite3_column_int64(st, 19);
        if (line_email != NULL && line_email[0] != '\0' &&
            (email[0] == '\0' || created > email_created ||
             (created == email_created && strcmp(c->svc_cont_no, email_line) > 0))) {
            snprintf(email, sizeof email, "%s", line_email);
            snprintf(email_line, sizeof email_line, "%s", c->svc_cont_no);
            email_created = created;
        }
    }
    if (rc == BSS_OK && step != SQLITE_DONE)
        rc = bss_sqlc_fail(db, st, "ledger scan charges", err);
    bss_sqlc_done(st);
    if (rc == BSS_OK && n > 0)
        rc = fn(ctx, lines[0].customer_id, lines, n, email, err);
    free(lines);
    return rc;
}

/* ---- invoices --------------------------------------------------------- */

int billing_invoice_insert(sqlite3 *db, const billing_invoice *inv, int *inserted, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT OR IGNORE INTO invoice(invoice_id, customer_id, period, email,"
                     " subtotal, vat, total, status, issued_ms, issued_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, inv->invoice_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, inv->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, inv->period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, inv->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, inv->subtotal);
    sqlite3_bind_int64(st, 6, inv->vat);
    sqlite3_bind_int64(st, 7, inv->total);
    sqlite3_bind_text(st, 8, inv->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, inv->issued_ms);
    sqlite3_bind_text(st, 10, inv->issued_at, -1, SQLITE_STATIC);
    int added = 0;
    rc = bss_sqlc_step_done(db, st, "ledger insert invoice", &added, err);
    if (inserted != NULL)
        *inserted = added;
    if (rc != BSS_OK || !added)
        return rc;
    rc = prepare(db,
                 "INSERT INTO invoice_line(invoice_id, line_no, svc_cont_no, period)"
                 " VALUES(?1, ?2, ?3, ?4)",
                 &st, err);
    if (rc != BSS_OK)
        return rc;
    for (size_t i = 0; i < inv->nlines; i++) {
        sqlite3_bind_text(st, 1, inv->invoice_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i + 1);
        sqlite3_bind_text(st, 3, inv->lines[i].svc_cont_no, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, inv->lines[i].period, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return bss_sqlc_fail(db, st, "ledger insert invoice_line", err);
        sqlite3_reset(st);
    }
    bss_sqlc_done(st);
    return BSS_OK;
}

#define INVOICE_COLUMNS                                                                    \
    "invoice_id, customer_id, period, email, subtotal, vat, total, status, issued_ms,"     \
    " issued_at"

static void invoice_from_row(sqlite3_stmt *st, billing_invoice *inv)
{
    memset(inv, 0, sizeof *inv);
    bss_sql_copy_text(st, 0, inv->invoice_id, sizeof inv->invoice_id);
    bss_sql_copy_text(st, 1, inv->customer_id, sizeof inv->customer_id);
    bss_sql_copy_text(st, 2, inv->period, sizeof inv->period);
    bss_sql_copy_text(st, 3, inv->email, sizeof inv->email);
    inv->subtotal = sqlite3_column_int64(st, 4);
    inv->vat = sqlite3_column_int64(st, 5);
    inv->total = sqlite3_column_int64(st, 6);
    bss_sql_copy_text(st, 7, inv->status, sizeof inv->status);
    inv->issued_ms = sqlite3_column_int64(st, 8);
    bss_sql_copy_text(st, 9, inv->issued_at, sizeof inv->issued_at);
}

static int invoice_lines(sqlite3 *db, billing_invoice *inv, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT c.svc_cont_no, c.customer_id, c.product_cd, c.period,"
                     " c.product_tarif, c.per_mb_rate, c.usage_bytes, c.billable_mb,"
                     " c.included_mb, c.overage_mb, c.overage_fee, c.active_days,"
                     " c.days_in_period, c.base_fee, c.subtotal, c.vat, c.total,"
                     " c.calculated_ms FROM invoice_line l JOIN charge c"
                     " ON c.svc_cont_no = l.svc_cont_no AND c.period = l.period"
                     " WHERE l.invoice_id = ?1 ORDER BY l.line_no",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, inv->invoice_id, -1, SQLITE_STATIC);
    return collect_charges(db, st, &inv->lines, &inv->nlines, err);
}

int billing_invoice_get(sqlite3 *db, const char *invoice_id, billing_invoice *out, char *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT " INVOICE_COLUMNS " FROM invoice WHERE invoice_id = ?1", &st,
                     err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, invoice_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        bss_sqlc_done(st);
        return BSS_ERR_NOTFOUND;
    }
    if (step != SQLITE_ROW)
        return bss_sqlc_fail(db, st, "ledger select invoice", err);
    invoice_from_row(st, out);
    bss_sqlc_done(st);
    return invoice_lines(db, out, err);
}

void billing_invoice_clear(billing_invoice *inv)
{
    if (inv == NULL)
        return;
    free(inv->lines);
    inv->lines = NULL;
    inv->nlines = 0;
}

cJSON *billing_invoice_to_json(const billing_invoice *inv)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *lines = cJSON_CreateArray();
    if (o == NULL || lines == NULL ||
        cJSON_AddStringToObject(o, "invoiceId", inv->invoice_id) == NULL ||
        cJSON_AddStringToObject(o, "customerId", inv->customer_id) == NULL ||
        cJSON_AddStringToObject(o, "period", inv->period) == NULL ||
        !cJSON_AddItemToObject(o, "lines", lines)) {
        cJSON_Delete(lines);
        cJSON_Delete(o);
        return NULL;
    }
    int ok = 1; /* lines is o's from here on */
    for (size_t i = 0; ok && i < inv->nlines; i++) {
        cJSON *c = billing_charge_to_json(&inv->lines[i], BILLING_JSON_API);
        ok = c != NULL && cJSON_AddItemToArray(lines, c);
        if (!ok)
            cJSON_Delete(c);
    }
    ok = ok && add_int(o, "subtotal", inv->subtotal) && add_int(o, "vat", inv->vat) &&
         add_int(o, "total", inv->total) &&
         cJSON_AddStringToObject(o, "status", inv->status) != NULL &&
         cJSON_AddStringToObject(o, "issuedAt", inv->issued_at) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int billing_invoices_json(sqlite3 *db, const char *customer_id, const char *period,
                          cJSON *array, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT " INVOICE_COLUMNS " FROM invoice"
                     " WHERE (?1 IS NULL OR customer_id = ?1) AND (?2 IS NULL OR period = ?2)"
                     " ORDER BY period, customer_id",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    bind_opt_text(st, 1, customer_id);
    bind_opt_text(st, 2, period);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        billing_invoice inv;
        invoice_from_row(st, &inv);
        rc = invoice_lines(db, &inv, err);
        cJSON *o = rc == BSS_OK ? billing_invoice_to_json(&inv) : NULL;
        billing_invoice_clear(&inv);
        if (o == NULL || !cJSON_AddItemToArray(array, o)) {
            cJSON_Delete(o);
            bss_sqlc_done(st);
            if (rc == BSS_OK) {
                bss_seterr(err, "out of memory");
                rc = BSS_ERR_NOMEM;
            }
            return rc;
        }
    }
    if (step != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "ledger select invoices", err);
    bss_sqlc_done(st);
    return BSS_OK;
}

/* ---- periods ---------------------------------------------------------- */

static int count_where(sqlite3 *db, const char *sql, const char *period, int64_t *out,
                       char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        return bss_sqlc_fail(db, st, "ledger count", err);
    *out = sqlite3_column_int64(st, 0);
    bss_sqlc_done(st);
    return BSS_OK;
}

int billing_period_counts(sqlite3 *db, const char *period, int64_t *lines, int64_t *charges,
                          int64_t *invoices, char *err)
{
    int rc = count_where(db, "SELECT COUNT(*) FROM usage_moved WHERE period = ?1", period,
                         lines, err);
    if (rc == BSS_OK)
        rc = count_where(db, "SELECT COUNT(*) FROM charge WHERE period = ?1", period, charges,
                         err);
    if (rc == BSS_OK)
        rc = count_where(db, "SELECT COUNT(*) FROM invoice WHERE period = ?1", period,
                         invoices, err);
    return rc;
}

int billing_period_invoiced(sqlite3 *db, const char *period, int *invoiced, char *err)
{
    int64_t n = 0;
    int rc = count_where(db, "SELECT COUNT(*) FROM period_invoiced WHERE period = ?1", period,
                         &n, err);
    if (rc == BSS_OK)
        *invoiced = n > 0;
    return rc;
}

int billing_period_invoiced_insert(sqlite3 *db, const char *period, int64_t invoice_count,
                                   int64_t line_count, int64_t charge_count,
                                   int64_t close_line_count, int64_t close_total_bytes,
                                   const char *event_id, int64_t invoiced_ms, int *inserted,
                                   char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT OR IGNORE INTO period_invoiced(period, invoice_count, line_count,"
                     " charge_count, close_line_count, close_total_bytes, event_id,"
                     " invoiced_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, invoice_count);
    sqlite3_bind_int64(st, 3, line_count);
    sqlite3_bind_int64(st, 4, charge_count);
    sqlite3_bind_int64(st, 5, close_line_count);
    sqlite3_bind_int64(st, 6, close_total_bytes);
    sqlite3_bind_text(st, 7, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, invoiced_ms);
    return bss_sqlc_step_done(db, st, "ledger insert period_invoiced", inserted, err);
}
