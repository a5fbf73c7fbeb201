/*
 * bus_kafka.c - the bus backend on Apache Kafka (librdkafka), for services
 * that run on several machines.
 *
 * Topics and messages. Each producing service writes one topic,
 * `<prefix>.<service>.events`. A message is one event in CloudEvents
 * "structured mode": the value is the JSON envelope exactly as it is stored
 * in the producer's log (envelope.h), the key is the event's subject (the
 * line's svcContNo, so one line's events stay in one partition and in
 * order), and the headers are `content-type: application/cloudevents+json`
 * and `bss-sequence: <the event's sequence in its source's log>`.
 *
 * Producer. Idempotent (enable.idempotence=true) and without a delivery
 * timeout (message.timeout.ms=0): librdkafka retries until the broker has
 * the event, so the events of one partition reach it gapless and in order.
 * bss_bus_publish only queues; bss_bus_confirm serves the delivery reports
 * and tells the relay up to which sequence everything is acknowledged, and
 * only those outbox rows are deleted. A fatal producer error (the broker
 * fenced the idempotent producer) replaces the producer and makes the relay
 * publish everything unconfirmed again.
 *
 * Consumer. One consumer group per service (`<prefix>.<service>`), one
 * member per group (a service is the single writer of its store). The
 * service's SQLite transaction is the unit of work: the consumer records
 * the position (the next offset, i.e. offset + 1) per (stream, partition)
 * in its inbox together with the effects. On every assignment the rebalance
 * callback seeks each partition to the position in the store; Kafka's own
 * committed offsets are written only for lag monitoring and never read.
 *
 * Group membership. The streams a service follows are subscribed in one
 * call, at its first poll (see apply_subscription: subscribing one by one
 * left members behind that stalled every rebalance). A service stopped
 * with SIGTERM leaves its group on close, so its successor gets the
 * partitions at once; one killed with -9 holds them until its session
 * (session.timeout.ms = 6 s) expires, plus the coordinator's rebalance
 * delay. max.poll.interval.ms is 30 s, which the poll loop keeps by far.
 * A position the broker no longer holds (deleted by retention before it
 * was applied) stops the partition with an error and not-ready rather than
 * skipping to the log's start (auto.offset.reset=error; offset_out_of_range).
 *
 * Duplicates. The relay may publish an event twice (a crash between
 * delivery and deleting its outbox row, or a replaced producer), at a new
 * offset. Within a partition the events arrive in the order of their
 * source sequence, so a message whose bss-sequence is not above the last
 * applied one of its partition is a duplicate and is skipped. That mark
 * needs no storage of its own: the message just before the stored position
 * is always the last one applied, so on assignment the consumer seeks one
 * message back and reads that message's sequence instead of applying it.
 *
 * Failures. A delivery the consumer cannot apply now (store busy, or a
 * handler's "not yet") is offered again after a backoff (250 ms doubling
 * to 5 s) by seeking its partition back to the position in the store;
 * every other partition whose stored position differs from what this bus
 * holds is sought back too (bus.h: after a failed apply trust nothing kept
 * in memory). Poison events are dead-lettered by the consumer (consumer.h);
 * after each durable batch this bus forwards the new rows of the store's
 * dead_letters table to `<prefix>.<service>.dead-letters`, with headers
 * bss-original-topic, -partition, -offset and bss-error, the payload as the
 * value; the forwarded mark is kept in the store (at least once). While
 * every broker is unreachable the bus reports not caught up (readiness).
 *
 * Configuration (bss_config keys):
 *   BSS_KAFKA_BROKERS         bootstrap servers, host:port,... (required)
 *   BSS_KAFKA_TOPIC_PREFIX    default bssiot
 *   BSS_KAFKA_GROUP_PREFIX    default bssiot
 *   BSS_KAFKA_SECURITY_PROTOCOL, BSS_KAFKA_SASL_MECHANISM, BSS_KAFKA_SASL_USERNAME,
 *   BSS_KAFKA_SASL_PASSWORD, BSS_KAFKA_SSL_CA_LOCATION
 *                             security.protocol, sasl.mechanisms, sasl.username,
 *                             sasl.password, ssl.ca.location
 *   BSS_KAFKA_PROPERTY_<NAME> any librdkafka property, NAME upper-case with
 *                             '_' for '.' (set in the environment); applied
 *                             last, so it overrides the defaults above.
 */
#include "bus.h"

#include "bss_error.h"
#include "isotime.h"
#include "kafka_client.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define MAX_STREAMS 16
#define MAX_PARTITIONS 1024     /* tracked (stream, partition) pairs */
#define NAME_MAX_LEN 249        /* Kafka's limit for topic names */
#define RETRY_MIN_MS 250        /* first backoff after a failed apply */
#define RETRY_MAX_MS 5000
#define BROKER_PROBE_MS 500     /* how often to check whether brokers are back */
#define COMMIT_EVERY_MS 1000    /* Kafka offset commits (lag monitoring only) */
#define DRAIN_MAX 4096          /* messages handled per poll */
#define DEAD_LETTER_BATCH 64
#define FORWARDED_KEY "kafka.dead_letters.forwarded"

