/* settlement.c - see settlement.h. */
#include "settlement.h"

#include "bss_error.h"
#include "sqlcache.h"
#include "sqlutil.h"
#include "isotime.h"
#include "jsonfield.h"
#include "notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SETTLEMENT_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS settlement_invoice("
    " invoice_id TEXT PRIMARY KEY,"
    " period TEXT NOT NULL,"
    " customer_id TEXT NOT NULL,"
    " line_count INTEGER NOT NULL,"
    " usage_bytes INTEGER NOT NULL,"
    " billable_mb INTEGER NOT NULL,"
    " subtotal INTEGER NOT NULL,"
    " vat INTEGER NOT NULL,"
    " total INTEGER NOT NULL,"
    " event_id TEXT NOT NULL,"
    " applied_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS settlement_invoice_by_period"
    " ON settlement_invoice(period);"
    "CREATE TABLE IF NOT EXISTS settlement_invoice_product("
    " invoice_id TEXT NOT NULL,"
    " product_cd TEXT NOT NULL,"
    " line_count INTEGER NOT NULL,"
    " usage_bytes INTEGER NOT NULL,"
    " amount INTEGER NOT NULL,"
    " PRIMARY KEY(invoice_id, product_cd));"
    "CREATE TABLE IF NOT EXISTS settlement_period("
    " period TEXT PRIMARY KEY,"
    " status TEXT NOT NULL CHECK(status IN ('OPEN', 'COMPLETED')),"
    " invoice_count INTEGER NOT NULL DEFAULT 0,"
    " line_count INTEGER NOT NULL DEFAULT 0,"
    " usage_bytes INTEGER NOT NULL DEFAULT 0,"
    " billable_mb INTEGER NOT NULL DEFAULT 0,"
    " subtotal INTEGER NOT NULL DEFAULT 0,"
    " vat INTEGER NOT NULL DEFAULT 0,"
    " total INTEGER NOT NULL DEFAULT 0,"
    " expected_invoices INTEGER,"
    " expected_lines INTEGER,"
    " expected_charges INTEGER,"
    " completed_ms INTEGER,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS settlement_product("
    " period TEXT NOT NULL,"
    " product_cd TEXT NOT NULL,"
    " line_count INTEGER NOT NULL,"
    " usage_bytes INTEGER NOT NULL,"
    " amount INTEGER NOT NULL,"
    " PRIMARY KEY(period, product_cd));";

int settlement_schema(sqlite3 *db, char *err)
{
    const char *const parts[] = {SETTLEMENT_SCHEMA};
    int rc = bss_sql_exec_all(db, parts, 1, "settlement schema", err);
    return rc == BSS_OK ? bss_notify_schema(db, err) : rc;
}

int settlement_period_ok(const char *text)
{
    bss_period p;
    char back[BSS_PERIOD_LEN + 1];
    if (text == NULL || strlen(text) != BSS_PERIOD_LEN || bss_period_parse(text, &p) != BSS_OK)
        return 0;
    bss_period_format(p, back, sizeof back);
    return strcmp(back, text) == 0;
}

int settlement_add_int64(cJSON *obj, const char *name, int64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, value);
    return cJSON_AddRawToObject(obj, name, text) != NULL;
}

/* ---- parsing InvoiceIssued ------------------------------------------ */

/* a += b, or 0 when that overflows int64 (a unchanged). */
static int add_checked(int64_t *a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(*a, b, &r))
        return 0;
    *a = r;
    return 1;
}

/* A non-negative int64 written as a decimal string ("123"; digits only), or
 * a JSON integer within bss_jfield_int64's range. */
static int read_count(const cJSON *obj, const char *name, const char *where, int64_t *out,
                      char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        int64_t acc = 0;
        if (n == 0 || n > 19)
            goto bad;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(acc, 10, &acc) ||
                __builtin_add_overflow(acc, s[i] - '0', &acc))
                goto bad;
        }
        *out = acc;
        return BSS_OK;
    bad:
        bss_seterr(err, "%s'%s' must be a non-negative 64-bit decimal string", where, name);
        return BSS_ERR_INVALID;
    }
    int64_t x = 0;
    if (bss_jfield_int64(obj, name, &x, err) != BSS_OK)
        return BSS_ERR_INVALID;
    if (x < 0) {
        bss_seterr(err, "%s'%s' must not be negative", where, name);
        return BSS_ERR_INVALID;
    }
    *out = x;
    return BSS_OK;
}

