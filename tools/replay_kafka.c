/*
 * replay_kafka.c - see replay_kafka.h.
 */
#include "replay_kafka.h"

#include "bss_error.h"
#include "isotime.h"
#include "kafka_client.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define OPEN_TIMEOUT_MS 10000  /* metadata and watermarks */
#define STALL_TIMEOUT_MS 30000 /* a partition silent below the offset it must reach */
#define POLL_SLICE_MS 200

typedef struct kafka_part {
    int32_t partition;
    int64_t next;            /* the next offset to read */
    int64_t stop;            /* read offsets below this */
    rd_kafka_queue_t *queue; /* this partition's own fetch queue */
    bss_event *head;         /* its next event in order, decoded; NULL: none yet */
} kafka_part;

/* Sequences handed out, with a hash of their event id: open addressing on
 * the sequence (never 0: sequences start at 1). */
typedef struct seen_set {
    uint64_t *sequence;
    uint64_t *id_hash;
    size_t cap, n;
} seen_set;

typedef struct kafka_log {
    replay_log base; /* first, so a replay_log * is a kafka_log * */
    rd_kafka_t *rk;
    replay_filter filter;
    kafka_part parts[REPLAY_MAX_PARTITIONS];
    size_t nparts;
    bss_event *current; /* the event handed out last */
    seen_set seen;
    int64_t duplicates;
} kafka_log;

/* ---- the set of sequences handed out ---- */

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static size_t slot_of(const seen_set *s, uint64_t sequence)
{
    size_t i = (size_t)((sequence * 0x9E3779B97F4A7C15ULL) >> 16) & (s->cap - 1);
    while (s->sequence[i] != 0 && s->sequence[i] != sequence)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int seen_grow(seen_set *s)
{
    seen_set bigger = {calloc(s->cap ? s->cap * 2 : 1024, sizeof(uint64_t)),
                       calloc(s->cap ? s->cap * 2 : 1024, sizeof(uint64_t)),
                       s->cap ? s->cap * 2 : 1024, s->n};
    if (bigger.sequence == NULL || bigger.id_hash == NULL) {
        free(bigger.sequence);
        free(bigger.id_hash);
        return BSS_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->sequence[i] != 0) {
            size_t j = slot_of(&bigger, s->sequence[i]);
            bigger.sequence[j] = s->sequence[i];
            bigger.id_hash[j] = s->id_hash[i];
        }
    }
    free(s->sequence);
    free(s->id_hash);
    *s = bigger;
    return BSS_OK;
}

/* 0: new (recorded), 1: seen with the same id, 2: seen with another id;
 * BSS_ERR_NOMEM as a negative value. */
static int seen_check(seen_set *s, int64_t sequence, const char *id)
{
    if ((s->n + 1) * 2 > s->cap && seen_grow(s) != BSS_OK)
        return BSS_ERR_NOMEM;
    size_t i = slot_of(s, (uint64_t)sequence);
    uint64_t h = hash_id(id);
    if (s->sequence[i] != 0)
        return s->id_hash[i] == h ? 1 : 2;
    s->sequence[i] = (uint64_t)sequence;
    s->id_hash[i] = h;
    s->n++;
    return 0;
}

/* ---- configuration ---- */

/* librdkafka's own warnings and errors, one line each on stderr: the tool's
 * stdout stays the events only. */
static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
    (void)rk;
    if (level <= 4)
        fprintf(stderr, "bssiot-replay: kafka %s: %s\n", facility, buf);
}

/* The consumer's configuration: brokers, a plain consumer that never
 * commits, the services' security settings and BSS_KAFKA_PROPERTY_* (last,
 * so they win). */
