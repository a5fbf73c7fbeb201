/* consumer.c - see consumer.h. */
#include "consumer.h"

#include "bss_error.h"
#include "evpeek.h"
#include "isotime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Deliveries are applied in batches: the first one opens a write
 * transaction, each one runs inside a savepoint of it (effects, events the
 * handler appends and the inbox position), and the transaction commits when
 * the bus asks for a flush (apply(ctx, NULL): before it waits on anything
 * and before bss_bus_poll returns, see bus.h), after BATCH_MAX_EVENTS
 * deliveries or once the batch is BATCH_MAX_US old. One commit then carries
 * many events, which is what lets a consumer keep up with a busy producer.
 *
 * Exactly-once still holds because each delivery's effects and its inbox
 * position sit in the same savepoint, so any commit contains both or
 * neither, and because the bus re-reads every position from the inbox after
 * any non-OK return (a failed commit loses the whole batch, and the re-read
 * shows exactly what is durable). Errors:
 *  - BSS_ERR_INVALID from the handler: its savepoint is rolled back and the
 *    event is dead-lettered (with the inbox moved past it) in the same batch;
 *  - any other handler error: its savepoint is rolled back, what the batch
 *    applied before it is committed, and the error is returned so that the
 *    bus offers the event again from the inbox position;
 *  - SQLite rolled the whole transaction back under the handler (some I/O
 *    and memory errors do): the batch is gone, the error is returned.
 * The consumer returns non-OK only once the batch is over (committed or
 * rolled back), as bus.h requires.
 *
 * A consumer that is far behind (a month end's burst: a million events
 * waiting in the producer's log) gains nothing from committing every
 * millisecond, since nobody sees its effects before it catches up anyway,
 * and pays a WAL commit every few events. So a batch opened while the bus
 * reports more than BATCH_MAX_EVENTS events not yet applied may grow to
 * BATCH_BEHIND_EVENTS or BATCH_BEHIND_US (the bus still asks for a flush
 * before it waits, and the nng backend after each catch-up page).
 *
 * Events of a type the handler does not act on (options.types) are not
 * decoded: bss_event_peek reads their type and source, and the stream's
 * position is only remembered (`skipped`) and written to the inbox once,
 * when the batch commits, unless an applied event of the same stream writes
 * a later one first. A duplicate is recognised against that remembered
 * position as well as the stored one.
 */
#define BATCH_MAX_EVENTS 256
#define BATCH_MAX_US 1000
#define BATCH_BEHIND_EVENTS 8192
#define BATCH_BEHIND_US 100000
#define SKIP_STREAMS 16

/* A stream's position moved past skipped events, not yet in the inbox. */
typedef struct skipped_position {
    char stream[BSS_EVENT_SOURCE_MAX + 1];
    int partition;
    int64_t position;
} skipped_position;

struct bss_consumer {
    bss_consumer_options o;
    pthread_t thread;
    _Atomic int stopping;
    _Atomic long long applied;

    /* the open batch; only the consumer thread touches these */
    int batch_open;
    int batch_events;        /* deliveries in it (applied or dead-lettered) */
    int64_t batch_start_ns;  /* monotonic */
    long long batch_applied; /* counted into `applied` once committed */
    long long batch_dead;
    int batch_behind;        /* opened while far behind: the larger limits apply */
    skipped_position skipped[SKIP_STREAMS];
    int nskipped;
    int flush_failed;        /* a flush outside the bus's own failed: see consumer_main */
};

static int read_position(void *ctx, const char *stream, int partition, int64_t *position)
{
    bss_consumer *c = ctx;
    return bss_store_inbox_get(c->o.store, stream, partition, position, NULL);
}

/* 1 while SQLite still has our transaction open (it rolls back by itself on
 * some errors). */
static int transaction_alive(const bss_consumer *c)
{
    return !sqlite3_get_autocommit(bss_store_db(c->o.store));
}

/* Commits the open batch, if any. */
static int flush(bss_consumer *c)
{
    if (!c->batch_open)
        return BSS_OK;
    char err[BSS_ERRLEN];
    int rc = BSS_OK;
    for (int i = 0; rc == BSS_OK && i < c->nskipped; i++)
        rc = bss_store_inbox_set(c->o.store, c->skipped[i].stream, c->skipped[i].partition,
                                 c->skipped[i].position, err);
    c->nskipped = 0;
    c->batch_open = 0;
    if (rc == BSS_OK) {
        rc = bss_store_commit(c->o.store, err);
    } else {
        bss_store_rollback(c->o.store);
    }
    if (rc == BSS_OK) {
        atomic_fetch_add(&c->applied, c->batch_applied);
        if (c->batch_applied > 0)
            bss_metrics_counter_add(c->o.metrics, "bss_events_consumed_total", NULL,
                                    c->batch_applied);
        if (c->batch_dead > 0)
            bss_metrics_counter_add(c->o.metrics, "bss_dead_letters_total", NULL, c->batch_dead);
    } else {
        bss_log_warn(c->o.log, "committing %d applied events failed, they will be applied "
                               "again: %s",
                     c->batch_events, err);
    }
    c->batch_applied = 0;
    c->batch_dead = 0;
    c->batch_events = 0;
    return rc;
}

/* Ends the batch without keeping any of it. */
static void abort_batch(bss_consumer *c)
{
    if (c->batch_open)
        bss_store_rollback(c->o.store);
    c->batch_open = 0;
    c->batch_applied = 0;
    c->batch_dead = 0;
    c->batch_events = 0;
    c->nskipped = 0;
}

static int batch_full(const bss_consumer *c)
{
    int max_events = c->batch_behind ? BATCH_BEHIND_EVENTS : BATCH_MAX_EVENTS;
    int64_t max_ns = (int64_t)(c->batch_behind ? BATCH_BEHIND_US : BATCH_MAX_US) * 1000;
    return c->batch_events >= max_events || bss_monotonic_ns() - c->batch_start_ns >= max_ns;
}

static int open_batch(bss_consumer *c, char *err)
{
    if (c->batch_open)
        return BSS_OK;
    int rc = bss_store_begin(c->o.store, err);
    if (rc != BSS_OK)
        return rc;
    c->batch_open = 1;
    c->batch_events = 0;
    c->batch_start_ns = bss_monotonic_ns();
    c->batch_behind = bss_bus_lag(c->o.bus) > BATCH_MAX_EVENTS;
    c->nskipped = 0;
    return BSS_OK;
}

/* The remembered position of a stream moved past skipped events, or NULL. */
static skipped_position *skipped_of(bss_consumer *c, const bss_delivery *d)
{
    for (int i = 0; i < c->nskipped; i++)
        if (c->skipped[i].partition == d->partition && strcmp(c->skipped[i].stream, d->stream) == 0)
            return &c->skipped[i];
    return NULL;
}

/* Forgets the remembered position of d's stream: an applied or
 * dead-lettered event of it has just written a later one to the inbox. */
static void forget_skipped(bss_consumer *c, const bss_delivery *d)
{
    skipped_position *s = skipped_of(c, d);
    if (s != NULL)
        *s = c->skipped[--c->nskipped];
}

/* 1 when the handler wants events of this type (options.types). */
static int wanted(const bss_consumer *c, const char *type)
{
    for (size_t i = 0; i < c->o.ntypes; i++)
        if (strcmp(c->o.types[i], type) == 0)
            return 1;
    return 0;
}

/* 1 when d is an event the handler does not act on, which can be passed by
 * moving the stream's position alone: its type and source read by
 * bss_event_peek, the type not in options.types. */
static int skippable(bss_consumer *c, const bss_delivery *d)
{
    if (c->o.ntypes == 0)
        return 0;
    char type[BSS_EVENT_TYPE_MAX + 1], source[BSS_EVENT_SOURCE_MAX + 1];
    return bss_event_peek(d->payload, d->len, type, sizeof type, source, sizeof source) ==
               BSS_OK &&
           strcmp(source, d->stream) == 0 && !wanted(c, type);
}

/* Inside the batch: moves d's stream past d without applying anything. */
static int skip_delivery(bss_consumer *c, const bss_delivery *d, char *err)
{
    skipped_position *s = skipped_of(c, d);
    if (s == NULL &&
        (c->nskipped == SKIP_STREAMS || strlen(d->stream) >= sizeof c->skipped[0].stream))
        return BSS_ERR_BUSY; /* no slot for it: apply it the normal way */
    if (s != NULL && s->position >= d->position)
        return BSS_OK; /* applied (skipped) before */
    if (s == NULL) {
        int64_t stored = 0;
        int rc = bss_store_inbox_get(c->o.store, d->stream, d->partition, &stored, err);
        if (rc != BSS_OK)
            return rc;
        if (stored >= d->position)
            return BSS_OK;
        s = &c->skipped[c->nskipped++];
        snprintf(s->stream, sizeof s->stream, "%s", d->stream);
        s->partition = d->partition;
    }
    s->position = d->position;
    c->batch_applied++;
    c->batch_events++;
    return BSS_OK;
}

/* A transient failure of delivery d: keep what the batch applied before it
 * when keep_batch and SQLite still has the transaction, else drop the whole
 * batch; either way the batch is over and rc goes back to the bus. */
static int transient(bss_consumer *c, const bss_delivery *d, int rc, const char *err,
                     int keep_batch)
{
    bss_log_warn(c->o.log, "applying %s#%lld failed, will retry: %s", d->stream,
                 (long long)d->position, err);
    if (keep_batch && c->batch_open && transaction_alive(c))
        flush(c);
    else
        abort_batch(c);
    return rc != BSS_OK ? rc : BSS_ERR;
}

/* Inside the batch: records a poison event and moves the stream past it. */
static int dead_letter(bss_consumer *c, const bss_delivery *d, const char *reason, char *err)
{
    int rc = bss_store_savepoint(c->o.store, err);
    if (rc != BSS_OK)
        return rc;
    rc = bss_store_dead_letter(c->o.store, d->stream, d->partition, d->position, d->payload,
                               d->len, reason, err);
    if (rc == BSS_OK)
        rc = bss_store_inbox_set(c->o.store, d->stream, d->partition, d->position, err);
    if (rc == BSS_OK)
        rc = bss_store_savepoint_release(c->o.store, err);
    else if (bss_store_savepoint_rollback(c->o.store) != BSS_OK)
        rc = BSS_ERR_IO;
    if (rc != BSS_OK)
        return rc;
    forget_skipped(c, d);
    bss_log_error(c->o.log, "dead-lettered %s#%lld: %s", d->stream, (long long)d->position,
                  reason);
    c->batch_dead++;
    c->batch_events++;
    return BSS_OK;
}

static int apply_delivery(void *ctx, const bss_delivery *d)
{
    bss_consumer *c = ctx;
    if (d == NULL)
        return flush(c); /* the bus asks for durability (bus.h) */
    if (c->flush_failed) {
        /* A flush outside the bus failed: make the bus re-read positions. */
        c->flush_failed = 0;
        return BSS_ERR_BUSY;
    }
    if (c->batch_open && batch_full(c)) {
        int rc = flush(c);
        if (rc != BSS_OK)
            return rc;
    }
    char err[BSS_ERRLEN] = "";
    char reason[BSS_ERRLEN] = "";
    if (skippable(c, d)) {
        int rc = open_batch(c, err);
        if (rc == BSS_OK)
            rc = skip_delivery(c, d, err);
        if (rc == BSS_OK)
            return BSS_OK;
        if (rc != BSS_ERR_BUSY)
            return transient(c, d, rc, err, c->batch_open && transaction_alive(c));
    }
    bss_event *ev = NULL;
    if (bss_event_decode(d->payload, d->len, &ev, err) != BSS_OK) {
        snprintf(reason, sizeof reason, "%s", err);
    } else if (strcmp(ev->source, d->stream) != 0) {
        snprintf(reason, sizeof reason, "event source does not match its stream");
    }
    int rc = open_batch(c, err);
    if (rc != BSS_OK) {
        bss_event_free(ev);
        return transient(c, d, rc, err, 0);
    }
    int64_t stored = 0;
    rc = bss_store_inbox_get(c->o.store, d->stream, d->partition, &stored, err);
    if (rc != BSS_OK) {
        bss_event_free(ev);
        return transient(c, d, rc, err, 1);
    }
    const skipped_position *skipped = skipped_of(c, d);
    if (skipped != NULL && skipped->position > stored)
        stored = skipped->position;
    if (stored >= d->position) {
        bss_event_free(ev); /* applied before */
        return BSS_OK;
    }
    if (reason[0] == '\0') {
        rc = bss_store_savepoint(c->o.store, err);
        if (rc != BSS_OK) {
            bss_event_free(ev);
            return transient(c, d, rc, err, 1);
        }
        rc = c->o.handler(c->o.ctx, c->o.store, ev, err);
        bss_event_free(ev);
        if (rc == BSS_OK && !transaction_alive(c)) {
            bss_seterr(err, "the transaction was rolled back under the handler");
            rc = BSS_ERR_IO;
        }
        if (rc == BSS_OK)
            rc = bss_store_inbox_set(c->o.store, d->stream, d->partition, d->position, err);
        if (rc == BSS_OK)
            rc = bss_store_savepoint_release(c->o.store, err);
        if (rc == BSS_OK) {
            forget_skipped(c, d);
            c->batch_applied++;
            c->batch_events++;
            return BSS_OK;
        }
        /* Undo this delivery only; if even that fails, nothing of the batch
         * can be trusted. */
        int undone = transaction_alive(c) && bss_store_savepoint_rollback(c->o.store) == BSS_OK;
        if (rc != BSS_ERR_INVALID || !undone)
            return transient(c, d, rc, err, undone);
        snprintf(reason, sizeof reason, "%s", err);
    } else {
        bss_event_free(ev);
    }
    rc = dead_letter(c, d, reason, err);
    if (rc != BSS_OK)
        return transient(c, d, rc, err, 0);
    return BSS_OK;
}

static void *consumer_main(void *arg)
{
    bss_consumer *c = arg;
    while (!atomic_load(&c->stopping)) {
        char err[BSS_ERRLEN];
        int rc = bss_bus_poll(c->o.bus, 100, read_position, apply_delivery, c, err);
        /* The bus flushes before poll returns (bus.h); this only matters for
         * a backend that did not. If it fails, the next apply returns an
         * error so that the bus re-reads the positions. */
        if (c->batch_open && flush(c) != BSS_OK)
            c->flush_failed = 1;
        if (rc != BSS_OK) {
            bss_log_error(c->o.log, "bus poll failed: %s", err);
            break;
        }
    }
    return NULL;
}

static int64_t lag_gauge(void *ctx)
{
    const bss_consumer *c = ctx;
    return bss_bus_lag(c->o.bus);
}

int bss_consumer_start(const bss_consumer_options *options, bss_consumer **out, char *err)
{
    if (options->handler == NULL || options->store == NULL || options->bus == NULL) {
        bss_seterr(err, "a consumer needs a store, a bus and a handler");
        return BSS_ERR_INVALID;
    }
    for (size_t i = 0; i < options->nstreams; i++) {
        int rc = bss_bus_subscribe(options->bus, options->streams[i], err);
        if (rc != BSS_OK)
            return rc;
    }
    bss_consumer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    c->o = *options;
    bss_metrics_gauge_fn(c->o.metrics, "bss_consumer_lag_events", NULL, lag_gauge, c);
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        free(c);
        bss_seterr(err, "cannot start the consumer thread");
        return BSS_ERR;
    }
    *out = c;
    return BSS_OK;
}

int bss_consumer_ready(const bss_consumer *c) { return bss_bus_caught_up(c->o.bus); }

long long bss_consumer_applied(const bss_consumer *c) { return atomic_load(&c->applied); }

void bss_consumer_stop(bss_consumer *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stopping, 1);
    pthread_join(c->thread, NULL);
    free(c);
}
