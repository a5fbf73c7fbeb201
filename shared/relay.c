/* relay.c - see relay.h. */
#include "relay.h"

#include "bss_error.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_BATCH 512

struct bss_relay {
    bss_relay_options o;
    pthread_t thread;
    _Atomic int stopping;
};

typedef struct publish_ctx {
    bss_relay *relay;
    int64_t last_published;
    int failed;
    char err[BSS_ERRLEN];
} publish_ctx;

static int publish_record(void *ctx, int64_t sequence, const char *json, size_t len)
{
    publish_ctx *p = ctx;
    if (p->relay->o.kill_before_sequence > 0 && sequence == p->relay->o.kill_before_sequence)
        raise(SIGKILL);
    if (bss_bus_publish(p->relay->o.bus, sequence, NULL, json, len, p->err) != BSS_OK) {
        p->failed = 1;
        return 1;
    }
    p->last_published = sequence;
    return 0;
}

/* Publishes one batch; returns how many events went out, or -1 on error. */
static int drain_once(bss_relay *r)
{
    publish_ctx p = {r, 0, 0, ""};
    char err[BSS_ERRLEN];
    int rc = bss_store_outbox_read(r->o.store, RELAY_BATCH, publish_record, &p, err);
    if (p.last_published > 0) {
        int ack = bss_store_outbox_ack(r->o.store, p.last_published, err);
        if (ack != BSS_OK)
            bss_log_warn(r->o.log, "outbox ack failed (will resend): %s", err);
    }
    if (rc != BSS_OK) {
        bss_log_warn(r->o.log, "outbox read failed: %s", err);
        return -1;
    }
    if (p.failed) {
        bss_log_warn(r->o.log, "publish failed (will retry): %s", p.err);
        return -1;
    }
    return p.last_published > 0 ? 1 : 0;
}

static void announce_head(bss_relay *r)
{
    int64_t head = 0;
    if (bss_store_head(r->o.store, &head, NULL) == BSS_OK && head > 0)
        bss_bus_announce_head(r->o.bus, head);
}

static void *relay_main(void *arg)
{
    bss_relay *r = arg;
    uint64_t generation = 0;
    while (!atomic_load(&r->stopping)) {
        int published = drain_once(r);
        if (published > 0)
            continue;
        int rc = bss_store_wait_commit(r->o.store, &generation, r->o.heartbeat_ms);
        if (rc == BSS_ERR_TIMEOUT)
            announce_head(r);
        else if (rc == BSS_ERR_CLOSED)
            break;
    }
    while (drain_once(r) > 0)
        ; /* graceful flush */
    announce_head(r);
    return NULL;
}

int bss_relay_start(const bss_relay_options *options, bss_relay **out, char *err)
{
    bss_relay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    r->o = *options;
    if (r->o.heartbeat_ms <= 0)
        r->o.heartbeat_ms = 200;
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        free(r);
        bss_seterr(err, "cannot start the relay thread");
        return BSS_ERR;
    }
    *out = r;
    return BSS_OK;
}

void bss_relay_stop(bss_relay *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, 1);
    bss_store_wake_all(r->o.store);
    pthread_join(r->thread, NULL);
    free(r);
}
