/* mailout.c - see mailout.h. */
#include "mailout.h"

#include "bss_error.h"
#include "mail.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct settlement_mailout {
    bss_mailer *smtp; /* NULL: write the log */
    char log_path[1024];
};

settlement_mailout *settlement_mailout_new(const bss_config *config, const char *data_dir,
                                           char *err)
{
    settlement_mailout *m = calloc(1, sizeof *m);
    if (m == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    snprintf(m->log_path, sizeof m->log_path, "%s/mail.log", data_dir);
    const char *url = bss_config_get(config, "BSS_SMTP_URL", "");
    const char *from = bss_config_get(config, "BSS_MAIL_FROM", "settlement@bssiot.local");
    long long timeout = 10000;
    if (bss_config_get_int(config, "BSS_SMTP_TIMEOUT_MS", 10000, &timeout, err) != BSS_OK) {
        free(m);
        return NULL;
    }
    if (!bss_mail_address_ok(from)) {
        bss_seterr(err, "BSS_MAIL_FROM '%s' is not a usable address", from);
        free(m);
        return NULL;
    }
    if (url[0] != '\0') {
        const char *user = bss_config_get(config, "BSS_SMTP_USER", "");
        bss_mail_options o = {.url = url,
                              .from = from,
                              .username = user[0] != '\0' ? user : NULL,
                              .password = bss_config_get(config, "BSS_SMTP_PASSWORD", NULL),
                              .timeout_ms = timeout > 0 && timeout < 600000 ? (int)timeout : 0};
        m->smtp = bss_mailer_new(&o);
        if (m->smtp == NULL) {
            bss_seterr(err, "cannot create the SMTP mailer for %s", url);
            free(m);
            return NULL;
        }
    }
    return m;
}

void settlement_mailout_free(settlement_mailout *m)
{
    if (m == NULL)
        return;
    bss_mailer_free(m->smtp);
    free(m);
}

int settlement_mailout_uses_smtp(const settlement_mailout *m) { return m->smtp != NULL; }

/* Looks through the log for a complete line carrying message_id (as the
 * JSON text `needle`). *found is 1 when there is one; *needs_newline is 1
 * when the log ends in a line cut short. A missing log is empty. */
static int log_scan(const char *path, const char *needle, const char *message_id, int *found,
                    int *needs_newline, char *err)
{
    *found = 0;
    *needs_newline = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return BSS_OK;
        bss_seterr(err, "cannot read %s: %s", path, strerror(errno));
        return BSS_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!*found && (n = getline(&line, &cap, f)) > 0) {
        int complete = line[n - 1] == '\n';
        *needs_newline = !complete;
        if (!complete || strstr(line, needle) == NULL)
            continue;
        /* A cheap match; confirm on the parsed line. */
        cJSON *o = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "messageId");
        *found = cJSON_IsString(id) && strcmp(id->valuestring, message_id) == 0;
        cJSON_Delete(o);
    }
    int failed = ferror(f);
    free(line);
    fclose(f);
    if (failed) {
        bss_seterr(err, "cannot read %s", path);
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

/* Appends text (+ '\n', after a '\n' first when lead) with one write(2)
 * where possible, so lines of concurrent writers do not interleave. */
static int log_append(const char *path, const char *text, int lead, char *err)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 2);
    if (buf == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    size_t o = 0;
    if (lead)
        buf[o++] = '\n';
    memcpy(buf + o, text, len);
    o += len;
    buf[o++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    int rc = BSS_OK;
    if (fd < 0) {
        bss_seterr(err, "cannot append to %s: %s", path, strerror(errno));
        rc = BSS_ERR_IO;
    }
    for (size_t done = 0; rc == BSS_OK && done < o;) {
        ssize_t w = write(fd, buf + done, o - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bss_seterr(err, "cannot write %s: %s", path, strerror(errno));
            rc = BSS_ERR_IO;
        } else {
            done += (size_t)w;
        }
    }
    if (fd >= 0 && close(fd) != 0 && rc == BSS_OK) {
        bss_seterr(err, "cannot write %s: %s", path, strerror(errno));
        rc = BSS_ERR_IO;
    }
    free(buf);
    return rc;
}

static int write_log(settlement_mailout *m, cJSON *mail, const char *message_id, char *err)
{
    cJSON *id_only = cJSON_CreateString(message_id);
    char *id_json = id_only != NULL ? cJSON_PrintUnformatted(id_only) : NULL;
    cJSON_Delete(id_only);
    char *line = cJSON_PrintUnformatted(mail);
    char *needle = NULL;
    if (id_json != NULL && (needle = malloc(strlen(id_json) + 16)) != NULL)
        sprintf(needle, "\"messageId\":%s", id_json);
    int rc = BSS_ERR_IO;
    if (line == NULL || needle == NULL) {
        bss_seterr(err, "out of memory");
    } else {
        int found = 0, lead = 0;
        rc = log_scan(m->log_path, needle, message_id, &found, &lead, err);
        if (rc == BSS_OK && !found)
            rc = log_append(m->log_path, line, lead, err);
    }
    free(needle);
    free(id_json);
    free(line);
    return rc;
}

int settlement_mailout_send(void *ctx, const char *channel, const char *dedup_key,
                            const char *target, const char *payload, char *err)
{
    settlement_mailout *m = ctx;
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
    int rc = m->smtp != NULL ? bss_mail_send(m->smtp, target, subject->valuestring,
                                             html->valuestring, id->valuestring, err)
                             : write_log(m, mail, id->valuestring, err);
    cJSON_Delete(mail);
    return rc;
}
