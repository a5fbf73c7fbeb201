/*
 * sms.h - the SMS channel of the notification queue (notify.h).
 *
 * With BSS_SMS_URL set, each SMS is POSTed as JSON {to, text, orderId,
 * status} to that HTTP SMS gateway, with the notification's dedup key as
 * Idempotency-Key. Without it, each SMS is appended as one JSON line to
 * <data dir>/sms.log (jsonlog.h), which is what a development system
 * reads.
 */
#ifndef CUSTOMER_SMS_H
#define CUSTOMER_SMS_H

#include "config.h"

typedef struct sms_channel sms_channel;

/* Creates the channel from configuration. NULL with err on failure. */
sms_channel *sms_channel_new(const bss_config *config, const char *data_dir, char *err);

void sms_channel_free(sms_channel *ch);

/* A bss_notify_send_fn (notify.h) with ctx = the sms_channel. */
int sms_channel_send(void *ctx, const char *channel, const char *dedup_key, const char *target,
                     const char *payload, char *err);

#endif
