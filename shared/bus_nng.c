/*
 * bus_nng.c - the embedded bus backend on nng.
 *
 * A producer listens on two sockets: PUB, on which the relay pushes every
 * event as soon as it is committed (low latency, best effort: nng drops
 * messages for a slow or absent subscriber), and REP, which serves "events
 * after sequence N" straight from the producer's log. A consumer dials the
 * PUB of every stream it follows on one SUB socket and applies pushed events
 * whose position is exactly the next one it expects. Anything else is a
 * signal: an older position is a duplicate and is dropped; a newer one, a
 * heartbeat showing a head beyond what was applied, a failed apply or a quiet
 * period all make the consumer catch up over REQ/REP from its own applied
 * position. The log is the truth; the push is only a fast path. So every
 * event reaches every subscriber, in order, whatever was dropped.
 *
 * Configuration (bss_config keys; STREAM is the upper-cased service name):
 *   BSS_BUS_<STREAM>_PUB  publisher address, default ipc://<data_dir>/run/<stream>.pub
 *   BSS_BUS_<STREAM>_REP  catch-up address,  default ipc://<data_dir>/run/<stream>.rep
 * Any nng transport address works (tcp://host:port across machines).
 */
#include "bus.h"

#include "bss_error.h"
#include "busframe.h"
#include "isotime.h"

#include <ctype.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_STREAMS 16
#define CATCHUP_BATCH 1024
#define CATCHUP_RETRY_MS 250   /* after a failed catch-up (producer down) */
#define CATCHUP_IDLE_MS 2000   /* safety net: catch up when nothing was heard */
#define URL_MAX 600
#define PUB_SENDBUF 1024       /* messages queued per subscriber before drops */

typedef struct stream_state {
    char name[BSS_EVENT_SOURCE_MAX + 1];
    nng_socket req;
    int position_known;
    _Atomic int64_t applied; /* last applied position (read by lag()) */
    _Atomic int64_t head;  /* highest position the producer has announced */
    int need_catchup;
    int caught_up_once;
    int64_t next_attempt_ms; /* no catch-up attempt before this (monotonic) */
    int failed_catchups;     /* consecutive failed catch-up round trips */
    int64_t last_heard_ms;
} stream_state;

typedef struct nng_bus {
    char service[BSS_EVENT_SOURCE_MAX + 1];
    const bss_config *config;
    char data_dir[512];
    bss_store *store;
    bss_log *log;
    bss_metrics *metrics;

    /* producer side */
    int producing;
    nng_socket pub;
    nng_socket rep;
    pthread_t rep_thread;
    _Atomic int stopping;

    /* consumer side */
    int has_sub;
    nng_socket sub;
    stream_state streams[MAX_STREAMS];
    int nstreams;
    _Atomic int all_caught_up;
    int unflushed; /* a delivery was applied since the last flush (see bus.h) */
} nng_bus;

static void address_for(const nng_bus *b, const char *stream, const char *kind, char *out,
                        size_t cap)
{
    char key[96];
    size_t n = (size_t)snprintf(key, sizeof key, "BSS_BUS_%s_%s", stream, kind);
    for (size_t i = 0; i < n && i < sizeof key; i++)
        key[i] = key[i] == '-' ? '_' : (char)toupper((unsigned char)key[i]);
    const char *configured = bss_config_get(b->config, key, NULL);
    if (configured != NULL && configured[0] != '\0')
        snprintf(out, cap, "%s", configured);
    else
        snprintf(out, cap, "ipc://%s/run/%s.%s", b->data_dir, stream,
                 strcmp(kind, "PUB") == 0 ? "pub" : "rep");
}

static int nng_fail(char *err, const char *what, const char *url, int rv)
{
    bss_seterr(err, "%s %s: %s", what, url ? url : "", nng_strerror(rv));
    return BSS_ERR_IO;
}

/* Serves catch-up requests from the log until the bus closes. */
struct reply_buf {
    char *data;
    size_t len, cap;
    int failed;
};

