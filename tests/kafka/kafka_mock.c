/*
 * bssiot-kafka-mock - a Kafka cluster for tests: librdkafka's mock cluster
 * (rdkafka_mock.h), which speaks the real protocol on loopback sockets.
 *
 *   bssiot-kafka-mock [--brokers N] [--partitions P] [topic ...]
 *
 * Starts N brokers (default 3), creates each named topic with P partitions
 * (default 1) and replication factor min(3, N), prints the bootstrap address
 * (host:port,...) as the first line on stdout and runs until SIGTERM/SIGINT
 * or the end of stdin. Other topics are created on first use. Commands on
 * stdin, one per line, drive faults; each is answered "ok" or "error ...":
 *
 *   down B | up B             broker B (1..N, -1 for all) refuses connections / is back
 *   leader TOPIC PART B       moves the partition's leadership to broker B
 *   errors APIKEY ERR COUNT   the next COUNT requests of ApiKey (0 Produce,
 *                             1 Fetch, 8 OffsetCommit ...) fail with Kafka error ERR
 *   rtt B MS                  broker B answers MS milliseconds late
 *   topic NAME PARTS          creates a topic
 *   bootstraps                prints the bootstrap address again
 *   last TOPIC                "ok COUNT" and the headers of the topic's newest
 *                             message ("name=value" each), read as a client
 *   fill TOPIC PART N BYTES   appends N messages of BYTES bytes ("x"s, no key,
 *                             no headers) to the partition; "ok LOW HIGH", its
 *                             watermarks after. The mock keeps 5 MiB per
 *                             partition, so this deletes the oldest messages
 *                             the way retention would.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Counts a topic's messages over its partitions and prints the headers of
 * the newest one, read back with a consumer of its own. */
static int last_message(rd_kafka_mock_cluster_t *cluster, const char *topic)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(cluster),
                          why, sizeof why) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return printf("error %s\n", why);
    }
    if (rd_kafka_conf_set(conf, "group.id", "bssiot-kafka-mock-reader", why, sizeof why) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof why) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return printf("error %s\n", why);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return printf("error %s\n", why);
    }
    long long count = 0;
    int32_t newest_partition = -1;
    int64_t newest_offset = -1;
    for (int32_t partition = 0; partition < 64; partition++) {
        int64_t low = 0, high = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, 2000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        count += high - low;
        if (high > low) {
            newest_partition = partition;
            newest_offset = high - 1;
        }
    }
    char headers[2048] = "";
    if (newest_partition >= 0) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, newest_partition)->offset = newest_offset;
        rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        for (int tries = 0; tries < 100; tries++) {
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
            if (msg == NULL)
                continue;
            rd_kafka_headers_t *hdrs = NULL;
            if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char *name;
                const void *value;
                size_t size;
                size_t used = 0;
                for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                                   RD_KAFKA_RESP_ERR_NO_ERROR;
                     i++) {
                    int n = snprintf(headers + used, sizeof headers - used, " %s=%.*s", name,
                                     (int)size, value != NULL ? (const char *)value : "");
                    if (n < 0 || (size_t)n >= sizeof headers - used)
                        break;
                    used += (size_t)n;
                }
            }
            if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                fprintf(stderr, "last %s: %s\n", topic, rd_kafka_message_errstr(msg));
            int done = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR;
            rd_kafka_message_destroy(msg);
            if (done)
                break;
        }
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    for (char *c = headers; *c; c++)
        if (*c == '\n')
            *c = ' ';
    return printf("ok %lld%s\n", count, headers);
}

/* A producer of the cluster for one command (fill). */
static rd_kafka_t *command_client(rd_kafka_mock_cluster_t *cluster, char *why, size_t len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(cluster),
                          why, len) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "5", why, len) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, len);
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

static int fill(rd_kafka_mock_cluster_t *cluster, const char *topic, int partition, int count,
                int bytes)
{
    char why[512];
    rd_kafka_t *rk = command_client(cluster, why, sizeof why);
    if (rk == NULL)
        return printf("error %s\n", why);
    char *value = malloc((size_t)bytes);
    if (value == NULL) {
        rd_kafka_destroy(rk);
        return printf("error out of memory\n");
    }
    memset(value, 'x', (size_t)bytes);
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < count && rc == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        rc = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                               RD_KAFKA_V_VALUE(value, (size_t)bytes),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 100);
            rc = RD_KAFKA_RESP_ERR_NO_ERROR;
            i--;
        }
    }
    free(value);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = rd_kafka_flush(rk, 30000);
    int64_t low = 0, high = 0;
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, 5000);
    rd_kafka_destroy(rk);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return printf("error %s\n", rd_kafka_err2str(rc));
    return printf("ok %lld %lld\n", (long long)low, (long long)high);
}

