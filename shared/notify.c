/* notify.c - see notify.h. */
#include "notify.h"

#include "bss_error.h"
#include "sqlcache.h"
#include "sqlutil.h"
#include "isotime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOTIFY_BATCH 32
#define NOTIFY_MAX_ATTEMPTS 20
#define NOTIFY_MAX_BACKOFF_MS (5 * 60 * 1000)

struct bss_notifier {
    bss_notifier_options o;
    pthread_t thread;
    _Atomic int stopping;
};

int bss_notify_schema(sqlite3 *db, char *err)
{
    static const char *const parts[] = {
        "CREATE TABLE IF NOT EXISTS notifications("
        "  id INTEGER PRIMARY KEY,"
        "  dedup_key TEXT NOT NULL UNIQUE,"
        "  channel TEXT NOT NULL,"
        "  target TEXT NOT NULL,"
        "  payload TEXT NOT NULL,"
        "  status TEXT NOT NULL DEFAULT 'PENDING',"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
        "  last_error TEXT,"
        "  created_ms INTEGER NOT NULL,"
        "  sent_ms INTEGER);"
        "CREATE INDEX IF NOT EXISTS notifications_due"
        "  ON notifications(status, next_attempt_ms);"};
    return bss_sql_exec_all(db, parts, 1, "notifications schema", err);
}

int bss_notify_enqueue(bss_store *store, const char *channel, const char *dedup_key,
                       const char *target, const char *payload, char *err)
{
    sqlite3 *db = bss_store_db(store);
    sqlite3_stmt *st = NULL;
    if (bss_sqlc_prepare(db,
                         "INSERT INTO notifications(dedup_key, channel, target, payload,"
                         " created_ms) VALUES(?1, ?2, ?3, ?4, ?5)"
                         " ON CONFLICT(dedup_key) DO NOTHING",
                         &st, "prepare", err) != BSS_OK)
        return BSS_ERR_IO;
    sqlite3_bind_text(st, 1, dedup_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, bss_now_ms());
    return bss_sqlc_step_done(db, st, "enqueue notification", NULL, err);
}

typedef struct due_item {
    int64_t id;
    int attempts;
    char *channel, *key, *target, *payload;
} due_item;

static void free_items(due_item *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].channel);
        free(items[i].key);
        free(items[i].target);
        free(items[i].payload);
    }
}

static char *dup_column(sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    return strdup(text ? (const char *)text : "");
}

