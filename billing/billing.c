/* billing.c - see billing.h. */
#include "billing.h"

#include "bss_error.h"
#include "sqlcache.h"
#include "sqlutil.h"
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
    int rc = bss_sql_exec_all(db, parts, sizeof parts / sizeof parts[0], "billing schema", err);
    if (rc == BSS_OK)
        rc = billing_ledger_schema(db, err);
    return rc == BSS_OK ? bss_notify_schema(db, err) : rc;
}

int billing_charge_info_insert(sqlite3 *db, const billing_charge_info *info, int *inserted,
                               char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT OR IGNORE INTO charge_info(svc_cont_no, customer_id,"
                         " product_cd, product_nm, product_tarif, included_mb, per_mb_rate,"
                         " email, created_ms, open_order_id)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                         &st, "charge_info prepare", err) != BSS_OK)
        return BSS_ERR_IO;
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
    return bss_sqlc_step_done(db, st, "charge_info insert", inserted, err);
}

int billing_charge_info_get(sqlite3 *db, const char *svc_cont_no, billing_charge_info *out,
                            char *err)
{
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "SELECT svc_cont_no, customer_id, product_cd, product_nm,"
                         " product_tarif, included_mb, per_mb_rate, email, created_ms,"
                         " open_order_id FROM charge_info WHERE svc_cont_no = ?1",
                         &st, "charge_info prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        bss_sqlc_done(st);
        return BSS_ERR_NOTFOUND;
    }
    if (step != SQLITE_ROW)
        return bss_sqlc_fail(db, st, "charge_info select", err);
    memset(out, 0, sizeof *out);
    bss_sql_copy_text(st, 0, out->svc_cont_no, sizeof out->svc_cont_no);
    bss_sql_copy_text(st, 1, out->customer_id, sizeof out->customer_id);
    bss_sql_copy_text(st, 2, out->product_cd, sizeof out->product_cd);
    bss_sql_copy_text(st, 3, out->product_nm, sizeof out->product_nm);
    out->product_tarif = sqlite3_column_int64(st, 4);
    out->included_mb = sqlite3_column_int64(st, 5);
    out->per_mb_rate = sqlite3_column_int64(st, 6);
    bss_sql_copy_text(st, 7, out->email, sizeof out->email);
    out->created_ms = sqlite3_column_int64(st, 8);
    bss_sql_copy_text(st, 9, out->open_order_id, sizeof out->open_order_id);
    bss_sqlc_done(st);
    return BSS_OK;
}
