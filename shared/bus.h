/*
 * bus.h - how events travel between services: one interface, several backends.
 *
 * A producer hands the bus each event it has committed, in sequence order
 * (the relay does this from the outbox). A consumer subscribes to streams
 * (one per source service) and polls; the bus calls `apply` for each event
 * in order per stream, starting after the position the consumer says it has
 * applied. Delivery is at least once: the same event may be offered again
 * after a crash or a redelivery, and the consumer makes applying idempotent
 * by recording the position in its inbox in the same transaction as the
 * effects (see consumer.h).
 *
 * Positions: a stream has partitions (nng: exactly one, numbered 0; Kafka:
 * the topic's partitions, keyed by the event's subject so one line's events
 * stay ordered). A position is the event's sequence in its source's log
 * (nng) or its offset (Kafka): consumers store it, never interpret it.
 *
 * Backends: "nng" (bus_nng.c, the embedded default) and "kafka"
 * (bus_kafka.c, on librdkafka, for services on several machines). Chosen
 * with BSS_BUS.
 *
 * Threads: publishing and announcing may be called from one thread while
 * another thread polls; each of those is single-threaded itself.
 */
#ifndef BSS_BUS_H
#define BSS_BUS_H

#include "config.h"
#include "envelope.h"
#include "evstore.h"
#include "log.h"
#include "metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bss_bus bss_bus;

typedef struct bss_bus_options {
    const char *service;      /* this process's source name */
    const bss_config *config; /* backend settings (see the backend's file) */
    const char *data_dir;     /* default addresses derive from it */
    bss_store *store;         /* this service's log, or NULL for a consumer only */
    bss_log *log;             /* may be NULL */
    bss_metrics *metrics;     /* may be NULL */
} bss_bus_options;

/* One event offered to a consumer. */
typedef struct bss_delivery {
    const char *stream;  /* the source service's name */
    int partition;       /* 0 for nng */
    int64_t position;    /* where this event sits in (stream, partition) */
    const char *payload; /* the encoded envelope (not NUL-terminated) */
    size_t len;
} bss_delivery;

/* Applies one delivery. BSS_OK means applied (or found already applied) and
 * the bus moves past it; any other code means "not now": the bus offers the
 * same event again later, after re-reading the position.
 *
 * Batching: an apply function may make its work durable in batches (the
 * consumer commits several deliveries in one transaction), so BSS_OK may
 * mean "applied, durable at the next flush". A flush is apply(ctx, NULL).
 * Whenever a delivery was applied since the last flush, the backend flushes
 * before it waits on anything (the network, e.g. a catch-up round trip),
 * before it reports a stream caught up, and before bss_bus_poll returns; a
 * flush returns BSS_OK once everything applied so far is durable. After any
 * non-OK return of apply, a flush's included, the backend trusts none of
 * the positions it keeps in memory: it re-reads every stream's position
 * through bss_bus_position_fn before offering anything more. An apply
 * function returns non-OK only with no batch left open, so that re-read
 * sees durable state. */
typedef int (*bss_bus_apply_fn)(void *ctx, const bss_delivery *d);

/* Tells the bus the last applied position of (stream, partition), 0 for none. */
typedef int (*bss_bus_position_fn)(void *ctx, const char *stream, int partition,
                                   int64_t *position);

/* Opens the backend named by config BSS_BUS (default "nng"). When
 * options->store is set the bus also serves this service's events to
 * subscribers. Returns BSS_OK, BSS_ERR_INVALID (unknown backend, bad
 * address) or BSS_ERR_IO (cannot listen). */
int bss_bus_open(const bss_bus_options *options, bss_bus **out, char *err);

/* The backend's name ("nng"). */
const char *bss_bus_backend(const bss_bus *bus);

/* Hands one committed event (ev->sequence set) to the bus; payload is its
 * encoding, subject its subject (the partition key; NULL: the backend reads
 * it from the payload when it needs one). Sequences must increase from one
 * call to the next. Returns BSS_OK once the backend has the event queued or
 * taken responsibility for it, else an error and the caller keeps the event
 * in its outbox. Whether it is safe to forget the event is what
 * bss_bus_confirm says: nng takes responsibility at once (subscribers catch
 * up from the log); Kafka only once the broker acknowledged it. */
int bss_bus_publish(bss_bus *bus, int64_t sequence, const char *subject, const char *payload,
                    size_t len, char *err);

/* Waits up to timeout_ms (0: does not wait) for the backend to confirm
 * published events and sets *confirmed to the highest sequence such that
 * every event published up to it is safe (Kafka: its delivery report came
 * back from the broker), or leaves it unchanged when nothing new is
 * confirmed. Returns BSS_OK, or BSS_ERR_IO when an event the backend had
 * taken failed for good: everything published after *confirmed must be
 * published again, in order (the backend forgets what it had pending). */
int bss_bus_confirm(bss_bus *bus, int timeout_ms, int64_t *confirmed, char *err);

/* Tells subscribers the producer's head sequence, so one that missed the
 * newest events notices and catches up (no-op on backends that need none). */
int bss_bus_announce_head(bss_bus *bus, int64_t head);

/* Subscribes to a source's stream. Call before the first poll. */
int bss_bus_subscribe(bss_bus *bus, const char *stream, char *err);

/* Waits up to timeout_ms for events and applies them, in order per stream,
 * through apply. Returns BSS_OK (also when nothing arrived) or an error for
 * a broken bus; apply failures are not errors of poll. */
int bss_bus_poll(bss_bus *bus, int timeout_ms, bss_bus_position_fn position,
                 bss_bus_apply_fn apply, void *ctx, char *err);

/* 1 once every subscribed stream has been caught up with its producer at
 * least once since open, else 0. Backends that can tell (Kafka) also give 0
 * while no progress is possible (every broker unreachable). */
int bss_bus_caught_up(const bss_bus *bus);

/* The sum over subscribed streams of (last known head - applied position). */
int64_t bss_bus_lag(const bss_bus *bus);

/* Closes sockets and stops serving; NULL is fine. */
void bss_bus_close(bss_bus *bus);

/* The backend interface, implemented by bus_nng.c and bus_kafka.c. */
typedef struct bss_bus_ops {
    const char *name;
    int (*open)(const bss_bus_options *options, void **state, char *err);
    int (*publish)(void *state, int64_t sequence, const char *subject, const char *payload,
                   size_t len, char *err);
    /* NULL: everything published is confirmed at once. */
    int (*confirm)(void *state, int timeout_ms, int64_t *confirmed, char *err);
    int (*announce_head)(void *state, int64_t head);
    int (*subscribe)(void *state, const char *stream, char *err);
    int (*poll)(void *state, int timeout_ms, bss_bus_position_fn position,
                bss_bus_apply_fn apply, void *ctx, char *err);
    int (*caught_up)(const void *state);
    int64_t (*lag)(const void *state);
    void (*close)(void *state);
} bss_bus_ops;

extern const bss_bus_ops bss_bus_nng_ops;
extern const bss_bus_ops bss_bus_kafka_ops;

#endif
