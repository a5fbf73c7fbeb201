/*
 * test_replay_kafka.c - bssiot-replay's Kafka reader (tools/replay_kafka.h)
 * against librdkafka's mock cluster, in process: a topic of two partitions
 * written the way a relay writes it, plus what a relay restart and damage
 * leave behind. The reader must hand out the source's events in sequence
 * order across partitions, drop a republished copy, report undecodable,
 * foreign and conflicting messages where they sit, stop at per-partition
 * bounds, apply the filters, and read nothing from a topic that does not
 * exist.
 */
#include "bss_error.h"
#include "check.h"
#include "envelope.h"
#include "replay_kafka.h"
#include "replay_log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "t1.customer.events"

static check_counts counts;

/* A customer event's envelope at `sequence`, with the given id (NULL: a
 * fresh one), as the store writes it. */
static char *envelope(int64_t sequence, const char *source, char *id_out, const char *id)
{
    char err[BSS_ERRLEN], data[64];
    snprintf(data, sizeof data, "{\"n\":%lld}", (long long)sequence);
    bss_event *ev = bss_event_new("OrderCreated", "7000000001", data, err);
    if (ev == NULL)
        return NULL;
    snprintf(ev->source, sizeof ev->source, "%s", source);
    ev->sequence = sequence;
    ev->version = sequence;
    if (id != NULL)
        snprintf(ev->id, sizeof ev->id, "%s", id);
    if (id_out != NULL)
        snprintf(id_out, BSS_EVENT_ID_MAX + 1, "%s", ev->id);
    char *json = bss_event_encode(ev, NULL);
    bss_event_free(ev);
    return json;
}

