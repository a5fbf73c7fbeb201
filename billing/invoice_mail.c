/* invoice_mail.c - see invoice_mail.h. */
#include "invoice_mail.h"

#include "bss_error.h"
#include "invoice_html.h"
#include "jsonfield.h"
#include "ledger.h"
#include "mail.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct invoice_mail {
    bss_store *store;
    bss_mailer *mailer; /* NULL: append to log_path */
    char log_path[1024];
};

invoice_mail *invoice_mail_new(const bss_config *config, const char *data_dir, bss_store *store,
                               char *err)
{
    invoice_mail *m = calloc(1, sizeof *m);
    if (m == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    m->store = store;
    int n = snprintf(m->log_path, sizeof m->log_path, "%s/mail.log", data_dir);
    if (n < 0 || (size_t)n >= sizeof m->log_path) {
        bss_seterr(err, "data dir path too long for mail.log");
        free(m);
        return NULL;
    }
    const char *url = bss_config_get(config, "BSS_SMTP_URL", "");
    if (url[0] == '\0')
        return m;
    long long timeout = 10000;
    if (bss_config_get_int(config, "BSS_SMTP_TIMEOUT_MS", 10000, &timeout, err) != BSS_OK) {
        free(m);
        return NULL;
    }
    const char *user = bss_config_get(config, "BSS_SMTP_USER", "");
    bss_mail_options o = {
        .url = url,
        .from = bss_config_get(config, "BSS_MAIL_FROM", "billing@bssiot.local"),
        .username = user[0] != '\0' ? user : NULL,
        .password = user[0] != '\0' ? bss_config_get(config, "BSS_SMTP_PASSWORD", "") : NULL,
        .timeout_ms = timeout > 0 && timeout < 3600000 ? (int)timeout : 10000};
    if ((m->mailer = bss_mailer_new(&o)) == NULL) {
        bss_seterr(err, "cannot create the SMTP mailer (check BSS_MAIL_FROM '%s')", o.from);
        free(m);
        return NULL;
    }
    return m;
}

void invoice_mail_free(invoice_mail *m)
{
    if (m == NULL)
        return;
    bss_mailer_free(m->mailer);
    free(m);
}

/* Loads the invoice through a snapshot and renders its HTML. */
static int render(invoice_mail *m, const char *invoice_id, billing_invoice *inv, char **html,
                  char *err)
{
    sqlite3 *db = NULL;
    int rc = bss_store_snapshot_begin(m->store, &db, err);
    if (rc != BSS_OK)
        return rc == BSS_ERR_INVALID ? BSS_ERR_IO : rc;
    rc = billing_invoice_get(db, invoice_id, inv, err);
    bss_store_snapshot_end(m->store, db);
    if (rc == BSS_ERR_NOTFOUND) {
        bss_seterr(err, "invoice %s does not exist", invoice_id);
        return BSS_ERR_INVALID;
    }
    if (rc != BSS_OK)
        return rc;
    rc = billing_invoice_html(inv, html, NULL);
    if (rc != BSS_OK) {
        billing_invoice_clear(inv);
        bss_seterr(err, "out of memory rendering invoice %s", invoice_id);
    }
    return rc;
}

/* Appends one JSON line {to, subject, messageId, html} to the mail log. */
static int append_log(const invoice_mail *m, const char *to, const char *subject,
                      const char *message_id, const char *html, char *err)
{
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
        return BSS_ERR_NOMEM;
    }
    FILE *f = fopen(m->log_path, "a");
    if (f == NULL) {
        free(line);
        bss_seterr(err, "cannot append to %s", m->log_path);
        return BSS_ERR_IO;
    }
    int ok = fprintf(f, "%s\n", line) > 0;
    ok = fclose(f) == 0 && ok;
    free(line);
    if (!ok) {
        bss_seterr(err, "cannot write %s", m->log_path);
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int invoice_mail_send(void *ctx, const char *channel, const char *dedup_key, const char *target,
                      const char *payload, char *err)
{
    invoice_mail *m = ctx;
    (void)dedup_key;
    if (strcmp(channel, "mail") != 0) {
        bss_seterr(err, "no sender for channel %s", channel);
        return BSS_ERR_INVALID;
    }
    char invoice_id[BILLING_INVOICE_ID_MAX + 1];
    cJSON *p = cJSON_Parse(payload != NULL ? payload : "");
    int rc = bss_jfield_string(p, "invoiceId", invoice_id, sizeof invoice_id, err);
    cJSON_Delete(p);
    if (rc != BSS_OK)
        return BSS_ERR_INVALID;
    billing_invoice inv;
    char *html = NULL;
    rc = render(m, invoice_id, &inv, &html, err);
    if (rc != BSS_OK)
        return rc;
    char subject[BILLING_INVOICE_ID_MAX + 64], message_id[BILLING_INVOICE_ID_MAX + 16];
    snprintf(subject, sizeof subject, "Invoice %s for %s", inv.invoice_id, inv.period);
    snprintf(message_id, sizeof message_id, "<%s@bssiot>", inv.invoice_id);
    if (m->mailer != NULL)
        rc = bss_mail_send(m->mailer, target, subject, html, message_id, err);
    else
        rc = append_log(m, target, subject, message_id, html, err);
    free(html);
    billing_invoice_clear(&inv);
    return rc;
}