typedef struct partition_state {
    int stream;            /* index into streams */
    int32_t partition;
    int assigned;
    int64_t applied;       /* position (next offset) applied here */
    int64_t fetch_next;    /* offset of the next message expected from Kafka */
    int peeking;           /* the next message, at applied - 1, only tells its sequence */
    int64_t last_sequence; /* highest source sequence applied (0: unknown) */
    int eof_seen;          /* reached the end since it was last sought */
    int needs_seek;        /* drop its messages until sought back to `applied` */
    int64_t retry_at_ms;   /* no seek before this (monotonic) */
    int backoff_ms;
    int64_t no_peek_at;    /* a position whose previous message is gone: seek there directly */
    int64_t lost_from;     /* > 0: offsets lost_from.. were deleted before they were applied */
} partition_state;

typedef struct kafka_bus {
    char service[BSS_EVENT_SOURCE_MAX + 1];
    const bss_config *config;
    bss_store *store;
    bss_log *log;
    bss_metrics *metrics;
    char topic_prefix[128];
    char group_prefix[128];
    char events_topic[NAME_MAX_LEN + 1];
    char dead_letter_topic[NAME_MAX_LEN + 1];

    /* producer side (relay thread) */
    rd_kafka_t *producer;
    int64_t *pending;      /* published, not yet confirmed, increasing */
    unsigned char *delivered;
    size_t pending_first, pending_end, pending_cap;
    int delivery_failed;
    char delivery_error[BSS_ERRLEN];

    /* consumer side (consumer thread) */
    rd_kafka_t *consumer;
    char streams[MAX_STREAMS][BSS_EVENT_SOURCE_MAX + 1];
    char topics[MAX_STREAMS][NAME_MAX_LEN + 1];
    int nstreams;
    int subscription_changed; /* streams added since the last rd_kafka_subscribe */
    partition_state parts[MAX_PARTITIONS];
    int nparts;
    bss_bus_position_fn position_fn; /* set during bss_bus_poll only */
    bss_bus_apply_fn apply_fn;
    void *apply_ctx;
    int unflushed;
    int positions_unknown;  /* a position read failed: read them all again */
    int64_t commit_at_ms;
    int64_t probe_at_ms;
    rd_kafka_t *dead_letter_producer; /* created on the first dead letter */
    int64_t dead_letters_forwarded;   /* dead_letters.id, -1 until read */
    _Atomic int brokers_down;
    _Atomic int caught_up_once;
    _Atomic int stalled;    /* assigned partitions with a gap (offset_out_of_range) */
    _Atomic int64_t lag;
} kafka_bus;

/* ---- configuration ---------------------------------------------------- */

static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
    kafka_bus *b = rd_kafka_opaque(rk);
    if (level <= 3)
        bss_log_error(b->log, "kafka %s: %s", facility, buf);
    else if (level <= 5)
        bss_log_warn(b->log, "kafka %s: %s", facility, buf);
    else
        bss_log_info(b->log, "kafka %s: %s", facility, buf);
}

/* The settings every client of this bus shares: brokers, security, the
 * operator's BSS_KAFKA_PROPERTY_* (last, so they win). */
static int common_conf(kafka_bus *b, rd_kafka_conf_t *conf, char *err)
{
    char client_id[64];
    snprintf(client_id, sizeof client_id, "bssiot-%s", b->service);
    rd_kafka_conf_set_opaque(conf, b);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    int rc = bss_kafka_conf_set(conf, "bootstrap.servers",
                                bss_config_get(b->config, "BSS_KAFKA_BROKERS", ""), err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "client.id", client_id, err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_operator(conf, b->config, err);
    return rc;
}

static rd_kafka_t *new_client(kafka_bus *b, rd_kafka_type_t type, rd_kafka_conf_t *conf,
                              char *err)
{
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
    if (rk == NULL) {
        bss_seterr(err, "cannot create the kafka %s: %s",
                   type == RD_KAFKA_PRODUCER ? "producer" : "consumer", why);
        rd_kafka_conf_destroy(conf); /* still ours after a failed rd_kafka_new */
    }
    (void)b;
    return rk;
}

/* ---- producer ----------------------------------------------------------- */

/* Marks a sequence delivered; the pending list is sorted (the relay
 * publishes in sequence order), so a binary search finds it. */
static void mark_delivered(kafka_bus *b, int64_t sequence)
{
    size_t lo = b->pending_first, hi = b->pending_end;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->pending[mid] < sequence)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < b->pending_end && b->pending[lo] == sequence)
        b->delivered[lo] = 1;
}

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    kafka_bus *b = opaque;
    int64_t sequence = (int64_t)(intptr_t)msg->_private;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        mark_delivered(b, sequence);
    } else if (!b->delivery_failed) {
        b->delivery_failed = 1;
        snprintf(b->delivery_error, sizeof b->delivery_error, "event %lld: %s",
                 (long long)sequence, rd_kafka_err2str(msg->err));
    }
}