static void produce(rd_kafka_t *producer, int32_t partition, const char *value, int64_t sequence)
{
    char header[24];
    snprintf(header, sizeof header, "%lld", (long long)sequence);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("bss-sequence", header, -1), RD_KAFKA_V_END);
    CHECK(&counts, err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

typedef struct read_result {
    int64_t sequences[32];
    size_t n;
    char corrupt[8][512]; /* "where: reason" */
    size_t ncorrupt;
    replay_marks reached;
    int64_t duplicates;
} read_result;

static int read_all(const replay_source *src, const replay_filter *f, read_result *out)
{
    memset(out, 0, sizeof *out);
    char err[BSS_ERRLEN];
    replay_log *log = NULL;
    int rc = replay_log_open(src, "customer", f, &log, err);
    if (rc != BSS_OK)
        return rc;
    replay_item *item = malloc(sizeof *item);
    while (item != NULL && (rc = replay_log_next(log, item, err)) == BSS_OK) {
        if (item->ok && out->n < 32)
            out->sequences[out->n++] = item->event.sequence;
        else if (!item->ok && out->ncorrupt < 8)
            snprintf(out->corrupt[out->ncorrupt++], sizeof out->corrupt[0], "%s: %s",
                     item->where, item->reason);
    }
    if (rc != BSS_ERR_NOTFOUND)
        fprintf(stderr, "read: %s\n", err);
    out->reached = log->reached;
    out->duplicates = replay_kafka_duplicates(log);
    free(item);
    replay_log_close(log);
    return rc == BSS_ERR_NOTFOUND ? BSS_OK : rc;
}

static int has_corrupt(const read_result *r, const char *where, const char *reason_part)
{
    for (size_t i = 0; i < r->ncorrupt; i++)
        if (strncmp(r->corrupt[i], where, strlen(where)) == 0 &&
            strstr(r->corrupt[i], reason_part) != NULL)
            return 1;
    return 0;
}

int main(void)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The producer hosts the mock cluster itself. */
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "3", why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    CHECK(&counts, producer != NULL);
    if (producer == NULL)
        return CHECK_DONE(&counts);
    rd_kafka_mock_cluster_t *cluster = rd_kafka_handle_mock_cluster(producer);
    CHECK(&counts, rd_kafka_mock_topic_create(cluster, TOPIC, 2, 1) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR);

    /* Sequences 1..6 over two partitions (as subjects would spread them),
     * then: a republished copy of 3 at the end of partition 0, garbage and
     * an event of another source in partition 1, and a different event
     * claiming sequence 5. */
    char ids[8][BSS_EVENT_ID_MAX + 1];
    for (int64_t seq = 1; seq <= 6; seq++) {
        char *json = envelope(seq, "customer", ids[seq], NULL);
        CHECK(&counts, json != NULL);
        if (json != NULL)
            produce(producer, seq % 2 == 1 ? 0 : 1, json, seq);
        free(json);
    }
    char *copy = envelope(3, "customer", NULL, ids[3]);
    produce(producer, 0, copy, 3);          /* partition 0 offset 3 */
    produce(producer, 1, "{not json", 7);   /* partition 1 offset 3 */
    char *foreign = envelope(8, "rater", NULL, NULL);
    produce(producer, 1, foreign, 8);       /* partition 1 offset 4 */
    char *conflict = envelope(5, "customer", NULL, NULL);
    produce(producer, 1, conflict, 5);      /* partition 1 offset 5 */
    free(copy);
    free(foreign);
    free(conflict);
    CHECK(&counts, rd_kafka_flush(producer, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);

    replay_source src = {"/nonexistent", rd_kafka_mock_cluster_bootstraps(cluster), "t1"};
    replay_filter f;
    replay_filter_init(&f);
    read_result r;
    CHECK(&counts, read_all(&src, &f, &r) == BSS_OK);
    CHECK(&counts, r.n == 6);
    for (size_t i = 0; i < r.n; i++)
        CHECK(&counts, r.sequences[i] == (int64_t)i + 1);
    CHECK(&counts, r.duplicates == 1);
    CHECK(&counts, r.ncorrupt == 3);
    CHECK(&counts, has_corrupt(&r, "partition 1 offset 3", ""));
    CHECK(&counts, has_corrupt(&r, "partition 1 offset 4", "source 'rater'"));
    CHECK(&counts, has_corrupt(&r, "partition 1 offset 5", "another event id"));
    CHECK(&counts, r.reached.n == 2 && replay_marks_get(&r.reached, 0) == 4 &&
                       replay_marks_get(&r.reached, 1) == 6);

    /* Bounded per partition, as verify bounds a rebuild: partition 0 up to
     * offset 2 (sequences 1, 3), partition 1 up to 2 (2, 4). */
    replay_marks bound = {2, {0, 1}, {2, 2}};
    f.up_to = &bound;
    CHECK(&counts, read_all(&src, &f, &r) == BSS_OK);
    CHECK(&counts, r.n == 4 && r.sequences[0] == 1 && r.sequences[1] == 2 &&
                       r.sequences[2] == 3 && r.sequences[3] == 4);
    CHECK(&counts, r.ncorrupt == 0 && r.duplicates == 0);
    CHECK(&counts, replay_marks_get(&r.reached, 0) == 2 && replay_marks_get(&r.reached, 1) == 2);

    /* Filters apply after decoding, as the SQLite query applies them. */
    replay_filter_init(&f);
    f.after_sequence = 2;
    f.up_to_sequence = 5;
    CHECK(&counts, read_all(&src, &f, &r) == BSS_OK);
    CHECK(&counts, r.n == 3 && r.sequences[0] == 3 && r.sequences[2] == 5);
    replay_filter_init(&f);
    f.type = "OrderCompleted";
    CHECK(&counts, read_all(&src, &f, &r) == BSS_OK);
    CHECK(&counts, r.n == 0);

    /* A topic that does not exist is "not found", as a missing store is;
     * the mock cluster creates a topic on its first metadata request (a
     * real broker does not for this consumer), which reads as empty. */
    replay_source elsewhere = {"/nonexistent", src.kafka_brokers, "nosuch"};
    replay_filter_init(&f);
    int rc = read_all(&elsewhere, &f, &r);
    CHECK(&counts, rc == BSS_ERR_NOTFOUND || (rc == BSS_OK && r.n == 0 && r.ncorrupt == 0));

    rd_kafka_destroy(producer);
    return CHECK_DONE(&counts);
}