/* The product entry for code in inv (kept sorted), created when missing. */
static settlement_product_total *product_slot(settlement_invoice *inv, const char *code)
{
    size_t lo = 0, hi = inv->nproducts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(inv->products[mid].product_cd, code);
        if (c == 0)
            return &inv->products[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    settlement_product_total *grown =
        realloc(inv->products, (inv->nproducts + 1) * sizeof *inv->products);
    if (grown == NULL)
        return NULL;
    inv->products = grown;
    memmove(&grown[lo + 1], &grown[lo], (inv->nproducts - lo) * sizeof *grown);
    inv->nproducts++;
    memset(&grown[lo], 0, sizeof *grown);
    snprintf(grown[lo].product_cd, sizeof grown[lo].product_cd, "%s", code);
    return &grown[lo];
}

/* Adds one charge line to inv. */
static int add_line(settlement_invoice *inv, const cJSON *line, size_t index, char *err)
{
    char where[48];
    snprintf(where, sizeof where, "lines[%zu]: ", index);
    char no[SETTLEMENT_ID_MAX + 1], product[SETTLEMENT_PRODUCT_CD_MAX + 1];
    char period[BSS_PERIOD_LEN + 2];
    char why[BSS_ERRLEN] = "";
    int64_t usage = 0, billable = 0, total = 0;
    if (!cJSON_IsObject(line)) {
        bss_seterr(err, "%snot an object", where);
        return BSS_ERR_INVALID;
    }
    if (bss_jfield_string(line, "svcContNo", no, sizeof no, why) != BSS_OK ||
        bss_jfield_string(line, "productCd", product, sizeof product, why) != BSS_OK ||
        read_count(line, "usageBytes", "", &usage, why) != BSS_OK ||
        read_count(line, "billableMb", "", &billable, why) != BSS_OK ||
        bss_jfield_int64(line, "total", &total, why) != BSS_OK ||
        bss_jfield_string_opt(line, "period", period, sizeof period, why) != BSS_OK) {
        bss_seterr(err, "%s%s", where, why);
        return BSS_ERR_INVALID;
    }
    if (period[0] != '\0' && strcmp(period, inv->period) != 0) {
        bss_seterr(err, "%speriod '%s' differs from the invoice's '%s'", where, period,
                   inv->period);
        return BSS_ERR_INVALID;
    }
    settlement_product_total *p = product_slot(inv, product);
    if (p == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    if (!add_checked(&inv->usage_bytes, usage) || !add_checked(&inv->billable_mb, billable) ||
        !add_checked(&inv->lines_total, total) || !add_checked(&p->usage_bytes, usage) ||
        !add_checked(&p->amount, total)) {
        bss_seterr(err, "%sa sum overflows 64 bits", where);
        return BSS_ERR_INVALID;
    }
    inv->line_count++;
    p->line_count++;
    return BSS_OK;
}

/* Adds one byProduct entry ({productCd, lineCount, usageBytes, billableMb,
 * amount}) to inv. */
static int add_product(settlement_invoice *inv, const cJSON *entry, size_t index, char *err)
{
    char where[48];
    snprintf(where, sizeof where, "byProduct[%zu]: ", index);
    char product[SETTLEMENT_PRODUCT_CD_MAX + 1];
    char why[BSS_ERRLEN] = "";
    int64_t lines = 0, usage = 0, billable = 0, amount = 0;
    if (!cJSON_IsObject(entry)) {
        bss_seterr(err, "%snot an object", where);
        return BSS_ERR_INVALID;
    }
    if (bss_jfield_string(entry, "productCd", product, sizeof product, why) != BSS_OK ||
        read_count(entry, "lineCount", "", &lines, why) != BSS_OK ||
        read_count(entry, "usageBytes", "", &usage, why) != BSS_OK ||
        read_count(entry, "billableMb", "", &billable, why) != BSS_OK ||
        bss_jfield_int64(entry, "amount", &amount, why) != BSS_OK) {
        bss_seterr(err, "%s%s", where, why);
        return BSS_ERR_INVALID;
    }
    size_t before = inv->nproducts;
    settlement_product_total *p = product_slot(inv, product);
    if (p == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    if (inv->nproducts == before) {
        bss_seterr(err, "%sproduct '%s' twice", where, product);
        return BSS_ERR_INVALID;
    }
    if (!add_checked(&inv->line_count, lines) || !add_checked(&inv->usage_bytes, usage) ||
        !add_checked(&inv->billable_mb, billable) || !add_checked(&inv->lines_total, amount)) {
        bss_seterr(err, "%sa sum overflows 64 bits", where);
        return BSS_ERR_INVALID;
    }
    p->line_count = lines;
    p->usage_bytes = usage;
    p->amount = amount;
    return BSS_OK;
}

/* The summary form: byProduct, whose sums must be the invoice's lineCount,
 * usageBytes and billableMb. */
static int parse_summary(const cJSON *d, const cJSON *by_product, settlement_invoice *out,
                         char *err)
{
    if (!cJSON_IsArray(by_product)) {
        bss_seterr(err, "field 'byProduct' must be an array");
        return BSS_ERR_INVALID;
    }
    int64_t lines = 0, usage = 0, billable = 0;
    if (read_count(d, "lineCount", "", &lines, err) != BSS_OK ||
        read_count(d, "usageBytes", "", &usage, err) != BSS_OK ||
        read_count(d, "billableMb", "", &billable, err) != BSS_OK)
        return BSS_ERR_INVALID;
    size_t index = 0;
    const cJSON *entry = NULL;
    cJSON_ArrayForEach(entry, by_product)
    {
        int rc = add_product(out, entry, index++, err);
        if (rc != BSS_OK)
            return rc;
    }
    if (out->line_count != lines || out->usage_bytes != usage || out->billable_mb != billable) {
        bss_seterr(err, "byProduct does not add up to the invoice's lineCount, usageBytes and"
                        " billableMb");
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

int settlement_invoice_parse(const char *data_json, settlement_invoice *out, char *err)
{
    memset(out, 0, sizeof *out);
    cJSON *d = cJSON_Parse(data_json != NULL ? data_json : "");
    if (d == NULL) {
        bss_seterr(err, "InvoiceIssued data is not JSON");
        return BSS_ERR_INVALID;
    }
    int rc = BSS_OK;
    if (bss_jfield_string(d, "invoiceId", out->invoice_id, sizeof out->invoice_id, err) !=
            BSS_OK ||
        bss_jfield_string(d, "customerId", out->customer_id, sizeof out->customer_id, err) !=
            BSS_OK ||
        bss_jfield_string(d, "period", out->period, sizeof out->period, err) != BSS_OK ||
        bss_jfield_int64(d, "subtotal", &out->subtotal, err) != BSS_OK ||
        bss_jfield_int64(d, "vat", &out->vat, err) != BSS_OK ||
        bss_jfield_int64(d, "total", &out->total, err) != BSS_OK)
        rc = BSS_ERR_INVALID;
    if (rc == BSS_OK && !settlement_period_ok(out->period)) {
        bss_seterr(err, "field 'period' must be YYYY-MM, not '%s'", out->period);
        rc = BSS_ERR_INVALID;
    }
    const cJSON *by_product = cJSON_GetObjectItemCaseSensitive(d, "byProduct");
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(d, "lines");
    if (rc == BSS_OK && by_product != NULL) {
        rc = parse_summary(d, by_product, out, err);
    } else if (rc == BSS_OK && !cJSON_IsArray(lines)) {
        bss_seterr(err, "field 'byProduct' (or, in events from before it, 'lines') must be an"
                        " array");
        rc = BSS_ERR_INVALID;
    } else if (rc == BSS_OK) {
        size_t index = 0;
        const cJSON *line = NULL;
        cJSON_ArrayForEach(line, lines)
        {
            rc = add_line(out, line, index++, err);
            if (rc != BSS_OK)
                break;
        }
    }
    cJSON_Delete(d);
    if (rc != BSS_OK)
        settlement_invoice_free(out);
    return rc;
}

void settlement_invoice_free(settlement_invoice *inv)
{
    if (inv == NULL)
        return;
    free(inv->products);
    memset(inv, 0, sizeof *inv);
}

/* ---- writes ------------------------------------------------------------ */

/* The period's running totals (zero, status "" when it has none). */
typedef struct period_totals {
    char status[SETTLEMENT_STATUS_MAX + 1];
    int64_t invoice_count, line_count, usage_bytes, billable_mb, subtotal, vat, total;
} period_totals;

static int load_totals(sqlite3 *db, const char *period, period_totals *t, char *err)
{
    memset(t, 0, sizeof *t);
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT status, invoice_count, line_count, usage_bytes, billable_mb,"
                         " subtotal, vat, total FROM settlement_period WHERE period = ?1",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        snprintf(t->status, sizeof t->status, "%s", s != NULL ? s : "");
        t->invoice_count = sqlite3_column_int64(st, 1);
        t->line_count = sqlite3_column_int64(st, 2);
        t->usage_bytes = sqlite3_column_int64(st, 3);
        t->billable_mb = sqlite3_column_int64(st, 4);
        t->subtotal = sqlite3_column_int64(st, 5);
        t->vat = sqlite3_column_int64(st, 6);
        t->total = sqlite3_column_int64(st, 7);
    } else if (rc != SQLITE_DONE) {
        return bss_sqlc_fail(db, st, "settlement read period", err);
    }
    bss_sqlc_done(st);
    return BSS_OK;
}

/* The period's totals for one product, zero when it has none. */
static int load_product(sqlite3 *db, const char *period, const char *code,
                        settlement_product_total *p, char *err)
{
    memset(p, 0, sizeof *p);
    snprintf(p->product_cd, sizeof p->product_cd, "%s", code);
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT line_count, usage_bytes, amount FROM settlement_product"
                         " WHERE period = ?1 AND product_cd = ?2",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        p->line_count = sqlite3_column_int64(st, 0);
        p->usage_bytes = sqlite3_column_int64(st, 1);
        p->amount = sqlite3_column_int64(st, 2);
    } else if (rc != SQLITE_DONE) {
        return bss_sqlc_fail(db, st, "settlement read product", err);
    }
    bss_sqlc_done(st);
    return BSS_OK;
}

static int invoice_known(sqlite3 *db, const char *invoice_id, int *known, char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db, "SELECT 1 FROM settlement_invoice WHERE invoice_id = ?1", &st,
                         "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, invoice_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "settlement read invoice", err);
    *known = rc == SQLITE_ROW;
    bss_sqlc_done(st);
    return BSS_OK;
}

static int insert_invoice(sqlite3 *db, const settlement_invoice *inv, const char *event_id,
                          int64_t at_ms, char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT INTO settlement_invoice(invoice_id, period, customer_id,"
                         " line_count, usage_bytes, billable_mb, subtotal, vat, total,"
                         " event_id, applied_ms)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, inv->invoice_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, inv->period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, inv->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, inv->line_count);
    sqlite3_bind_int64(st, 5, inv->usage_bytes);
    sqlite3_bind_int64(st, 6, inv->billable_mb);
    sqlite3_bind_int64(st, 7, inv->subtotal);
    sqlite3_bind_int64(st, 8, inv->vat);
    sqlite3_bind_int64(st, 9, inv->total);
    sqlite3_bind_text(st, 10, event_id != NULL ? event_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, at_ms);
    int rc = bss_sqlc_step_done(db, st, "settlement insert invoice", NULL, err);
    for (size_t i = 0; rc == BSS_OK && i < inv->nproducts; i++) {
        const settlement_product_total *p = &inv->products[i];
        if (bss_sqlc_prepare(db,
                             "INSERT INTO settlement_invoice_product(invoice_id, product_cd,"
                             " line_count, usage_bytes, amount) VALUES(?1, ?2, ?3, ?4, ?5)",
                             &st, "settlement prepare", err) != BSS_OK)
            return BSS_ERR_IO;
        sqlite3_bind_text(st, 1, inv->invoice_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->product_cd, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, p->line_count);
        sqlite3_bind_int64(st, 4, p->usage_bytes);
        sqlite3_bind_int64(st, 5, p->amount);
        rc = bss_sqlc_step_done(db, st, "settlement insert invoice product", NULL, err);
    }
    return rc;
}

static int store_totals(sqlite3 *db, const char *period, const period_totals *t, int64_t at_ms,
                        char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT INTO settlement_period(period, status, invoice_count,"
                         " line_count, usage_bytes, billable_mb, subtotal, vat, total,"
                         " updated_ms) VALUES(?1, 'OPEN', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                         " ON CONFLICT(period) DO UPDATE SET"
                         " invoice_count = excluded.invoice_count,"
                         " line_count = excluded.line_count,"
                         " usage_bytes = excluded.usage_bytes,"
                         " billable_mb = excluded.billable_mb,"
                         " subtotal = excluded.subtotal, vat = excluded.vat,"
                         " total = excluded.total, updated_ms = excluded.updated_ms",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, t->invoice_count);
    sqlite3_bind_int64(st, 3, t->line_count);
    sqlite3_bind_int64(st, 4, t->usage_bytes);
    sqlite3_bind_int64(st, 5, t->billable_mb);
    sqlite3_bind_int64(st, 6, t->subtotal);
    sqlite3_bind_int64(st, 7, t->vat);
    sqlite3_bind_int64(st, 8, t->total);
    sqlite3_bind_int64(st, 9, at_ms);
    return bss_sqlc_step_done(db, st, "settlement store period totals", NULL, err);
}

static int store_product(sqlite3 *db, const char *period, const settlement_product_total *p,
                         char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT INTO settlement_product(period, product_cd, line_count,"
                         " usage_bytes, amount) VALUES(?1, ?2, ?3, ?4, ?5)"
                         " ON CONFLICT(period, product_cd) DO UPDATE SET"
                         " line_count = excluded.line_count,"
                         " usage_bytes = excluded.usage_bytes, amount = excluded.amount",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->product_cd, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, p->line_count);
    sqlite3_bind_int64(st, 4, p->usage_bytes);
    sqlite3_bind_int64(st, 5, p->amount);
    return bss_sqlc_step_done(db, st, "settlement store product totals", NULL, err);
}

int settlement_record_invoice(sqlite3 *db, const settlement_invoice *inv, const char *event_id,
                              int64_t at_ms, int *inserted, char *err)
{
    *inserted = 0;
    int known = 0;
    int rc = invoice_known(db, inv->invoice_id, &known, err);
    if (rc != BSS_OK || known)
        return rc;
    period_totals t;
    if ((rc = load_totals(db, inv->period, &t, err)) != BSS_OK)
        return rc;
    if (strcmp(t.status, "COMPLETED") == 0) {
        bss_seterr(err, "invoice %s arrived after period %s was settled", inv->invoice_id,
                   inv->period);
        return BSS_ERR_CONFLICT;
    }
    /* Every new total is computed (and checked) before anything is written,
     * so an overflow leaves the store as it was. */
    settlement_product_total *sums = calloc(inv->nproducts + 1, sizeof *sums);
    if (sums == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int ok = add_checked(&t.invoice_count, 1) && add_checked(&t.line_count, inv->line_count) &&
             add_checked(&t.usage_bytes, inv->usage_bytes) &&
             add_checked(&t.billable_mb, inv->billable_mb) &&
             add_checked(&t.subtotal, inv->subtotal) && add_checked(&t.vat, inv->vat) &&
             add_checked(&t.total, inv->total);
    for (size_t i = 0; ok && rc == BSS_OK && i < inv->nproducts; i++) {
        const settlement_product_total *p = &inv->products[i];
        rc = load_product(db, inv->period, p->product_cd, &sums[i], err);
        ok = rc != BSS_OK || (add_checked(&sums[i].line_count, p->line_count) &&
                              add_checked(&sums[i].usage_bytes, p->usage_bytes) &&
                              add_checked(&sums[i].amount, p->amount));
    }
    if (rc == BSS_OK && !ok) {
        bss_seterr(err, "invoice %s: period %s totals would overflow 64 bits", inv->invoice_id,
                   inv->period);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK)
        rc = insert_invoice(db, inv, event_id, at_ms, err);
    if (rc == BSS_OK)
        rc = store_totals(db, inv->period, &t, at_ms, err);
    for (size_t i = 0; rc == BSS_OK && i < inv->nproducts; i++)
        rc = store_product(db, inv->period, &sums[i], err);
    free(sums);
    if (rc == BSS_OK)
        *inserted = 1;
    return rc;
}

int settlement_record_expected(sqlite3 *db, const char *period, int64_t invoice_count,
                               int64_t line_count, int64_t charge_count, int64_t at_ms,
                               int *changed, char *err)
{
    *changed = 0;
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT INTO settlement_period(period, status, expected_invoices,"
                         " expected_lines, expected_charges, updated_ms)"
                         " VALUES(?1, 'OPEN', ?2, ?3, ?4, ?5)"
                         " ON CONFLICT(period) DO UPDATE SET"
                         " expected_invoices = excluded.expected_invoices,"
                         " expected_lines = excluded.expected_lines,"
                         " expected_charges = excluded.expected_charges,"
                         " updated_ms = excluded.updated_ms"
                         " WHERE status = 'OPEN' AND ("
                         " expected_invoices IS NOT excluded.expected_invoices OR"
                         " expected_lines IS NOT excluded.expected_lines OR"
                         " expected_charges IS NOT excluded.expected_charges)",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, invoice_count);
    sqlite3_bind_int64(st, 3, line_count);
    sqlite3_bind_int64(st, 4, charge_count);
    sqlite3_bind_int64(st, 5, at_ms);
    int rc = bss_sqlc_step_done(db, st, "settlement store expectation", NULL, err);
    if (rc == BSS_OK)
        *changed = sqlite3_changes(db) > 0;
    return rc;
}

int settlement_try_complete(sqlite3 *db, const char *period, int64_t at_ms, int *completed,
                            char *err)
{
    *completed = 0;
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "UPDATE settlement_period SET status = 'COMPLETED',"
                         " completed_ms = ?2, updated_ms = ?2"
                         " WHERE period = ?1 AND status = 'OPEN'"
                         " AND expected_invoices IS NOT NULL"
                         " AND expected_invoices = (SELECT count(*) FROM settlement_invoice"
                         "   WHERE period = ?1)", &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_ms);
    int rc = bss_sqlc_step_done(db, st, "settlement complete period", NULL, err);
    if (rc == BSS_OK)
        *completed = sqlite3_changes(db) > 0;
    return rc;
}

/* ---- reads ------------------------------------------------------------- */

static int load_products(sqlite3 *db, settlement_summary *s, char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT product_cd, line_count, usage_bytes, amount"
                         " FROM settlement_product WHERE period = ?1 ORDER BY product_cd",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, s->period, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->nproducts == cap) {
            size_t ncap = cap == 0 ? 8 : cap * 2;
            settlement_product_total *grown = realloc(s->products, ncap * sizeof *grown);
            if (grown == NULL) {
                bss_sqlc_done(st);
                bss_seterr(err, "out of memory");
                return BSS_ERR_NOMEM;
            }
            s->products = grown;
            cap = ncap;
        }
        settlement_product_total *p = &s->products[s->nproducts++];
        const char *code = (const char *)sqlite3_column_text(st, 0);
        snprintf(p->product_cd, sizeof p->product_cd, "%s", code != NULL ? code : "");
        p->line_count = sqlite3_column_int64(st, 1);
        p->usage_bytes = sqlite3_column_int64(st, 2);
        p->amount = sqlite3_column_int64(st, 3);
    }
    if (rc != SQLITE_DONE)
        return bss_sqlc_fail(db, st, "settlement read products", err);
    bss_sqlc_done(st);
    return BSS_OK;
}

int settlement_load(sqlite3 *db, const char *period, settlement_summary *out, char *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT period, status, invoice_count, line_count, usage_bytes,"
                         " billable_mb, subtotal, vat, total, expected_invoices,"
                         " expected_lines, completed_ms"
                         " FROM settlement_period WHERE period = ?1",
                         &st, "settlement prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        bss_sqlc_done(st);
        return BSS_ERR_NOTFOUND;
    }
    if (rc != SQLITE_ROW)
        return bss_sqlc_fail(db, st, "settlement read period", err);
    const char *p = (const char *)sqlite3_column_text(st, 0);
    const char *status = (const char *)sqlite3_column_text(st, 1);
    snprintf(out->period, sizeof out->period, "%s", p != NULL ? p : "");
    snprintf(out->status, sizeof out->status, "%s", status != NULL ? status : "");
    out->invoice_count = sqlite3_column_int64(st, 2);
    out->line_count = sqlite3_column_int64(st, 3);
    out->usage_bytes = sqlite3_column_int64(st, 4);
    out->billable_mb = sqlite3_column_int64(st, 5);
    out->subtotal = sqlite3_column_int64(st, 6);
    out->vat = sqlite3_column_int64(st, 7);
    out->total = sqlite3_column_int64(st, 8);
    out->has_expected = sqlite3_column_type(st, 9) != SQLITE_NULL;
    out->expected_invoices = sqlite3_column_int64(st, 9);
    out->expected_lines = sqlite3_column_int64(st, 10);
    out->completed_ms = sqlite3_column_int64(st, 11);
    bss_sqlc_done(st);
    rc = load_products(db, out, err);
    if (rc != BSS_OK)
        settlement_summary_free(out);
    return rc;
}

void settlement_summary_free(settlement_summary *s)
{
    if (s == NULL)
        return;
    free(s->products);
    memset(s, 0, sizeof *s);
}

cJSON *settlement_summary_json(const settlement_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_CreateArray();
    int ok = o != NULL && items != NULL &&
             cJSON_AddStringToObject(o, "period", s->period) != NULL &&
             cJSON_AddStringToObject(o, "status", s->status) != NULL &&
             settlement_add_int64(o, "lineCount", s->line_count) &&
             settlement_add_int64(o, "invoiceCount", s->invoice_count) &&
             settlement_add_int64(o, "totalUsageBytes", s->usage_bytes) &&
             settlement_add_int64(o, "totalBillableMb", s->billable_mb) &&
             settlement_add_int64(o, "totalSubtotal", s->subtotal) &&
             settlement_add_int64(o, "totalVat", s->vat) &&
             settlement_add_int64(o, "totalAmount", s->total);
    if (ok) {
        ok = cJSON_AddItemToObject(o, "byProduct", items);
        if (ok)
            items = NULL; /* owned by o now */
    }
    cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "byProduct");
    for (size_t i = 0; ok && i < s->nproducts; i++) {
        const settlement_product_total *p = &s->products[i];
        cJSON *item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddItemToArray(by, item)) {
            cJSON_Delete(item);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(item, "productCd", p->product_cd) != NULL &&
             settlement_add_int64(item, "lineCount", p->line_count) &&
             settlement_add_int64(item, "usageBytes", p->usage_bytes) &&
             settlement_add_int64(item, "amount", p->amount);
    }
    if (ok)
        ok = s->has_expected ? settlement_add_int64(o, "expectedInvoiceCount", s->expected_invoices)
                             : cJSON_AddNullToObject(o, "expectedInvoiceCount") != NULL;
    if (ok) {
        char at[BSS_TIME_LEN + 8];
        ok = s->completed_ms > 0 && bss_time_format(s->completed_ms, at, sizeof at) == BSS_OK
                 ? cJSON_AddStringToObject(o, "completedAt", at) != NULL
                 : cJSON_AddNullToObject(o, "completedAt") != NULL;
    }
    cJSON_Delete(items);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int settlement_list_json(sqlite3 *db, cJSON **out, char *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *items = o != NULL ? cJSON_AddArrayToObject(o, "items") : NULL;
    if (items == NULL) {
        cJSON_Delete(o);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT period, status, invoice_count, total FROM settlement_period"
                         " ORDER BY period DESC", &st, "settlement prepare", err) != BSS_OK) {
        cJSON_Delete(o);
        return BSS_ERR_IO;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *period = (const char *)sqlite3_column_text(st, 0);
        const char *status = (const char *)sqlite3_column_text(st, 1);
        cJSON *item = cJSON_CreateObject();
        if (item != NULL && !cJSON_AddItemToArray(items, item)) {
            cJSON_Delete(item);
            item = NULL;
        }
        /* From here the item, if any, belongs to the list. */
        if (item == NULL ||
            cJSON_AddStringToObject(item, "period", period != NULL ? period : "") == NULL ||
            cJSON_AddStringToObject(item, "status", status != NULL ? status : "") == NULL ||
            !settlement_add_int64(item, "invoiceCount", sqlite3_column_int64(st, 2)) ||
            !settlement_add_int64(item, "totalAmount", sqlite3_column_int64(st, 3))) {
            bss_sqlc_done(st);
            cJSON_Delete(o);
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
    }
    if (rc != SQLITE_DONE) {
        cJSON_Delete(o);
        return bss_sqlc_fail(db, st, "settlement list periods", err);
    }
    bss_sqlc_done(st);
    *out = o;
    return BSS_OK;
}
