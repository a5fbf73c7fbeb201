/*
 * rater.h - the rater aggregate: rater info per line and its store tables.
 *
 * Rater info is created when a line is opened and says which APN the line
 * may use and whether it is in use (useYn). Termination and restore orders
 * flip useYn through the saga (see handlers.h). The line's status history
 * lives beside it in line_status_history (shared/statushistory.h).
 *
 * Tables in rater.db (created by rater_schema, the event core's schema hook,
 * before any event is applied):
 *
 *   rater_info(svc_cont_no PRIMARY KEY, customer_id, apn_cd, product_cd,
 *              use_yn 'Y'|'N', created_ms, updated_ms, open_order_id)
 *   line_status_history(...)   see statushistory.h
 *
 * Room for usage rating (issue 4): rated usage records will go to
 * usage_record(svc_cont_no, usage_ms, apn_cd, bytes, file_id, ...) keyed by
 * their source record, the per line and month totals to
 * usage_period(svc_cont_no, period 'YYYYMM', bytes, closed) and processed
 * files to usage_file(file_id, ...). rater_info.apn_cd and the status history
 * are what a usage record is checked against.
 *
 * All functions take an sqlite3 connection: the store's write connection
 * inside the consumer's transaction for writes, a store snapshot
 * (bss_store_snapshot_begin) for reads.
 */
#ifndef RATER_H
#define RATER_H

#include "customer_events.h"

#include <sqlite3.h>
#include <stdint.h>

typedef struct rater_info {
    char svc_cont_no[BSS_CEV_SVC_CONT_NO_MAX + 1];
    char customer_id[BSS_CEV_ID_MAX + 1];
    char apn_cd[BSS_CEV_CODE_MAX + 1];
    char product_cd[BSS_CEV_CODE_MAX + 1];
    char use_yn[2];      /* "Y" or "N" */
    int64_t created_ms;  /* time of the OrderCreated(OPEN) event */
    int64_t updated_ms;  /* time of the last change */
    char open_order_id[BSS_CEV_ID_MAX + 1];
} rater_info;

/* Creates rater's domain tables (and line_status_history) on db, the
 * store's write connection inside its write transaction; idempotent. Suits
 * bss_eventcore_options.schema. Returns BSS_OK or BSS_ERR_IO (err filled). */
int rater_schema(sqlite3 *db, char *err);

/* Inserts info unless the line has rater info already. *inserted is 1 when
 * a row was added, 0 when one existed (left unchanged). Returns BSS_OK or
 * BSS_ERR_IO. */
int rater_info_insert(sqlite3 *db, const rater_info *info, int *inserted, char *err);

/* Reads the line's rater info into out. Returns BSS_OK, BSS_ERR_NOTFOUND
 * (no rater info for that line; err untouched) or BSS_ERR_IO. */
int rater_info_get(sqlite3 *db, const char *svc_cont_no, rater_info *out, char *err);

/* Sets use_yn ("Y" or "N") and updated_ms. Returns BSS_OK, BSS_ERR_NOTFOUND
 * when the line has no rater info, BSS_ERR_INVALID for another use_yn,
 * BSS_ERR_IO. */
int rater_info_set_use(sqlite3 *db, const char *svc_cont_no, const char *use_yn,
                       int64_t at_ms, char *err);

#endif
