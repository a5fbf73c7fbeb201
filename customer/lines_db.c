/* lines_db.c - see lines_db.h. */
#include "lines_db.h"

#include "bss_error.h"
#include "evstore.h"
#include "jsontext.h"
#include "sqlutil.h"
#include "isotime.h"
#include "notify.h"
#include "period.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_COLUMNS                                                                      \
    "svc_cont_no, customer_id, product_cd, product_nm, product_tarif, apn_cd, email,"     \
    " phone, address, charge_account, status, opened_ms, status_changed_ms,"             \
    " terminated_ms, pending_order_id, version"

#define ORDER_COLUMNS                                                                     \
    "order_id, svc_cont_no, type, status, reason, effective_ms, created_ms, updated_ms"

int lines_db_schema(sqlite3 *db, char *err)
{
    static const char *const parts[] = {
        "CREATE TABLE IF NOT EXISTS lines("
        "  svc_cont_no TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
        "  product_cd TEXT NOT NULL, product_nm TEXT NOT NULL,"
        "  product_tarif INTEGER NOT NULL, apn_cd TEXT NOT NULL,"
        "  email TEXT NOT NULL, phone TEXT NOT NULL, address TEXT NOT NULL,"
        "  charge_account TEXT NOT NULL, status TEXT NOT NULL,"
        "  opened_ms INTEGER NOT NULL, status_changed_ms INTEGER NOT NULL,"
        "  terminated_ms INTEGER NOT NULL, pending_order_id TEXT NOT NULL,"
        "  version INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS lines_by_customer"
        "  ON lines(customer_id, svc_cont_no);"
        "CREATE TABLE IF NOT EXISTS orders("
        "  order_id TEXT PRIMARY KEY, svc_cont_no TEXT NOT NULL,"
        "  type TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,"
        "  effective_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS orders_by_line ON orders(svc_cont_no);"
        "CREATE TABLE IF NOT EXISTS counters("
        "  name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS closed_periods(period TEXT PRIMARY KEY);"};
    int rc = bss_sql_exec_all(db, parts, 1, "customer schema", err);
    return rc == BSS_OK ? bss_notify_schema(db, err) : rc;
}

/* Every statement here is a fixed text run on the store's connections, so
 * each is parsed once per connection (bss_store_prepare_cached) and ends
 * with sqlite3_reset, never sqlite3_finalize. */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err)
{
    return bss_store_prepare_cached(db, sql, st, err);
}

static int finish(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err)
{
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(db);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return BSS_OK;
    bss_seterr(err, "%s: %s", what, sqlite3_errstr(ext));
    return (ext & 0xff) == SQLITE_CONSTRAINT ? BSS_ERR_CONFLICT : BSS_ERR_IO;
}

/* Copies a text column into out (cap bytes), cut short like snprintf.
 * memcpy, not snprintf: a line's row has a dozen of them per read. */
static void copy_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(out, t, n);
    out[n] = '\0';
}

static void line_from_row(sqlite3_stmt *st, line *l)
{
    memset(l, 0, sizeof *l);
    copy_text(st, 0, l->svc_cont_no, sizeof l->svc_cont_no);
    copy_text(st, 1, l->customer_id, sizeof l->customer_id);
    copy_text(st, 2, l->product_cd, sizeof l->product_cd);
    copy_text(st, 3, l->product_nm, sizeof l->product_nm);
    l->product_tarif = sqlite3_column_int64(st, 4);
    copy_text(st, 5, l->apn_cd, sizeof l->apn_cd);
    copy_text(st, 6, l->email, sizeof l->email);
    copy_text(st, 7, l->phone, sizeof l->phone);
    copy_text(st, 8, l->address, sizeof l->address);
    copy_text(st, 9, l->charge_account, sizeof l->charge_account);
    const char *status = (const char *)sqlite3_column_text(st, 10);
    if (line_status_parse(status, &l->status) != 0)
        l->status = LINE_ACTIVE;
    l->opened_ms = sqlite3_column_int64(st, 11);
    l->status_changed_ms = sqlite3_column_int64(st, 12);
    l->terminated_ms = sqlite3_column_int64(st, 13);
    copy_text(st, 14, l->pending_order_id, sizeof l->pending_order_id);
    l->version = sqlite3_column_int64(st, 15);
}

