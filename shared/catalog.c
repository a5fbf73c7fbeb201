/* catalog.c - see catalog.h. */
#include "catalog.h"

#include "bss_error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bss_catalog {
    size_t count;
    bss_product *products;
};

static int get_amount(const cJSON *item, const char *name, int allow_unlimited, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, name);
    if (allow_unlimited && cJSON_IsString(v) && strcmp(v->valuestring, "unlimited") == 0) {
        *out = -1;
        return BSS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15 ||
        (double)(int64_t)v->valuedouble != v->valuedouble)
        return BSS_ERR_INVALID;
    *out = (int64_t)v->valuedouble;
    return BSS_OK;
}

static int get_text(const cJSON *item, const char *name, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, name);
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= cap)
        return BSS_ERR_INVALID;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return BSS_OK;
}

int bss_catalog_parse(const char *json, size_t len, bss_catalog **out, char *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "products");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
        cJSON_Delete(root);
        bss_seterr(err, "catalog must be an object with a non-empty \"products\" array");
        return BSS_ERR_INVALID;
    }
    bss_catalog *c = calloc(1, sizeof *c);
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (c == NULL || (c->products = calloc(n, sizeof *c->products)) == NULL) {
        free(c);
        cJSON_Delete(root);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    const cJSON *item;
    int rc = BSS_OK;
    cJSON_ArrayForEach(item, list)
    {
        bss_product *p = &c->products[c->count];
        if (get_text(item, "productCd", p->product_cd, sizeof p->product_cd) != BSS_OK ||
            get_text(item, "productNm", p->product_nm, sizeof p->product_nm) != BSS_OK ||
            get_amount(item, "productTarif", 0, &p->tarif_krw) != BSS_OK ||
            get_amount(item, "includedMb", 1, &p->included_mb) != BSS_OK ||
            get_amount(item, "perMbRate", 0, &p->per_mb_rate) != BSS_OK) {
            bss_seterr(err, "product #%zu: needs productCd, productNm, productTarif, "
                            "includedMb (or \"unlimited\") and perMbRate as non-negative integers",
                       c->count + 1);
            rc = BSS_ERR_INVALID;
            break;
        }
        if (bss_catalog_find(c, p->product_cd) != NULL) {
            bss_seterr(err, "product %s is listed twice", p->product_cd);
            rc = BSS_ERR_INVALID;
            break;
        }
        c->count++;
    }
    cJSON_Delete(root);
    if (rc != BSS_OK) {
        bss_catalog_free(c);
        return rc;
    }
    *out = c;
    return BSS_OK;
}

int bss_catalog_load(const char *path, bss_catalog **out, char *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        bss_seterr(err, "cannot open catalog %s", path);
        return BSS_ERR_IO;
    }
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big) {
        bss_seterr(err, "catalog %s is larger than %zu bytes", path, sizeof buf);
        return BSS_ERR_INVALID;
    }
    return bss_catalog_parse(buf, len, out, err);
}

const bss_product *bss_catalog_find(const bss_catalog *c, const char *product_cd)
{
    for (size_t i = 0; product_cd != NULL && i < c->count; i++)
        if (strcmp(c->products[i].product_cd, product_cd) == 0)
            return &c->products[i];
    return NULL;
}

size_t bss_catalog_count(const bss_catalog *c) { return c->count; }

const bss_product *bss_catalog_at(const bss_catalog *c, size_t i)
{
    return i < c->count ? &c->products[i] : NULL;
}

void bss_catalog_free(bss_catalog *c)
{
    if (c == NULL)
        return;
    free(c->products);
    free(c);
}
