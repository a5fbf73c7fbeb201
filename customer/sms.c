/* sms.c - see sms.h. */
#include "sms.h"

#include "bss_error.h"
#include "jsonlog.h"
#include "outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sms_channel {
    char url[512];
    char log_path[1024];
    bss_outbound *http;
};

sms_channel *sms_channel_new(const bss_config *config, const char *data_dir, char *err)
{
    sms_channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    snprintf(ch->url, sizeof ch->url, "%s", bss_config_get(config, "BSS_SMS_URL", ""));
    snprintf(ch->log_path, sizeof ch->log_path, "%s/sms.log", data_dir);
    long long timeout = 5000;
    if (bss_config_get_int(config, "BSS_SMS_TIMEOUT_MS", 5000, &timeout, err) != BSS_OK) {
        free(ch);
        return NULL;
    }
    if (ch->url[0] != '\0' && (ch->http = bss_outbound_new((int)timeout)) == NULL) {
        free(ch);
        bss_seterr(err, "cannot create the SMS HTTP client");
        return NULL;
    }
    return ch;
}

void sms_channel_free(sms_channel *ch)
{
    if (ch == NULL)
        return;
    bss_outbound_free(ch->http);
    free(ch);
}

int sms_channel_send(void *ctx, const char *channel, const char *dedup_key, const char *target,
                     const char *payload, char *err)
{
    sms_channel *ch = ctx;
    (void)target;
    if (strcmp(channel, "sms") != 0) {
        bss_seterr(err, "no sender for channel %s", channel);
        return BSS_ERR_INVALID;
    }
    if (ch->http != NULL)
        return bss_outbound_post_json(ch->http, ch->url, dedup_key, payload, err);
    return bss_jsonlog_append(ch->log_path, payload, err);
}
