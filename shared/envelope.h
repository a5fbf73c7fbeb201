/*
 * envelope.h - the event envelope every service writes, stores and publishes.
 *
 * On the wire and in logs an event is a JSON object with the CloudEvents 1.0
 * attribute names (specversion, id, source, type, subject, time,
 * datacontenttype, data) plus four extension attributes of ours, named as
 * CloudEvents requires (lowercase letters and digits only):
 *
 *   aggregateversion  the event's version within its subject's stream (1, 2 ..)
 *   sequence          the event's position in its source's log (1, 2 .. gapless)
 *   correlationid     the id shared by every event of one business flow
 *   causationid       the id of the event or request that caused this one
 *
 * `data` is always a JSON object, held here as its compact JSON text: the
 * producer's own bytes with only the whitespace between tokens removed. It is
 * never re-printed from a parsed tree, so every token survives byte for byte
 * through new, encode and decode; in particular integers beyond 2^53 (which
 * a double cannot hold) are not rounded. The decoder is the parser for every
 * event that arrives from outside a process; it validates every attribute
 * and never trusts lengths it has not checked.
 */
#ifndef BSS_ENVELOPE_H
#define BSS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define BSS_EVENT_SOURCE_MAX 32 /* bytes, without NUL */
#define BSS_EVENT_TYPE_MAX 64
#define BSS_EVENT_ID_MAX 64
#define BSS_EVENT_SUBJECT_MAX 128
#define BSS_EVENT_MAX_BYTES (1024 * 1024) /* largest encoded event accepted */

typedef struct bss_event {
    char id[BSS_EVENT_ID_MAX + 1];
    char source[BSS_EVENT_SOURCE_MAX + 1];
    char type[BSS_EVENT_TYPE_MAX + 1];
    char subject[BSS_EVENT_SUBJECT_MAX + 1];
    char correlation_id[BSS_EVENT_ID_MAX + 1]; /* "" when none */
    char causation_id[BSS_EVENT_ID_MAX + 1];   /* "" when none */
    int64_t time_ms;  /* when the event happened (the business effective time is in data) */
    int64_t version;  /* aggregate version; assigned by the store on append */
    int64_t sequence; /* per-source log position; assigned by the store on append */
    char *data;       /* compact JSON object text, owned by the event */
} bss_event;

/* Creates an event of `type` about `subject` with a fresh UUID id (version 7,
 * time-ordered: see uuid.h), the current time and `data_json` (a JSON
 * object's text, optionally surrounded by whitespace; NULL means "{}"),
 * which is validated and stored compact as described above. Source, version
 * and sequence are filled in when a store appends it. Returns NULL and fills
 * err on invalid arguments (data not one JSON object, with nothing but
 * whitespace after it). */
bss_event *bss_event_new(const char *type, const char *subject,
                         const char *data_json, char *err);

/* bss_event_new for data this program wrote itself (cJSON_PrintUnformatted,
 * or one of its JSON writers): data must be one compact JSON object, and is
 * taken as it is, without being parsed again (a month end builds a million
 * events; parsing each one's data back cost a fifth of billing's time).
 * The event owns data from now on (freed with it, or at once on failure).
 * Never for text from outside: that goes through bss_event_new. */
bss_event *bss_event_adopt(const char *type, const char *subject, char *data, char *err);

/* Makes ev a consequence of cause: the correlation id is carried over (or
 * started from cause's id) and the causation id is cause's id. */
void bss_event_caused_by(bss_event *ev, const bss_event *cause);

/* Sets the correlation id (e.g. the HTTP request id) when ev starts a flow.
 * Returns BSS_ERR_INVALID if id is longer than BSS_EVENT_ID_MAX. */
int bss_event_set_correlation(bss_event *ev, const char *id);

/* Encodes ev as compact CloudEvents JSON. Returns a malloc'd NUL-terminated
 * string (length in *len when len is not NULL) or NULL when out of memory. */
char *bss_event_encode(const bss_event *ev, size_t *len);

/* Decodes an envelope from buf[0..len) (NUL not required). Every attribute is
 * checked: specversion "1.0", non-empty id/source/type/subject within the
 * size limits above, a parseable time with offset, datacontenttype
 * "application/json" when present, data a JSON object (kept as its compact
 * text, see above), version and sequence non-negative integers. Returns BSS_OK with *out owned by the caller, or
 * BSS_ERR_INVALID / BSS_ERR_NOMEM with err filled and *out untouched. */
int bss_event_decode(const char *buf, size_t len, bss_event **out, char *err);

/* Deep copy, or NULL when out of memory. */
bss_event *bss_event_clone(const bss_event *ev);

/* Frees ev and its data; NULL is fine. */
void bss_event_free(bss_event *ev);

#endif
