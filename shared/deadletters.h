/*
 * deadletters.h - the operator's view of a service's dead letters, and the
 * way to re-drive one once its cause is fixed.
 *
 * A poison event (undecodable, or rejected by the handler as invalid) is
 * kept in the store's dead_letters table with its position, and the stream
 * moves on (consumer.h). Each service exposes them under its own prefix:
 *
 *   GET  <prefix>/dead-letters[?limit=N&afterId=ID]
 *        -> 200 {"deadLetters": [{id, stream, partition, position, reason,
 *                 time, redrivenAt|null, event|null, payload}], "nextAfterId"}
 *        `event` is the decoded envelope when it decodes, `payload` the raw
 *        text (for the ones that do not); oldest first, limit 1..1000 (100).
 *   POST <prefix>/dead-letters/{id}/redrive
 *        -> 200 {id, redrivenAt}    the event was applied now, exactly once:
 *                                   the handler ran in a write transaction
 *                                   that also records the re-drive
 *           404 DEAD_LETTER_NOT_FOUND
 *           409 ALREADY_REDRIVEN    applied by an earlier re-drive
 *           422 REDRIVE_REJECTED    still undecodable, or the handler still
 *                                   rejects it (nothing changed)
 *           503 STORE_BUSY          a transient failure; retry
 *
 * Re-drives are recorded in the table dead_letter_redrives (created on
 * first use), never by editing the dead letter itself. The gateway lets
 * only operator tokens reach these routes (gateway/access.h).
 */
#ifndef BSS_DEADLETTERS_H
#define BSS_DEADLETTERS_H

#include "consumer.h"
#include "evstore.h"
#include "http.h"

#include <stdint.h>

typedef struct bss_deadletters bss_deadletters;

/* Registers the two routes under prefix ("/billings") on http, re-driving
 * through handler/ctx (the service's consumer handler). The returned object
 * must outlive the HTTP server; free it after bss_http_stop. */
int bss_deadletters_routes(bss_http *http, const char *prefix, bss_store *store,
                           bss_handler_fn handler, void *ctx, bss_deadletters **out,
                           char *err);
void bss_deadletters_free(bss_deadletters *dl);

/* Re-drives dead letter id (the route's work, for tests and tools).
 * BSS_OK, BSS_ERR_NOTFOUND, BSS_ERR_CONFLICT (already re-driven),
 * BSS_ERR_INVALID (rejected again), or a transient error. */
int bss_deadletters_redrive(bss_store *store, bss_handler_fn handler, void *ctx, int64_t id,
                            int64_t *redriven_ms, char *err);

#endif