static int open_producer(kafka_bus *b, char *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
    /* Idempotent, and no delivery timeout: librdkafka retries until the
     * broker has each event, so a partition never gets a gap that a later
     * event would jump (which consumers would take for a duplicate). */
    int rc = bss_kafka_conf_set(conf, "enable.idempotence", "true", err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "message.timeout.ms", "0", err);
    if (rc == BSS_OK)
        rc = bss_kafka_conf_set(conf, "linger.ms", "2", err);
    if (rc == BSS_OK)
        rc = common_conf(b, conf, err);
    if (rc != BSS_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    b->producer = new_client(b, RD_KAFKA_PRODUCER, conf, err);
    return b->producer != NULL ? BSS_OK : BSS_ERR_INVALID;
}

static int pending_push(kafka_bus *b, int64_t sequence)
{
    if (b->pending_first > 0 && b->pending_end == b->pending_cap) {
        size_t n = b->pending_end - b->pending_first;
        memmove(b->pending, b->pending + b->pending_first, n * sizeof *b->pending);
        memmove(b->delivered, b->delivered + b->pending_first, n);
        b->pending_first = 0;
        b->pending_end = n;
    }
    if (b->pending_end == b->pending_cap) {
        size_t cap = b->pending_cap ? b->pending_cap * 2 : 1024;
        int64_t *p = realloc(b->pending, cap * sizeof *p);
        if (p == NULL)
            return BSS_ERR_NOMEM;
        b->pending = p;
        unsigned char *d = realloc(b->delivered, cap);
        if (d == NULL)
            return BSS_ERR_NOMEM;
        b->delivered = d;
        b->pending_cap = cap;
    }
    b->pending[b->pending_end] = sequence;
    b->delivered[b->pending_end] = 0;
    b->pending_end++;
    return BSS_OK;
}

/* The subject from the envelope, for callers that did not pass it. */
static int subject_of(const char *payload, size_t len, char *out, size_t cap)
{
    cJSON *doc = cJSON_ParseWithLength(payload, len);
    const cJSON *subject = cJSON_GetObjectItemCaseSensitive(doc, "subject");
    int found = cJSON_IsString(subject) && strlen(subject->valuestring) < cap;
    if (found)
        snprintf(out, cap, "%s", subject->valuestring);
    cJSON_Delete(doc);
    return found;
}

static int kafka_publish(void *state, int64_t sequence, const char *subject,
                         const char *payload, size_t len, char *err)
{
    kafka_bus *b = state;
    if (b->producer == NULL) {
        bss_seterr(err, "this bus was opened without a store to publish from");
        return BSS_ERR_INVALID;
    }
    char key[BSS_EVENT_SUBJECT_MAX + 1];
    if (subject == NULL && subject_of(payload, len, key, sizeof key))
        subject = key;
    size_t key_len = subject != NULL ? strlen(subject) : 0;
    char sequence_text[24];
    snprintf(sequence_text, sizeof sequence_text, "%lld", (long long)sequence);
    if (pending_push(b, sequence) != BSS_OK) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    for (int attempt = 0;; attempt++) {
        rd_kafka_resp_err_t rc = rd_kafka_producev(
            b->producer, RD_KAFKA_V_TOPIC(b->events_topic),
            RD_KAFKA_V_KEY(subject, key_len),
            RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("content-type", "application/cloudevents+json", -1),
            RD_KAFKA_V_HEADER(BSS_KAFKA_SEQUENCE_HEADER, sequence_text, -1),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)sequence), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
            return BSS_OK;
        /* A full local queue (broker slow or down) drains as delivery
         * reports are served; give it up to a second. */
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL && attempt < 100) {
            rd_kafka_poll(b->producer, 10);
            continue;
        }
        b->pending_end--; /* not taken */
        bss_seterr(err, "produce to %s: %s", b->events_topic, rd_kafka_err2str(rc));
        return rc == RD_KAFKA_RESP_ERR__QUEUE_FULL ? BSS_ERR_BUSY : BSS_ERR_IO;
    }
}

