/*
 * usage.h - rating usage files: every record of a file is matched to its
 * line and ends in exactly one bucket, and rated usage is accumulated per
 * line and period. One file is one write transaction on the rater store:
 * its dedup keys, totals, report, rejections and UsageRated events commit
 * together, so a crash mid-file leaves nothing of it and a re-send counts
 * each record exactly once.
 *
 * Buckets, checked in this order (stable codes):
 *   MALFORMED        the line is not a valid record (the detail says why)
 *   DUPLICATE        its recordId was seen before, in this file or any
 *                    earlier one (every recordId that parses is remembered,
 *                    whatever its bucket, so re-sending a file is all
 *                    DUPLICATE)
 *   UNKNOWN_LINE     no such line
 *   APN_MISMATCH     used on an APN other than the line's apnCd
 *   LINE_NOT_ACTIVE  the line was not ACTIVE at usageStart
 *   PERIOD_CLOSED    AU close is done (or running) for the record's period
 *   rated            accumulated into (line, period)
 * The period is the calendar month of usageStart in the billing time zone.
 *
 * Events: one UsageRated per line per file, data {fileName, fileId,
 * periods: [{period, bytes, records}]}. bytes travels as a decimal string:
 * it is a 64-bit count and JSON numbers are doubles.
 */
#ifndef RATER_USAGE_H
#define RATER_USAGE_H

#include "evstore.h"
#include "usage_csv.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdint.h>

#define USAGE_FILE_NAME_MAX 200
#define USAGE_REPORT_BODY_REJECTIONS 100 /* rejections kept in a report's body */

typedef struct usage_rejection {
    long long line;
    char record_id[USAGE_RECORD_ID_MAX + 1];
    const char *reason; /* static code */
    char detail[96];
} usage_rejection;

typedef struct usage_report {
    char file_name[USAGE_FILE_NAME_MAX + 1];
    int64_t file_id;
    int64_t received_ms;
    long long records, rated, duplicates, rejected;
    usage_rejection first[USAGE_REPORT_BODY_REJECTIONS]; /* the first ones, in file order */
    size_t nfirst;
    /* Where the time went, for the log: reading and rating the records,
     * writing the totals and events, and the COMMIT. */
    int64_t records_ms, totals_ms, commit_ms;
} usage_report;

/* Identity of a spooled file, so a file ingested just before a crash is
 * recognised instead of ingested again. Zeroes for HTTP uploads. */
typedef struct usage_origin {
    const char *source;  /* "http" or "spool" */
    int64_t size;
    int64_t mtime_ns;
    int64_t file_bytes; /* the file's length when known, else 0: see usage.c */
} usage_origin;

/* Creates the usage tables (and au_close, the period close state). Called
 * from the rater's schema hook. */
int usage_schema(sqlite3 *db, char *err);

/* 1 when name is acceptable as a usage file name: 1-200 of [A-Za-z0-9._-],
 * not starting with '.'. */
int usage_file_name_valid(const char *name);

/* Rates the file read through `read` as one transaction on store. Returns
 * BSS_OK with *report filled; BSS_ERR_INVALID when the first line is not
 * the header (nothing stored; err says so); BSS_ERR_IO when reading failed;
 * BSS_ERR_BUSY / others when the store failed (nothing stored). */
int usage_ingest(bss_store *store, const char *file_name, const usage_origin *origin,
                 usage_read_fn read, void *ctx, usage_report *report, char *err);

/* The report as the API shows it: {fileName, fileId, receivedAt, records,
 * rated, duplicates, rejected, rejections: [{line, recordId, reason,
 * detail}]} with at most max_rejections entries (the rest are in the store).
 * NULL on no memory. */
cJSON *usage_report_json(const usage_report *report, size_t max_rejections);

/* The latest stored report for file name `name`, with every rejection.
 * BSS_ERR_NOTFOUND when no file of that name was ever rated. */
int usage_report_load(sqlite3 *db, const char *name, cJSON **out, char *err);

/* The stored report of a spooled file with this identity, if it was
 * ingested already: BSS_OK with *out, or BSS_ERR_NOTFOUND. */
int usage_report_find_spooled(sqlite3 *db, const char *name, int64_t size, int64_t mtime_ns,
                              cJSON **out, char *err);

/* A line's accumulated usage: every period ({period, bytes, records,
 * closed}) as a new array, newest first. */
int usage_periods_json(sqlite3 *db, const char *svc_cont_no, cJSON **out, char *err);

/* One period of a line: {svcContNo, period, bytes, records, closed}; a
 * period with no usage gives zeros. */
int usage_period_json(sqlite3 *db, const char *svc_cont_no, const char *period, cJSON **out,
                      char *err);

/* Adds a 64-bit count to obj exactly (as a raw JSON number). */
void usage_add_count(cJSON *obj, const char *name, int64_t value);

#endif
