/* mailout.c - see mailout.h. The transport is the shared mail channel
 * (mailchannel.h); this file checks that a queued payload is a report. */
#include "mailout.h"

#include "bss_error.h"
#include "mailchannel.h"

#include <cjson/cJSON.h>
#include <string.h>

settlement_mailout *settlement_mailout_new(const bss_config *config, const char *data_dir,
                                           char *err)
{
    static const bss_mailchannel_defaults defaults = {"settlement@bssiot.local", 600000};
    return bss_mailchannel_new(config, data_dir, &defaults, err);
}

void settlement_mailout_free(settlement_mailout *m)
{
    bss_mailchannel_free(m);
}

int settlement_mailout_uses_smtp(const settlement_mailout *m)
{
    return bss_mailchannel_uses_smtp(m);
}

int settlement_mailout_send(void *ctx, const char *channel, const char *dedup_key,
                            const char *target, const char *payload, char *err)
{
    (void)dedup_key;
    if (strcmp(channel, "mail") != 0) {
        bss_seterr(err, "no sender for channel %s", channel);
        return BSS_ERR_INVALID;
    }
    cJSON *mail = cJSON_Parse(payload);
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(mail, "to");
    const cJSON *subject = cJSON_GetObjectItemCaseSensitive(mail, "subject");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(mail, "messageId");
    const cJSON *html = cJSON_GetObjectItemCaseSensitive(mail, "html");
    if (!cJSON_IsString(to) || !cJSON_IsString(subject) || !cJSON_IsString(id) ||
        !cJSON_IsString(html) || strcmp(to->valuestring, target) != 0) {
        cJSON_Delete(mail);
        bss_seterr(err, "the queued mail is not a settlement report for %s", target);
        return BSS_ERR_INVALID;
    }
    int rc = bss_mailchannel_send(ctx, target, subject->valuestring, id->valuestring,
                                  html->valuestring, err);
    cJSON_Delete(mail);
    return rc;
}
