/*
 * consumer.h - applies other services' events exactly once.
 *
 * A consumer thread polls the bus for the streams it follows and applies
 * each event in a write transaction on the service's store: it checks the
 * inbox (an event at or below the recorded position was applied before:
 * skip), runs the domain handler inside a savepoint and records the new
 * position in the same savepoint. Effects, events the handler appends (with
 * their outbox rows) and the inbox position therefore commit together or not
 * at all: a crash at any instant leaves either all of them or none, and a
 * redelivered event changes nothing.
 *
 * Several events share one transaction: it commits when the bus has nothing
 * more queued (and before it waits on the network), after 256 events or
 * after 1 ms, whichever comes first; while the consumer is more than 256
 * events behind its producers, after 8192 events or 100 ms. A handler therefore sees the
 * uncommitted effects of the events before it in the batch, as it would
 * after their commits, and its effects become visible to other connections
 * only at the batch's commit.
 *
 * An event that cannot be decoded, or whose handler reports it invalid
 * (BSS_ERR_INVALID), is a poison event: its savepoint is rolled back, it is
 * written to dead_letters with its position (in the same transaction) and
 * the stream moves on. Any other handler error is transient: its savepoint
 * is rolled back, the events before it in the batch are committed, and the
 * event is offered again later.
 */
#ifndef BSS_CONSUMER_H
#define BSS_CONSUMER_H

#include "bus.h"
#include "envelope.h"
#include "evstore.h"
#include "log.h"
#include "metrics.h"

typedef struct bss_consumer bss_consumer;

/* Applies one event inside the open transaction of `store` (use
 * bss_store_db for domain tables and bss_store_append for events it causes).
 * Returns BSS_OK, BSS_ERR_INVALID for a permanent rejection (dead-lettered),
 * or another error for a transient failure (retried). Events of types the
 * handler does not care about must return BSS_OK. */
typedef int (*bss_handler_fn)(void *ctx, bss_store *store, const bss_event *ev, char *err);

typedef struct bss_consumer_options {
    bss_store *store;
    bss_bus *bus;
    const char *const *streams; /* the source services to follow */
    size_t nstreams;
    bss_handler_fn handler;
    void *ctx;
    bss_log *log;         /* may be NULL */
    bss_metrics *metrics; /* may be NULL */
    /* The event types the handler acts on. Events of any other type are not
     * decoded nor handed to the handler: the stream's position just moves
     * past them (an envelope evpeek.h cannot read goes the normal way, and
     * one of another type that it reads is passed even if bss_event_decode
     * would have dead-lettered it: the handler would have ignored it).
     * NULL / 0: every event goes to the handler. */
    const char *const *types;
    size_t ntypes;
} bss_consumer_options;

/* Subscribes to the streams and starts the consumer thread. */
int bss_consumer_start(const bss_consumer_options *options, bss_consumer **out, char *err);

/* 1 once every stream has been caught up at least once. */
int bss_consumer_ready(const bss_consumer *consumer);

/* Total events applied by this consumer since start (skipped duplicates not
 * counted). */
long long bss_consumer_applied(const bss_consumer *consumer);

/* Stops the thread after the batch being applied, if any, is committed;
 * frees. NULL fine. */
void bss_consumer_stop(bss_consumer *consumer);

#endif
