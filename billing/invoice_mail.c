/* invoice_mail.c - see invoice_mail.h. */
#include "invoice_mail.h"

#include "bss_error.h"
#include "invoice_html.h"
#include "jsonfield.h"
#include "ledger.h"
#include "mailchannel.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct invoice_mail {
    bss_store *store;
    bss_mailchannel *channel;
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
    static const bss_mailchannel_defaults defaults = {"billing@bssiot.local", 3600000};
    if ((m->channel = bss_mailchannel_new(config, data_dir, &defaults, err)) == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void invoice_mail_free(invoice_mail *m)
{
    if (m == NULL)
        return;
    bss_mailchannel_free(m->channel);
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
    rc = bss_mailchannel_send(m->channel, target, subject, message_id, html, err);
    free(html);
    billing_invoice_clear(&inv);
    return rc;
}
