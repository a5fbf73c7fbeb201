/*
 * mypage.h - the mypage service: the live side of the "my page" read model
 * (the consumer's handler, folding events with projection.h) and its read
 * side (GET /mypage/{customerId}).
 *
 * Reads are the hot path, so the read side does not go through cJSON or the
 * store's shared reader pool: it keeps its own read connections, each with
 * its statements prepared once and a reply buffer that is reused, and
 * answers each request from one read transaction on one of them (so a reply
 * never mixes two states of the store, and never shows half of a batch the
 * consumer has not committed).
 *
 * The view, for a customer the projection knows (a line or an invoice):
 *
 *   {"customerId": "C-1",
 *    "lines": [{"svcContNo", "productCd", "productNm",
 *               "svcContStatus" (null until the first status change),
 *               "apnCd",
 *               "currentUsage": {"period", "bytes", "closed"} or null,
 *               "lastOrder": {"orderId", "type", "status", "reason"?}}, ...],
 *    "invoices": [{"invoiceId", "period", "total", "status"}, ...],
 *    "asOf": "2026-10-05T10:15:00.123+09:00"}
 *
 * lines are ordered by svcContNo, invoices by period then invoiceId.
 * currentUsage is the line's latest period with rated usage (UsageRated):
 * the bytes summed over every usage file rated for that period; `closed`
 * tells that AU close has started for it, so the figure is final. null when
 * no usage was ever rated for the line. asOf is the time (event time, in the
 * billing time zone) of the latest event that changed anything this view
 * shows: a line's order or status, its usage, an invoice.
 */
#ifndef BSS_MYPAGE_H
#define BSS_MYPAGE_H

#include "cache.h"
#include "envelope.h"
#include "evstore.h"
#include "http.h"
#include "projection.h"

#include <pthread.h>
#include <stddef.h>

/* ---- live side --------------------------------------------------------- */

/* The consumer's handler context. */
typedef struct mypage_live {
    pthread_mutex_t lock;          /* the handler vs. mypage_live_stop */
    mypage_projection *projection; /* on the store's write connection */
    mypage_cache *cache;           /* told which pages each event changes; may be NULL */
    int stopped;
} mypage_live;

/* Initializes live (nothing to free until the first event). cache (may be
 * NULL) is the read side's page cache: the handler notes in it every
 * customer whose view an event changes (cache.h). */
void mypage_live_init(mypage_live *live, mypage_cache *cache);

/* A bss_handler_fn: applies ev with the projection, statements kept on the
 * store's write connection, noting in the cache the customers whose view
 * it may change (a line's or an invoice's customer, before and after; every
 * customer for AuCloseStarted). Returns what mypage_projection_apply
 * returns. */
int mypage_live_handle(void *live, bss_store *store, const bss_event *ev, char *err);

/* Finalizes the kept statements so the store can close its connection;
 * events applied after this (the consumer's last batch) prepare their
 * statements per event. Run it before the store closes (a shutdown hook
 * registered after bss_eventcore_close). */
void mypage_live_stop(void *live);

/* Releases live once the consumer has stopped (after bss_eventcore_close). */
void mypage_live_destroy(mypage_live *live);

/* ---- read side --------------------------------------------------------- */

typedef struct mypage_reads mypage_reads;

/* Prepares the read side on the file of store (whose schema must exist):
 * opens its four read connections, all it ever keeps open; a request that
 * finds the four lent out waits for one. cache (may be NULL) serves pages rendered before (cache.h); the
 * caller keeps it alive until mypage_reads_close. Returns BSS_OK,
 * BSS_ERR_IO or BSS_ERR_NOMEM (err filled). */
int mypage_reads_open(bss_store *store, mypage_cache *cache, mypage_reads **out, char *err);

/* Closes every read connection. No read may be running. NULL is fine.
 * Suits bss_service_add_shutdown (the HTTP server has stopped by then). */
void mypage_reads_close(void *reads);

/* Renders the view of customer_id (see above) from one read transaction
 * on a reader of the pool (waiting while all four are lent out: a caller
 * must not hold a lease when it calls this).
 * On BSS_OK *json points to *len bytes (NUL-terminated) that stay valid
 * until mypage_reads_done(reads, *lease); pass *lease back in every case
 * where it was set. Returns BSS_OK, BSS_ERR_NOTFOUND when the projection
 * knows nothing of the customer, BSS_ERR_IO (the store could not be read)
 * or BSS_ERR_NOMEM, with err filled. */
typedef struct mypage_reader mypage_reader;
int mypage_reads_render(mypage_reads *reads, const char *customer_id, mypage_reader **lease,
                        const char **json, size_t *len, char *err);
void mypage_reads_done(mypage_reads *reads, mypage_reader *lease);

/* Registers GET /mypage/{customerId}: 200 with the view, 404
 * CUSTOMER_NOT_FOUND, 503 STORE_UNAVAILABLE. reads must outlive the server. */
int mypage_routes_register(bss_http *http, mypage_reads *reads, char *err);

#endif
