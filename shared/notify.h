/*
 * notify.h - a durable queue of outbound notifications (SMS, mail, webhooks)
 * kept in a service's own store, and the worker that delivers them.
 *
 * A notification is enqueued inside the same write transaction as the state
 * change it announces, under a dedup key (e.g. "<orderId>:COMPLETED"), so it
 * exists if and only if the change committed, and a second enqueue of the
 * same key is a no-op: one change, one notification. The worker sends due
 * notifications outside any transaction, then records the outcome: sent,
 * retry later with exponential backoff (1 s doubling up to 5 min), or failed
 * for good (a permanent error or 20 attempts).
 *
 * Delivery is at least once towards the channel: a crash after the channel
 * accepted a notification and before the worker recorded it resends it once
 * on restart. Senders therefore pass the dedup key along (an Idempotency-Key
 * header for HTTP, a Message-ID for mail) so the receiver can drop the copy.
 */
#ifndef BSS_NOTIFY_H
#define BSS_NOTIFY_H

#include "evstore.h"
#include "log.h"
#include "metrics.h"

#include <sqlite3.h>

typedef struct bss_notifier bss_notifier;

/* Creates the queue's table (notifications) if missing. db is a store's
 * write connection inside a transaction, or any connection to the file. */
int bss_notify_schema(sqlite3 *db, char *err);

/* Queues a notification inside the caller's open transaction on `store`.
 * channel names the sender ("sms", "mail"); target is the address (phone,
 * e-mail); payload is the sender's input (JSON text). Returns BSS_OK, also
 * when the key was queued before (nothing changes then). */
int bss_notify_enqueue(bss_store *store, const char *channel, const char *dedup_key,
                       const char *target, const char *payload, char *err);

/* Sends one notification. Returns BSS_OK when the channel accepted it,
 * BSS_ERR_INVALID when it never will (bad address, rejected), any other
 * error to retry later. err says why. */
typedef int (*bss_notify_send_fn)(void *ctx, const char *channel, const char *dedup_key,
                                  const char *target, const char *payload, char *err);

typedef struct bss_notifier_options {
    bss_store *store;
    bss_notify_send_fn send;
    void *ctx;
    bss_log *log;         /* may be NULL */
    bss_metrics *metrics; /* may be NULL */
    int poll_ms;          /* how often to look for due notifications; 0 means 100 */
} bss_notifier_options;

/* Starts the delivery thread. */
int bss_notifier_start(const bss_notifier_options *options, bss_notifier **out, char *err);

/* Stops the thread after the notification in flight, if any; frees. NULL ok. */
void bss_notifier_stop(bss_notifier *notifier);

#endif
