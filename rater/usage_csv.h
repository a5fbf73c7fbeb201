/*
 * usage_csv.h - the usage file format, the contract with the network's
 * mediation: CSV, UTF-8, a header line, then one record a line:
 *
 *     recordId,svcContNo,apnCd,usageStart,bytes
 *
 * recordId   1-64 printable characters, the record's unique id
 * svcContNo  the line (1-32 of [A-Za-z0-9._-])
 * apnCd      the APN the session used (1-63 of [A-Za-z0-9.-])
 * usageStart ISO-8601 with offset
 * bytes      a non-negative 64-bit integer (0 .. 9223372036854775807)
 *
 * Fields may be quoted ("..." with "" for a quote); lines end in LF or CRLF;
 * an optional UTF-8 byte order mark precedes the header; empty lines are
 * skipped. Lines longer than USAGE_CSV_MAX_LINE are malformed. The reader
 * streams: it never holds more than one buffer of the file.
 */
#ifndef RATER_USAGE_CSV_H
#define RATER_USAGE_CSV_H

#include <stddef.h>
#include <stdint.h>

#define USAGE_CSV_MAX_LINE 4096
#define USAGE_RECORD_ID_MAX 64
#define USAGE_SVC_CONT_NO_MAX 32
#define USAGE_APN_MAX 63

typedef struct usage_record {
    char record_id[USAGE_RECORD_ID_MAX + 1]; /* "" when the field itself was bad */
    char svc_cont_no[USAGE_SVC_CONT_NO_MAX + 1];
    char apn_cd[USAGE_APN_MAX + 1];
    int64_t usage_ms;
    int64_t bytes;
} usage_record;

/* Reads up to len bytes into buf; returns the count, 0 at the end, < 0 on
 * error. */
typedef long long (*usage_read_fn)(void *ctx, char *buf, size_t len);

typedef struct usage_lines {
    usage_read_fn read;
    void *ctx;
    char *buf;
    size_t cap, start, end;
    int eof;
    long long line_no;     /* physical line number of the last line returned */
} usage_lines;

/* Starts reading lines through read(ctx). Returns BSS_OK or BSS_ERR_NOMEM. */
int usage_lines_init(usage_lines *r, usage_read_fn read, void *ctx);
void usage_lines_free(usage_lines *r);

/* The next non-empty line without its line end. *line points into the
 * reader's buffer until the next call. A line over USAGE_CSV_MAX_LINE is
 * returned with *too_long = 1 and *len 0 (its bytes are skipped, not kept).
 * Returns 1 for a line, 0 at the end of the input, BSS_ERR_IO when read
 * failed. r->line_no is the line's number (the header is line 1). */
int usage_lines_next(usage_lines *r, const char **line, size_t *len, int *too_long);

/* 1 when line is the expected header (after an optional BOM on line 1). */
int usage_csv_is_header(const char *line, size_t len);

/* Parses one record line. Returns BSS_OK, or BSS_ERR_INVALID with what is
 * wrong in why (whylen bytes); out->record_id is still filled when that
 * field alone was valid, so the record can be tracked. */
int usage_csv_parse(const char *line, size_t len, usage_record *out, char *why, size_t whylen);

#endif