static rd_kafka_conf_t *make_conf(const replay_source *src, char *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    int rc = bss_kafka_conf_set(conf, "bootstrap.servers", src->kafka_brokers, err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "client.id", "bssiot-replay", err);
    /* librdkafka's assign() wants a group.id to exist; this consumer never
     * joins that group (no subscribe) and never commits to it. */
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "group.id", "bssiot-replay", err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "enable.auto.commit", "false", err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "enable.auto.offset.store", "false", err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "enable.partition.eof", "false", err);
    /* Retention may move a low watermark between open and the first fetch:
     * go on from the new start rather than jump to the end. */
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "auto.offset.reset", "earliest", err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_operator(conf, NULL, err);
    if (rc != BSS_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* ---- reading ---- */

static void corrupt(replay_item *item, const kafka_part *part, int64_t offset, int64_t sequence)
{
    item->ok = 0;
    item->sequence = sequence;
    snprintf(item->where, sizeof item->where, "partition %d offset %lld", (int)part->partition,
             (long long)offset);
}

int replay_kafka_event_from_message(const void *payload, size_t len, int64_t header_sequence,
                                    const char *source, bss_event **out, char *err)
{
    *out = NULL;
    if (payload == NULL) {
        bss_seterr(err, "an empty message (a tombstone)");
        return BSS_ERR_INVALID;
    }
    bss_event *ev = NULL;
    int rc = bss_event_decode(payload, len, &ev, err);
    if (rc != BSS_OK)
        return rc;
    if (strcmp(ev->source, source) != 0) {
        bss_seterr(err, "an event of source '%s' in the topic of %s", ev->source, source);
        rc = BSS_ERR_INVALID;
    } else if (ev->sequence == 0) {
        ev->sequence = header_sequence; /* an envelope without the extension attribute */
    }
    if (rc == BSS_OK && ev->sequence < 1) {
        bss_seterr(err, "%s %s carries no sequence", ev->type, ev->id);
        rc = BSS_ERR_INVALID;
    }
    if (rc == BSS_OK && header_sequence != 0 && header_sequence != ev->sequence) {
        bss_seterr(err, "header %s %lld differs from the envelope's sequence %lld",
                   BSS_KAFKA_SEQUENCE_HEADER, (long long)header_sequence, (long long)ev->sequence);
        rc = BSS_ERR_INVALID;
    }
    if (rc != BSS_OK) {
        bss_event_free(ev);
        return rc;
    }
    *out = ev;
    return BSS_OK;
}

/* Reads part's next message: 0 with part->head set, 1 with a corrupt item
 * filled (that offset is passed), 2 when the partition is done (offsets
 * skipped to its stop), or a negative BSS_ERR_* with err filled. */
static int fetch_head(kafka_log *log, kafka_part *part, replay_item *item, char *err)
{
    int64_t deadline = bss_monotonic_ns() + (int64_t)STALL_TIMEOUT_MS * 1000000;
    char last_error[256] = "no message";
    while (1) {
        rd_kafka_message_t *msg = rd_kafka_consume_queue(part->queue, POLL_SLICE_MS);
        if (msg == NULL) {
            if (bss_monotonic_ns() > deadline) {
                bss_seterr(err,
                           "topic %s partition %d: nothing at offset %lld for %d s (must reach"
                           " %lld): %s",
                           log->base.location, (int)part->partition, (long long)part->next,
                           STALL_TIMEOUT_MS / 1000, (long long)part->stop, last_error);
                return BSS_ERR_IO;
            }
            continue;
        }
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Fetch errors are transient for a consumer (librdkafka retries);
             * the deadline above bounds them. */
            snprintf(last_error, sizeof last_error, "%s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        int64_t offset = msg->offset;
        if (offset < part->next) {
            rd_kafka_message_destroy(msg);
            continue;
        }
        part->next = offset + 1;
        if (offset >= part->stop) {
            /* Offsets below the stop that never come (a compacted topic). */
            part->next = part->stop;
            rd_kafka_message_destroy(msg);
            return 2;
        }
        int64_t header_seq = bss_kafka_header_sequence(msg);
        bss_event *ev = NULL;
        char why[BSS_ERRLEN];
        int rc = replay_kafka_event_from_message(msg->payload, msg->len, header_seq,
                                                 log->base.source, &ev, why);
        rd_kafka_message_destroy(msg);
        if (rc == BSS_ERR_NOMEM) {
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
        if (rc != BSS_OK) {
            corrupt(item, part, offset, header_seq);
            bss_seterr(item->reason, "%s", why);
            return 1;
        }
        part->head = ev;
        return 0;
    }
}

static int kafka_next(replay_log *base, replay_item *item, char *err)
{
    kafka_log *log = (kafka_log *)base;
    bss_event_free(log->current);
    log->current = NULL;
    item->where[0] = '\0';
    item->reason[0] = '\0';
    while (1) {
        /* Every partition not yet done needs its head before one can be
         * picked: only then is the lowest sequence known. */
        for (size_t i = 0; i < log->nparts; i++) {
            kafka_part *part = &log->parts[i];
            while (part->head == NULL && part->next < part->stop) {
                int got = fetch_head(log, part, item, err);
                if (got < 0)
                    return got;
                if (got == 1)
                    return BSS_OK; /* a corrupt message, reported where it sits */
                if (got == 2)
                    break;
            }
        }
        kafka_part *best = NULL;
        for (size_t i = 0; i < log->nparts; i++)
            if (log->parts[i].head != NULL &&
                (best == NULL || log->parts[i].head->sequence < best->head->sequence))
                best = &log->parts[i];
        if (best == NULL)
            return BSS_ERR_NOTFOUND;
        bss_event *ev = best->head;
        best->head = NULL;
        int seen = seen_check(&log->seen, ev->sequence, ev->id);
        if (seen < 0) {
            bss_event_free(ev);
            bss_seterr(err, "out of memory");
            return BSS_ERR_NOMEM;
        }
        if (seen == 1) {
            log->duplicates++; /* a relay republished it */
            bss_event_free(ev);
            continue;
        }
        if (seen == 2) {
            corrupt(item, best, best->next - 1, ev->sequence);
            bss_seterr(item->reason, "sequence %lld was read already with another event id (%s)",
                       (long long)ev->sequence, ev->id);
            bss_event_free(ev);
            return BSS_OK;
        }
        if (!replay_filter_matches(&log->filter, ev)) {
            bss_event_free(ev);
            continue;
        }
        item->ok = 1;
        item->sequence = ev->sequence;
        item->event = *ev; /* data stays owned by log->current */
        log->current = ev;
        return BSS_OK;
    }
}

static void kafka_close(replay_log *base)
{
    kafka_log *log = (kafka_log *)base;
    for (size_t i = 0; i < log->nparts; i++) {
        bss_event_free(log->parts[i].head);
        if (log->parts[i].queue != NULL)
            rd_kafka_queue_destroy(log->parts[i].queue);
    }
    bss_event_free(log->current);
    if (log->rk != NULL) {
        rd_kafka_assign(log->rk, NULL);
        rd_kafka_destroy(log->rk);
    }
    free(log->seen.sequence);
    free(log->seen.id_hash);
    free(log);
}

static const replay_log_ops KAFKA_OPS = {kafka_next, kafka_close};

/* The topic's partitions, their watermarks, where to stop in each, and the
 * assignment of those with something to read, each on a queue of its own. */
static int setup_partitions(kafka_log *log, const char *topic, char *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(log->rk, topic, NULL);
    if (rkt == NULL) {
        bss_seterr(err, "topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return BSS_ERR_INVALID;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(log->rk, 0, rkt, &md, OPEN_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bss_seterr(err, "metadata of %s from %s: %s", topic, rd_kafka_name(log->rk),
                   rd_kafka_err2str(kerr));
        return BSS_ERR_IO;
    }
    int rc = BSS_OK;
    int count = 0;
    if (md->topic_cnt < 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        md->topics[0].partition_cnt == 0) {
        bss_seterr(err, "topic %s does not exist", topic);
        rc = BSS_ERR_NOTFOUND;
    } else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bss_seterr(err, "topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        rc = BSS_ERR_IO;
    } else if ((count = md->topics[0].partition_cnt) > REPLAY_MAX_PARTITIONS) {
        bss_seterr(err, "topic %s has %d partitions, more than the %d the tool reads", topic,
                   count, REPLAY_MAX_PARTITIONS);
        rc = BSS_ERR_INVALID;
    }
    /* Partition ids are 0..count-1 (Kafka numbers them so). */
    rd_kafka_metadata_destroy(md);
    if (rc != BSS_OK)
        return rc;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(count);
    if (assignment == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    log->base.reached.n = 0;
    for (int32_t p = 0; rc == BSS_OK && p < count; p++) {
        int64_t low = 0, high = 0;
        kerr = rd_kafka_query_watermark_offsets(log->rk, topic, p, &low, &high, OPEN_TIMEOUT_MS);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            bss_seterr(err, "watermarks of %s partition %d: %s", topic, (int)p,
                       rd_kafka_err2str(kerr));
            rc = BSS_ERR_IO;
            break;
        }
        int64_t stop = high;
        if (log->filter.up_to != NULL && replay_marks_get(log->filter.up_to, p) < stop)
            stop = replay_marks_get(log->filter.up_to, p);
        kafka_part *part = &log->parts[log->nparts++];
        part->partition = p;
        part->next = low;
        part->stop = stop;
        log->base.reached.partition[log->base.reached.n] = p;
        log->base.reached.position[log->base.reached.n++] = stop > 0 ? stop : 0;
        if (low >= stop)
            continue;
        /* A queue of its own, taken off the consumer queue before the
         * assignment starts fetching into it. */
        part->queue = rd_kafka_queue_get_partition(log->rk, topic, p);
        if (part->queue == NULL) {
            bss_seterr(err, "no queue for %s partition %d", topic, (int)p);
            rc = BSS_ERR_IO;
            break;
        }
        rd_kafka_queue_forward(part->queue, NULL);
        rd_kafka_topic_partition_list_add(assignment, topic, p)->offset = low;
    }
    if (rc == BSS_OK && assignment->cnt > 0 &&
        (kerr = rd_kafka_assign(log->rk, assignment)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bss_seterr(err, "assign %s: %s", topic, rd_kafka_err2str(kerr));
        rc = BSS_ERR_IO;
    }
    rd_kafka_topic_partition_list_destroy(assignment);
    return rc;
}

int replay_kafka_open(const replay_source *src, const char *source, const replay_filter *f,
                      replay_log **out, char *err)
{
    const char *prefix = src->topic_prefix != NULL && src->topic_prefix[0] != '\0'
                             ? src->topic_prefix
                             : "bssiot";
    if (strlen(source) > BSS_EVENT_SOURCE_MAX || strlen(prefix) > 128) {
        bss_seterr(err, "source name or topic prefix too long");
        return BSS_ERR_INVALID;
    }
    kafka_log *log = calloc(1, sizeof *log);
    if (log == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    log->base.ops = &KAFKA_OPS;
    log->filter = *f;
    snprintf(log->base.source, sizeof log->base.source, "%s", source);
    snprintf(log->base.location, sizeof log->base.location, "%s.%s.events", prefix, source);
    rd_kafka_conf_t *conf = make_conf(src, err);
    int rc = conf != NULL ? BSS_OK : BSS_ERR_INVALID;
    if (rc == BSS_OK) {
        char why[512];
        log->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
        if (log->rk == NULL) {
            rd_kafka_conf_destroy(conf); /* still ours after a failed rd_kafka_new */
            bss_seterr(err, "cannot create the kafka consumer: %s", why);
            rc = BSS_ERR_INVALID;
        }
    }
    if (rc == BSS_OK)
        rc = setup_partitions(log, log->base.location, err);
    if (rc != BSS_OK) {
        kafka_close(&log->base);
        return rc;
    }
    *out = &log->base;
    return BSS_OK;
}

int64_t replay_kafka_duplicates(const replay_log *log)
{
    return log != NULL && log->ops == &KAFKA_OPS ? ((const kafka_log *)log)->duplicates : 0;
}
