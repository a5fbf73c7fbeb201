/*
 * lines_db.h - the customer service's tables: lines, orders and the counter
 * that numbers new lines. Every function takes the connection to use: the
 * store's write connection inside a transaction for writes, a reader for
 * queries (see bss_store_reader_acquire).
 */
#ifndef CUSTOMER_LINES_DB_H
#define CUSTOMER_LINES_DB_H

#include "line.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdint.h>

typedef struct order {
    char order_id[40];
    char svc_cont_no[LINE_SVC_CONT_NO_MAX + 1];
    order_type type;
    order_status status;
    char reason[40]; /* "" when none */
    int64_t effective_ms;
    int64_t created_ms;
    int64_t updated_ms;
} order;

/* Creates the tables if missing (and the notification queue's). */
int lines_db_schema(sqlite3 *db, char *err);

/* Loads a line. BSS_OK, BSS_ERR_NOTFOUND or BSS_ERR_IO. */
int lines_db_load(sqlite3 *db, const char *svc_cont_no, line *out, char *err);

/* Inserts a new line; BSS_ERR_CONFLICT when the svcContNo exists. */
int lines_db_insert(sqlite3 *db, const line *l, char *err);

/* Writes back a loaded line's mutable fields (status, times, pending
 * order, version). */
int lines_db_update(sqlite3 *db, const line *l, char *err);

/* Picks the next free generated svcContNo ("7000000001", ...). */
int lines_db_next_number(sqlite3 *db, char *out, size_t outlen, char *err);

/* Inserts an order / updates its status and reason. */
int lines_db_insert_order(sqlite3 *db, const order *o, char *err);
int lines_db_update_order(sqlite3 *db, const order *o, char *err);

/* Loads an order; BSS_ERR_NOTFOUND when unknown (or not on svc_cont_no when
 * svc_cont_no is not NULL). */
int lines_db_load_order(sqlite3 *db, const char *svc_cont_no, const char *order_id, order *out,
                        char *err);

/* The line / order as the API shows them (caller frees). NULL on no memory. */
cJSON *lines_db_line_json(const line *l);
cJSON *lines_db_order_json(const order *o);

/* The line as printing lines_db_line_json gives it (the same bytes,
 * unformatted), written straight into out without building the cJSON
 * tree: GET /customers/{svcContNo} answers with it. Returns the length
 * (out is NUL-terminated), or 0 when it does not fit in cap or the line
 * holds something this writer leaves to cJSON (a tarif beyond int); then
 * use lines_db_line_json. */
size_t lines_db_line_render(const line *l, char *out, size_t cap);

/* A page of a customer's lines, ordered by svcContNo: *items is a new array,
 * *total the number of lines the customer has. */
int lines_db_list_by_customer(sqlite3 *db, const char *customer_id, int64_t offset, int64_t limit,
                              cJSON **items, int64_t *total, char *err);

/* Records that AU close started for period "YYYY-MM": orders effective in
 * it are refused from now on. Idempotent: *closed_now (may be NULL) is 1
 * only on the call that closed it. */
int lines_db_close_period(sqlite3 *db, const char *period, int *closed_now, char *err);

/* 1 when the period containing effective_ms (billing time zone) is closed,
 * 0 when open, < 0 on a store error. */
int lines_db_period_closed(sqlite3 *db, int64_t effective_ms, char *err);

/* Every order of a line, oldest first, as a new array. */
int lines_db_list_orders(sqlite3 *db, const char *svc_cont_no, cJSON **items, char *err);

#endif