static int kafka_confirm(void *state, int timeout_ms, int64_t *confirmed, char *err)
{
    kafka_bus *b = state;
    if (b->producer == NULL)
        return BSS_OK;
    rd_kafka_poll(b->producer, timeout_ms);
    uint64_t delivered = 0;
    while (b->pending_first < b->pending_end && b->delivered[b->pending_first]) {
        *confirmed = b->pending[b->pending_first++];
        delivered++;
    }
    if (b->pending_first == b->pending_end)
        b->pending_first = b->pending_end = 0;
    if (delivered > 0)
        bss_metrics_counter_add(b->metrics, "bss_events_published_total", NULL, delivered);
    char why[512];
    rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(b->producer, why, sizeof why);
    if (fatal == RD_KAFKA_RESP_ERR_NO_ERROR && !b->delivery_failed)
        return BSS_OK;
    /* Start over: a new producer, and everything unconfirmed again. */
    if (fatal != RD_KAFKA_RESP_ERR_NO_ERROR)
        bss_seterr(err, "fatal producer error: %s", why);
    else
        bss_seterr(err, "delivery failed: %s", b->delivery_error);
    rd_kafka_purge(b->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(b->producer, 0);
    b->delivery_failed = 0;
    b->pending_first = b->pending_end = 0;
    if (fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char open_err[BSS_ERRLEN];
        rd_kafka_destroy(b->producer);
        b->producer = NULL;
        if (open_producer(b, open_err) != BSS_OK)
            bss_log_error(b->log, "cannot replace the kafka producer: %s", open_err);
    }
    return BSS_ERR_IO;
}

static int kafka_announce_head(void *state, int64_t head)
{
    (void)state;
    (void)head; /* the broker knows every partition's end */
    return BSS_OK;
}

/* ---- consumer: positions and assignment ---------------------------------- */

static int stream_of_topic(const kafka_bus *b, const char *topic)
{
    for (int i = 0; i < b->nstreams; i++)
        if (strcmp(b->topics[i], topic) == 0)
            return i;
    return -1;
}

static partition_state *find_partition(kafka_bus *b, int stream, int32_t partition, int create)
{
    for (int i = 0; i < b->nparts; i++)
        if (b->parts[i].stream == stream && b->parts[i].partition == partition)
            return &b->parts[i];
    if (!create || b->nparts == MAX_PARTITIONS)
        return NULL;
    partition_state *p = &b->parts[b->nparts++];
    memset(p, 0, sizeof *p);
    p->stream = stream;
    p->partition = partition;
    return p;
}

/* Reads the stored position of p and points it there: the fetch starts one
 * message back, to learn the last applied event's sequence (see the top). */
static int load_position(kafka_bus *b, partition_state *p)
{
    int64_t position = 0;
    if (b->position_fn == NULL ||
        b->position_fn(b->apply_ctx, b->streams[p->stream], p->partition, &position) != BSS_OK)
        return BSS_ERR;
    p->applied = position;
    p->peeking = position > 0 && position != p->no_peek_at;
    p->fetch_next = p->peeking ? position - 1 : position;
    p->last_sequence = 0;
    p->eof_seen = 0;
    return BSS_OK;
}

/* Makes everything applied so far durable (bus.h). Returns BSS_OK or the
 * consumer's error, after which every partition is sought back to the
 * store's positions. */
static int flush(kafka_bus *b);

static void fail_partitions(kafka_bus *b, partition_state *failed);

static void on_assign(kafka_bus *b, rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int stream = stream_of_topic(b, tp->topic);
        partition_state *p = stream >= 0 ? find_partition(b, stream, tp->partition, 1) : NULL;
        if (p == NULL)
            continue;
        p->assigned = 1;
        p->needs_seek = 0;
        p->lost_from = 0;
        p->backoff_ms = 0;
        if (load_position(b, p) != BSS_OK) {
            /* Fetch nothing useful until the position can be read. */
            p->needs_seek = 1;
            p->retry_at_ms = bss_monotonic_ms() + RETRY_MIN_MS;
        }
        tp->offset = p->fetch_next;
    }
    rd_kafka_assign(b->consumer, list);
    bss_log_info(b->log, "kafka: %d partitions assigned", list->cnt);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    kafka_bus *b = opaque;
    /* What was applied belongs to the old assignment: make it durable. */
    if (b->unflushed)
        flush(b);
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(b, list);
        return;
    }
    for (int i = 0; i < b->nparts; i++)
        b->parts[i].assigned = 0;
    rd_kafka_assign(rk, NULL);
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    kafka_bus *b = opaque;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        atomic_store(&b->brokers_down, 1);
        b->probe_at_ms = bss_monotonic_ms() + BROKER_PROBE_MS;
    }
    bss_log_warn(b->log, "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

static int open_consumer(kafka_bus *b, char *err)
{
    char group[sizeof b->group_prefix + BSS_EVENT_SOURCE_MAX + 2];
    snprintf(group, sizeof group, "%s.%s", b->group_prefix, b->service);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    /* Offsets live in the store; Kafka's are written for monitoring only. */
    const char *const settings[][2] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* A position the broker no longer has is an error, never a jump
         * (offset_out_of_range). */
        {"auto.offset.reset", "error"},
        {"enable.partition.eof", "true"},
        {"fetch.wait.max.ms", "100"},
        /* One member per group: a service killed without leaving the group
         * holds its partitions until its session expires, so keep that
         * short (the broker's group.min.session.timeout.ms is 6 s). A
         * service stopped with SIGTERM leaves the group in kafka_close
         * and pays nothing. */
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "1500"},
        /* Also the rebalance timeout sent with JoinGroup (how long a broker
         * waits for live members to rejoin) and, plus 3 s, the client's
         * timeout for a JoinGroup that is never answered: 5 minutes by
         * default. kafka_poll calls rd_kafka_consumer_poll between any two
         * deliveries, and nothing in between blocks for more than a few
         * seconds (a seek 2 s, a dead-letter flush 5 s, one apply or
         * commit), so 30 s is a wide margin. */
        {"max.poll.interval.ms", "30000"},
    };
    int rc = BSS_OK;
    for (size_t i = 0; rc == BSS_OK && i < sizeof settings / sizeof settings[0]; i++)
        rc = bss_kafka_conf_set(conf, settings[i][0], settings[i][1], err);
    if (rc == BSS_OK)
        rc = common_conf(b, conf, err);
    if (rc != BSS_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    b->consumer = new_client(b, RD_KAFKA_CONSUMER, conf, err);
    if (b->consumer == NULL)
        return BSS_ERR_INVALID;
    rd_kafka_poll_set_consumer(b->consumer);
    return BSS_OK;
}

