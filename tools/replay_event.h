/*
 * replay_event.h - one stored event row, checked and turned into a bss_event,
 * and the questions bssiot-replay asks of a single event.
 *
 * The replay tool reads the services' logs directly, so a row is outside
 * input: a disk error, a half-copied file or an operator's UPDATE can leave
 * anything in it. replay_event_from_row is the one place that decides
 * whether a row is an event: every column is checked (present, of the right
 * SQL type, within the envelope's size limits) and `data` must be exactly one
 * well-formed JSON object. A row that fails is reported with its reason and
 * skipped by the callers; nothing downstream ever sees an unchecked event.
 * (The libFuzzer target tests/fuzz/fuzz_replay_event.c drives this path.)
 */
#ifndef BSS_REPLAY_EVENT_H
#define BSS_REPLAY_EVENT_H

#include "envelope.h"

#include <stddef.h>
#include <stdint.h>

/* Column defects the reader found before the text columns were looked at. */
#define REPLAY_ROW_BAD_VERSION 0x1 /* `version` is not an SQL integer */
#define REPLAY_ROW_BAD_TIME 0x2    /* `time_ms` is not an SQL integer */

/* A text column: bytes and length, or text == NULL for SQL NULL. Never
 * NUL-terminated as far as the checks are concerned. */
typedef struct replay_text {
    const char *text;
    size_t len;
} replay_text;

/* The columns of one `events` row (see evstore.h), borrowed from the reader. */
typedef struct replay_row {
    int64_t sequence;
    replay_text id, type, subject, correlation_id, causation_id, data;
    int64_t version;
    int64_t time_ms;
    unsigned defects; /* REPLAY_ROW_* bits */
} replay_row;

/* Checks row and fills ev (source copied from `source`). ev->data is set to
 * a pointer into `data_buf`, a caller-owned buffer of data_cap bytes that
 * receives the data text NUL-terminated (data_cap must exceed row->data.len;
 * BSS_EVENT_MAX_BYTES + 1 always does). Returns BSS_OK, or BSS_ERR_INVALID
 * with err naming the defect ("data is not a JSON object: ... at byte 17");
 * ev's contents are then unspecified. */
int replay_event_from_row(const replay_row *row, const char *source, bss_event *ev,
                          char *data_buf, size_t data_cap, char *err);

/* 1 when text[0..len) is exactly one JSON object (RFC 8259; whitespace around
 * it allowed, nesting at most 64 deep), else 0 with *error_at set to the
 * offending byte's offset. Does not allocate. */
int replay_json_object_valid(const char *text, size_t len, size_t *error_at);

/* 1 when ev is about `value`: its subject is value, or a JSON string equal to
 * value appears anywhere in its data (e.g. InvoiceIssued's lines[].svcContNo).
 * Compares decoded strings, so escapes in data do not hide a match. */
int replay_event_mentions(const bss_event *ev, const char *value);

/* The JSON string literal of value ("\"C-1\""), as producers write it (cJSON's
 * escaping), for a fast byte search in stored data before the exact check
 * above. malloc'd; NULL when out of memory. */
char *replay_json_quote(const char *value);

#endif
