/*
 * kafka_client.h - what every librdkafka client of bssiot shares: the
 * operator's settings and the event headers. Used by the bus backend
 * (bus_kafka.c) and by bssiot-replay's topic reader, so both connect the
 * same way and read the same headers.
 *
 * Operator settings (see README "Kafka mode"):
 *   BSS_KAFKA_SECURITY_PROTOCOL, BSS_KAFKA_SASL_MECHANISM,
 *   BSS_KAFKA_SASL_USERNAME, BSS_KAFKA_SASL_PASSWORD,
 *   BSS_KAFKA_SSL_CA_LOCATION   security.protocol, sasl.mechanisms,
 *                               sasl.username, sasl.password,
 *                               ssl.ca.location
 *   BSS_KAFKA_PROPERTY_<NAME>   any property, NAME upper-case with '_' for
 *                               '.', applied last so it wins
 */
#ifndef BSS_KAFKA_CLIENT_H
#define BSS_KAFKA_CLIENT_H

#include "config.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>

/* The header carrying the event's position in its source's log. */
#define BSS_KAFKA_SEQUENCE_HEADER "bss-sequence"

/* Sets one property; BSS_ERR_INVALID with librdkafka's reason in err. */
int bss_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err);

/* Applies the operator settings above. Values are read through cfg when it
 * is not NULL (so a command-line flag overrides the variable), else from
 * the environment; BSS_KAFKA_PROPERTY_* names are found in the environment. */
int bss_kafka_conf_operator(rd_kafka_conf_t *conf, const bss_config *cfg, char *err);

/* The bss-sequence header of msg as a number; 0 when absent or not a
 * decimal number. */
int64_t bss_kafka_header_sequence(const rd_kafka_message_t *msg);

#endif
