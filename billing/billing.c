/* billing.c - see billing.h. */
#include "billing.h"

#include "bss_error.h"
#include "ledger.h"
#include "notify.h"
#include "statushistory.h"

#include <string.h>

static const char BILLING_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS charge_info("
    " svc_cont_no TEXT PRIMARY KEY,"
    " customer_id TEXT NOT NULL,"
    " product_cd TEXT NOT NULL,"
    " product_nm TEXT NOT NULL,"
    " product_tarif INTEGER NOT NULL CHECK(product_tarif >= 0),"
    " included_mb INTEGER NOT NULL CHECK(included_mb >= -1),"
    " per_mb_rate INTEGER NOT NULL CHECK(per_mb_rate >= 0),"
    " email TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " open_order_id TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS charge_info_customer ON charge_info(customer_id);";

int billing_schema(sqlite3 *db, char *err)
{
    const char *const parts[] = {BILLING_SCHEMA, BSS_STATUSHISTORY_SCHEMA};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char *msg = NULL;
        if (sqlite3_exec(db, parts[i], NULL, NULL, &msg) != SQLITE_OK) {
            bss_seterr(err, "billing schema: %s", msg != NULL ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return BSS_ERR_IO;
        }
    }
    int rc = billing_ledger_schema(db, err);
    return rc == BSS_OK ? bss_notify_schema(db, err) : rc;
}

static int sql_fail(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err)
{
    bss_seterr(err, "charge_info %s: %s", what, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return BSS_ERR_IO;
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t len)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    strncpy(out, s != NULL ? s : "", len - 1);
    out[len - 1] = '\0';
}

int billing_charge_info_insert(sqlite3 *db, const billing_charge_info *info, int *inserted,
                               char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO charge_info(svc_cont_no, customer_id,"
                           " product_cd, product_nm, product_tarif, included_mb, per_mb_rate,"
                           " email, created_ms, open_order_id)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, st, "prepare", err);
    sqlite3_bind_text(st, 1, info->svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, info->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, info->product_cd, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, info->product_nm, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, info->product_tarif);
    sqlite3_bind_int64(st, 6, info->included_mb);
    sqlite3_bind_int64(st, 7, info->per_mb_rate);
    sqlite3_bind_text(st, 8, info->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, info->created_ms);
    sqlite3_bind_text(st, 10, info->open_order_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sql_fail(db, st, "insert", err);
    if (inserted != NULL)
        *inserted = sqlite3_changes(db) > 0;
    sqlite3_finalize(st);
    return BSS_OK;
}

int billing_charge_info_get(sqlite3 *db, const char *svc_cont_no, billing_charge_info *out,
                            char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT svc_cont_no, customer_id, product_cd, product_nm,"
                           " product_tarif, included_mb, per_mb_rate, email, created_ms,"
                           " open_order_id FROM charge_info WHERE svc_cont_no = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, st, "prepare", err);
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return BSS_ERR_NOTFOUND;
    }
    if (rc != SQLITE_ROW)
        return sql_fail(db, st, "select", err);
    memset(out, 0, sizeof *out);
    copy_col(st, 0, out->svc_cont_no, sizeof out->svc_cont_no);
    copy_col(st, 1, out->customer_id, sizeof out->customer_id);
    copy_col(st, 2, out->product_cd, sizeof out->product_cd);
    copy_col(st, 3, out->product_nm, sizeof out->product_nm);
    out->product_tarif = sqlite3_column_int64(st, 4);
    out->included_mb = sqlite3_column_int64(st, 5);
    out->per_mb_rate = sqlite3_column_int64(st, 6);
    copy_col(st, 7, out->email, sizeof out->email);
    out->created_ms = sqlite3_column_int64(st, 8);
    copy_col(st, 9, out->open_order_id, sizeof out->open_order_id);
    sqlite3_finalize(st);
    return BSS_OK;
}
