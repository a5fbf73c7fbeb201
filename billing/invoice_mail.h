/*
 * invoice_mail.h - the "mail" channel of billing's notification queue
 * (notify.h): sends an issued invoice to the customer.
 *
 * A queued invoice mail carries only {invoiceId, period}; the sender loads
 * the invoice from the store at send time (invoices are final, so this is
 * exactly what was issued) and renders the printable HTML invoice
 * (invoice_html.h) as the body. Subject "Invoice <invoiceId> for
 * <period>", Message-ID "<<invoiceId>@bssiot>": a resend after a crash
 * between the server's acceptance and the queue's record carries the same
 * Message-ID, so the receiving side can drop the copy.
 *
 * The transport is the shared mail channel (mailchannel.h): SMTP when
 * BSS_SMTP_URL is set, else one JSON line {to, subject, messageId, html}
 * in <data dir>/mail.log, written once per Message-ID. Its settings are
 * read as mailchannel.h describes, with BSS_MAIL_FROM defaulting to
 * billing@bssiot.local and BSS_SMTP_TIMEOUT_MS limited to under an hour.
 *
 * A channel is used by one thread at a time (the notifier's); curl_global_init
 * must have been called in main.
 */
#ifndef BILLING_INVOICE_MAIL_H
#define BILLING_INVOICE_MAIL_H

#include "config.h"
#include "evstore.h"

typedef struct invoice_mail invoice_mail;

/* Creates the channel reading invoices from store (not owned; must outlive
 * the channel). Returns NULL with err filled for a bad setting (timeout not
 * an integer, unusable BSS_MAIL_FROM, see bss_mailchannel_new) or no
 * memory. */
invoice_mail *invoice_mail_new(const bss_config *config, const char *data_dir, bss_store *store,
                               char *err);

/* NULL is fine. */
void invoice_mail_free(invoice_mail *m);

/* A bss_notify_send_fn (notify.h) with ctx = the invoice_mail. Returns
 * BSS_OK when sent (or logged), BSS_ERR_INVALID when it never will be (not
 * the mail channel, bad payload, unknown invoice, refused recipient),
 * another error to retry later. */
int invoice_mail_send(void *ctx, const char *channel, const char *dedup_key, const char *target,
                      const char *payload, char *err);

#endif
