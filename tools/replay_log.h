/*
 * replay_log.h - where bssiot-replay's events come from: one iterator per
 * source, over that source's log in sequence order.
 *
 * Everything above this interface (timeline, filters, rebuild, point in time)
 * only ever calls replay_log_next, and replay_log_open picks the backend:
 *
 * SQLite (the default): the service's store, opened read-only
 * ("file:<path>?mode=ro"), which works beside the running service (WAL: a
 * reader never blocks the writer and sees the last committed state). One
 * iterator reads in one read transaction, so it sees one consistent
 * snapshot of the log. Filters are pushed into the query where SQLite can
 * use them.
 *
 * Kafka (replay_kafka.h): the source's topic `<prefix>.<source>.events`,
 * every partition from its start to the high watermark taken at open, merged
 * by the events' own sequence and with republished copies dropped, so the
 * events come out exactly as the log has them. Filters are applied after
 * decoding.
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

#define REPLAY_MAX_PARTITIONS 64

/* Positions in a source's log, per partition. The SQLite backend has one
 * partition (0) and its positions are sequences (the last one read); a Kafka
 * topic has one per partition and its positions are offsets (the next one
 * to read, i.e. the last offset read + 1), as the services' inboxes record
 * them for each backend. */
typedef struct replay_marks {
    size_t n;
    int32_t partition[REPLAY_MAX_PARTITIONS];
    int64_t position[REPLAY_MAX_PARTITIONS];
} replay_marks;

/* The position of `partition` in m, 0 when m does not name it. */
int64_t replay_marks_get(const replay_marks *m, int32_t partition);

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
    /* Only these types (NULL-terminated list); NULL: any. */
    const char *const *types;
    /* Only up to these positions, per partition (see replay_marks): SQLite
     * rows with sequence <= the position of partition 0, Kafka messages
     * with offset < the position of their partition; nothing of a
     * partition the list does not name. NULL: no such bound. */
    const replay_marks *up_to;
} replay_filter;

/* Sets f to "every row". */
void replay_filter_init(replay_filter *f);

/* What replay_log_next hands out. Valid until the next call on that log. */
typedef struct replay_item {
    int ok;            /* 1: `event` is a checked event; 0: a corrupt row */
    bss_event event;   /* ok == 1 */
    int64_t sequence;  /* the row's position, whether ok or not */
    char reason[BSS_EVENT_TYPE_MAX + 256]; /* ok == 0: what is wrong with it */
    /* Where the item sits when the log's location alone does not say
     * ("partition 0 offset 17" in a topic); "" for SQLite rows. */
    char where[64];
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
    /* Where this read ends, fixed when the log is opened: per partition, the
     * position of the last event within the filter's sequence and position
     * bounds, whatever its other filters (a rebuild records these as its
     * inbox). SQLite: partition 0, the last sequence (0: none); Kafka: every
     * partition read, the next offset. */
    replay_marks reached;
};

/* Where the events come from: a data dir's SQLite stores, or Kafka. */
typedef struct replay_source {
    const char *data_dir;      /* the stores (see replay_store_path) */
    const char *kafka_brokers; /* non-NULL: read Kafka topics instead */
    const char *topic_prefix;  /* topics <prefix>.<source>.events */
} replay_source;

/* Opens source's log from src (replay_log_open_sqlite or
 * replay_kafka_open), same results: BSS_ERR_NOTFOUND when the source has no
 * log there (a service that never ran, a topic that does not exist). */
int replay_log_open(const replay_source *src, const char *source, const replay_filter *f,
                    replay_log **out, char *err);

/* 1 when ev passes f's type, subject, time, sequence and mentions filters
 * (mentions by the same byte search as the SQLite query), else 0: for
 * backends that cannot push the filters down. */
int replay_filter_matches(const replay_filter *f, const bss_event *ev);

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
 * file (or the topic, partition and offset), the source and the sequence,
 * then the reason. */
void replay_report_corrupt(FILE *diag, const replay_log *log, const replay_item *item);

/* Closes the log; NULL is fine. */
void replay_log_close(replay_log *log);

/* Opens path read-only as a URI ("file:...?mode=ro", the path escaped),
 * with a busy timeout, for the other read-only uses of the tool (the live
 * read model). Returns BSS_OK, BSS_ERR_NOTFOUND or BSS_ERR_IO. */
int replay_open_readonly(const char *path, sqlite3 **db, char *err);

#endif
