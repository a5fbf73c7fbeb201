/*
 * mailchannel.h - the transport of a service's "mail" notification channel
 * (notify.h): one finished HTML mail goes out over SMTP when a server is
 * configured, or else into the development mailbox, one JSON line
 * {to, subject, messageId, html} in <data dir>/mail.log.
 *
 * What a mail says is the service's business (billing renders an invoice,
 * settlement its report); the channel only carries it. Both ways are safe
 * to repeat: over SMTP the Message-ID lets the receiver drop a resend, and
 * the mail log is written exactly once per Message-ID (jsonlog.h: a resend
 * after a crash between the write and the queue's bookkeeping is a no-op,
 * a line cut short by a crash is ended before the next one).
 *
 * Configuration (bss_config keys):
 *   BSS_SMTP_URL         smtp://host:port or smtps://...; unset or empty:
 *                        the mail log
 *   BSS_MAIL_FROM        sender address (the service's default); must be a
 *                        usable address even when writing the log
 *   BSS_SMTP_USER, BSS_SMTP_PASSWORD   optional credentials
 *   BSS_SMTP_TIMEOUT_MS  per-mail timeout (10000); must be an integer; a
 *                        value <= 0 or >= the service's maximum means 10000
 *
 * A channel is used by one thread at a time (the notifier's);
 * curl_global_init must have been called in main.
 */
#ifndef BSS_MAILCHANNEL_H
#define BSS_MAILCHANNEL_H

#include "config.h"

typedef struct bss_mailchannel bss_mailchannel;

/* What differs between the services using a channel. */
typedef struct bss_mailchannel_defaults {
    const char *from;       /* BSS_MAIL_FROM when unset ("billing@bssiot.local") */
    int max_timeout_ms;     /* BSS_SMTP_TIMEOUT_MS at or above this means 10000 */
} bss_mailchannel_defaults;

/* Creates the channel from config, writing its log under data_dir. Returns
 * NULL with err filled when BSS_MAIL_FROM is not a usable address,
 * BSS_SMTP_TIMEOUT_MS is not an integer, the log's path is too long, the
 * SMTP mailer cannot be made, or memory runs out. */
bss_mailchannel *bss_mailchannel_new(const bss_config *config, const char *data_dir,
                                     const bss_mailchannel_defaults *defaults, char *err);

/* Frees the channel; NULL is fine. */
void bss_mailchannel_free(bss_mailchannel *ch);

/* 1 when the channel sends over SMTP, 0 when it writes the mail log. */
int bss_mailchannel_uses_smtp(const bss_mailchannel *ch);

/* Sends (or logs) one HTML mail with the given Message-ID. Returns BSS_OK
 * when the server accepted it or it is in the log (also when it was
 * already), BSS_ERR_INVALID when it never will be accepted (a refused
 * recipient, a header that would break the message), BSS_ERR_IO to retry
 * later. */
int bss_mailchannel_send(bss_mailchannel *ch, const char *to, const char *subject,
                         const char *message_id, const char *html, char *err);

#endif
