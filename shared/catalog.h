/*
 * catalog.h - the product catalog: what a line can be sold as and how it is
 * charged. Loaded once at start from a JSON file (BSS_CATALOG, default
 * config/products.json in the repo) and read-only afterwards, so any number
 * of threads may look products up.
 *
 * File format: {"products": [{"productCd": "IOT-BASIC", "productNm": "IoT
 * Basic", "productTarif": 3000, "includedMb": 100, "perMbRate": 20}, ...]}
 * Amounts are integer KRW; includedMb is a non-negative integer or the
 * string "unlimited".
 */
#ifndef BSS_CATALOG_H
#define BSS_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#define BSS_PRODUCT_CD_MAX 32
#define BSS_PRODUCT_NM_MAX 64

typedef struct bss_product {
    char product_cd[BSS_PRODUCT_CD_MAX + 1];
    char product_nm[BSS_PRODUCT_NM_MAX + 1];
    int64_t tarif_krw;    /* monthly fee */
    int64_t included_mb;  /* -1 when unlimited */
    int64_t per_mb_rate;  /* KRW per MB over the included data */
} bss_product;

typedef struct bss_catalog bss_catalog;

/* Loads and validates the file (unique codes, names present, amounts
 * non-negative integers). Returns BSS_OK, BSS_ERR_IO (unreadable) or
 * BSS_ERR_INVALID (with the offending product named in err). */
int bss_catalog_load(const char *path, bss_catalog **out, char *err);

/* Parses a catalog from JSON text; same rules as bss_catalog_load. */
int bss_catalog_parse(const char *json, size_t len, bss_catalog **out, char *err);

/* The product with this code, or NULL. */
const bss_product *bss_catalog_find(const bss_catalog *catalog, const char *product_cd);

/* Number of products, and the i-th (0 <= i < count) in file order. */
size_t bss_catalog_count(const bss_catalog *catalog);
const bss_product *bss_catalog_at(const bss_catalog *catalog, size_t i);

void bss_catalog_free(bss_catalog *catalog);

#endif
