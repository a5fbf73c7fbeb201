/*
 * relay.h - moves committed events from a store's outbox onto the bus.
 *
 * One thread per producing service. It wakes on every commit that appended
 * events (or every heartbeat interval), hands the outbox's events to the bus
 * in sequence order and deletes their outbox rows only after the bus
 * confirmed them (bss_bus_confirm: nng at once, Kafka once the broker's
 * delivery report is back; what the bus lost is published again), so a
 * crash between commit and publish loses nothing: the restarted
 * relay publishes what is still in the outbox. Deleting is batched: at most
 * every 50 ms or 512 events, whichever comes first, and on stop; so after a
 * crash up to that many already-published events are published again (the
 * bus is at-least-once; consumers drop them as duplicates). It also
 * announces the log's head after every heartbeat interval without events,
 * so subscribers notice missed tails.
 */
#ifndef BSS_RELAY_H
#define BSS_RELAY_H

#include "bus.h"
#include "evstore.h"
#include "log.h"
#include "metrics.h"

typedef struct bss_relay bss_relay;

typedef struct bss_relay_options {
    bss_store *store;
    bss_bus *bus;
    bss_log *log;           /* may be NULL */
    bss_metrics *metrics;   /* may be NULL */
    int heartbeat_ms;       /* 0 means 200 */
    /* Test hook: when > 0 the process kills itself (SIGKILL) right before
     * publishing the event with this sequence, i.e. after its commit and
     * before its publish. Set from BSS_FAILPOINT_RELAY_KILL_BEFORE_SEQ. */
    long long kill_before_sequence;
} bss_relay_options;

/* Starts the relay thread. Returns BSS_OK or BSS_ERR with err filled. */
int bss_relay_start(const bss_relay_options *options, bss_relay **out, char *err);

/* Publishes what is left in the outbox (the graceful-shutdown flush),
 * deletes the outbox rows of everything published, stops the thread and
 * frees the relay. NULL is fine. */
void bss_relay_stop(bss_relay *relay);

#endif