static int reply_append(struct reply_buf *r, const char *s, size_t n)
{
    if (r->failed)
        return 1;
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        char *p = realloc(r->data, cap);
        if (p == NULL) {
            r->failed = 1;
            return 1;
        }
        r->data = p;
        r->cap = cap;
    }
    memcpy(r->data + r->len, s, n);
    r->len += n;
    return 0;
}

struct reply_ctx {
    struct reply_buf body;
    int count;
};

static int collect_record(void *ctx, int64_t sequence, const char *json, size_t len)
{
    struct reply_ctx *rc = ctx;
    char header[48];
    int n = snprintf(header, sizeof header, "%lld %zu\n", (long long)sequence, len);
    if (reply_append(&rc->body, header, (size_t)n) || reply_append(&rc->body, json, len))
        return 1;
    rc->count++;
    return 0;
}

static void serve_one(nng_bus *b, bss_store_feed *feed, const char *req, size_t len)
{
    int64_t after = 0;
    int limit = 0;
    char err[BSS_ERRLEN] = "";
    struct reply_ctx rc = {{0}, 0};
    char head[32];
    int status = bss_catchup_request_parse(req, len, &after, &limit);
    if (status == BSS_OK)
        status = feed != NULL
                     ? bss_store_feed_read_raw(feed, after, (size_t)limit, collect_record, &rc, err)
                     : bss_store_read_raw(b->store, after, (size_t)limit, collect_record, &rc,
                                          err);
    if (status != BSS_OK || rc.body.failed) {
        char msg[BSS_ERRLEN + 8];
        int n = snprintf(msg, sizeof msg, "ERR %s", err[0] ? err : "bad request");
        nng_send(b->rep, msg, (size_t)n, 0);
        free(rc.body.data);
        return;
    }
    int n = snprintf(head, sizeof head, "OK %d\n", rc.count);
    nng_msg *msg = NULL;
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, head, (size_t)n) != 0 ||
        (rc.body.len && nng_msg_append(msg, rc.body.data, rc.body.len) != 0)) {
        nng_msg_free(msg);
        free(rc.body.data);
        return;
    }
    free(rc.body.data);
    if (nng_sendmsg(b->rep, msg, 0) != 0)
        nng_msg_free(msg); /* still ours after a failed send */
}