/* Copies up to NOTIFY_BATCH due notifications out of the store. */
static int load_due(bss_notifier *n, due_item *items, int *count, char *err)
{
    *count = 0;
    /* A read snapshot, not the write transaction: the consumer writing
     * the queue (a month end queues tens of thousands of mails) must not
     * wait for this thread to look. Ordered as notifications_due is, so
     * SQLite walks the index and stops after the batch: ORDER BY id alone
     * sorted every pending row on every poll (quadratic over a month end's
     * queue). New rows (next_attempt_ms 0) still go in queue order. */
    sqlite3 *db = NULL;
    int rc = bss_store_snapshot_begin(n->o.store, &db, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    if (bss_store_prepare_cached(db,
                                 "SELECT id, attempts, channel, dedup_key, target, payload"
                                 " FROM notifications WHERE status = 'PENDING'"
                                 " AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
                                 &st, err) != BSS_OK) {
        bss_store_snapshot_end(n->o.store, db);
        return BSS_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, bss_now_ms());
    sqlite3_bind_int(st, 2, NOTIFY_BATCH);
    while (sqlite3_step(st) == SQLITE_ROW && *count < NOTIFY_BATCH) {
        due_item *it = &items[*count];
        it->id = sqlite3_column_int64(st, 0);
        it->attempts = sqlite3_column_int(st, 1);
        it->channel = dup_column(st, 2);
        it->key = dup_column(st, 3);
        it->target = dup_column(st, 4);
        it->payload = dup_column(st, 5);
        (*count)++;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    bss_store_snapshot_end(n->o.store, db);
    return BSS_OK;
}

static int64_t backoff_ms(int attempts)
{
    int64_t delay = 1000;
    for (int i = 1; i < attempts && delay < NOTIFY_MAX_BACKOFF_MS; i++)
        delay *= 2;
    return delay < NOTIFY_MAX_BACKOFF_MS ? delay : NOTIFY_MAX_BACKOFF_MS;
}

static void record_outcome(bss_notifier *n, const due_item *it, int rc, const char *why)
{
    char err[BSS_ERRLEN];
    int attempts = it->attempts + 1;
    const char *status = rc == BSS_OK                                            ? "SENT"
                         : rc == BSS_ERR_INVALID || attempts >= NOTIFY_MAX_ATTEMPTS ? "FAILED"
                                                                                   : "PENDING";
    int64_t now = bss_now_ms();
    if (bss_store_begin(n->o.store, err) != BSS_OK) {
        bss_log_warn(n->o.log, "notification %s: cannot record outcome: %s", it->key, err);
        return;
    }
    sqlite3 *db = bss_store_db(n->o.store);
    sqlite3_stmt *st = NULL;
    int ok = bss_store_prepare_cached(db,
                                      "UPDATE notifications SET status = ?1, attempts = ?2,"
                                      " next_attempt_ms = ?3, last_error = ?4, sent_ms = ?5"
                                      " WHERE id = ?6",
                                      &st, err) == BSS_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, attempts);
        sqlite3_bind_int64(st, 3, now + backoff_ms(attempts));
        if (rc == BSS_OK)
            sqlite3_bind_null(st, 4);
        else
            sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
        if (rc == BSS_OK)
            sqlite3_bind_int64(st, 5, now);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_int64(st, 6, it->id);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (!ok || bss_store_commit(n->o.store, err) != BSS_OK) {
        if (!ok)
            bss_store_rollback(n->o.store);
        bss_log_warn(n->o.log, "notification %s: cannot record outcome", it->key);
        return;
    }
    char labels[96];
    snprintf(labels, sizeof labels, "channel=\"%s\",status=\"%s\"", it->channel, status);
    bss_metrics_counter_add(n->o.metrics, "bss_notifications_total", labels, 1);
    if (rc != BSS_OK)
        bss_log_warn(n->o.log, "notification %s via %s: %s (%s, attempt %d)", it->key,
                     it->channel, why, status, attempts);
}

static void *notifier_main(void *arg)
{
    bss_notifier *n = arg;
    due_item items[NOTIFY_BATCH];
    while (!atomic_load(&n->stopping)) {
        int count = 0;
        char err[BSS_ERRLEN] = "";
        if (load_due(n, items, &count, err) != BSS_OK)
            bss_log_warn(n->o.log, "notifications: %s", err);
        for (int i = 0; i < count && !atomic_load(&n->stopping); i++) {
            char why[BSS_ERRLEN] = "";
            int rc = n->o.send(n->o.ctx, items[i].channel, items[i].key, items[i].target,
                               items[i].payload, why);
            record_outcome(n, &items[i], rc, why);
        }
        free_items(items, count);
        if (count == 0) {
            struct timespec ts = {n->o.poll_ms / 1000, (long)(n->o.poll_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int bss_notifier_start(const bss_notifier_options *options, bss_notifier **out, char *err)
{
    if (options->store == NULL || options->send == NULL) {
        bss_seterr(err, "a notifier needs a store and a send function");
        return BSS_ERR_INVALID;
    }
    bss_notifier *n = calloc(1, sizeof *n);
    if (n == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    n->o = *options;
    if (n->o.poll_ms <= 0)
        n->o.poll_ms = 100;
    if (pthread_create(&n->thread, NULL, notifier_main, n) != 0) {
        free(n);
        bss_seterr(err, "cannot start the notifier thread");
        return BSS_ERR;
    }
    *out = n;
    return BSS_OK;
}

void bss_notifier_stop(bss_notifier *n)
{
    if (n == NULL)
        return;
    atomic_store(&n->stopping, 1);
    pthread_join(n->thread, NULL);
    free(n);
}
