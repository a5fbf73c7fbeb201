/*
 * report.h - the settlement report mail: an HTML page of a completed
 * period's totals (invoices, lines, usage, billable MB, subtotal, VAT,
 * total) and its per-product table, sent to the business department.
 *
 * The page is self-contained (inline CSS, no images or scripts) because mail
 * clients drop style sheets. Amounts are integer KRW written with thousands
 * separators ("1,234,567 KRW", bss_format_grouped in html.h); every value
 * interpolated into the page is HTML-escaped. The report depends only on the settlement's stored totals
 * (no clock), so a resent report is byte for byte the first one.
 *
 * What the notification queue (notify.h) carries for the report is the
 * finished mail as one compact JSON object
 *   {"to", "subject", "messageId": "<settlement-YYYY-MM@bssiot>", "html"}
 * which the mail channel (mailout.h) sends over SMTP or writes as one line
 * of the development mail log.
 */
#ifndef SETTLEMENT_REPORT_H
#define SETTLEMENT_REPORT_H

#include "settlement.h"

#include <stddef.h>

/* The report's Message-ID for a period: "<settlement-YYYY-MM@bssiot>" into
 * out (outlen >= 40 is enough). */
void settlement_report_message_id(const char *period, char *out, size_t outlen);

/* Renders the HTML report of s into *html (malloc'd, NUL-terminated; the
 * caller frees). Returns BSS_OK or BSS_ERR_NOMEM. */
int settlement_report_html(const settlement_summary *s, char **html, char *err);

/* Builds the notification payload described above for s, addressed to
 * `to`, into *payload (malloc'd compact JSON; the caller frees). Returns
 * BSS_OK or BSS_ERR_NOMEM. */
int settlement_report_payload(const settlement_summary *s, const char *to, char **payload,
                              char *err);

#endif
