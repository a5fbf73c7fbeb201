/* usage_csv.c - see usage_csv.h. Every read is bounded by the line length. */
#include "usage_csv.h"

#include "bss_error.h"
#include "isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUFFER (1 << 20)
#define FIELD_COUNT 5

int usage_lines_init(usage_lines *r, usage_read_fn read, void *ctx)
{
    memset(r, 0, sizeof *r);
    r->read = read;
    r->ctx = ctx;
    r->cap = READ_BUFFER;
    r->buf = malloc(r->cap);
    return r->buf ? BSS_OK : BSS_ERR_NOMEM;
}

void usage_lines_free(usage_lines *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Moves the unread tail to the front and reads more. 1 read, 0 eof, <0 err. */
static int refill(usage_lines *r)
{
    if (r->eof)
        return 0;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap)
        return 1; /* full: the caller handles the over-long line */
    long long n = r->read(r->ctx, r->buf + r->end, r->cap - r->end);
    if (n < 0)
        return BSS_ERR_IO;
    if (n == 0) {
        r->eof = 1;
        return 0;
    }
    r->end += (size_t)n;
    return 1;
}

int usage_lines_next(usage_lines *r, const char **line, size_t *len, int *too_long)
{
    int skipping = 0; /* inside an over-long line */
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl == NULL && !r->eof && (r->end - r->start) <= USAGE_CSV_MAX_LINE) {
            int rc = refill(r);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t avail = r->end - r->start;
        if (nl == NULL && avail > USAGE_CSV_MAX_LINE) {
            /* Over-long: drop what we have and keep skipping to its end. */
            skipping = 1;
            r->start = r->end;
            int rc = refill(r);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                r->line_no++;
                *line = "";
                *len = 0;
                *too_long = 1;
                return 1;
            }
            continue;
        }
        if (nl == NULL && avail == 0)
            return 0; /* end of input */
        size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : avail;
        const char *start = r->buf + r->start;
        r->start += nl ? n + 1 : n;
        r->line_no++;
        if (skipping || n > USAGE_CSV_MAX_LINE + 1) {
            *line = "";
            *len = 0;
            *too_long = 1;
            return 1;
        }
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n == 0)
            continue; /* empty line */
        *line = start;
        *len = n;
        *too_long = 0;
        return 1;
    }
}

/* Splits a CSV line into up to FIELD_COUNT fields, unquoting in place into
 * out (same size as the line). Returns the field count, or -1 when quoting
 * is broken or there are too many fields. */
static int split(const char *line, size_t len, char *out, const char *fields[FIELD_COUNT],
                 size_t lens[FIELD_COUNT])
{
    int count = 0;
    size_t i = 0, o = 0;
    for (;;) {
        if (count == FIELD_COUNT)
            return -1;
        fields[count] = out + o;
        size_t begin = o;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len)
                    return -1; /* unterminated quote */
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = line[i++];
            }
            if (i < len && line[i] != ',')
                return -1; /* text after the closing quote */
        } else {
            while (i < len && line[i] != ',') {
                if (line[i] == '"')
                    return -1;
                out[o++] = line[i++];
            }
        }
        lens[count] = o - begin;
        out[o++] = '\0';
        count++;
        if (i >= len)
            return count;
        i++; /* the comma */
        if (i == len) {
            if (count == FIELD_COUNT)
                return -1;
            fields[count] = out + o;
            lens[count] = 0;
            out[o++] = '\0';
            return count + 1;
        }
    }
}

/* split() for a line without quotes, the usual case: the fields are
 * pointed to in place (not NUL-terminated), nothing is copied. */
static int split_plain(const char *line, size_t len, const char *fields[FIELD_COUNT],
                       size_t lens[FIELD_COUNT])
{
    int count = 0;
    const char *p = line, *end = line + len;
    for (;;) {
        if (count == FIELD_COUNT)
            return -1;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        fields[count] = p;
        lens[count++] = (size_t)((comma ? comma : end) - p);
        if (comma == NULL)
            return count;
        p = comma + 1;
    }
}

int usage_csv_is_header(const char *line, size_t len)
{
    static const char header[] = "recordId,svcContNo,apnCd,usageStart,bytes";
    if (len >= 3 && (unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB &&
        (unsigned char)line[2] == 0xBF) {
        line += 3;
        len -= 3;
    }
    return len == sizeof header - 1 && memcmp(line, header, len) == 0;
}

static int all_chars(const char *s, size_t n, size_t max, const char *extra)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(extra, c) != NULL)))
            return 0;
    }
    return 1;
}

static int printable(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int parse_bytes(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 19)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        int digit = s[i] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    *out = v;
    return 1;
}

int usage_csv_parse(const char *line, size_t len, usage_record *out, char *why, size_t whylen)
{
    char copy[USAGE_CSV_MAX_LINE + 8];
    const char *f[FIELD_COUNT];
    size_t n[FIELD_COUNT];
    memset(out, 0, sizeof *out);
    if (len > USAGE_CSV_MAX_LINE) {
        snprintf(why, whylen, "line longer than %d bytes", USAGE_CSV_MAX_LINE);
        return BSS_ERR_INVALID;
    }
    int count = memchr(line, '"', len) == NULL ? split_plain(line, len, f, n)
                                                : split(line, len, copy, f, n);
    if (count >= 1 && printable(f[0], n[0], USAGE_RECORD_ID_MAX))
        memcpy(out->record_id, f[0], n[0]);
    if (count != FIELD_COUNT) {
        snprintf(why, whylen, count < 0 ? "broken quoting or more than 5 fields"
                                        : "expected 5 fields, found %d", count);
        return BSS_ERR_INVALID;
    }
    if (out->record_id[0] == '\0') {
        snprintf(why, whylen, "recordId must be 1-64 printable characters");
        return BSS_ERR_INVALID;
    }
    if (!all_chars(f[1], n[1], USAGE_SVC_CONT_NO_MAX, "._-")) {
        snprintf(why, whylen, "svcContNo must be 1-32 of [A-Za-z0-9._-]");
        return BSS_ERR_INVALID;
    }
    memcpy(out->svc_cont_no, f[1], n[1]);
    if (!all_chars(f[2], n[2], USAGE_APN_MAX, ".-")) {
        snprintf(why, whylen, "apnCd must be 1-63 of [A-Za-z0-9.-]");
        return BSS_ERR_INVALID;
    }
    memcpy(out->apn_cd, f[2], n[2]);
    if (bss_time_parse(f[3], n[3], &out->usage_ms) != BSS_OK) {
        snprintf(why, whylen, "usageStart must be ISO-8601 with an offset");
        return BSS_ERR_INVALID;
    }
    if (!parse_bytes(f[4], n[4], &out->bytes)) {
        snprintf(why, whylen, "bytes must be an integer from 0 to 9223372036854775807");
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}
