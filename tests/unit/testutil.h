/*
 * testutil.h - helpers the service unit tests share: a scratch directory,
 * opening a store with a service's schema, applying an event through a
 * consumer handler as the consumer does and collecting what it emitted,
 * one-value queries, reading JSON members, and a small HTTP client for the
 * routes under test.
 *
 * Helpers that assert take the test's check_counts (check.h) and record
 * their CHECKs there; the others report through their result only.
 */
#ifndef BSS_TESTUTIL_H
#define BSS_TESTUTIL_H

#include "check.h"
#include "consumer.h"
#include "envelope.h"
#include "evstore.h"
#include "http.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the scratch directory and process set-up ----------------------- */

/* Makes the scratch directory from template dir ("/tmp/bss-x-XXXXXX",
 * rewritten in place), sets the billing time zone (Asia/Seoul) and
 * initialises libcurl. Returns 0, or -1 (perror'd) when mkdtemp fails. */
int tu_begin(char *dir);

/* Cleans up libcurl and removes dir with everything in it (a failure is
 * reported on stderr). */
void tu_end(const char *dir);

/* Descriptors this process has open, or -1 when /proc/self/fd cannot be
 * read: tests of pools that must not grow count them. */
int tu_open_fds(void);

/* ---- stores ---------------------------------------------------------- */

/* Opens (creating) the store at path for service `source`. Returns
 * bss_store_open's result; an error is printed on stderr. */
int tu_open_store(const char *path, const char *source, bss_store **store);

/* Runs a service's schema hook on store inside a write transaction, as
 * bss_eventcore_open does (committed on success, rolled back otherwise).
 * Returns the hook's, begin's or commit's result; errors go to stderr. */
int tu_apply_schema(bss_store *store, int (*schema)(sqlite3 *, char *));

/* The first column of the first row of sql as an integer, read in a
 * transaction that is rolled back; -1 when the query fails. */
int64_t tu_count_rows(bss_store *store, const char *sql);

/* The first text column of the first row of sql, malloc'd (or NULL). */
char *tu_query_text(bss_store *store, const char *sql);

/* ---- events ---------------------------------------------------------- */

/* Events a handler emitted (the first 64; clones, owned). */
typedef struct tu_events {
    bss_event *ev[64];
    size_t n;
} tu_events;

/* A bss_store_read_from callback appending clones to the tu_events ctx. */
int tu_collect(void *ctx, const bss_event *ev);

/* Frees the collected events; n becomes 0. */
void tu_events_free(tu_events *e);

/* A new event from `source` (CHECKed into c; NULL with the reason on
 * stderr when the envelope refuses it). The caller frees it. */
bss_event *tu_event(check_counts *c, const char *source, const char *type, const char *subject,
                    const char *data);

/* Applies ev through handler(ctx) in one transaction on store, as the
 * consumer does: commit on BSS_OK, rollback otherwise (begin and commit
 * CHECKed into c). out (freed first) receives what the handler emitted.
 * Returns the handler's result. */
int tu_apply(check_counts *c, bss_store *store, bss_handler_fn handler, void *ctx,
             const bss_event *ev, tu_events *out);

/* ---- JSON ------------------------------------------------------------ */

/* Member k of o as a string; "" when missing or not a string. */
const char *tu_jstr(const cJSON *o, const char *k);

/* Member k of o as a number; -12345 when missing or not a number. */
double tu_jnum(const cJSON *o, const char *k);

/* ---- HTTP ------------------------------------------------------------ */

/* A response body, NUL-terminated; a longer body is cut at the buffer. */
typedef struct tu_body {
    char buf[65536];
    size_t len;
} tu_body;

/* An HTTP server on 127.0.0.1 (an ephemeral port) with 4 threads for
 * `service`, not yet started; NULL (reason on stderr) on failure. */
bss_http *tu_http_new(const char *service);

/* GETs path from 127.0.0.1:port with an Accept header when accept is not
 * NULL. Returns the status (-1 when no answer), the body in *b and, when
 * ctype is not NULL, the Content-Type in ctype (128 bytes). */
long tu_http_get(int port, const char *path, const char *accept, tu_body *b, char *ctype);

#endif