static int kafka_subscribe(void *state, const char *stream, char *err)
{
    kafka_bus *b = state;
    for (int i = 0; i < b->nstreams; i++)
        if (strcmp(b->streams[i], stream) == 0)
            return BSS_OK;
    if (b->nstreams == MAX_STREAMS || strlen(stream) > BSS_EVENT_SOURCE_MAX) {
        bss_seterr(err, "cannot subscribe to %s: too many streams or name too long", stream);
        return BSS_ERR_INVALID;
    }
    if (b->consumer == NULL) {
        int rc = open_consumer(b, err);
        if (rc != BSS_OK)
            return rc;
    }
    snprintf(b->streams[b->nstreams], sizeof b->streams[0], "%s", stream);
    snprintf(b->topics[b->nstreams], sizeof b->topics[0], "%s.%s.events", b->topic_prefix,
             stream);
    b->nstreams++;
    /* Only recorded here: the next poll subscribes to every stream at once
     * (apply_subscription). */
    b->subscription_changed = 1;
    atomic_store(&b->caught_up_once, 0);
    return BSS_OK;
}

/* Hands librdkafka the whole subscription in one call. A service follows
 * several streams and used to subscribe one by one; when the group
 * coordinator was already known, the first JoinGroup went out with the
 * first topic only, the next subscribe made librdkafka rejoin and throw the
 * pending JoinGroup's answer away, member id included, and the coordinator
 * was left with a member nobody would ever speak for again. Until that
 * member's session expired it blocked every rebalance of the group (the
 * mock cluster even elects it leader): the startup join took 14 s instead
 * of 3, and a restart after kill -9 17 s instead of 11. */
