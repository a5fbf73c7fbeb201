/*
 * bus_producer.c - a producing service for the multi-process bus tests.
 *
 * Appends events, one write transaction each as a real service does, until
 * its log holds BSS_COUNT of them (so a restarted producer carries on where
 * the killed one stopped), at about BSS_RATE events per second over
 * BSS_SUBJECTS subjects, then keeps serving its log until SIGTERM/SIGINT.
 * Source name: "producer". Everything else comes from the event core.
 */
#include "bss_error.h"
#include "config.h"
#include "eventcore.h"
#include "isotime.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void pace(int64_t start_ns, long long done, long long rate)
{
    if (rate <= 0)
        return;
    int64_t due = start_ns + done * 1000000000LL / rate;
    int64_t now = bss_monotonic_ns();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000000LL),
                              (long)((due - now) % 1000000000LL)};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    char err[BSS_ERRLEN];
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    bss_config *config = bss_config_load(argc, argv, err);
    if (config == NULL) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    long long count = 0, rate = 0, subjects = 0;
    if (bss_config_get_int(config, "BSS_COUNT", 1000, &count, err) != BSS_OK ||
        bss_config_get_int(config, "BSS_RATE", 0, &rate, err) != BSS_OK ||
        bss_config_get_int(config, "BSS_SUBJECTS", 50, &subjects, err) != BSS_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    const char *data_dir = bss_config_get(config, "BSS_DATA_DIR", "./data");
    bss_log *log = bss_log_open("producer", NULL, BSS_LOG_WARN);
    bss_eventcore_options o = {.service = "producer", .config = config, .data_dir = data_dir,
                               .log = log};
    bss_eventcore *core = NULL;
    if (bss_eventcore_open(&o, &core, err) != BSS_OK) {
        fprintf(stderr, "event core: %s\n", err);
        return 2;
    }
    bss_store *store = bss_eventcore_store(core);
    int64_t head = 0;
    if (bss_store_head(store, &head, err) != BSS_OK) {
        fprintf(stderr, "head: %s\n", err);
        return 2;
    }
    int64_t start = bss_monotonic_ns();
    for (long long i = head + 1; i <= count; i++) {
        char subject[32], data[64];
        snprintf(subject, sizeof subject, "line-%lld", i % subjects);
        snprintf(data, sizeof data, "{\"n\":%lld}", i);
        bss_event *ev = bss_event_new("Tick", subject, data, err);
        if (ev == NULL || bss_store_append_tx(store, subject, BSS_ANY_VERSION, &ev, 1, err) != BSS_OK) {
            fprintf(stderr, "append %lld: %s\n", i, err);
            return 2;
        }
        bss_event_free(ev);
        pace(start, i - head, rate);
    }
    int sig = 0;
    sigwait(&stop, &sig);
    bss_eventcore_close(core);
    bss_log_close(log);
    bss_config_free(config);
    return 0;
}
