/*
 * replay_kafka.h - bssiot-replay's Kafka backend: a source's events read
 * from its topic instead of its SQLite log (replay_log.h).
 *
 * The topic is `<prefix>.<source>.events`; a message's value is the event's
 * JSON envelope as stored in the producer's log, its header `bss-sequence`
 * the event's sequence there (bus_kafka.c). The reader is a plain consumer:
 * assign(), never subscribed to a group (librdkafka only wants a group.id
 * to exist: "bssiot-replay"), no commits, so it never disturbs the
 * services' groups or their lag. At open it takes every partition's
 * watermarks and reads each partition from its low watermark to the high
 * watermark of that moment (or to the filter's per-partition bound, if
 * lower), so one iterator sees a fixed cut of the topic even while the
 * services go on publishing.
 *
 * Order and duplicates. A line's events share a partition (the key is the
 * subject) and within a partition they are in sequence order, except for
 * copies a relay republished after a restart. The reader consumes each
 * partition from a queue of its own and merges the partitions' heads by
 * sequence, so the events come out in the order of the source's log. An
 * event whose sequence was already handed out with the same id is a
 * republished copy and is dropped (counted in replay_kafka_duplicates); the
 * same sequence with a different id is reported as a corrupt item.
 * Undecodable messages, and messages whose envelope names another source or
 * carries no sequence, are corrupt items too, located as
 * "partition P offset O" in the topic.
 *
 * Configuration, as the services take it (bus_kafka.c): the brokers and
 * topic prefix from replay_source (the tool fills them from --kafka-brokers
 * or BSS_KAFKA_BROKERS, and BSS_KAFKA_TOPIC_PREFIX, default bssiot);
 * BSS_KAFKA_SECURITY_PROTOCOL, BSS_KAFKA_SASL_MECHANISM,
 * BSS_KAFKA_SASL_USERNAME, BSS_KAFKA_SASL_PASSWORD and
 * BSS_KAFKA_SSL_CA_LOCATION, then any BSS_KAFKA_PROPERTY_<NAME> (NAME
 * upper-case with '_' for '.'), from the environment.
 *
 * Memory: one decoded event per partition plus 16 bytes per event read (the
 * sequence/id set behind duplicate detection).
 */
#ifndef BSS_REPLAY_KAFKA_H
#define BSS_REPLAY_KAFKA_H

#include "replay_log.h"

#include <stddef.h>
#include <stdint.h>

/* Opens source's topic as described above, filtered by f (f and the strings
 * and lists it points to must outlive the log). Returns BSS_OK,
 * BSS_ERR_NOTFOUND when the topic does not exist, BSS_ERR_INVALID (a
 * configuration librdkafka refuses, a topic with more than
 * REPLAY_MAX_PARTITIONS partitions), BSS_ERR_IO (brokers unreachable within
 * 10 s) or BSS_ERR_NOMEM; err filled on failure. Reading
 * (replay_log_next) fails with BSS_ERR_IO when a partition delivers nothing
 * for 30 s below the offset it has to reach. */
int replay_kafka_open(const replay_source *src, const char *source, const replay_filter *f,
                      replay_log **out, char *err);

/* One message's value as an event of `source`: the envelope decoded
 * (bss_event_decode), its source checked, its sequence the envelope's (or
 * header_sequence, the bss-sequence header's value, when the envelope has
 * none; 0 for no header) and equal to the header's when both are there.
 * Returns BSS_OK with *out owned by the caller, BSS_ERR_INVALID with err
 * saying what is wrong, or BSS_ERR_NOMEM. (Fuzzed by
 * tests/fuzz/fuzz_replay_event.c.) */
int replay_kafka_event_from_message(const void *payload, size_t len, int64_t header_sequence,
                                    const char *source, bss_event **out, char *err);

/* The republished copies a Kafka log dropped so far; 0 for other logs. */
int64_t replay_kafka_duplicates(const replay_log *log);

#endif