int lines_db_load(sqlite3 *db, const char *svc_cont_no, line *out, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT " LINE_COLUMNS " FROM lines WHERE svc_cont_no = ?1", &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        line_from_row(st, out);
    else if (step == SQLITE_DONE)
        rc = BSS_ERR_NOTFOUND;
    else {
        bss_seterr(err, "load line: %s", sqlite3_errmsg(db));
        rc = BSS_ERR_IO;
    }
    sqlite3_reset(st);
    return rc;
}

static void bind_line(sqlite3_stmt *st, const line *l)
{
    sqlite3_bind_text(st, 1, l->svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, l->product_cd, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, l->product_nm, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, l->product_tarif);
    sqlite3_bind_text(st, 6, l->apn_cd, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, l->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, l->phone, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, l->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, l->charge_account, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, line_status_name(l->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, l->opened_ms);
    sqlite3_bind_int64(st, 13, l->status_changed_ms);
    sqlite3_bind_int64(st, 14, l->terminated_ms);
    sqlite3_bind_text(st, 15, l->pending_order_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 16, l->version);
}

int lines_db_insert(sqlite3 *db, const line *l, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT INTO lines(" LINE_COLUMNS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                     " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    bind_line(st, l);
    return finish(db, st, "insert line", err);
}

int lines_db_update(sqlite3 *db, const line *l, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "UPDATE lines SET status = ?11, status_changed_ms = ?13,"
                     " terminated_ms = ?14, pending_order_id = ?15, version = ?16"
                     " WHERE svc_cont_no = ?1 AND ?2 IS NOT NULL AND ?3 IS NOT NULL"
                     " AND ?4 IS NOT NULL AND ?5 IS NOT NULL AND ?6 IS NOT NULL"
                     " AND ?7 IS NOT NULL AND ?8 IS NOT NULL AND ?9 IS NOT NULL"
                     " AND ?10 IS NOT NULL AND ?12 IS NOT NULL",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    bind_line(st, l);
    return finish(db, st, "update line", err);
}

int lines_db_next_number(sqlite3 *db, char *out, size_t outlen, char *err)
{
    for (int attempt = 0; attempt < 1000; attempt++) {
        sqlite3_stmt *st = NULL;
        int rc = prepare(db,
                         "INSERT INTO counters(name, value) VALUES('svc_cont_no', 1)"
                         " ON CONFLICT(name) DO UPDATE SET value = value + 1"
                         " RETURNING value",
                         &st, err);
        if (rc != BSS_OK)
            return rc;
        int64_t n = 0;
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (n == 0) {
            bss_seterr(err, "cannot number a new line: %s", sqlite3_errmsg(db));
            return BSS_ERR_IO;
        }
        snprintf(out, outlen, "%lld", 7000000000LL + (long long)n);
        line existing;
        rc = lines_db_load(db, out, &existing, err);
        if (rc == BSS_ERR_NOTFOUND)
            return BSS_OK; /* not taken by a client-chosen number */
        if (rc != BSS_OK)
            return rc;
    }
    bss_seterr(err, "no free line number");
    return BSS_ERR;
}

static void bind_order(sqlite3_stmt *st, const order *o)
{
    sqlite3_bind_text(st, 1, o->order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, order_type_name(o->type), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, order_status_name(o->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, o->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, o->effective_ms);
    sqlite3_bind_int64(st, 7, o->created_ms);
    sqlite3_bind_int64(st, 8, o->updated_ms);
}

int lines_db_insert_order(sqlite3 *db, const order *o, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT INTO orders(" ORDER_COLUMNS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    bind_order(st, o);
    return finish(db, st, "insert order", err);
}

int lines_db_update_order(sqlite3 *db, const order *o, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "UPDATE orders SET status = ?2, reason = ?3, updated_ms = ?4"
                         " WHERE order_id = ?1",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, o->order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, order_status_name(o->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, o->updated_ms);
    return finish(db, st, "update order", err);
}

static void order_from_row(sqlite3_stmt *st, order *o)
{
    memset(o, 0, sizeof *o);
    copy_text(st, 0, o->order_id, sizeof o->order_id);
    copy_text(st, 1, o->svc_cont_no, sizeof o->svc_cont_no);
    if (order_type_parse((const char *)sqlite3_column_text(st, 2), &o->type) != 0)
        o->type = ORDER_OPEN;
    if (order_status_parse((const char *)sqlite3_column_text(st, 3), &o->status) != 0)
        o->status = ORDER_PENDING;
    copy_text(st, 4, o->reason, sizeof o->reason);
    o->effective_ms = sqlite3_column_int64(st, 5);
    o->created_ms = sqlite3_column_int64(st, 6);
    o->updated_ms = sqlite3_column_int64(st, 7);
}

int lines_db_load_order(sqlite3 *db, const char *svc_cont_no, const char *order_id, order *out,
                        char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT " ORDER_COLUMNS " FROM orders WHERE order_id = ?1"
                     " AND (?2 IS NULL OR svc_cont_no = ?2)",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
    if (svc_cont_no != NULL)
        sqlite3_bind_text(st, 2, svc_cont_no, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        order_from_row(st, out);
    else if (step == SQLITE_DONE)
        rc = BSS_ERR_NOTFOUND;
    else {
        bss_seterr(err, "load order: %s", sqlite3_errmsg(db));
        rc = BSS_ERR_IO;
    }
    sqlite3_reset(st);
    return rc;
}

static void add_time(cJSON *obj, const char *name, int64_t ms)
{
    char text[BSS_TIME_LEN + 8];
    if (ms > 0 && bss_time_format(ms, text, sizeof text) == BSS_OK)
        cJSON_AddStringToObject(obj, name, text);
    else
        cJSON_AddNullToObject(obj, name);
}

cJSON *lines_db_line_json(const line *l)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "customerId", l->customer_id);
    cJSON_AddStringToObject(o, "svcContNo", l->svc_cont_no);
    cJSON_AddStringToObject(o, "svcContStatus", line_status_name(l->status));
    cJSON_AddStringToObject(o, "productCd", l->product_cd);
    cJSON_AddStringToObject(o, "productNm", l->product_nm);
    cJSON_AddNumberToObject(o, "productTarif", (double)l->product_tarif);
    cJSON_AddStringToObject(o, "apnCd", l->apn_cd);
    cJSON_AddStringToObject(o, "email", l->email);
    cJSON_AddStringToObject(o, "phone", l->phone);
    cJSON_AddStringToObject(o, "address", l->address);
    cJSON_AddStringToObject(o, "chargeAccount", l->charge_account);
    add_time(o, "effectiveAt", l->opened_ms);
    add_time(o, "statusChangedAt", l->status_changed_ms);
    if (l->terminated_ms > 0)
        add_time(o, "terminatedAt", l->terminated_ms);
    return o;
}

/* ---- lines_db_line_render: the same bytes as printing lines_db_line_json */

static void time_member(bss_jtext *t, const char *name, int64_t ms)
{
    char text[BSS_TIME_LEN + 8];
    bss_jtext_name(t, name, 0);
    if (ms > 0 && bss_time_format(ms, text, sizeof text) == BSS_OK)
        bss_jtext_string(t, text);
    else
        bss_jtext_raw(t, "null", 4);
}

size_t lines_db_line_render(const line *l, char *out, size_t cap)
{
    /* cJSON prints a number that is a whole int with "%d" and anything
     * else with "%1.15g" or "%1.17g": only the first case is written here. */
    if (l->product_tarif < -2147483647LL || l->product_tarif > 2147483647LL)
        return 0;
    bss_jtext t;
    bss_jtext_fixed(&t, out, cap);
    bss_jtext_raw(&t, "{", 1);
    bss_jtext_string_member(&t, "customerId", l->customer_id, 1);
    bss_jtext_string_member(&t, "svcContNo", l->svc_cont_no, 0);
    bss_jtext_string_member(&t, "svcContStatus", line_status_name(l->status), 0);
    bss_jtext_string_member(&t, "productCd", l->product_cd, 0);
    bss_jtext_string_member(&t, "productNm", l->product_nm, 0);
    bss_jtext_int_member(&t, "productTarif", l->product_tarif, 0);
    bss_jtext_string_member(&t, "apnCd", l->apn_cd, 0);
    bss_jtext_string_member(&t, "email", l->email, 0);
    bss_jtext_string_member(&t, "phone", l->phone, 0);
    bss_jtext_string_member(&t, "address", l->address, 0);
    bss_jtext_string_member(&t, "chargeAccount", l->charge_account, 0);
    time_member(&t, "effectiveAt", l->opened_ms);
    time_member(&t, "statusChangedAt", l->status_changed_ms);
    if (l->terminated_ms > 0)
        time_member(&t, "terminatedAt", l->terminated_ms);
    bss_jtext_raw(&t, "}", 1);
    return t.failed ? 0 : t.len;
}

cJSON *lines_db_order_json(const order *ord)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "orderId", ord->order_id);
    cJSON_AddStringToObject(o, "svcContNo", ord->svc_cont_no);
    cJSON_AddStringToObject(o, "type", order_type_name(ord->type));
    cJSON_AddStringToObject(o, "status", order_status_name(ord->status));
    if (ord->reason[0])
        cJSON_AddStringToObject(o, "reason", ord->reason);
    add_time(o, "effectiveAt", ord->effective_ms);
    add_time(o, "createdAt", ord->created_ms);
    add_time(o, "updatedAt", ord->updated_ms);
    return o;
}

int lines_db_list_by_customer(sqlite3 *db, const char *customer_id, int64_t offset, int64_t limit,
                              cJSON **items, int64_t *total, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT COUNT(*) FROM lines WHERE customer_id = ?1", &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    *total = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    rc = prepare(db,
                 "SELECT " LINE_COLUMNS " FROM lines WHERE customer_id = ?1"
                 " ORDER BY svc_cont_no LIMIT ?2 OFFSET ?3",
                 &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    cJSON *array = cJSON_CreateArray();
    while (array != NULL && sqlite3_step(st) == SQLITE_ROW) {
        line l;
        line_from_row(st, &l);
        cJSON_AddItemToArray(array, lines_db_line_json(&l));
    }
    sqlite3_reset(st);
    if (array == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    *items = array;
    return BSS_OK;
}

int lines_db_list_orders(sqlite3 *db, const char *svc_cont_no, cJSON **items, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT " ORDER_COLUMNS " FROM orders WHERE svc_cont_no = ?1"
                     " ORDER BY created_ms, rowid",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    cJSON *array = cJSON_CreateArray();
    while (array != NULL && sqlite3_step(st) == SQLITE_ROW) {
        order o;
        order_from_row(st, &o);
        cJSON_AddItemToArray(array, lines_db_order_json(&o));
    }
    sqlite3_reset(st);
    if (array == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    *items = array;
    return BSS_OK;
}

int lines_db_close_period(sqlite3 *db, const char *period, int *closed_now, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "INSERT INTO closed_periods(period) VALUES(?1) ON CONFLICT DO NOTHING",
                     &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    rc = finish(db, st, "close period", err);
    if (rc == BSS_OK && closed_now != NULL)
        *closed_now = sqlite3_changes(db) > 0;
    return rc;
}

int lines_db_period_closed(sqlite3 *db, int64_t effective_ms, char *err)
{
    bss_period p;
    char text[BSS_PERIOD_LEN + 1];
    if (bss_period_of(effective_ms, &p) != BSS_OK)
        return 0;
    bss_period_format(p, text, sizeof text);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT 1 FROM closed_periods WHERE period = ?1", &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        bss_seterr(err, "read closed periods: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return step == SQLITE_ROW;
}
