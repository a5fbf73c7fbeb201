/*
 * bus_consumer.c - a consuming service for the multi-process bus tests.
 *
 * Follows the "producer" stream and records every event it applies in its
 * own table `applied` (no uniqueness constraint, so a double apply would be
 * visible to the test), in the same transaction as the inbox position.
 * Service name from BSS_NAME; runs until SIGTERM/SIGINT.
 */
#include "bss_error.h"
#include "config.h"
#include "eventcore.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int record(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    (void)ctx;
    sqlite3 *db = bss_store_db(store);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO applied(stream, position, event_id, subject, version)"
                           " VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK) {
        bss_seterr(err, "prepare: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    sqlite3_bind_text(st, 1, ev->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ev->sequence);
    sqlite3_bind_text(st, 3, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ev->subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ev->version);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        bss_seterr(err, "insert: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int main(int argc, char **argv)
{
    char err[BSS_ERRLEN];
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    bss_config *config = bss_config_load(argc, argv, err);
    if (config == NULL) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    const char *name = bss_config_get(config, "BSS_NAME", "consumer");
    const char *data_dir = bss_config_get(config, "BSS_DATA_DIR", "./data");
    bss_log *log = bss_log_open(name, NULL, BSS_LOG_WARN);
    static const char *const streams[] = {"producer"};
    bss_eventcore_options o = {.service = name, .config = config, .data_dir = data_dir,
                               .log = log, .streams = streams, .nstreams = 1,
                               .handler = record};
    bss_eventcore *core = NULL;
    /* The domain table must exist before the consumer thread applies into
     * it, so open the store's file once first to create it. */
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.db", data_dir, name);
    sqlite3 *db = NULL;
    /* The previous incarnation may have been killed mid-write: wait for
     * SQLite's recovery instead of failing on a lock. */
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS applied("
                     "stream TEXT, position INTEGER, event_id TEXT, subject TEXT, version INTEGER)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "schema: %s\n", sqlite3_errmsg(db));
        return 2;
    }
    sqlite3_close(db);
    if (bss_eventcore_open(&o, &core, err) != BSS_OK) {
        fprintf(stderr, "event core: %s\n", err);
        return 2;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    bss_eventcore_close(core);
    bss_log_close(log);
    bss_config_free(config);
    return 0;
}
