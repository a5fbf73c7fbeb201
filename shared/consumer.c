/* consumer.c - see consumer.h. */
#include "consumer.h"

#include "bss_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct bss_consumer {
    bss_consumer_options o;
    pthread_t thread;
    _Atomic int stopping;
    _Atomic long long applied;
};

static int read_position(void *ctx, const char *stream, int partition, int64_t *position)
{
    bss_consumer *c = ctx;
    return bss_store_inbox_get(c->o.store, stream, partition, position, NULL);
}

/* Records a poison event and moves the stream past it, in one transaction. */
static int dead_letter(bss_consumer *c, const bss_delivery *d, const char *reason)
{
    char err[BSS_ERRLEN];
    int rc = bss_store_begin(c->o.store, err);
    if (rc != BSS_OK)
        return rc;
    int64_t stored = 0;
    rc = bss_store_inbox_get(c->o.store, d->stream, d->partition, &stored, err);
    if (rc == BSS_OK && stored >= d->position) {
        bss_store_rollback(c->o.store);
        return BSS_OK;
    }
    if (rc == BSS_OK)
        rc = bss_store_dead_letter(c->o.store, d->stream, d->partition, d->position,
                                   d->payload, d->len, reason, err);
    if (rc == BSS_OK)
        rc = bss_store_inbox_set(c->o.store, d->stream, d->partition, d->position, err);
    if (rc != BSS_OK) {
        bss_store_rollback(c->o.store);
        return rc;
    }
    rc = bss_store_commit(c->o.store, err);
    if (rc == BSS_OK) {
        bss_log_error(c->o.log, "dead-lettered %s#%lld: %s", d->stream,
                      (long long)d->position, reason);
        bss_metrics_counter_add(c->o.metrics, "bss_dead_letters_total", NULL, 1);
    }
    return rc;
}

static int apply_delivery(void *ctx, const bss_delivery *d)
{
    bss_consumer *c = ctx;
    char err[BSS_ERRLEN] = "";
    bss_event *ev = NULL;
    if (bss_event_decode(d->payload, d->len, &ev, err) != BSS_OK)
        return dead_letter(c, d, err);
    if (strcmp(ev->source, d->stream) != 0) {
        bss_event_free(ev);
        return dead_letter(c, d, "event source does not match its stream");
    }
    int rc = bss_store_begin(c->o.store, err);
    if (rc != BSS_OK) {
        bss_event_free(ev);
        return rc;
    }
    int64_t stored = 0;
    rc = bss_store_inbox_get(c->o.store, d->stream, d->partition, &stored, err);
    if (rc == BSS_OK && stored >= d->position) {
        bss_store_rollback(c->o.store); /* applied before */
        bss_event_free(ev);
        return BSS_OK;
    }
    if (rc == BSS_OK)
        rc = c->o.handler(c->o.ctx, c->o.store, ev, err);
    if (rc == BSS_OK)
        rc = bss_store_inbox_set(c->o.store, d->stream, d->partition, d->position, err);
    if (rc == BSS_OK) {
        rc = bss_store_commit(c->o.store, err);
    } else {
        bss_store_rollback(c->o.store);
    }
    bss_event_free(ev);
    if (rc == BSS_ERR_INVALID)
        return dead_letter(c, d, err);
    if (rc != BSS_OK) {
        bss_log_warn(c->o.log, "applying %s#%lld failed, will retry: %s", d->stream,
                     (long long)d->position, err);
        return rc;
    }
    atomic_fetch_add(&c->applied, 1);
    bss_metrics_counter_add(c->o.metrics, "bss_events_consumed_total", NULL, 1);
    return BSS_OK;
}

static void *consumer_main(void *arg)
{
    bss_consumer *c = arg;
    while (!atomic_load(&c->stopping)) {
        char err[BSS_ERRLEN];
        if (bss_bus_poll(c->o.bus, 100, read_position, apply_delivery, c, err) != BSS_OK) {
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
