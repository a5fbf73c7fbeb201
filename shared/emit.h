/*
 * emit.h - emitting an event as the consequence of applying another one.
 *
 * A consumer handler that reacts to an event appends its own events inside
 * the same write transaction (so they commit with the domain change and the
 * inbox position), stamped as caused by the incoming event so the business
 * flow's correlation id carries through. This is that one step.
 */
#ifndef BSS_EMIT_H
#define BSS_EMIT_H

#include "envelope.h"
#include "evstore.h"

#include <cjson/cJSON.h>

/* Appends an event of `type` about `subject` with `data` (a JSON object;
 * NULL means {}) to store's open transaction, caused by `cause` (may be NULL
 * for an event that starts a flow). No version check (BSS_ANY_VERSION).
 * Returns BSS_OK, or an error from building or appending the event (err
 * filled); the transaction stays open either way. */
int bss_emit(bss_store *store, const bss_event *cause, const char *type, const char *subject,
             const cJSON *data, char *err);

/* Where an event comes from: the event that caused it, or (for an event that
 * starts a flow, e.g. from an HTTP request) just a correlation id. Both may
 * be NULL. */
typedef struct bss_emit_origin {
    const bss_event *cause;
    const char *correlation_id;
} bss_emit_origin;

/* bss_emit with optimistic concurrency: the subject must be at
 * *version (0 for a new subject), which becomes the event's version on
 * success. BSS_ERR_CONFLICT when the subject moved on. */
int bss_emit_versioned(bss_store *store, const bss_emit_origin *origin, const char *type,
                       const char *subject, int64_t *version, const cJSON *data, char *err);

#endif
