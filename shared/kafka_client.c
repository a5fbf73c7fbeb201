/* kafka_client.c - see kafka_client.h. */
#include "kafka_client.h"

#include "bss_error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define PROPERTY_PREFIX "BSS_KAFKA_PROPERTY_"

int bss_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        bss_seterr(err, "kafka property %s: %s", name, why);
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

static const char *setting(const bss_config *cfg, const char *key, const char *fallback)
{
    if (cfg != NULL)
        return bss_config_get(cfg, key, fallback);
    const char *value = getenv(key);
    return value != NULL ? value : fallback;
}

int bss_kafka_conf_operator(rd_kafka_conf_t *conf, const bss_config *cfg, char *err)
{
    static const char *const security[][2] = {
        {"BSS_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
        {"BSS_KAFKA_SASL_MECHANISM", "sasl.mechanisms"},
        {"BSS_KAFKA_SASL_USERNAME", "sasl.username"},
        {"BSS_KAFKA_SASL_PASSWORD", "sasl.password"},
        {"BSS_KAFKA_SSL_CA_LOCATION", "ssl.ca.location"},
    };
    int rc = BSS_OK;
    for (size_t i = 0; rc == BSS_OK && i < sizeof security / sizeof security[0]; i++) {
        const char *value = setting(cfg, security[i][0], NULL);
        if (value != NULL && value[0] != '\0')
            rc = bss_kafka_conf_set(conf, security[i][1], value, err);
    }
    for (char **env = environ; rc == BSS_OK && env != NULL && *env != NULL; env++) {
        if (strncmp(*env, PROPERTY_PREFIX, strlen(PROPERTY_PREFIX)) != 0)
            continue;
        const char *name_start = *env + strlen(PROPERTY_PREFIX);
        const char *eq = strchr(name_start, '=');
        char key[128], name[128];
        size_t n = eq != NULL ? (size_t)(eq - *env) : 0;
        if (eq == NULL || eq == name_start || n >= sizeof key)
            continue;
        memcpy(key, *env, n);
        key[n] = '\0';
        size_t m = (size_t)(eq - name_start);
        for (size_t i = 0; i < m; i++)
            name[i] = name_start[i] == '_' ? '.' : (char)tolower((unsigned char)name_start[i]);
        name[m] = '\0';
        rc = bss_kafka_conf_set(conf, name, setting(cfg, key, eq + 1), err);
    }
    return rc;
}

int64_t bss_kafka_header_sequence(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *headers = NULL;
    const void *value = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, BSS_KAFKA_SEQUENCE_HEADER, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        value == NULL || size == 0 || size > 18)
        return 0;
    int64_t sequence = 0;
    for (size_t i = 0; i < size; i++) {
        char c = ((const char *)value)[i];
        if (c < '0' || c > '9')
            return 0;
        sequence = sequence * 10 + (c - '0');
    }
    return sequence;
}
