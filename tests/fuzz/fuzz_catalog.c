/*
 * fuzz_catalog.c - libFuzzer target for the product catalog parser
 * (configuration read at start-up). A parsed catalog must hold only
 * products that satisfy its documented invariants.
 */
#include "bss_error.h"
#include "catalog.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bss_catalog *c = NULL;
    char err[BSS_ERRLEN];
    if (bss_catalog_parse((const char *)data, size, &c, err) != BSS_OK)
        return 0;
    for (size_t i = 0; i < bss_catalog_count(c); i++) {
        const bss_product *p = bss_catalog_at(c, i);
        if (p->product_cd[0] == '\0' || p->tarif_krw < 0 || p->per_mb_rate < 0 ||
            p->included_mb < -1 || bss_catalog_find(c, p->product_cd) != p)
            abort();
    }
    bss_catalog_free(c);
    return 0;
}
