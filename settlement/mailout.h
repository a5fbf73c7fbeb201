/*
 * mailout.h - the "mail" channel of settlement's notification queue
 * (notify.h): delivers a queued report (report.h's payload {to, subject,
 * messageId, html}).
 *
 * The transport is the shared mail channel (mailchannel.h). With
 * BSS_SMTP_URL set, the report is sent over SMTP from BSS_MAIL_FROM
 * (default settlement@bssiot.local), with optional BSS_SMTP_USER /
 * BSS_SMTP_PASSWORD and BSS_SMTP_TIMEOUT_MS (default 10000, at most ten
 * minutes); its Message-ID lets the receiver drop a resend. Without it,
 * the mail is appended as one JSON line {to, subject, messageId, html} to
 * <data dir>/mail.log, the development mailbox. The log write is exactly
 * once per message: a line with the same messageId that is already
 * complete in the log makes a resend (after a crash between the write and
 * the queue's bookkeeping) a no-op, and a line cut short by a crash is
 * ended before the next one.
 *
 * A channel is used by the one notifier thread.
 */
#ifndef SETTLEMENT_MAILOUT_H
#define SETTLEMENT_MAILOUT_H

#include "config.h"
#include "mailchannel.h"

/* Settlement's channel is the shared mail channel with its defaults. */
typedef bss_mailchannel settlement_mailout;

/* Creates the channel from configuration (keys above) writing its log
 * under data_dir. Returns NULL with err filled when BSS_MAIL_FROM is not a
 * usable address, BSS_SMTP_TIMEOUT_MS is not an integer, the data dir's
 * path is too long, or memory runs out. */
settlement_mailout *settlement_mailout_new(const bss_config *config, const char *data_dir,
                                           char *err);

/* Frees the channel; NULL is fine. */
void settlement_mailout_free(settlement_mailout *m);

/* 1 when the channel sends over SMTP, 0 when it writes the mail log. */
int settlement_mailout_uses_smtp(const settlement_mailout *m);

/* A bss_notify_send_fn with ctx = the settlement_mailout. Returns BSS_OK
 * when sent (or already in the log), BSS_ERR_INVALID for a channel other
 * than "mail", a payload that is not a report or a refused recipient (never
 * retried), BSS_ERR_IO to retry later. */
int settlement_mailout_send(void *ctx, const char *channel, const char *dedup_key,
                            const char *target, const char *payload, char *err);

#endif
