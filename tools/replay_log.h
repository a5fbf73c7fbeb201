/*
 * replay_log.h - where bssiot-replay's events come from: one iterator per
 * source, over that source's log in sequence order.
 *
 * Everything above this interface (timeline, filters, rebuild, point in time)
 * only ever calls replay_log_next, so a second backend slots in beside the
 * SQLite one: a Kafka reader would open a consumer on the source's topic,
 * decode each record with bss_event_decode and report the undecodable ones
 * the same way, with "topic/partition@offset" as their location.
 *
 * The SQLite backend opens a service's store read-only
 * ("file:<path>?mode=ro"), which works beside the running service (WAL: a
 * reader never blocks the writer and sees the last committed state). One
 * iterator runs one SELECT, so it sees one consistent snapshot of the log.
 * Filters are pushed into the query where SQLite can use them.
 */
#ifndef BSS_REPLAY_LOG_H
#define BSS_REPLAY_LOG_H

#include "envelope.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The sources bssiot-replay knows, in the order it reads them. */
extern const char *const replay_known_sources[];
extern const size_t replay_known_nsources;

/* Which rows of a log to read. Zero-initialised means "everything" except
 * for the bounds, which replay_filter_init sets to "unbounded". */
typedef struct replay_filter {
    const char *type;             /* only this type; NULL: any */
    const char *subject;          /* only this subject; NULL: any */
    int64_t since_ms, until_ms;   /* time_ms within [since, until] */
    int64_t after_sequence;       /* sequence > this */
    int64_t up_to_sequence;       /* sequence <= this */
    /* Rows whose subject is one of these or whose data contains one of them
     * as a JSON string (a byte search: callers confirm with
     * replay_event_mentions). Empty: no restriction. */
    const char *const *mentions;
    size_t nmentions;
} replay_filter;

/* Sets f to "every row". */
void replay_filter_init(replay_filter *f);

/* What replay_log_next hands out. Valid until the next call on that log. */
typedef struct replay_item {
    int ok;            /* 1: `event` is a checked event; 0: a corrupt row */
    bss_event event;   /* ok == 1 */
    int64_t sequence;  /* the row's position, whether ok or not */
    char reason[BSS_EVENT_TYPE_MAX + 256]; /* ok == 0: what is wrong with it */
} replay_item;

typedef struct replay_log replay_log;

/* The backend's operations; a new backend provides these two. */
typedef struct replay_log_ops {
    /* BSS_OK with *item filled, BSS_ERR_NOTFOUND at the end of the log,
     * BSS_ERR_IO (err filled) when reading fails. */
    int (*next)(replay_log *log, replay_item *item, char *err);
    void (*close)(replay_log *log);
} replay_log_ops;

struct replay_log {
    const replay_log_ops *ops;
    char source[BSS_EVENT_SOURCE_MAX + 1]; /* whose events these are */
    char location[1024];                   /* for diagnostics: the db file, a topic */
};

/* Where source's store is: BSS_<SOURCE>_DB from the environment when set,
 * else <data_dir>/<source>.db (the services' own rule, see eventcore.h).
 * Writes into out (outlen bytes); BSS_ERR_INVALID when it does not fit. */
int replay_store_path(const char *data_dir, const char *source, char *out, size_t outlen);

/* Opens source's log in the SQLite file at path, read-only, positioned
 * before its first row matching f. Returns BSS_OK, BSS_ERR_NOTFOUND when the
 * file does not exist (a service that never ran), BSS_ERR_IO (not a store,
 * unreadable; err filled) or BSS_ERR_NOMEM. */
int replay_log_open_sqlite(const char *path, const char *source, const replay_filter *f,
                           replay_log **out, char *err);

/* The next row (see replay_log_ops.next). */
int replay_log_next(replay_log *log, replay_item *item, char *err);

/* Writes the diagnostic for a corrupt row to diag, one line naming the db
 * file (or other location), the source and the sequence, then the reason. */
void replay_report_corrupt(FILE *diag, const replay_log *log, const replay_item *item);

/* Closes the log; NULL is fine. */
void replay_log_close(replay_log *log);

/* Opens path read-only as a URI ("file:...?mode=ro", the path escaped),
 * with a busy timeout, for the other read-only uses of the tool (the live
 * read model). Returns BSS_OK, BSS_ERR_NOTFOUND or BSS_ERR_IO. */
int replay_open_readonly(const char *path, sqlite3 **db, char *err);

#endif