static int command(rd_kafka_mock_cluster_t *cluster, char *line)
{
    char topic[256];
    int a = 0, b = 0, c = 0;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (sscanf(line, "down %d", &a) == 1) {
        rc = rd_kafka_mock_broker_set_down(cluster, a);
    } else if (sscanf(line, "up %d", &a) == 1) {
        rc = rd_kafka_mock_broker_set_up(cluster, a);
    } else if (sscanf(line, "leader %255s %d %d", topic, &a, &b) == 3) {
        rc = rd_kafka_mock_partition_set_leader(cluster, topic, a, b);
    } else if (sscanf(line, "errors %d %d %d", &a, &b, &c) == 3 && c > 0 && c < 10000) {
        rd_kafka_resp_err_t *errors = calloc((size_t)c, sizeof *errors);
        if (errors == NULL)
            return printf("error out of memory\n");
        for (int i = 0; i < c; i++)
            errors[i] = (rd_kafka_resp_err_t)b;
        rd_kafka_mock_push_request_errors_array(cluster, (int16_t)a, (size_t)c, errors);
        free(errors);
    } else if (sscanf(line, "rtt %d %d", &a, &b) == 2) {
        rc = rd_kafka_mock_broker_set_rtt(cluster, a, b);
    } else if (sscanf(line, "topic %255s %d", topic, &a) == 2) {
        rc = rd_kafka_mock_topic_create(cluster, topic, a, 3);
    } else if (sscanf(line, "last %255s", topic) == 1) {
        return last_message(cluster, topic);
    } else if (sscanf(line, "fill %255s %d %d %d", topic, &a, &b, &c) == 4 && a >= 0 &&
               b > 0 && b <= 100000 && c > 0 && c <= 1000000) {
        return fill(cluster, topic, a, b, c);

    } else if (strncmp(line, "bootstraps", 10) == 0) {
        return printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    } else {
        return printf("error unknown command: %s\n", line);
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return printf("error %s\n", rd_kafka_err2str(rc));
    return printf("ok\n");
}

int main(int argc, char **argv)
{
    int brokers = 3, partitions = 1;
    int first_topic = 1;
    for (; first_topic < argc; first_topic++) {
        if (strcmp(argv[first_topic], "--brokers") == 0 && first_topic + 1 < argc)
            brokers = atoi(argv[++first_topic]);
        else if (strcmp(argv[first_topic], "--partitions") == 0 && first_topic + 1 < argc)
            partitions = atoi(argv[++first_topic]);
        else
            break;
    }
    if (brokers < 1 || partitions < 1) {
        fprintf(stderr, "usage: %s [--brokers N] [--partitions P] [topic ...]\n", argv[0]);
        return 2;
    }
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", why, sizeof why) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", why);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    /* The mock cluster needs a client instance to live in; it is not used. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (rk == NULL) {
        fprintf(stderr, "rd_kafka_new: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (cluster == NULL) {
        fprintf(stderr, "cannot start the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int replicas = brokers < 3 ? brokers : 3;
    for (int i = first_topic; i < argc; i++) {
        rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(cluster, argv[i], partitions, replicas);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
            fprintf(stderr, "topic %s: %s\n", argv[i], rd_kafka_err2str(rc));
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));

    char line[1024];
    size_t used = 0;
    int stdin_open = 1;
    while (!stop_requested) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int ready = stdin_open ? poll(&pfd, 1, 200) : (pause(), 0);
        if (ready <= 0)
            continue;
        ssize_t n = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
        if (n <= 0) {
            /* stdin closed: keep running until signalled (a detached run) */
            stdin_open = 0;
            continue;
        }
        used += (size_t)n;
        line[used] = '\0';
        char *newline;
        while ((newline = strchr(line, '\n')) != NULL) {
            *newline = '\0';
            if (line[0] != '\0')
                command(cluster, line);
            size_t rest = used - (size_t)(newline + 1 - line);
            memmove(line, newline + 1, rest + 1);
            used = rest;
        }
        if (used == sizeof line - 1)
            used = 0; /* an overlong line: dropped */
    }
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    return 0;
}