static void *rep_main(void *arg)
{
    nng_bus *b = arg;
    /* This thread's own read connection, statements prepared once; without
     * one (cannot open) it reads through the store's pool instead. */
    bss_store_feed *feed = NULL;
    char err[BSS_ERRLEN];
    if (bss_store_feed_open(b->store, &feed, err) != BSS_OK)
        bss_log_warn(b->log, "catch-up server without its own connection: %s", err);
    while (!atomic_load(&b->stopping)) {
        char *buf = NULL;
        size_t len = 0;
        int rv = nng_recv(b->rep, &buf, &len, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break; /* closed */
        serve_one(b, feed, buf, len);
        nng_free(buf, len);
    }
    bss_store_feed_close(feed);
    return NULL;
}

static int ensure_run_dir(const nng_bus *b, char *err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/run", b->data_dir);
    if (mkdir(b->data_dir, 0755) != 0 && errno != EEXIST) {
        bss_seterr(err, "mkdir %s: %s", b->data_dir, strerror(errno));
        return BSS_ERR_IO;
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        bss_seterr(err, "mkdir %s: %s", path, strerror(errno));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

static int start_producer(nng_bus *b, char *err)
{
    char url[URL_MAX];
    int rv;
    int rc = ensure_run_dir(b, err);
    if (rc != BSS_OK)
        return rc;
    address_for(b, b->service, "PUB", url, sizeof url);
    if ((rv = nng_pub0_open(&b->pub)) != 0)
        return nng_fail(err, "open pub", NULL, rv);
    /* nng's default queue of 16 messages per subscriber overflows on every
     * burst the relay publishes; each drop then costs the subscriber a
     * catch-up round trip. */
    nng_socket_set_int(b->pub, NNG_OPT_SENDBUF, PUB_SENDBUF);
    if ((rv = nng_listen(b->pub, url, NULL, 0)) != 0) {
        nng_close(b->pub);
        return nng_fail(err, "listen", url, rv);
    }
    address_for(b, b->service, "REP", url, sizeof url);
    if ((rv = nng_rep0_open(&b->rep)) != 0) {
        nng_close(b->pub);
        return nng_fail(err, "open rep", NULL, rv);
    }
    nng_socket_set_ms(b->rep, NNG_OPT_RECVTIMEO, 200);
    nng_socket_set_ms(b->rep, NNG_OPT_SENDTIMEO, 1000);
    if ((rv = nng_listen(b->rep, url, NULL, 0)) != 0) {
        nng_close(b->pub);
        nng_close(b->rep);
        return nng_fail(err, "listen", url, rv);
    }
    if (pthread_create(&b->rep_thread, NULL, rep_main, b) != 0) {
        nng_close(b->pub);
        nng_close(b->rep);
        bss_seterr(err, "cannot start the catch-up server thread");
        return BSS_ERR;
    }
    b->producing = 1;
    return BSS_OK;
}

static int nngb_open(const bss_bus_options *o, void **state, char *err)
{
    if (o->service == NULL || o->service[0] == '\0' ||
        strlen(o->service) > BSS_EVENT_SOURCE_MAX || o->data_dir == NULL) {
        bss_seterr(err, "the nng bus needs a service name and a data dir");
        return BSS_ERR_INVALID;
    }
    nng_bus *b = calloc(1, sizeof *b);
    if (b == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    snprintf(b->service, sizeof b->service, "%s", o->service);
    snprintf(b->data_dir, sizeof b->data_dir, "%s", o->data_dir);
    b->config = o->config;
    b->store = o->store;
    b->log = o->log;
    b->metrics = o->metrics;
    atomic_store(&b->all_caught_up, 1);
    if (b->store != NULL) {
        int rc = start_producer(b, err);
        if (rc != BSS_OK) {
            free(b);
            return rc;
        }
    }
    *state = b;
    return BSS_OK;
}

static int send_frame(nng_bus *b, char kind, int64_t position, const char *payload, size_t len,
                      char *err)
{
    char header[BSS_EVENT_SOURCE_MAX + 48];
    int n = bss_frame_header(header, sizeof header, kind, b->service, position);
    nng_msg *msg = NULL;
    if (n < 0 || nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, header, (size_t)n) != 0 ||
        (len > 0 && nng_msg_append(msg, payload, len) != 0)) {
        nng_msg_free(msg);
        bss_seterr(err, "cannot build a frame");
        return BSS_ERR_NOMEM;
    }
    int rv = nng_sendmsg(b->pub, msg, 0);
    if (rv != 0) {
        nng_msg_free(msg);
        return nng_fail(err, "publish", NULL, rv);
    }
    return BSS_OK;
}

static int nngb_publish(void *state, int64_t sequence, const char *subject, const char *payload,
                        size_t len, char *err)
{
    nng_bus *b = state;
    (void)subject; /* one partition: order is the log's order */
    if (!b->producing) {
        bss_seterr(err, "this bus was opened without a store to publish from");
        return BSS_ERR_INVALID;
    }
    int rc = send_frame(b, 'E', sequence, payload, len, err);
    if (rc == BSS_OK)
        bss_metrics_counter_add(b->metrics, "bss_events_published_total", NULL, 1);
    return rc;
}

static int nngb_announce_head(void *state, int64_t head)
{
    nng_bus *b = state;
    if (!b->producing)
        return BSS_ERR_INVALID;
    return send_frame(b, 'H', head, NULL, 0, NULL);
}

static stream_state *find_stream(nng_bus *b, const char *name)
{
    for (int i = 0; i < b->nstreams; i++)
        if (strcmp(b->streams[i].name, name) == 0)
            return &b->streams[i];
    return NULL;
}

/* Opens the stream's REQ socket and dials the producer's catch-up address. */
static int open_catchup_socket(const nng_bus *b, stream_state *s, char *err)
{
    char url[URL_MAX];
    int rv;
    address_for(b, s->name, "REP", url, sizeof url);
    if ((rv = nng_req0_open(&s->req)) != 0)
        return nng_fail(err, "open req", NULL, rv);
    nng_socket_set_ms(s->req, NNG_OPT_SENDTIMEO, 200);
    nng_socket_set_ms(s->req, NNG_OPT_RECVTIMEO, 2000);
    nng_socket_set_ms(s->req, NNG_OPT_REQ_RESENDTIME, 1000);
    nng_socket_set_ms(s->req, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(s->req, NNG_OPT_RECONNMAXT, 500);
    if ((rv = nng_dial(s->req, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        nng_close(s->req);
        return nng_fail(err, "dial", url, rv);
    }
    return BSS_OK;
}

static int nngb_subscribe(void *state, const char *stream, char *err)
{
    nng_bus *b = state;
    char url[URL_MAX];
    int rv;
    if (find_stream(b, stream) != NULL)
        return BSS_OK;
    if (b->nstreams == MAX_STREAMS || strlen(stream) > BSS_EVENT_SOURCE_MAX) {
        bss_seterr(err, "cannot subscribe to %s: too many streams or name too long", stream);
        return BSS_ERR_INVALID;
    }
    if (!b->has_sub) {
        if ((rv = nng_sub0_open(&b->sub)) != 0)
            return nng_fail(err, "open sub", NULL, rv);
        nng_socket_set(b->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
        nng_socket_set_int(b->sub, NNG_OPT_RECVBUF, 8192);
        nng_socket_set_ms(b->sub, NNG_OPT_RECONNMINT, 20);
        nng_socket_set_ms(b->sub, NNG_OPT_RECONNMAXT, 500);
        b->has_sub = 1;
    }
    stream_state *s = &b->streams[b->nstreams];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", stream);
    address_for(b, stream, "PUB", url, sizeof url);
    if ((rv = nng_dial(b->sub, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
        return nng_fail(err, "dial", url, rv);
    int rc = open_catchup_socket(b, s, err);
    if (rc != BSS_OK)
        return rc;
    s->need_catchup = 1;
    b->nstreams++;
    atomic_store(&b->all_caught_up, 0);
    return BSS_OK;
}

typedef struct apply_ctx {
    nng_bus *bus;
    stream_state *stream;
    bss_bus_apply_fn apply;
    void *ctx;
    int failed;
} apply_ctx;

/* After any failed apply or flush: what this bus holds as applied may not
 * be durable (a batch was rolled back), so forget every stream's position,
 * re-read them all from the consumer's inbox and catch up from there after
 * a pause. */
static void forget_positions(nng_bus *b)
{
    int64_t retry = bss_monotonic_ms() + CATCHUP_RETRY_MS;
    for (int i = 0; i < b->nstreams; i++) {
        b->streams[i].position_known = 0;
        b->streams[i].need_catchup = 1;
        b->streams[i].next_attempt_ms = retry;
    }
    b->unflushed = 0;
}

/* Asks the consumer to make what it applied durable (apply(ctx, NULL), see
 * bus.h). Returns BSS_OK, or its error after forgetting every position. */
static int flush(nng_bus *b, bss_bus_apply_fn apply, void *ctx)
{
    if (!b->unflushed)
        return BSS_OK;
    b->unflushed = 0;
    int rc = apply(ctx, NULL);
    if (rc != BSS_OK)
        forget_positions(b);
    return rc;
}

static int apply_one(apply_ctx *a, int64_t position, const char *payload, size_t len)
{
    stream_state *s = a->stream;
    if (position <= s->applied)
        return BSS_OK; /* already applied */
    if (position != s->applied + 1) {
        s->need_catchup = 1;
        return BSS_ERR_CONFLICT;
    }
    bss_delivery d = {s->name, 0, position, payload, len};
    int rc = a->apply(a->ctx, &d);
    if (rc != BSS_OK) {
        /* The consumer could not apply it now, and may have dropped other
         * deliveries of its batch: start again from its inbox. */
        forget_positions(a->bus);
        a->failed = 1;
        return rc;
    }
    a->bus->unflushed = 1;
    s->applied = position;
    if (position > atomic_load(&s->head))
        atomic_store(&s->head, position);
    return BSS_OK;
}

static int catchup_record(void *ctx, int64_t position, const char *payload, size_t len)
{
    apply_ctx *a = ctx;
    int rc = apply_one(a, position, payload, len);
    return rc != BSS_OK; /* stop on the first failure */
}

/* Pulls from the producer's log until caught up. Returns BSS_OK when caught
 * up, else an error and the stream stays marked for catch-up. */
static int catch_up(apply_ctx *a)
{
    stream_state *s = a->stream;
    for (;;) {
        if (flush(a->bus, a->apply, a->ctx) != BSS_OK)
            return BSS_ERR;
        char request[48];
        int n = snprintf(request, sizeof request, "%lld %d", (long long)s->applied,
                         CATCHUP_BATCH);
        int rv = nng_send(s->req, request, (size_t)n, 0);
        char *reply = NULL;
        size_t len = 0;
        if (rv == 0)
            rv = nng_recv(s->req, &reply, &len, NNG_FLAG_ALLOC);
        if (rv != 0) {
            /* Normal while the producer restarts; worth a word when it lasts
             * (the first time after ~2 s of retries, then every ~10 s). */
            if (++s->failed_catchups % 40 == 8)
                bss_log_warn(a->bus->log, "catch-up from %s failed %d times in a row: %s",
                             s->name, s->failed_catchups, nng_strerror(rv));
            /* A REQ socket whose producer was killed mid-request can stay
             * wedged after the producer is back (seen under load with nng
             * 1.5.2: every request times out while a fresh socket gets its
             * answer at once), so after a few timeouts start over with a
             * new socket. */
            if (s->failed_catchups % 3 == 0) {
                char err[BSS_ERRLEN];
                nng_close(s->req);
                if (open_catchup_socket(a->bus, s, err) != BSS_OK)
                    bss_log_warn(a->bus->log, "reopening catch-up to %s: %s", s->name, err);
            }
            s->next_attempt_ms = bss_monotonic_ms() + CATCHUP_RETRY_MS;
            return BSS_ERR_IO;
        }
        s->failed_catchups = 0;
        int count = 0;
        int rc = bss_catchup_reply_parse(reply, len, catchup_record, a, &count);
        nng_free(reply, len);
        if (a->failed)
            return BSS_ERR;
        if (rc != BSS_OK) {
            bss_log_warn(a->bus->log, "bad catch-up reply from %s: %s", s->name,
                         bss_strerror(rc));
            s->next_attempt_ms = bss_monotonic_ms() + CATCHUP_RETRY_MS;
            return rc;
        }
        if (count < CATCHUP_BATCH) {
            if (flush(a->bus, a->apply, a->ctx) != BSS_OK)
                return BSS_ERR;
            s->need_catchup = 0;
            s->caught_up_once = 1;
            s->last_heard_ms = bss_monotonic_ms();
            if (s->applied > atomic_load(&s->head))
                atomic_store(&s->head, s->applied);
            return BSS_OK;
        }
    }
}

static int load_position(nng_bus *b, stream_state *s, bss_bus_position_fn position, void *ctx)
{
    (void)b;
    if (s->position_known)
        return BSS_OK;
    int64_t pos = 0;
    int rc = position(ctx, s->name, 0, &pos);
    if (rc != BSS_OK)
        return rc;
    s->applied = pos;
    s->position_known = 1;
    return BSS_OK;
}

static void update_caught_up(nng_bus *b)
{
    int all = 1;
    for (int i = 0; i < b->nstreams; i++)
        all = all && b->streams[i].caught_up_once;
    atomic_store(&b->all_caught_up, all);
}

static int nngb_poll(void *state, int timeout_ms, bss_bus_position_fn position,
                     bss_bus_apply_fn apply, void *ctx, char *err)
{
    nng_bus *b = state;
    int64_t now = bss_monotonic_ms();
    for (int i = 0; i < b->nstreams; i++) {
        stream_state *s = &b->streams[i];
        if (load_position(b, s, position, ctx) != BSS_OK) {
            s->next_attempt_ms = now + CATCHUP_RETRY_MS;
            continue;
        }
        if (now - s->last_heard_ms > CATCHUP_IDLE_MS)
            s->need_catchup = 1;
        if (s->need_catchup && now >= s->next_attempt_ms) {
            apply_ctx a = {b, s, apply, ctx, 0};
            catch_up(&a);
        }
    }
    update_caught_up(b);
    if (!b->has_sub) {
        flush(b, apply, ctx);
        return BSS_OK;
    }

    /* The first receive waits, so nothing applied may stay unflushed; the
     * rest drain what is queued without waiting, and everything they apply
     * is flushed before returning. */
    flush(b, apply, ctx);
    nng_socket_set_ms(b->sub, NNG_OPT_RECVTIMEO, timeout_ms);
    for (int received = 0; received < 4096; received++) {
        char *buf = NULL;
        size_t len = 0;
        int rv = nng_recv(b->sub, &buf, &len, NNG_FLAG_ALLOC | (received ? NNG_FLAG_NONBLOCK : 0));
        if (rv == NNG_ETIMEDOUT || rv == NNG_EAGAIN)
            break;
        if (rv != 0) {
            flush(b, apply, ctx);
            return nng_fail(err, "receive", NULL, rv);
        }
        bss_frame frame;
        stream_state *s = NULL;
        if (bss_frame_parse(buf, len, &frame) == BSS_OK)
            s = find_stream(b, frame.stream);
        if (s != NULL && load_position(b, s, position, ctx) == BSS_OK) {
            s->last_heard_ms = bss_monotonic_ms();
            if (frame.kind == 'H') {
                if (frame.position > atomic_load(&s->head))
                    atomic_store(&s->head, frame.position);
                if (frame.position > s->applied)
                    s->need_catchup = 1;
            } else if (!s->need_catchup) {
                apply_ctx a = {b, s, apply, ctx, 0};
                apply_one(&a, frame.position, frame.payload, frame.len);
            } else if (frame.position > atomic_load(&s->head)) {
                atomic_store(&s->head, frame.position);
            }
        } else if (s == NULL) {
            bss_log_warn(b->log, "dropped a malformed or unexpected bus frame (%zu bytes)", len);
        }
        nng_free(buf, len);
        if (s != NULL && s->need_catchup && bss_monotonic_ms() >= s->next_attempt_ms) {
            apply_ctx a = {b, s, apply, ctx, 0};
            catch_up(&a);
            update_caught_up(b);
        }
    }
    flush(b, apply, ctx);
    return BSS_OK;
}

static int nngb_caught_up(const void *state)
{
    const nng_bus *b = state;
    return atomic_load(&b->all_caught_up);
}

static int64_t nngb_lag(const void *state)
{
    const nng_bus *b = state;
    int64_t lag = 0;
    for (int i = 0; i < b->nstreams; i++) {
        int64_t d = atomic_load(&b->streams[i].head) - b->streams[i].applied;
        lag += d > 0 ? d : 0;
    }
    return lag;
}

static void nngb_close(void *state)
{
    nng_bus *b = state;
    if (b == NULL)
        return;
    atomic_store(&b->stopping, 1);
    if (b->producing) {
        nng_close(b->rep); /* wakes the server thread's receive */
        pthread_join(b->rep_thread, NULL);
        nng_close(b->pub);
    }
    for (int i = 0; i < b->nstreams; i++)
        nng_close(b->streams[i].req);
    if (b->has_sub)
        nng_close(b->sub);
    free(b);
}

const bss_bus_ops bss_bus_nng_ops = {
    .name = "nng",
    .open = nngb_open,
    .publish = nngb_publish,
    .announce_head = nngb_announce_head,
    .subscribe = nngb_subscribe,
    .poll = nngb_poll,
    .caught_up = nngb_caught_up,
    .lag = nngb_lag,
    .close = nngb_close,
};
