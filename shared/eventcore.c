/* eventcore.c - see eventcore.h. */
#include "eventcore.h"

#include "bss_error.h"
#include "deadletters.h"
#include "relay.h"

#include <ctype.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct bss_eventcore {
    bss_store *store;
    bss_bus *bus;
    bss_relay *relay;
    bss_consumer *consumer;
    bss_metrics *metrics;
    bss_handler_fn handler; /* the consumer's, for re-driving dead letters */
    void *handler_ctx;
    bss_deadletters *dead_letters;
};

static int64_t outbox_backlog(void *ctx)
{
    bss_eventcore *core = ctx;
    int64_t n = 0;
    return bss_store_outbox_backlog(core->store, &n, NULL) == BSS_OK ? n : -1;
}

static int64_t log_head(void *ctx)
{
    bss_eventcore *core = ctx;
    int64_t n = 0;
    return bss_store_head(core->store, &n, NULL) == BSS_OK ? n : -1;
}

static int open_store(const bss_eventcore_options *o, bss_store **store, char *err)
{
    char key[96], path[1024];
    size_t n = (size_t)snprintf(key, sizeof key, "BSS_%s_DB", o->service);
    for (size_t i = 0; i < n && i < sizeof key; i++)
        key[i] = key[i] == '-' ? '_' : (char)toupper((unsigned char)key[i]);
    const char *configured = bss_config_get(o->config, key, NULL);
    if (configured != NULL && configured[0] != '\0')
        snprintf(path, sizeof path, "%s", configured);
    else
        snprintf(path, sizeof path, "%s/%s.db", o->data_dir, o->service);
    const char *sync = bss_config_get(o->config, "BSS_SQLITE_SYNC", "NORMAL");
    if (strcasecmp(sync, "NORMAL") != 0 && strcasecmp(sync, "FULL") != 0) {
        bss_seterr(err, "BSS_SQLITE_SYNC must be NORMAL or FULL, not '%s'", sync);
        return BSS_ERR_INVALID;
    }
    bss_store_options so = {
        .path = path, .source = o->service, .synchronous_full = strcasecmp(sync, "FULL") == 0};
    return bss_store_open(&so, store, err);
}

int bss_eventcore_open(const bss_eventcore_options *o, bss_eventcore **out, char *err)
{
    if (o->nstreams > 0 && o->handler == NULL) {
        bss_seterr(err, "a service that follows streams needs a handler");
        return BSS_ERR_INVALID;
    }
    bss_eventcore *core = calloc(1, sizeof *core);
    if (core == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    core->metrics = o->metrics;
    int rc = open_store(o, &core->store, err);
    if (rc == BSS_OK && o->txn_end != NULL)
        bss_store_on_txn_end(core->store, o->txn_end, o->txn_end_ctx);
    if (rc == BSS_OK && o->schema != NULL) {
        rc = bss_store_begin(core->store, err);
        if (rc == BSS_OK) {
            rc = o->schema(bss_store_db(core->store), err);
            if (rc == BSS_OK)
                rc = bss_store_commit(core->store, err);
            else
                bss_store_rollback(core->store);
        }
    }
    if (rc == BSS_OK) {
        bss_bus_options bo = {o->service, o->config, o->data_dir, core->store, o->log,
                              o->metrics};
        rc = bss_bus_open(&bo, &core->bus, err);
    }
    if (rc == BSS_OK) {
        long long kill_at = 0;
        rc = bss_config_get_int(o->config, "BSS_FAILPOINT_RELAY_KILL_BEFORE_SEQ", 0, &kill_at,
                                err);
        bss_relay_options ro = {core->store, core->bus, o->log, o->metrics, 0, kill_at};
        if (rc == BSS_OK)
            rc = bss_relay_start(&ro, &core->relay, err);
    }
    if (rc == BSS_OK && o->nstreams > 0) {
        core->handler = o->handler;
        core->handler_ctx = o->handler_ctx;
        bss_consumer_options co = {core->store, core->bus,  o->streams, o->nstreams,
                                   o->handler,  o->handler_ctx, o->log, o->metrics,
                                   o->types,    o->ntypes};
        rc = bss_consumer_start(&co, &core->consumer, err);
    }
    if (rc != BSS_OK) {
        bss_eventcore_close(core);
        return rc;
    }
    bss_metrics_gauge_fn(o->metrics, "bss_outbox_backlog_events", NULL, outbox_backlog, core);
    bss_metrics_gauge_fn(o->metrics, "bss_event_log_head", NULL, log_head, core);
    *out = core;
    return BSS_OK;
}

bss_store *bss_eventcore_store(bss_eventcore *core) { return core->store; }

int bss_eventcore_serve_dead_letters(bss_eventcore *core, bss_http *http, const char *prefix,
                                     char *err)
{
    if (core->handler == NULL) {
        bss_seterr(err, "a service that follows no stream has no dead letters");
        return BSS_ERR_INVALID;
    }
    return bss_deadletters_routes(http, prefix, core->store, core->handler, core->handler_ctx,
                                  &core->dead_letters, err);
}

int bss_eventcore_ready(void *ctx, char *why, size_t whylen)
{
    bss_eventcore *core = ctx;
    if (core == NULL || core->store == NULL || core->bus == NULL) {
        snprintf(why, whylen, "event store or bus not open");
        return BSS_ERR;
    }
    if (core->consumer != NULL && !bss_consumer_ready(core->consumer)) {
        snprintf(why, whylen, "catching up with the streams this service follows");
        return BSS_ERR;
    }
    return BSS_OK;
}

void bss_eventcore_close(void *ctx)
{
    bss_eventcore *core = ctx;
    if (core == NULL)
        return;
    bss_consumer_stop(core->consumer);
    bss_deadletters_free(core->dead_letters);
    bss_relay_stop(core->relay);
    bss_bus_close(core->bus);
    bss_store_close(core->store);
    free(core);
    /* Closing a socket leaves messages still queued to a subscriber to nng's
     * background threads; nng_fini waits for them and frees nng's state. */
    nng_fini();
}
