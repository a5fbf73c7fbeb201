/*
 * fuzz_usage_csv.c - libFuzzer target for the usage file reader and record
 * parser (rater/usage_csv.h), the parser of files the network hands us.
 * The input is fed in small, uneven reads to exercise line reassembly, and
 * every unquoted line is also parsed with its fields quoted (the in-place
 * and the unquoting paths must agree).
 */
#include "bss_error.h"
#include "rater/usage_csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct feed {
    const uint8_t *data;
    size_t size, pos, step;
} feed;

static long long read_some(void *ctx, char *buf, size_t len)
{
    feed *f = ctx;
    size_t n = f->size - f->pos;
    if (n > len)
        n = len;
    if (n > f->step)
        n = f->step;
    memcpy(buf, f->data + f->pos, n);
    f->pos += n;
    f->step = f->step * 3 % 8191 + 1;
    return (long long)n;
}

/* A line without quotes parses in place; the same line with every field
 * quoted goes through the unquoting path. Both must give the same record. */
static void check_quoted_twin(const char *line, size_t len)
{
    if (memchr(line, '"', len) != NULL || len + 2 * 6 > USAGE_CSV_MAX_LINE)
        return;
    char twin[USAGE_CSV_MAX_LINE + 1];
    size_t n = 0;
    twin[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (line[i] == ',') {
            if (n + 3 > USAGE_CSV_MAX_LINE)
                return;
            twin[n++] = '"';
            twin[n++] = ',';
            twin[n++] = '"';
        } else {
            twin[n++] = line[i];
        }
    }
    twin[n++] = '"';
    if (n > USAGE_CSV_MAX_LINE)
        return;
    usage_record plain, quoted;
    char why[128];
    int a = usage_csv_parse(line, len, &plain, why, sizeof why);
    int b = usage_csv_parse(twin, n, &quoted, why, sizeof why);
    if (a != b || strcmp(plain.record_id, quoted.record_id) != 0 ||
        (a == BSS_OK && memcmp(&plain, &quoted, sizeof plain) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    feed f = {data, size, 0, size ? (size_t)data[0] + 1 : 1};
    usage_lines r;
    if (usage_lines_init(&r, read_some, &f) != BSS_OK)
        return 0;
    const char *line;
    size_t len;
    int too_long;
    long long previous = 0;
    while (usage_lines_next(&r, &line, &len, &too_long) == 1) {
        if (r.line_no <= previous || len > USAGE_CSV_MAX_LINE + 1)
            abort();
        previous = r.line_no;
        usage_csv_is_header(line, len);
        if (!too_long)
            check_quoted_twin(line, len);
        usage_record rec;
        char why[128];
        if (!too_long && usage_csv_parse(line, len, &rec, why, sizeof why) == BSS_OK &&
            (rec.bytes < 0 || rec.record_id[0] == '\0' || rec.svc_cont_no[0] == '\0'))
            abort();
    }
    usage_lines_free(&r);
    return 0;
}
