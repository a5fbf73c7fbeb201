/*
 * seed_lines.c - bulk-opens lines for the benchmarks through the customer
 * service's own command code (orders_open_line: line row, order, events and
 * SMS in one transaction each), straight into a customer store, without
 * HTTP. Started before the services, so rater and billing then catch up on
 * every line through the bus, as after any restart.
 *
 *   seed_lines DATA_DIR COUNT OPENED_AT CATALOG
 *   (three lines per customer; products IOT-BASIC, IOT-PLUS, IOT-UNLIMITED in turn)
 */
#include "bss_error.h"
#include "catalog.h"
#include "customer.h"
#include "isotime.h"
#include "lines_db.h"
#include "orders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s DATA_DIR COUNT OPENED_AT CATALOG\n", argv[0]);
        return 2;
    }
    char err[BSS_ERRLEN] = "", path[4096];
    long long count = atoll(argv[2]);
    int64_t opened = 0;
    if (bss_time_set_zone("Asia/Seoul") != BSS_OK ||
        bss_time_parse(argv[3], strlen(argv[3]), &opened) != BSS_OK || count <= 0) {
        fprintf(stderr, "seed_lines: bad COUNT or OPENED_AT\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/customer.db", argv[1]);
    customer_ctx c = {0};
    bss_store_options so = {.path = path, .source = "customer"};
    if (bss_catalog_load(argv[4], &c.catalog, err) != BSS_OK ||
        bss_store_open(&so, &c.store, err) != BSS_OK || bss_store_begin(c.store, err) != BSS_OK ||
        lines_db_schema(bss_store_db(c.store), err) != BSS_OK ||
        bss_store_commit(c.store, err) != BSS_OK) {
        fprintf(stderr, "seed_lines: %s\n", err);
        return 1;
    }
    static const char *const products[] = {"IOT-BASIC", "IOT-PLUS", "IOT-UNLIMITED"};
    int64_t start = bss_monotonic_ms();
    for (long long i = 0; i < count; i++) {
        line l;
        memset(&l, 0, sizeof l);
        snprintf(l.customer_id, sizeof l.customer_id, "BC%lld", i / 3);
        const bss_product *p = bss_catalog_find(c.catalog, products[i % 3]);
        snprintf(l.product_cd, sizeof l.product_cd, "%s", p->product_cd);
        snprintf(l.product_nm, sizeof l.product_nm, "%s", p->product_nm);
        l.product_tarif = p->tarif_krw;
        snprintf(l.apn_cd, sizeof l.apn_cd, "iot.bench");
        snprintf(l.email, sizeof l.email, "bc%lld@example.com", i / 3);
        line stored;
        order o;
        customer_problem problem;
        if (orders_open_line(&c, &l, opened, NULL, &stored, &o, &problem) != BSS_OK) {
            fprintf(stderr, "seed_lines: line %lld: %s %s\n", i, problem.code, problem.detail);
            return 1;
        }
    }
    fprintf(stderr, "seed_lines: %lld lines in %lld ms\n", count,
            (long long)(bss_monotonic_ms() - start));
    bss_store_close(c.store);
    bss_catalog_free(c.catalog);
    return 0;
}
