/*
 * auclose.h - month-end usage close ("AU close") for a period.
 *
 * Starting a close is one transaction: the au_close row (status CLOSING),
 * which makes every later record of the period PERIOD_CLOSED, and the
 * AuCloseStarted event (carrying, for information, the rater's position in
 * the customer stream). The customer service answers it with OrdersClosed
 * (customer/handlers.h): from then on it refuses orders into the period,
 * and every order it accepted before precedes that event in its stream.
 * Only once the rater has applied OrdersClosed (so it knows every line
 * opened and every status change of the period) does the move start.
 * A worker thread then moves the period to billing in chunks: each chunk
 * transaction emits one UsageMoved per line (the line's whole period usage;
 * lines without usage but ACTIVE at any time in the period are moved with 0
 * bytes) and advances the close's cursor, so a crash resumes where it
 * stopped and no line is moved twice. The last transaction marks the close
 * CLOSED and emits AuCloseCompleted. Asking again for a period being or
 * already closed answers with that close and sends nothing.
 */
#ifndef RATER_AUCLOSE_H
#define RATER_AUCLOSE_H

#include "evstore.h"
#include "log.h"
#include "metrics.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>

typedef struct au_closer au_closer;

/* Starts the worker (it resumes unfinished closes at once). chunk_lines is
 * the number of lines moved per transaction (0 means 5000). */
int au_closer_start(bss_store *store, int chunk_lines, bss_log *log, bss_metrics *metrics,
                    au_closer **out, char *err);

/* Stops the worker after its current chunk. NULL is fine. */
void au_closer_stop(void *closer);

/* Requests the close of period "YYYY-MM". Returns BSS_OK with *status_json
 * (the close as GET shows it) and *created 1 when this call started it, 0
 * when it existed; BSS_ERR_INVALID for a malformed period; BSS_ERR_CONFLICT
 * when the period has not ended yet in the billing time zone; store errors
 * otherwise. */
int au_close_request(au_closer *closer, const char *period, cJSON **status_json, int *created,
                     char *err);

/* Records the customer service's OrdersClosed for period inside the
 * caller's transaction: the close may move the period now. A period with
 * no close is left alone. BSS_OK or BSS_ERR_IO. */
int au_close_orders_closed(sqlite3 *db, const char *period, char *err);

/* The close of a period as the API shows it: {period, status, requestedAt,
 * completedAt?, lineCount, movedCount, customerPosition, totalBytes,
 * ordersClosed}.
 * BSS_ERR_NOTFOUND when never requested. */
int au_close_status(sqlite3 *db, const char *period, cJSON **out, char *err);

#endif
