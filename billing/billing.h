/*
 * billing.h - the billing aggregate: charge info per line and its store
 * tables.
 *
 * Charge info is created when a line is opened: the product's monthly fee
 * (productTarif, as the order carried it) and, from billing's product
 * catalog, the data included per month and the rate per MB beyond it. With
 * the line's status history (line_status_history, shared/statushistory.h)
 * it is everything a month's charge is computed from. Money is integer KRW.
 *
 * Tables in billing.db (created by billing_schema, the event core's schema
 * hook, before any event is applied):
 *
 *   charge_info(svc_cont_no PRIMARY KEY, customer_id, product_cd,
 *               product_nm, product_tarif, included_mb (-1 = unlimited),
 *               per_mb_rate, email, created_ms, open_order_id)
 *   line_status_history(...)   see statushistory.h
 *   au_close, usage_moved, charge, invoice, invoice_line, period_invoiced
 *                              the month end, see ledger.h
 *   notifications(...)         the invoice mail queue, see notify.h
 */
#ifndef BILLING_H
#define BILLING_H

#include "customer_events.h"

#include <sqlite3.h>
#include <stdint.h>

typedef struct billing_charge_info {
    char svc_cont_no[BSS_CEV_SVC_CONT_NO_MAX + 1];
    char customer_id[BSS_CEV_ID_MAX + 1];
    char product_cd[BSS_CEV_CODE_MAX + 1];
    char product_nm[BSS_CEV_NAME_MAX + 1];
    int64_t product_tarif; /* monthly fee, KRW */
    int64_t included_mb;   /* -1 when unlimited */
    int64_t per_mb_rate;   /* KRW per MB over included_mb */
    char email[BSS_CEV_EMAIL_MAX + 1];
    int64_t created_ms;    /* time of the OrderCreated(OPEN) event */
    char open_order_id[BSS_CEV_ID_MAX + 1];
} billing_charge_info;

/* Creates billing's domain tables (charge info, line_status_history, the
 * ledger's tables and the notification queue) on db, the
 * store's write connection inside its write transaction; idempotent. Suits
 * bss_eventcore_options.schema. Returns BSS_OK or BSS_ERR_IO (err filled). */
int billing_schema(sqlite3 *db, char *err);

/* Inserts info unless the line has charge info already. *inserted is 1 when
 * a row was added, 0 when one existed (left unchanged). Returns BSS_OK or
 * BSS_ERR_IO. */
int billing_charge_info_insert(sqlite3 *db, const billing_charge_info *info, int *inserted,
                               char *err);

/* Reads the line's charge info into out. Returns BSS_OK, BSS_ERR_NOTFOUND
 * (err untouched) or BSS_ERR_IO. */
int billing_charge_info_get(sqlite3 *db, const char *svc_cont_no, billing_charge_info *out,
                            char *err);

#endif
