/*
 * invoice_id.h - how an invoice is named: one per customer and period,
 * "INV-<YYYYMM>-<customerId>". Billing names the invoices it issues so; the
 * replay tool names the invoice billing a line's charge so, since an
 * InvoiceIssued lists no lines. One rule, kept here for both.
 */
#ifndef BSS_INVOICE_ID_H
#define BSS_INVOICE_ID_H

#include <stddef.h>

/* "INV-<period without the dash>-<customerId>" into out, for a period
 * "YYYY-MM". Returns BSS_OK, or BSS_ERR_INVALID (out "") when the period is
 * not 7 characters or the id does not fit in len. */
int bss_invoice_id(const char *period, const char *customer_id, char *out, size_t len);

#endif
