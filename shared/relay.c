/*
 * relay.c - see relay.h.
 *
 * The relay keeps three marks: `published`, the last sequence handed to the
 * bus; `confirmed`, the last one up to which the bus confirmed every event
 * (bss_bus_confirm: at once on nng, after the broker's delivery report on
 * Kafka); and `acked`, the last one whose outbox row was deleted. It reads
 * only the outbox entries after `published` (through a feed: its own read
 * connection with statements prepared once), so acknowledging can lag
 * behind publishing. Acknowledging is a write transaction that competes with
 * the service's own appends for the write lock and the WAL, so it is done at
 * most every ACK_EVERY_MS or ACK_EVERY_EVENTS events, whichever comes first,
 * and always before the relay stops. The outbox contract: a row is deleted
 * only after its event was confirmed. When the bus reports that an event it
 * had taken failed for good, `published` goes back to `confirmed` and
 * everything after it is published again, in order. A crash re-publishes
 * what was published but not yet acknowledged; consumers drop those as
 * duplicates (their inbox position, or on Kafka the event's source
 * sequence, is already past them).
 */
#include "relay.h"

#include "bss_error.h"
#include "isotime.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_BATCH 512
#define ACK_EVERY_EVENTS 512
#define ACK_EVERY_MS 50
#define CONFIRM_WAIT_MS 20   /* longest wait for confirmations before re-reading the outbox */
#define STOP_CONFIRM_MS 5000 /* how long a stopping relay waits for the last confirmations */

struct bss_relay {
    bss_relay_options o;
    pthread_t thread;
    _Atomic int stopping;
    bss_store_feed *feed; /* NULL: read through the store's pool instead */
    int64_t published;    /* last sequence handed to the bus */
    int64_t confirmed;    /* every event up to here is confirmed by the bus */
    int64_t acked;        /* outbox rows up to here are deleted */
    int64_t acked_ms;     /* monotonic time of the last ack (or of start) */
};

typedef struct publish_ctx {
    bss_relay *relay;
    int count;
    int failed;
    char err[BSS_ERRLEN];
} publish_ctx;

static int publish_record(void *ctx, int64_t sequence, const char *json, size_t len)
{
    publish_ctx *p = ctx;
    bss_relay *r = p->relay;
    if (sequence <= r->published)
        return 0; /* published, not yet acked (only when reading without a feed) */
    if (r->o.kill_before_sequence > 0 && sequence == r->o.kill_before_sequence)
        raise(SIGKILL);
    if (bss_bus_publish(r->o.bus, sequence, NULL, json, len, p->err) != BSS_OK) {
        p->failed = 1;
        return 1;
    }
    r->published = sequence;
    p->count++;
    return 0;
}

/* Collects the bus's confirmations, waiting up to timeout_ms. When the bus
 * lost events it had taken, publishing starts again after the last
 * confirmed one. */
static void collect_confirmations(bss_relay *r, int timeout_ms)
{
    char err[BSS_ERRLEN] = "";
    if (r->published <= r->confirmed)
        return;
    if (bss_bus_confirm(r->o.bus, timeout_ms, &r->confirmed, err) != BSS_OK) {
        bss_log_warn(r->o.log, "the bus lost events after sequence %lld, publishing them "
                               "again: %s",
                     (long long)r->confirmed, err);
        r->published = r->confirmed;
    }
}

/* Deletes the outbox rows of everything confirmed so far. */
static void ack(bss_relay *r)
{
    char err[BSS_ERRLEN];
    if (r->confirmed <= r->acked)
        return;
    if (bss_store_outbox_ack(r->o.store, r->confirmed, err) != BSS_OK) {
        bss_log_warn(r->o.log, "outbox ack failed (will retry): %s", err);
        return;
    }
    r->acked = r->confirmed;
    r->acked_ms = bss_monotonic_ms();
}

static int ack_due(const bss_relay *r, int64_t now)
{
    return r->confirmed > r->acked &&
           (r->confirmed - r->acked >= ACK_EVERY_EVENTS || now - r->acked_ms >= ACK_EVERY_MS);
}

/* Publishes one batch; returns how many events went out, or -1 on error. */
static int drain_once(bss_relay *r)
{
    publish_ctx p = {r, 0, 0, ""};
    char err[BSS_ERRLEN];
    int rc = r->feed != NULL
                 ? bss_store_feed_outbox(r->feed, r->published, RELAY_BATCH, publish_record, &p,
                                         err)
                 : bss_store_outbox_read(r->o.store, RELAY_BATCH, publish_record, &p, err);
    if (rc != BSS_OK) {
        bss_log_warn(r->o.log, "outbox read failed: %s", err);
        return -1;
    }
    if (p.failed) {
        bss_log_warn(r->o.log, "publish failed (will retry): %s", p.err);
        return -1;
    }
    return p.count;
}

static void announce_head(bss_relay *r)
{
    int64_t head = 0;
    int rc = r->feed != NULL ? bss_store_feed_head(r->feed, &head, NULL)
                             : bss_store_head(r->o.store, &head, NULL);
    if (rc == BSS_OK && head > 0)
        bss_bus_announce_head(r->o.bus, head);
}

static void *relay_main(void *arg)
{
    bss_relay *r = arg;
    char err[BSS_ERRLEN];
    if (bss_store_feed_open(r->o.store, &r->feed, err) != BSS_OK) {
        bss_log_warn(r->o.log, "relay without its own connection: %s", err);
        r->feed = NULL;
    }
    uint64_t generation = 0;
    int64_t quiet_since = bss_monotonic_ms(); /* last publish or heartbeat */
    r->acked_ms = quiet_since;
    while (!atomic_load(&r->stopping)) {
        int published = drain_once(r);
        collect_confirmations(r, 0);
        int64_t now = bss_monotonic_ms();
        if (published > 0)
            quiet_since = now;
        if (ack_due(r, now))
            ack(r);
        if (published > 0)
            continue;
        int timeout = r->o.heartbeat_ms - (int)(now - quiet_since);
        if (r->published > r->confirmed) {
            /* The bus still owes confirmations (Kafka's delivery reports):
             * wait for them instead of for a commit, briefly, so that new
             * outbox entries are still picked up soon. */
            collect_confirmations(r, CONFIRM_WAIT_MS);
            continue;
        }
        if (r->confirmed > r->acked) {
            int until_ack = ACK_EVERY_MS - (int)(now - r->acked_ms);
            if (until_ack < timeout)
                timeout = until_ack;
        }
        if (timeout < 1)
            timeout = 1;
        int rc = bss_store_wait_commit(r->o.store, &generation, timeout);
        if (rc == BSS_ERR_CLOSED)
            break;
        now = bss_monotonic_ms();
        if (rc == BSS_ERR_TIMEOUT && now - quiet_since >= r->o.heartbeat_ms) {
            announce_head(r);
            quiet_since = now;
        }
    }
    while (drain_once(r) > 0)
        ; /* graceful flush */
    int64_t give_up = bss_monotonic_ms() + STOP_CONFIRM_MS;
    while (r->published > r->confirmed && bss_monotonic_ms() < give_up) {
        collect_confirmations(r, 100);
        if (r->published == r->confirmed)
            break;
        while (drain_once(r) > 0)
            ; /* republish what the bus lost, if it did */
    }
    ack(r);
    announce_head(r);
    bss_store_feed_close(r->feed);
    r->feed = NULL;
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
