/*
 * fuzz_invoice_issued.c - libFuzzer target for settlement's reading of
 * billing's InvoiceIssued data off the bus (settlement/settlement.h), in
 * both of its forms (byProduct summary, and lines in older events). An
 * invoice accepted must be self-consistent: its per-product parts add up
 * to its totals.
 */
#include "bss_error.h"
#include "settlement/settlement.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[BSS_ERRLEN];
    settlement_invoice inv;
    if (settlement_invoice_parse(text, &inv, err) == BSS_OK) {
        int64_t lines = 0, usage = 0, amount = 0;
        for (size_t i = 0; i < inv.nproducts; i++) {
            if (inv.products[i].line_count < 0 || inv.products[i].usage_bytes < 0 ||
                (i > 0 && strcmp(inv.products[i - 1].product_cd, inv.products[i].product_cd) >= 0))
                abort();
            lines += inv.products[i].line_count;
            usage += inv.products[i].usage_bytes;
            amount += inv.products[i].amount;
        }
        if (lines != inv.line_count || usage != inv.usage_bytes || amount != inv.lines_total)
            abort();
        settlement_invoice_free(&inv);
    }
    free(text);
    return 0;
}
