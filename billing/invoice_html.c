/* invoice_html.c - see invoice_html.h. The page is built in a growable
 * buffer; an allocation failure latches and is reported once at the end. */
#include "invoice_html.h"

#include "bss_error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hbuf {
    char *p;
    size_t len, cap;
    int failed;
} hbuf;

static void put(hbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(hbuf *b, const char *s) { put(b, s, strlen(s)); }

static void esc(hbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': puts_(b, "&amp;"); break;
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '"': puts_(b, "&quot;"); break;
        case '\'': puts_(b, "&#39;"); break;
        default: put(b, s, 1);
        }
    }
}

void billing_format_grouped(int64_t v, char *out, size_t len)
{
    char digits[24];
    /* The magnitude as unsigned, so INT64_MIN is fine too. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    snprintf(digits, sizeof digits, "%" PRIu64, mag);
    char tmp[32];
    size_t n = strlen(digits), o = 0;
    if (v < 0)
        tmp[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            tmp[o++] = ',';
        tmp[o++] = digits[i];
    }
    tmp[o] = '\0';
    snprintf(out, len, "%s", tmp);
}

void billing_format_krw(int64_t v, char *out, size_t len)
{
    char g[32];
    billing_format_grouped(v, g, sizeof g);
    snprintf(out, len, "\xe2\x82\xa9%s", g); /* U+20A9 WON SIGN */
}

static void cell_text(hbuf *b, const char *cls, const char *s)
{
    puts_(b, "<td class=\"");
    puts_(b, cls);
    puts_(b, "\">");
    esc(b, s);
    puts_(b, "</td>");
}

static void cell_num(hbuf *b, int64_t v)
{
    char g[32];
    billing_format_grouped(v, g, sizeof g);
    cell_text(b, "n", g);
}

static void cell_krw(hbuf *b, int64_t v)
{
    char g[40];
    billing_format_krw(v, g, sizeof g);
    cell_text(b, "n", g);
}

static void meta_row(hbuf *b, const char *label, const char *value)
{
    puts_(b, "<tr><th>");
    esc(b, label);
    puts_(b, "</th><td>");
    esc(b, value);
    puts_(b, "</td></tr>\n");
}

static void total_row(hbuf *b, const char *label, int64_t v, const char *cls)
{
    char g[40];
    billing_format_krw(v, g, sizeof g);
    puts_(b, "<tr class=\"");
    puts_(b, cls);
    puts_(b, "\"><th>");
    esc(b, label);
    puts_(b, "</th><td class=\"n\">");
    esc(b, g);
    puts_(b, "</td></tr>\n");
}

static const char STYLE[] =
    "<style>\n"
    "@page{size:A4;margin:14mm}\n"
    "*{box-sizing:border-box}\n"
    "body{font-family:'Helvetica Neue',Arial,'Noto Sans KR',sans-serif;color:#1d1d1f;"
    "margin:24px auto;max-width:1100px;padding:0 16px;font-size:13px;line-height:1.45}\n"
    "h1{font-size:26px;margin:0 0 4px;letter-spacing:.5px}\n"
    ".head{display:flex;justify-content:space-between;align-items:flex-start;"
    "border-bottom:3px solid #1d1d1f;padding-bottom:12px;margin-bottom:18px}\n"
    ".brand{font-weight:700;font-size:15px;color:#444}\n"
    "table{border-collapse:collapse}\n"
    ".meta th{text-align:left;font-weight:600;color:#555;padding:2px 14px 2px 0}\n"
    ".meta td{padding:2px 0}\n"
    ".lines{width:100%;margin-top:8px}\n"
    ".lines th{background:#f0f0f2;font-weight:600;font-size:11px;text-transform:uppercase;"
    "letter-spacing:.3px;padding:6px;border-bottom:1px solid #999;text-align:right}\n"
    ".lines th.t{text-align:left}\n"
    ".lines td{padding:5px 6px;border-bottom:1px solid #ddd;white-space:nowrap}\n"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td.t{text-align:left}\n"
    ".totals{margin:16px 0 0 auto;min-width:280px}\n"
    ".totals th{text-align:left;font-weight:600;padding:4px 24px 4px 0}\n"
    ".totals td{padding:4px 0}\n"
    ".totals tr.grand th,.totals tr.grand td{border-top:2px solid #1d1d1f;font-size:16px;"
    "font-weight:700;padding-top:8px}\n"
    ".note{margin-top:28px;color:#666;font-size:11px}\n"
    "@media print{body{margin:0;max-width:none;padding:0}"
    ".lines th{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "tr{page-break-inside:avoid}}\n"
    "</style>\n";

