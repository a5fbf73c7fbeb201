/* mailchannel.c - see mailchannel.h. */
#include "mailchannel.h"

#include "bss_error.h"
#include "jsonlog.h"
#include "mail.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

struct bss_mailchannel {
    bss_mailer *smtp; /* NULL: write the log */
    char log_path[1024];
    bss_jsonlog_once *log;
};

bss_mailchannel *bss_mailchannel_new(const bss_config *config, const char *data_dir,
                                     const bss_mailchannel_defaults *defaults, char *err)
{
    bss_mailchannel *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    int n = snprintf(ch->log_path, sizeof ch->log_path, "%s/mail.log", data_dir);
    if (n < 0 || (size_t)n >= sizeof ch->log_path) {
        bss_seterr(err, "data dir path too long for mail.log");
        free(ch);
        return NULL;
    }
    const char *url = bss_config_get(config, "BSS_SMTP_URL", "");
    const char *from = bss_config_get(config, "BSS_MAIL_FROM", defaults->from);
    long long timeout = 10000;
    if (bss_config_get_int(config, "BSS_SMTP_TIMEOUT_MS", 10000, &timeout, err) != BSS_OK) {
        free(ch);
        return NULL;
    }
    if (!bss_mail_address_ok(from)) {
        bss_seterr(err, "BSS_MAIL_FROM '%s' is not a usable address", from);
        free(ch);
        return NULL;
    }
    if (url[0] == '\0')
        return ch;
    const char *user = bss_config_get(config, "BSS_SMTP_USER", "");
    bss_mail_options o = {
        .url = url,
        .from = from,
        .username = user[0] != '\0' ? user : NULL,
        .password = user[0] != '\0' ? bss_config_get(config, "BSS_SMTP_PASSWORD", "") : NULL,
        .timeout_ms = timeout > 0 && timeout < defaults->max_timeout_ms ? (int)timeout : 10000};
    if ((ch->smtp = bss_mailer_new(&o)) == NULL) {
        bss_seterr(err, "cannot create the SMTP mailer for %s", url);
        free(ch);
        return NULL;
    }
    return ch;
}

void bss_mailchannel_free(bss_mailchannel *ch)
{
    if (ch == NULL)
        return;
    bss_mailer_free(ch->smtp);
    bss_jsonlog_once_free(ch->log);
    free(ch);
}

int bss_mailchannel_uses_smtp(const bss_mailchannel *ch) { return ch->smtp != NULL; }

int bss_mailchannel_send(bss_mailchannel *ch, const char *to, const char *subject,
                         const char *message_id, const char *html, char *err)
{
    if (ch->smtp != NULL)
        return bss_mail_send(ch->smtp, to, subject, html, message_id, err);
    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o != NULL && cJSON_AddStringToObject(o, "to", to) != NULL &&
        cJSON_AddStringToObject(o, "subject", subject) != NULL &&
        cJSON_AddStringToObject(o, "messageId", message_id) != NULL &&
        cJSON_AddStringToObject(o, "html", html) != NULL)
        line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (line == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    if (ch->log == NULL && (ch->log = bss_jsonlog_once_new(ch->log_path, "messageId")) == NULL) {
        free(line);
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    int rc = bss_jsonlog_once_append(ch->log, line, message_id, err);
    free(line);
    return rc;
}
