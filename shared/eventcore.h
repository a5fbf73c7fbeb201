/*
 * eventcore.h - one call that wires a service's event machinery together:
 * its store, the bus, the relay that publishes its outbox and the consumer
 * that applies the streams it follows. Every service and test program uses
 * this, so they all run the same path.
 *
 * Configuration (bss_config keys):
 *   BSS_<SERVICE>_DB      store file, default <data_dir>/<service>.db
 *   BSS_SQLITE_SYNC       NORMAL (default: survives a process crash) or FULL
 *                         (survives power loss)
 *   BSS_BUS               bus backend: nng (default, bus_nng.c) or kafka
 *                         (bus_kafka.c, BSS_KAFKA_* settings; see README)
 *   BSS_FAILPOINT_RELAY_KILL_BEFORE_SEQ  test hook, see relay.h
 */
#ifndef BSS_EVENTCORE_H
#define BSS_EVENTCORE_H

#include "bus.h"
#include "config.h"
#include "consumer.h"
#include "evstore.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#include <stddef.h>

typedef struct bss_eventcore bss_eventcore;

typedef struct bss_eventcore_options {
    const char *service;        /* the source name of this service's events */
    const bss_config *config;
    const char *data_dir;
    bss_log *log;               /* may be NULL */
    bss_metrics *metrics;       /* may be NULL */
    const char *const *streams; /* services whose events this one applies */
    size_t nstreams;            /* 0: a pure producer, no consumer thread */
    bss_handler_fn handler;     /* required when nstreams > 0 */
    void *handler_ctx;
    /* Creates the service's domain tables; run in a write transaction after
     * the store opens and before anything can apply events. May be NULL. */
    int (*schema)(sqlite3 *db, char *err);
    /* The event types the handler acts on, passed to the consumer
     * (consumer.h: others are passed without decoding). NULL / 0: all. */
    const char *const *types;
    size_t ntypes;
    /* Installed on the store before any thread can write to it
     * (bss_store_on_txn_end). May be NULL. */
    bss_store_txn_end_fn txn_end;
    void *txn_end_ctx;
} bss_eventcore_options;

/* Opens the store, the bus (serving this service's log), starts the relay
 * and, when streams are given, the consumer. On error everything opened so
 * far is closed again. */
int bss_eventcore_open(const bss_eventcore_options *options, bss_eventcore **out, char *err);

/* The service's store: its domain tables live here too. */
bss_store *bss_eventcore_store(bss_eventcore *core);

/* Serves the store's dead letters under prefix ("/billings/dead-letters",
 * re-drive through the consumer's handler): see deadletters.h. Call before
 * the HTTP server starts; freed by bss_eventcore_close, which runs after
 * the server has stopped. */
int bss_eventcore_serve_dead_letters(bss_eventcore *core, bss_http *http, const char *prefix,
                                     char *err);

/* BSS_OK when ready (store open, bus up, every followed stream caught up
 * once); else BSS_ERR with the reason in why. Suits bss_http_set_readiness. */
int bss_eventcore_ready(void *core, char *why, size_t whylen);

/* Stops the consumer, flushes the outbox through the relay, closes the bus
 * and the store, then releases nng's process-wide state (nng_fini): call it
 * after every other use of nng in the process. NULL is fine. Suits
 * bss_service_add_shutdown. */
void bss_eventcore_close(void *core);

#endif