static void apply_subscription(kafka_bus *b)
{
    if (!b->subscription_changed || b->nstreams == 0)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(b->nstreams);
    for (int i = 0; i < b->nstreams; i++)
        rd_kafka_topic_partition_list_add(list, b->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(b->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Kept pending: tried again on the next poll. */
        bss_log_warn(b->log, "kafka subscribe: %s", rd_kafka_err2str(rc));
        return;
    }
    b->subscription_changed = 0;
}

/* ---- consumer: failures ----------------------------------------------- */

/* After a failed apply or flush (bus.h): nothing held in memory is
 * trusted. `failed` (may be NULL) waits out its backoff; every partition
 * whose stored position is not what this bus holds is sought back to it. */
static void fail_partitions(kafka_bus *b, partition_state *failed)
{
    int64_t now = bss_monotonic_ms();
    b->unflushed = 0;
    if (failed != NULL) {
        failed->backoff_ms = failed->backoff_ms ? failed->backoff_ms * 2 : RETRY_MIN_MS;
        if (failed->backoff_ms > RETRY_MAX_MS)
            failed->backoff_ms = RETRY_MAX_MS;
        failed->needs_seek = 1;
        failed->retry_at_ms = now + failed->backoff_ms;
    }
    for (int i = 0; i < b->nparts; i++) {
        partition_state *p = &b->parts[i];
        if (p == failed || !p->assigned)
            continue;
        int64_t stored = 0;
        if (b->position_fn == NULL ||
            b->position_fn(b->apply_ctx, b->streams[p->stream], p->partition, &stored) !=
                BSS_OK) {
            b->positions_unknown = 1;
            p->needs_seek = 1;
            p->retry_at_ms = now + RETRY_MIN_MS;
        } else if (stored != p->applied) {
            p->needs_seek = 1;
            p->retry_at_ms = now + RETRY_MIN_MS;
        }
    }
}

/* Seeks the partitions whose backoff is over back to their stored position. */
static void seek_due(kafka_bus *b)
{
    int64_t now = bss_monotonic_ms();
    rd_kafka_topic_partition_list_t *list = NULL;
    for (int i = 0; i < b->nparts; i++) {
        partition_state *p = &b->parts[i];
        if (!p->assigned || !p->needs_seek || now < p->retry_at_ms)
            continue;
        if (load_position(b, p) != BSS_OK) {
            p->retry_at_ms = now + RETRY_MIN_MS;
            continue;
        }
        if (list == NULL)
            list = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_list_add(list, b->topics[p->stream], p->partition)->offset =
            p->fetch_next;
        p->needs_seek = 0;
    }
    if (list == NULL)
        return;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(b->consumer, list, 2000);
    if (error != NULL) {
        bss_log_warn(b->log, "kafka seek: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        int stream = stream_of_topic(b, list->elems[i].topic);
        partition_state *p = find_partition(b, stream, list->elems[i].partition, 0);
        if (p != NULL) {
            p->needs_seek = 1;
            p->retry_at_ms = now + RETRY_MIN_MS;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* ---- consumer: dead letters and monitoring ------------------------------- */

static int read_forwarded_mark(kafka_bus *b)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (bss_store_reader_acquire(b->store, &db, NULL) != BSS_OK)
        return BSS_ERR_IO;
    int64_t mark = 0;
    int rc = BSS_ERR_IO;
    if (sqlite3_prepare_v2(db, "SELECT value FROM store_meta WHERE key = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, FORWARDED_KEY, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            mark = sqlite3_column_int64(st, 0);
        rc = step == SQLITE_ROW || step == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
    }
    sqlite3_finalize(st);
    bss_store_reader_release(b->store, db);
    if (rc == BSS_OK)
        b->dead_letters_forwarded = mark;
    return rc;
}

static int write_forwarded_mark(kafka_bus *b, int64_t mark)
{
    char err[BSS_ERRLEN];
    int rc = bss_store_begin(b->store, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = BSS_ERR_IO;
    if (sqlite3_prepare_v2(bss_store_db(b->store),
                           "INSERT INTO store_meta(key, value) VALUES(?1, ?2)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, FORWARDED_KEY, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, mark);
        rc = sqlite3_step(st) == SQLITE_DONE ? BSS_OK : BSS_ERR_IO;
    }
    sqlite3_finalize(st);
    if (rc != BSS_OK) {
        bss_store_rollback(b->store);
        return rc;
    }
    return bss_store_commit(b->store, err);
}

static int open_dead_letter_producer(kafka_bus *b)
{
    char err[BSS_ERRLEN];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = bss_kafka_conf_set(conf, "enable.idempotence", "true", err);
    if (rc == BSS_OK)
        rc = common_conf(b, conf, err);
    if (rc != BSS_OK) {
        rd_kafka_conf_destroy(conf);
    } else {
        b->dead_letter_producer = new_client(b, RD_KAFKA_PRODUCER, conf, err);
        rc = b->dead_letter_producer != NULL ? BSS_OK : BSS_ERR;
    }
    if (rc != BSS_OK)
        bss_log_warn(b->log, "kafka dead-letter producer: %s", err);
    return rc;
}

/* Sends the store's dead letters recorded since the last forwarded one to
 * the dead-letter topic, waits for the broker, then moves the mark. */
static void forward_dead_letters(kafka_bus *b)
{
    if (b->store == NULL || (b->dead_letters_forwarded < 0 && read_forwarded_mark(b) != BSS_OK))
        return;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (bss_store_reader_acquire(b->store, &db, NULL) != BSS_OK)
        return;
    int64_t last = b->dead_letters_forwarded;
    int sent = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, stream, partition, position, payload, reason"
                           " FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, last);
        sqlite3_bind_int(st, 2, DEAD_LETTER_BATCH);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (b->dead_letter_producer == NULL && open_dead_letter_producer(b) != BSS_OK)
                break;
            const char *stream = (const char *)sqlite3_column_text(st, 1);
            char topic[NAME_MAX_LEN + 1], partition[16], offset[24];
            snprintf(topic, sizeof topic, "%s.%s.events", b->topic_prefix,
                     stream != NULL ? stream : "");
            snprintf(partition, sizeof partition, "%d", sqlite3_column_int(st, 2));
            snprintf(offset, sizeof offset, "%lld",
                     (long long)sqlite3_column_int64(st, 3) - 1); /* position = offset + 1 */
            const char *reason = (const char *)sqlite3_column_text(st, 5);
            const void *payload = sqlite3_column_blob(st, 4);
            size_t len = (size_t)sqlite3_column_bytes(st, 4);
            rd_kafka_resp_err_t rc = rd_kafka_producev(
                b->dead_letter_producer, RD_KAFKA_V_TOPIC(b->dead_letter_topic),
                RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER("bss-original-topic", topic, -1),
                RD_KAFKA_V_HEADER("bss-original-partition", partition, -1),
                RD_KAFKA_V_HEADER("bss-original-offset", offset, -1),
                RD_KAFKA_V_HEADER("bss-error", reason != NULL ? reason : "", -1),
                RD_KAFKA_V_END);
            if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
                bss_log_warn(b->log, "kafka dead letter: %s", rd_kafka_err2str(rc));
                break;
            }
            last = sqlite3_column_int64(st, 0);
            sent++;
        }
    }
    sqlite3_finalize(st);
    bss_store_reader_release(b->store, db);
    if (sent == 0)
        return;
    /* Rare, and the consumer waits on nothing else meanwhile: a plain flush. */
    if (rd_kafka_flush(b->dead_letter_producer, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bss_log_warn(b->log, "kafka dead letters not acknowledged yet; will send again");
        return;
    }
    if (write_forwarded_mark(b, last) == BSS_OK) {
        b->dead_letters_forwarded = last;
        bss_metrics_counter_add(b->metrics, "bss_dead_letters_forwarded_total", NULL,
                                (uint64_t)sent);
    }
}

/* Kafka's committed offsets: what was applied, for lag monitoring only. */
static void commit_offsets(kafka_bus *b)
{
    int64_t now = bss_monotonic_ms();
    if (now < b->commit_at_ms)
        return;
    b->commit_at_ms = now + COMMIT_EVERY_MS;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(b->nparts + 1);
    for (int i = 0; i < b->nparts; i++) {
        const partition_state *p = &b->parts[i];
        if (p->assigned && p->applied > 0)
            rd_kafka_topic_partition_list_add(list, b->topics[p->stream], p->partition)
                ->offset = p->applied;
    }
    if (list->cnt > 0)
        rd_kafka_commit(b->consumer, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
}

static int flush(kafka_bus *b)
{
    if (!b->unflushed || b->apply_fn == NULL)
        return BSS_OK;
    b->unflushed = 0;
    int rc = b->apply_fn(b->apply_ctx, NULL);
    if (rc != BSS_OK) {
        fail_partitions(b, NULL);
        return rc;
    }
    commit_offsets(b);
    forward_dead_letters(b);
    return BSS_OK;
}

/* ---- consumer: polling ---------------------------------------------------- */

/* The partition's next offset is not on the broker: retention deleted it
 * before it was applied (a consumer down or slower than the topic's
 * retention; the mock cluster keeps only 5 MiB per partition), or the log
 * ends before it (topic recreated, unclean leader election). With
 * auto.offset.reset=error librdkafka stops fetching the partition instead
 * of jumping to the log's start or end, which would skip events without a
 * trace. Only the message before the stored position missing is harmless
 * (it is read for its sequence only): the partition is sought straight to
 * its position. Anything else is a gap no consumer can close: logged as an
 * error, the service reports not-ready, and the seek is retried every
 * RETRY_MAX_MS until an operator restores the events or accepts the loss
 * (BSS_KAFKA_PROPERTY_AUTO_OFFSET_RESET=earliest). */
static void offset_out_of_range(kafka_bus *b, partition_state *p)
{
    int64_t now = bss_monotonic_ms();
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t rc = rd_kafka_query_watermark_offsets(
        b->consumer, b->topics[p->stream], p->partition, &low, &high, 2000);
    p->needs_seek = 1;
    p->retry_at_ms = now + RETRY_MAX_MS;
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bss_log_warn(b->log, "kafka %s [%d]: offset %lld out of range, watermarks unknown: %s",
                     b->topics[p->stream], (int)p->partition, (long long)p->fetch_next,
                     rd_kafka_err2str(rc));
        return;
    }
    if (p->peeking && p->applied == low) {
        p->no_peek_at = p->applied; /* nothing lost; the duplicate mark is unknown */
        p->retry_at_ms = now;
        return;
    }
    if (p->applied >= low && p->applied <= high) {
        p->retry_at_ms = now + RETRY_MIN_MS; /* in range again (a leader moved) */
        return;
    }
    if (p->lost_from == 0) {
        p->lost_from = p->applied + 1; /* + 1: offset 0 lost is still a loss */
        if (p->applied < low)
            bss_log_error(b->log,
                          "kafka %s [%d]: offsets %lld..%lld were deleted before this service "
                          "applied them (retention); the partition waits for an operator",
                          b->topics[p->stream], (int)p->partition, (long long)p->applied,
                          (long long)low - 1);
        else
            bss_log_error(b->log,
                          "kafka %s [%d]: stored position %lld is past the log's end %lld "
                          "(topic recreated or truncated?); the partition waits for an operator",
                          b->topics[p->stream], (int)p->partition, (long long)p->applied,
                          (long long)high);
        bss_metrics_counter_add(b->metrics, "bss_kafka_partitions_stalled_total", NULL, 1);
    }
}

static void handle_message(kafka_bus *b, rd_kafka_message_t *msg)
{
    if (msg->rkt == NULL)
        return;
    int stream = stream_of_topic(b, rd_kafka_topic_name(msg->rkt));
    partition_state *p = stream >= 0 ? find_partition(b, stream, msg->partition, 0) : NULL;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p != NULL && !p->needs_seek && !p->peeking && msg->offset >= p->fetch_next)
            p->eof_seen = 1;
        return;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && p != NULL && p->assigned) {
        offset_out_of_range(b, p);
        return;
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bss_log_warn(b->log, "kafka consumer: %s", rd_kafka_message_errstr(msg));
        return;
    }
    if (p == NULL || !p->assigned || p->needs_seek || msg->offset < p->fetch_next)
        return; /* not ours, waiting to be sought back, or from before a seek */
    p->fetch_next = msg->offset + 1;
    int64_t sequence = bss_kafka_header_sequence(msg);
    if (p->peeking) {
        p->peeking = 0;
        if (msg->offset + 1 == p->applied) {
            p->last_sequence = sequence; /* the last applied event */
            return;
        }
        /* that message is gone (retention): no mark to go by */
    }
    if (msg->offset + 1 <= p->applied)
        return;
    if (sequence > 0 && sequence <= p->last_sequence) {
        bss_metrics_counter_add(b->metrics, "bss_duplicates_skipped_total", NULL, 1);
        return; /* the relay published it again */
    }
    bss_delivery d = {b->streams[stream], (int)msg->partition, msg->offset + 1, msg->payload,
                      msg->len};
    int rc = b->apply_fn(b->apply_ctx, &d);
    if (rc != BSS_OK) {
        fail_partitions(b, p);
        return;
    }
    p->backoff_ms = 0;
    p->lost_from = 0;
    p->applied = msg->offset + 1;
    if (sequence > 0)
        p->last_sequence = sequence;
    b->unflushed = 1;
}

/* Whether the brokers answer again after an "all brokers down". */
static void probe_brokers(kafka_bus *b)
{
    int64_t now = bss_monotonic_ms();
    if (!atomic_load(&b->brokers_down) || now < b->probe_at_ms || b->nstreams == 0)
        return;
    b->probe_at_ms = now + BROKER_PROBE_MS;
    int64_t low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(b->consumer, b->topics[0], 0, &low, &high, 200) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_store(&b->brokers_down, 0);
}

static void update_progress(kafka_bus *b)
{
    int64_t lag = 0;
    int assigned_streams[MAX_STREAMS] = {0};
    int all_at_end = 1;
    int stalled = 0;
    for (int i = 0; i < b->nparts; i++) {
        const partition_state *p = &b->parts[i];
        if (!p->assigned)
            continue;
        stalled += p->lost_from > 0;
        assigned_streams[p->stream] = 1;
        all_at_end = all_at_end && p->eof_seen;
        int64_t low = 0, high = 0;
        if (rd_kafka_get_watermark_offsets(b->consumer, b->topics[p->stream], p->partition, &low,
                                           &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            high > p->fetch_next)
            lag += high - p->fetch_next;
    }
    atomic_store(&b->lag, lag);
    atomic_store(&b->stalled, stalled);
    for (int i = 0; i < b->nstreams; i++)
        all_at_end = all_at_end && assigned_streams[i];
    if (all_at_end && b->nstreams > 0)
        atomic_store(&b->caught_up_once, 1);
}

static int kafka_poll(void *state, int timeout_ms, bss_bus_position_fn position,
                      bss_bus_apply_fn apply, void *ctx, char *err)
{
    kafka_bus *b = state;
    (void)err;
    if (b->consumer == NULL)
        return BSS_OK;
    b->position_fn = position;
    b->apply_fn = apply;
    b->apply_ctx = ctx;
    apply_subscription(b);
    probe_brokers(b);
    if (b->positions_unknown) {
        b->positions_unknown = 0;
        fail_partitions(b, NULL);
    }
    seek_due(b);
    /* The first wait must not hold anything unflushed (bus.h). */
    flush(b);
    for (int handled = 0; handled < DRAIN_MAX; handled++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(b->consumer, handled ? 0 : timeout_ms);
        if (msg == NULL)
            break;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            atomic_store(&b->brokers_down, 0);
        handle_message(b, msg);
        rd_kafka_message_destroy(msg);
    }
    flush(b);
    update_progress(b);
    b->position_fn = NULL;
    b->apply_fn = NULL;
    b->apply_ctx = NULL;
    return BSS_OK;
}

static int kafka_caught_up(const void *state)
{
    const kafka_bus *b = state;
    return atomic_load(&b->caught_up_once) && !atomic_load(&b->brokers_down) &&
           !atomic_load(&b->stalled);
}

static int64_t kafka_lag(const void *state)
{
    const kafka_bus *b = state;
    return atomic_load(&b->lag);
}

/* ---- open and close ------------------------------------------------------ */

static void kafka_close(void *state)
{
    kafka_bus *b = state;
    if (b == NULL)
        return;
    if (b->consumer != NULL) {
        rd_kafka_consumer_close(b->consumer);
        rd_kafka_destroy(b->consumer);
    }
    if (b->dead_letter_producer != NULL) {
        rd_kafka_flush(b->dead_letter_producer, 2000);
        rd_kafka_destroy(b->dead_letter_producer);
    }
    if (b->producer != NULL) {
        /* The relay waited for its confirmations already; whatever is left
         * stays in the outbox and is published again after a restart. */
        rd_kafka_purge(b->producer, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_flush(b->producer, 1000);
        rd_kafka_destroy(b->producer);
    }
    free(b->pending);
    free(b->delivered);
    free(b);
}

static int kafka_open(const bss_bus_options *o, void **state, char *err)
{
    if (o->service == NULL || o->service[0] == '\0' ||
        strlen(o->service) > BSS_EVENT_SOURCE_MAX) {
        bss_seterr(err, "the kafka bus needs a service name");
        return BSS_ERR_INVALID;
    }
    const char *brokers = bss_config_get(o->config, "BSS_KAFKA_BROKERS", "");
    if (brokers[0] == '\0') {
        bss_seterr(err, "BSS_BUS=kafka needs BSS_KAFKA_BROKERS (host:port,...)");
        return BSS_ERR_INVALID;
    }
    const char *topic_prefix = bss_config_get(o->config, "BSS_KAFKA_TOPIC_PREFIX", "bssiot");
    const char *group_prefix = bss_config_get(o->config, "BSS_KAFKA_GROUP_PREFIX", "bssiot");
    if (topic_prefix[0] == '\0' || strlen(topic_prefix) >= 128 || group_prefix[0] == '\0' ||
        strlen(group_prefix) >= 128) {
        bss_seterr(err, "BSS_KAFKA_TOPIC_PREFIX and BSS_KAFKA_GROUP_PREFIX must be 1..127 "
                        "characters");
        return BSS_ERR_INVALID;
    }
    kafka_bus *b = calloc(1, sizeof *b);
    if (b == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    snprintf(b->service, sizeof b->service, "%s", o->service);
    snprintf(b->topic_prefix, sizeof b->topic_prefix, "%s", topic_prefix);
    snprintf(b->group_prefix, sizeof b->group_prefix, "%s", group_prefix);
    snprintf(b->events_topic, sizeof b->events_topic, "%s.%s.events", topic_prefix,
             o->service);
    snprintf(b->dead_letter_topic, sizeof b->dead_letter_topic, "%s.%s.dead-letters",
             topic_prefix, o->service);
    b->config = o->config;
    b->store = o->store;
    b->log = o->log;
    b->metrics = o->metrics;
    b->dead_letters_forwarded = -1;
    if (b->store != NULL) {
        int rc = open_producer(b, err);
        if (rc != BSS_OK) {
            kafka_close(b);
            return rc;
        }
    }
    *state = b;
    return BSS_OK;
}

const bss_bus_ops bss_bus_kafka_ops = {
    .name = "kafka",
    .open = kafka_open,
    .publish = kafka_publish,
    .confirm = kafka_confirm,
    .announce_head = kafka_announce_head,
    .subscribe = kafka_subscribe,
    .poll = kafka_poll,
    .caught_up = kafka_caught_up,
    .lag = kafka_lag,
    .close = kafka_close,
};