int billing_invoice_html(const billing_invoice *inv, char **html, size_t *len)
{
    hbuf b = {0};
    char num[48];
    puts_(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              "<title>Invoice ");
    esc(&b, inv->invoice_id);
    puts_(&b, "</title>\n");
    puts_(&b, STYLE);
    puts_(&b, "</head>\n<body>\n<div class=\"head\">\n<div><h1>Invoice</h1>"
              "<div class=\"brand\">bssiot IoT connectivity</div></div>\n"
              "<table class=\"meta\">\n");
    meta_row(&b, "Invoice no.", inv->invoice_id);
    meta_row(&b, "Customer", inv->customer_id);
    meta_row(&b, "Billing period", inv->period);
    meta_row(&b, "Issued at", inv->issued_at);
    meta_row(&b, "Status", inv->status);
    if (inv->email[0] != '\0')
        meta_row(&b, "Sent to", inv->email);
    puts_(&b, "</table>\n</div>\n");

    puts_(&b, "<table class=\"lines\">\n<thead><tr>"
              "<th class=\"t\">Line (svcContNo)</th><th class=\"t\">Product</th>"
              "<th>Usage (bytes)</th><th>Billable MB</th><th>Included MB</th>"
              "<th>Overage MB</th><th>Overage fee</th><th>Active days</th>"
              "<th>Base fee</th><th>Subtotal</th><th>VAT</th><th>Total</th>"
              "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < inv->nlines; i++) {
        const billing_charge *c = &inv->lines[i];
        puts_(&b, "<tr>");
        cell_text(&b, "t", c->svc_cont_no);
        cell_text(&b, "t", c->product_cd);
        cell_num(&b, c->usage_bytes);
        cell_num(&b, c->billable_mb);
        if (c->included_mb < 0)
            cell_text(&b, "n", "unlimited");
        else
            cell_num(&b, c->included_mb);
        cell_num(&b, c->overage_mb);
        cell_krw(&b, c->overage_fee);
        snprintf(num, sizeof num, "%d / %d", c->active_days, c->days_in_period);
        cell_text(&b, "n", num);
        cell_krw(&b, c->base_fee);
        cell_krw(&b, c->subtotal);
        cell_krw(&b, c->vat);
        cell_krw(&b, c->total);
        puts_(&b, "</tr>\n");
    }
    if (inv->nlines == 0)
        puts_(&b, "<tr><td class=\"t\" colspan=\"12\">No charges.</td></tr>\n");
    puts_(&b, "</tbody>\n</table>\n<table class=\"totals\">\n");
    total_row(&b, "Subtotal", inv->subtotal, "sub");
    total_row(&b, "VAT (10%)", inv->vat, "vat");
    total_row(&b, "Total due", inv->total, "grand");
    snprintf(num, sizeof num, "%zu", inv->nlines);
    puts_(&b, "</table>\n<p class=\"note\">");
    esc(&b, num);
    puts_(&b, inv->nlines == 1 ? " line" : " lines");
    puts_(&b, ". Amounts in Korean won (KRW). Base fees are prorated by the days each line "
              "was active in the period; data beyond the included volume is charged per MB "
              "started. This invoice is final: any correction is issued as a separate "
              "credit note.</p>\n</body>\n</html>\n");
    if (b.failed) {
        free(b.p);
        *html = NULL;
        return BSS_ERR_NOMEM;
    }
    *html = b.p;
    if (len != NULL)
        *len = b.len;
    return BSS_OK;
}
