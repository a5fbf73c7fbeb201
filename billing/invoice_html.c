/* invoice_html.c - see invoice_html.h. The page is built in a bss_hbuf
 * (html.h); an allocation failure latches and is reported once at the end. */
#include "invoice_html.h"

#include "bss_error.h"
#include "html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cell_text(bss_hbuf *b, const char *cls, const char *s)
{
    bss_hbuf_puts(b, "<td class=\"");
    bss_hbuf_puts(b, cls);
    bss_hbuf_puts(b, "\">");
    bss_hbuf_escaped(b, s);
    bss_hbuf_puts(b, "</td>");
}

static void cell_num(bss_hbuf *b, int64_t v)
{
    char g[BSS_GROUPED_LEN];
    bss_format_grouped(v, g, sizeof g);
    cell_text(b, "n", g);
}

static void cell_krw(bss_hbuf *b, int64_t v)
{
    char g[BSS_KRW_LEN];
    bss_format_krw(v, g, sizeof g);
    cell_text(b, "n", g);
}

static void meta_row(bss_hbuf *b, const char *label, const char *value)
{
    bss_hbuf_puts(b, "<tr><th>");
    bss_hbuf_escaped(b, label);
    bss_hbuf_puts(b, "</th><td>");
    bss_hbuf_escaped(b, value);
    bss_hbuf_puts(b, "</td></tr>\n");
}

static void total_row(bss_hbuf *b, const char *label, int64_t v, const char *cls)
{
    char g[BSS_KRW_LEN];
    bss_format_krw(v, g, sizeof g);
    bss_hbuf_puts(b, "<tr class=\"");
    bss_hbuf_puts(b, cls);
    bss_hbuf_puts(b, "\"><th>");
    bss_hbuf_escaped(b, label);
    bss_hbuf_puts(b, "</th><td class=\"n\">");
    bss_hbuf_escaped(b, g);
    bss_hbuf_puts(b, "</td></tr>\n");
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
    bss_hbuf b = {0};
    char num[48];
    bss_hbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      "<title>Invoice ");
    bss_hbuf_escaped(&b, inv->invoice_id);
    bss_hbuf_puts(&b, "</title>\n");
    bss_hbuf_puts(&b, STYLE);
    bss_hbuf_puts(&b, "</head>\n<body>\n<div class=\"head\">\n<div><h1>Invoice</h1>"
                      "<div class=\"brand\">bssiot IoT connectivity</div></div>\n"
                      "<table class=\"meta\">\n");
    meta_row(&b, "Invoice no.", inv->invoice_id);
    meta_row(&b, "Customer", inv->customer_id);
    meta_row(&b, "Billing period", inv->period);
    meta_row(&b, "Issued at", inv->issued_at);
    meta_row(&b, "Status", inv->status);
    if (inv->email[0] != '\0')
        meta_row(&b, "Sent to", inv->email);
    bss_hbuf_puts(&b, "</table>\n</div>\n");

    bss_hbuf_puts(&b, "<table class=\"lines\">\n<thead><tr>"
                      "<th class=\"t\">Line (svcContNo)</th><th class=\"t\">Product</th>"
                      "<th>Usage (bytes)</th><th>Billable MB</th><th>Included MB</th>"
                      "<th>Overage MB</th><th>Overage fee</th><th>Active days</th>"
                      "<th>Base fee</th><th>Subtotal</th><th>VAT</th><th>Total</th>"
                      "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < inv->nlines; i++) {
        const billing_charge *c = &inv->lines[i];
        bss_hbuf_puts(&b, "<tr>");
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
        bss_hbuf_puts(&b, "</tr>\n");
    }
    if (inv->nlines == 0)
        bss_hbuf_puts(&b, "<tr><td class=\"t\" colspan=\"12\">No charges.</td></tr>\n");
    bss_hbuf_puts(&b, "</tbody>\n</table>\n<table class=\"totals\">\n");
    total_row(&b, "Subtotal", inv->subtotal, "sub");
    total_row(&b, "VAT (10%)", inv->vat, "vat");
    total_row(&b, "Total due", inv->total, "grand");
    snprintf(num, sizeof num, "%zu", inv->nlines);
    bss_hbuf_puts(&b, "</table>\n<p class=\"note\">");
    bss_hbuf_escaped(&b, num);
    bss_hbuf_puts(&b, inv->nlines == 1 ? " line" : " lines");
    bss_hbuf_puts(&b, ". Amounts in Korean won (KRW). Base fees are prorated by the days each line "
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
