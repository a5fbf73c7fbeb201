/*
 * replay_format.h - how bssiot-replay prints an event: one line for people,
 * or one JSON object per line for machines.
 *
 * Text: "<time> <source>#<sequence> <type> <subject> <key data>", the time
 * ISO-8601 in the process time zone (BSS_TZ), the key data the fields of the
 * event's data that answer "what happened" (for ChargeCalculated the usage,
 * the billable and overage megabytes and every amount; for UsageRated each
 * period's bytes), as name=value. Types the tool does not know show their
 * top-level scalar fields.
 *
 * JSON: {"time","timeMs","source","sequence","type","subject","id","version",
 * "correlationId","causationId","data"}, data being the event's data object
 * verbatim (exact integers preserved).
 */
#ifndef BSS_REPLAY_FORMAT_H
#define BSS_REPLAY_FORMAT_H

#include "envelope.h"

#include <stdio.h>

/* Prints ev as one text line. `focus` (may be NULL) is the line the output is
 * about: an InvoiceIssued that lists its lines (events written before the
 * summary form) then also shows that line's own total. `line_total` (may
 * be NULL) is that total when the caller knows it from the line's charge:
 * printed as lineTotal= instead. Returns BSS_OK or BSS_ERR_IO when writing
 * fails. */
int replay_print_text(FILE *out, const bss_event *ev, const char *focus,
                      const char *line_total);

/* For a ChargeCalculated, the id of the invoice that bills the charge, by
 * billing's rule (invoice_id.h): an
 * InvoiceIssued names no line, so this is how a line's story finds its
 * invoices. Returns 1 with out set, 0 for any other event or data without
 * a customerId and a YYYY-MM period. */
int replay_charge_invoice_id(const bss_event *ev, char *out, size_t len);

/* Prints ev as one JSON object and a newline. Returns BSS_OK or BSS_ERR_IO. */
int replay_print_json(FILE *out, const bss_event *ev);

/* Writes s as a JSON string literal (quotes included). */
void replay_write_json_string(FILE *out, const char *s);

/* Formats ms like every time the tool prints (ISO-8601 with offset, BSS_TZ)
 * into out (at least 40 bytes); an unprintable instant shows as its number. */
void replay_format_time(int64_t ms, char *out, size_t outlen);

#endif
