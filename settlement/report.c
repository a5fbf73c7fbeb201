/* report.c - see report.h. */
#include "report.h"

#include "bss_error.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *settlement_format_grouped(int64_t value, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    /* The magnitude as unsigned, so INT64_MIN has one too. */
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    char rev[SETTLEMENT_GROUPED_LEN];
    size_t n = 0, digits = 0;
    do {
        if (digits > 0 && digits % 3 == 0)
            rev[n++] = ',';
        rev[n++] = (char)('0' + mag % 10);
        mag /= 10;
        digits++;
    } while (mag > 0);
    if (value < 0)
        rev[n++] = '-';
    size_t o = 0;
    while (n > 0 && o + 1 < outlen)
        out[o++] = rev[--n];
    out[o] = '\0';
    return out;
}

void settlement_report_message_id(const char *period, char *out, size_t outlen)
{
    snprintf(out, outlen, "<settlement-%s@bssiot>", period);
}

/* ---- a growing string ------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Appends s with &, <, >, " and ' escaped. */
static void sb_escaped(sbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_put(b, s, 1); break;
        }
    }
}

/* ---- the page --------------------------------------------------------- */

#define CSS_TH                                                                            \
    "text-align:left;padding:6px 10px;border-bottom:1px solid #dde1e6;color:#555;"        \
    "font-weight:normal;"
#define CSS_TD "text-align:right;padding:6px 10px;border-bottom:1px solid #dde1e6;"
#define CSS_TD_LEFT "text-align:left;padding:6px 10px;border-bottom:1px solid #dde1e6;"
#define CSS_HEAD                                                                          \
    "text-align:right;padding:6px 10px;background:#f0f2f5;border-bottom:2px solid #c9ced6;"
#define CSS_TABLE "border-collapse:collapse;width:100%;margin:0 0 24px 0;font-size:14px;"

/* One "label | value" row of the totals table; unit may be "". */
static void totals_row(sbuf *b, const char *label, int64_t value, const char *unit)
{
    char num[SETTLEMENT_GROUPED_LEN];
    sb_puts(b, "<tr><th style=\"" CSS_TH "\">");
    sb_escaped(b, label);
    sb_puts(b, "</th><td style=\"" CSS_TD "\">");
    sb_escaped(b, settlement_format_grouped(value, num, sizeof num));
    if (unit[0] != '\0') {
        sb_puts(b, " ");
        sb_escaped(b, unit);
    }
    sb_puts(b, "</td></tr>\n");
}

static void product_cell(sbuf *b, int64_t value, const char *unit)
{
    char num[SETTLEMENT_GROUPED_LEN];
    sb_puts(b, "<td style=\"" CSS_TD "\">");
    sb_escaped(b, settlement_format_grouped(value, num, sizeof num));
    if (unit[0] != '\0') {
        sb_puts(b, " ");
        sb_escaped(b, unit);
    }
    sb_puts(b, "</td>");
}

int settlement_report_html(const settlement_summary *s, char **html, char *err)
{
    sbuf b = {0};
    sb_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Settlement report ");
    sb_escaped(&b, s->period);
    sb_puts(&b, "</title></head>\n<body style=\"margin:0;padding:24px;background:#f5f6f8;"
                "font-family:Arial,Helvetica,sans-serif;color:#222;\">\n"
                "<div style=\"max-width:720px;margin:0 auto;background:#ffffff;"
                "border:1px solid #dde1e6;border-radius:6px;padding:24px;\">\n"
                "<h1 style=\"font-size:20px;margin:0 0 4px 0;\">Settlement report ");
    sb_escaped(&b, s->period);
    sb_puts(&b, "</h1>\n<p style=\"margin:0 0 20px 0;color:#555;\">Status: ");
    sb_escaped(&b, s->status);
    sb_puts(&b, "</p>\n<h2 style=\"font-size:16px;margin:0 0 8px 0;\">Totals</h2>\n"
                "<table style=\"" CSS_TABLE "\">\n");
    totals_row(&b, "Invoices", s->invoice_count, "");
    totals_row(&b, "Lines", s->line_count, "");
    totals_row(&b, "Usage", s->usage_bytes, "bytes");
    totals_row(&b, "Billable data", s->billable_mb, "MB");
    totals_row(&b, "Subtotal", s->subtotal, "KRW");
    totals_row(&b, "VAT", s->vat, "KRW");
    totals_row(&b, "Total", s->total, "KRW");
    sb_puts(&b, "</table>\n<h2 style=\"font-size:16px;margin:0 0 8px 0;\">By product</h2>\n"
                "<table style=\"" CSS_TABLE "\">\n<tr>"
                "<th style=\"" CSS_HEAD "text-align:left;\">Product</th>"
                "<th style=\"" CSS_HEAD "\">Lines</th>"
                "<th style=\"" CSS_HEAD "\">Usage (bytes)</th>"
                "<th style=\"" CSS_HEAD "\">Amount (KRW, VAT incl.)</th></tr>\n");
    for (size_t i = 0; i < s->nproducts; i++) {
        const settlement_product_total *p = &s->products[i];
        sb_puts(&b, "<tr><td style=\"" CSS_TD_LEFT "\">");
        sb_escaped(&b, p->product_cd);
        sb_puts(&b, "</td>");
        product_cell(&b, p->line_count, "");
        product_cell(&b, p->usage_bytes, "");
        product_cell(&b, p->amount, "KRW");
        sb_puts(&b, "</tr>\n");
    }
    if (s->nproducts == 0)
        sb_puts(&b, "<tr><td colspan=\"4\" style=\"" CSS_TD_LEFT "color:#888;\">"
                    "No charged lines in this period.</td></tr>\n");
    sb_puts(&b, "</table>\n<p style=\"margin:0;font-size:12px;color:#888;\">"
                "Amounts are integer KRW. Generated by bssiot settlement.</p>\n"
                "</div>\n</body></html>\n");
    if (b.oom) {
        free(b.p);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    *html = b.p;
    return BSS_OK;
}

int settlement_report_payload(const settlement_summary *s, const char *to, char **payload,
                              char *err)
{
    char *html = NULL;
    int rc = settlement_report_html(s, &html, err);
    if (rc != BSS_OK)
        return rc;
    char subject[96], message_id[64];
    snprintf(subject, sizeof subject, "[bssiot] Settlement report %s", s->period);
    settlement_report_message_id(s->period, message_id, sizeof message_id);
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o != NULL && cJSON_AddStringToObject(o, "to", to) != NULL &&
        cJSON_AddStringToObject(o, "subject", subject) != NULL &&
        cJSON_AddStringToObject(o, "messageId", message_id) != NULL &&
        cJSON_AddStringToObject(o, "html", html) != NULL)
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(html);
    if (text == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    *payload = text;
    return BSS_OK;
}
