/* invoice_id.c - see invoice_id.h. */
#include "invoice_id.h"

#include "bss_error.h"
#include "period.h"

#include <stdio.h>
#include <string.h>

int bss_invoice_id(const char *period, const char *customer_id, char *out, size_t len)
{
    if (strlen(period) != BSS_PERIOD_LEN) {
        if (len > 0)
            out[0] = '\0';
        return BSS_ERR_INVALID;
    }
    int n = snprintf(out, len, "INV-%.4s%.2s-%s", period, period + 5, customer_id);
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            out[0] = '\0';
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}
