/* rater.c - see rater.h. */
#include "rater.h"

#include "usage.h"

#include "bss_error.h"
#include "sqlutil.h"
#include "statushistory.h"

#include <string.h>

static const char RATER_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS rater_info("
    " svc_cont_no TEXT PRIMARY KEY,"
    " customer_id TEXT NOT NULL,"
    " apn_cd TEXT NOT NULL,"
    " product_cd TEXT NOT NULL,"
    " use_yn TEXT NOT NULL CHECK(use_yn IN ('Y', 'N')),"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " open_order_id TEXT NOT NULL);";

int rater_schema(sqlite3 *db, char *err)
{
    const char *const parts[] = {RATER_SCHEMA, BSS_STATUSHISTORY_SCHEMA};
    int rc = bss_sql_exec_all(db, parts, sizeof parts / sizeof parts[0], "rater schema", err);
    return rc == BSS_OK ? usage_schema(db, err) : rc;
}

int rater_info_insert(sqlite3 *db, const rater_info *info, int *inserted, char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO rater_info(svc_cont_no, customer_id, apn_cd,"
                           " product_cd, use_yn, created_ms, updated_ms, open_order_id)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &st, NULL) != SQLITE_OK)
        return bss_sql_fail(db, st, "rater_info prepare", err);
    sqlite3_bind_text(st, 1, info->svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, info->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, info->apn_cd, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, info->product_cd, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, info->use_yn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, info->created_ms);
    sqlite3_bind_int64(st, 7, info->updated_ms);
    sqlite3_bind_text(st, 8, info->open_order_id, -1, SQLITE_STATIC);
    return bss_sql_step_done(db, st, "rater_info insert", inserted, err);
}

int rater_info_get(sqlite3 *db, const char *svc_cont_no, rater_info *out, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_sql_row_by_key(db,
                                "SELECT svc_cont_no, customer_id, apn_cd, product_cd, use_yn,"
                                " created_ms, updated_ms, open_order_id"
                                " FROM rater_info WHERE svc_cont_no = ?1",
                                svc_cont_no, &st, "rater_info", err);
    if (rc != BSS_OK)
        return rc;
    memset(out, 0, sizeof *out);
    bss_sql_copy_text(st, 0, out->svc_cont_no, sizeof out->svc_cont_no);
    bss_sql_copy_text(st, 1, out->customer_id, sizeof out->customer_id);
    bss_sql_copy_text(st, 2, out->apn_cd, sizeof out->apn_cd);
    bss_sql_copy_text(st, 3, out->product_cd, sizeof out->product_cd);
    bss_sql_copy_text(st, 4, out->use_yn, sizeof out->use_yn);
    out->created_ms = sqlite3_column_int64(st, 5);
    out->updated_ms = sqlite3_column_int64(st, 6);
    bss_sql_copy_text(st, 7, out->open_order_id, sizeof out->open_order_id);
    sqlite3_finalize(st);
    return BSS_OK;
}

int rater_info_set_use(sqlite3 *db, const char *svc_cont_no, const char *use_yn,
                       int64_t at_ms, char *err)
{
    if (strcmp(use_yn, "Y") != 0 && strcmp(use_yn, "N") != 0) {
        bss_seterr(err, "useYn must be Y or N, not '%s'", use_yn);
        return BSS_ERR_INVALID;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "UPDATE rater_info SET use_yn = ?2, updated_ms = ?3"
                           " WHERE svc_cont_no = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return bss_sql_fail(db, st, "rater_info prepare", err);
    sqlite3_bind_text(st, 1, svc_cont_no, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, use_yn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at_ms);
    int changed = 0;
    int rc = bss_sql_step_done(db, st, "rater_info update", &changed, err);
    return rc != BSS_OK ? rc : changed ? BSS_OK : BSS_ERR_NOTFOUND;
}
