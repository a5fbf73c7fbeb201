/*
 * invoice_html.h - the printable invoice: one self-contained HTML page
 * (inline CSS, no scripts, no external resources, A4 print layout) served
 * by GET /billings/invoices/{invoiceId} for text/html and sent as the body
 * of the invoice mail.
 *
 * The page shows the invoice id, customer id, period, issue time, status,
 * the address it is mailed to, one table row per line charge with every
 * charge field, and the invoice's subtotal, VAT and total. Amounts are
 * written "₩3,300" (thousands separators, no decimals: KRW has none;
 * bss_format_krw in html.h). Every interpolated string is HTML-escaped.
 */
#ifndef BILLING_INVOICE_HTML_H
#define BILLING_INVOICE_HTML_H

#include "ledger.h"

#include <stddef.h>

/* Renders inv. *html is malloc'd (caller frees), NUL-terminated, *len
 * bytes (len may be NULL). Returns BSS_OK or BSS_ERR_NOMEM (*html NULL). */
int billing_invoice_html(const billing_invoice *inv, char **html, size_t *len);

#endif
