/*
 * test_customer_render.c - lines_db_line_render, the GET path's writer of a
 * line's JSON, must give exactly the bytes of printing lines_db_line_json
 * with cJSON (what every other answer with a line uses): escapes, non-ASCII
 * bytes, null and absent times, tarifs at the edges of int.
 */
#include "bss_error.h"
#include "check.h"
#include "isotime.h"
#include "lines_db.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static check_counts counts;

/* 1 when the renderer gives the same bytes as cJSON, or declines (0) and
 * declining is expected. */
static int same_as_cjson(const line *l, int expect_declined)
{
    cJSON *o = lines_db_line_json(l);
    char *want = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    char got[4096];
    size_t n = lines_db_line_render(l, got, sizeof got);
    int ok;
    if (expect_declined)
        ok = n == 0;
    else
        ok = want != NULL && n == strlen(want) && memcmp(got, want, n) == 0 && got[n] == '\0';
    if (!ok)
        fprintf(stderr, "render: %s\n  cJSON: %s\n", n > 0 ? got : "(declined)",
                want ? want : "(null)");
    cJSON_free(want);
    return ok;
}

static line sample(void)
{
    line l;
    memset(&l, 0, sizeof l);
    snprintf(l.svc_cont_no, sizeof l.svc_cont_no, "7000000001");
    snprintf(l.customer_id, sizeof l.customer_id, "C-1");
    snprintf(l.product_cd, sizeof l.product_cd, "IOT-BASIC");
    snprintf(l.product_nm, sizeof l.product_nm, "IoT Basic");
    l.product_tarif = 3000;
    snprintf(l.apn_cd, sizeof l.apn_cd, "iot.example");
    snprintf(l.email, sizeof l.email, "a@example.com");
    l.status = LINE_ACTIVE;
    l.opened_ms = 1780000000123LL;
    l.status_changed_ms = 1780000000123LL;
    return l;
}

static void test_plain_and_times(void)
{
    line l = sample();
    CHECK(&counts, same_as_cjson(&l, 0));
    l.status = LINE_TERMINATED;
    l.terminated_ms = 1790000000999LL;
    CHECK(&counts, same_as_cjson(&l, 0));
    l.opened_ms = 0; /* null */
    l.status_changed_ms = -5;
    CHECK(&counts, same_as_cjson(&l, 0));
    l.status = LINE_SUSPENDED;
    l.terminated_ms = 0; /* absent */
    CHECK(&counts, same_as_cjson(&l, 0));
}

static void test_escapes(void)
{
    line l = sample();
    snprintf(l.address, sizeof l.address, "1 \"Main\" St\\4\b\f\n\r\t\x01\x1f\x7f end");
    snprintf(l.product_nm, sizeof l.product_nm, "\xec\x84\x9c\xec\x9a\xb8 \xff\xfe plan");
    snprintf(l.phone, sizeof l.phone, "\"\"\\\\");
    CHECK(&counts, same_as_cjson(&l, 0));
    /* Every byte 1..255 once, in the longest field. */
    for (int i = 1; i < 256; i++)
        l.address[i - 1] = (char)i;
    l.address[255] = '\0';
    CHECK(&counts, same_as_cjson(&l, 0));
}

static void test_tarifs_and_space(void)
{
    line l = sample();
    l.product_tarif = 2147483647LL;
    CHECK(&counts, same_as_cjson(&l, 0));
    l.product_tarif = -2147483647LL;
    CHECK(&counts, same_as_cjson(&l, 0));
    l.product_tarif = 0;
    CHECK(&counts, same_as_cjson(&l, 0));
    l.product_tarif = 2147483648LL; /* cJSON prints it as a double: left to cJSON */
    CHECK(&counts, same_as_cjson(&l, 1));
    l.product_tarif = -2147483648LL;
    CHECK(&counts, same_as_cjson(&l, 1));

    l = sample();
    char text[4096];
    size_t full = lines_db_line_render(&l, text, sizeof text);
    CHECK(&counts, full > 0);
    CHECK(&counts, lines_db_line_render(&l, text, full + 1) == full);
    CHECK(&counts, lines_db_line_render(&l, text, full) == 0); /* no room for the NUL */
    CHECK(&counts, lines_db_line_render(&l, text, 10) == 0);
    CHECK(&counts, lines_db_line_render(&l, text, 0) == 0);
}

int main(void)
{
    if (bss_time_set_zone("Asia/Seoul") != BSS_OK)
        return 1;
    test_plain_and_times();
    test_escapes();
    test_tarifs_and_space();
    return CHECK_DONE(&counts);
}
