/*
 * bench_replay.c - how fast bssiot-replay rebuilds the "my page" read model
 * from the event logs (issue 6: >= 300,000 events/s from 1,000,000 events).
 *
 *   bench_replay [events] [path/to/bssiot-replay]
 *
 * First it writes the logs: customer.db, rater.db and billing.db in a fresh
 * data dir, through the stores' own API (bss_store_append, 10,000 events a
 * transaction), with the mix a month of a real system leaves: per line the
 * OPEN order's three customer events, a SUSPEND order on every third line,
 * rater info, its status and three usage files, charge info and its status;
 * per customer of ten lines one invoice. Event shapes are those of the
 * ARCHITECTURE catalog. Then it runs `bssiot-replay rebuild --projection
 * mypage` on them and prints events/s over the rebuild's wall time (process
 * start and the final rename included) and over the CPU time the rebuild
 * process used (user + system, from wait4): on a shared machine the wall
 * figure depends on what else runs, the CPU figure much less, and with two
 * cores free the wall time can get down to about half the CPU time (the
 * rebuild reads and applies its streams on several threads). The load
 * average is printed beside them. A benchmark: a missed target is reported,
 * never failed.
 */
#include "benchutil.h"
#include "bss_error.h"
#include "envelope.h"
#include "evstore.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 10000
#define LINES_PER_CUSTOMER 10
#define TARGET_PER_SECOND 300000.0

typedef struct log_writer {
    bss_store *store;
    int64_t in_tx;
    int64_t written;
} log_writer;

static int writer_open(log_writer *w, const char *dir, const char *source)
{
    char path[PATH_MAX], err[BSS_ERRLEN];
    snprintf(path, sizeof path, "%s/%s.db", dir, source);
    bss_store_options o = {.path = path, .source = source};
    memset(w, 0, sizeof *w);
    if (bss_store_open(&o, &w->store, err) != BSS_OK) {
        fprintf(stderr, "bench_replay: %s\n", err);
        return -1;
    }
    return 0;
}

/* Appends one event (its own subject stream), committing every BATCH. */
static int emit(log_writer *w, const char *type, const char *subject, const char *data)
{
    char err[BSS_ERRLEN];
    if (w->in_tx == 0 && bss_store_begin(w->store, err) != BSS_OK)
        goto fail;
    bss_event *ev = bss_event_new(type, subject, data, err);
    if (ev == NULL)
        goto fail;
    int rc = bss_store_append(w->store, subject, BSS_ANY_VERSION, &ev, 1, err);
    bss_event_free(ev);
    if (rc != BSS_OK)
        goto fail;
    w->written++;
    if (++w->in_tx == BATCH) {
        w->in_tx = 0;
        if (bss_store_commit(w->store, err) != BSS_OK)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "bench_replay: %s %s: %s\n", bss_store_source(w->store), type, err);
    return -1;
}

static int writer_close(log_writer *w)
{
    char err[BSS_ERRLEN];
    int rc = 0;
    if (w->in_tx > 0 && bss_store_commit(w->store, err) != BSS_OK) {
        fprintf(stderr, "bench_replay: %s\n", err);
        rc = -1;
    }
    bss_store_close(w->store);
    return rc;
}

static int write_line(log_writer *customer, log_writer *rater, log_writer *billing, long line,
                      const char *cust)
{
    char svc[32], data[1024];
    const char *at = "2026-10-01T00:00:00.000+09:00";
    snprintf(svc, sizeof svc, "%ld", 7000000000L + line);
    int rc = 0;
    snprintf(data, sizeof data,
             "{\"orderId\":\"open-%ld\",\"type\":\"OPEN\",\"status\":\"COMPLETED\","
             "\"effectiveAt\":\"%s\",\"line\":{\"customerId\":\"%s\",\"svcContNo\":\"%s\","
             "\"svcContStatus\":\"ACTIVE\",\"productCd\":\"IOT-BASIC\",\"productNm\":"
             "\"IoT Basic\",\"productTarif\":3000,\"apnCd\":\"iot.fleet\",\"email\":"
             "\"%s@example.com\",\"phone\":\"\",\"address\":\"\",\"chargeAccount\":\"\"}}",
             line, at, cust, svc, cust);
    rc |= emit(customer, "OrderCreated", svc, data);
    snprintf(data, sizeof data,
             "{\"orderId\":\"open-%ld\",\"from\":null,\"to\":\"ACTIVE\",\"effectiveAt\":\"%s\","
             "\"customerId\":\"%s\"}", line, at, cust);
    rc |= emit(customer, "LineStatusChanged", svc, data);
    snprintf(data, sizeof data,
             "{\"orderId\":\"open-%ld\",\"type\":\"OPEN\",\"effectiveAt\":\"%s\"}", line, at);
    rc |= emit(customer, "OrderCompleted", svc, data);
    if (line % 3 == 0) {
        const char *when = "2026-10-15T00:00:00.000+09:00";
        snprintf(data, sizeof data,
                 "{\"orderId\":\"susp-%ld\",\"type\":\"SUSPEND\",\"status\":\"COMPLETED\","
                 "\"effectiveAt\":\"%s\",\"line\":{\"customerId\":\"%s\",\"svcContNo\":\"%s\","
                 "\"svcContStatus\":\"SUSPENDED\",\"productCd\":\"IOT-BASIC\",\"productNm\":"
                 "\"IoT Basic\",\"productTarif\":3000,\"apnCd\":\"iot.fleet\",\"email\":\"\","
                 "\"phone\":\"\",\"address\":\"\",\"chargeAccount\":\"\"}}",
                 line, when, cust, svc);
        rc |= emit(customer, "OrderCreated", svc, data);
        snprintf(data, sizeof data,
                 "{\"orderId\":\"susp-%ld\",\"from\":\"ACTIVE\",\"to\":\"SUSPENDED\","
                 "\"effectiveAt\":\"%s\",\"customerId\":\"%s\"}", line, when, cust);
        rc |= emit(customer, "LineStatusChanged", svc, data);
        snprintf(data, sizeof data,
                 "{\"orderId\":\"susp-%ld\",\"type\":\"SUSPEND\",\"effectiveAt\":\"%s\"}", line,
                 when);
        rc |= emit(customer, "OrderCompleted", svc, data);
    }
    snprintf(data, sizeof data,
             "{\"customerId\":\"%s\",\"apnCd\":\"iot.fleet\",\"useYn\":\"Y\","
             "\"productCd\":\"IOT-BASIC\"}", cust);
    rc |= emit(rater, "RaterCreated", svc, data);
    snprintf(data, sizeof data,
             "{\"orderId\":\"open-%ld\",\"status\":\"ACTIVE\",\"effectiveAt\":\"%s\"}", line, at);
    rc |= emit(rater, "RaterStatusRecorded", svc, data);
    for (int file = 1; file <= 3; file++) {
        snprintf(data, sizeof data,
                 "{\"periods\":[{\"period\":\"2026-10\",\"bytes\":\"%ld\",\"records\":%d}],"
                 "\"fileName\":\"2026-10-%02d.csv\",\"fileId\":%d}",
                 1000000L * file + line % 977, 3 + file, file * 7, file);
        rc |= emit(rater, "UsageRated", svc, data);
    }
    snprintf(data, sizeof data,
             "{\"customerId\":\"%s\",\"productCd\":\"IOT-BASIC\",\"productNm\":\"IoT Basic\","
             "\"productTarif\":3000,\"includedMb\":100,\"perMbRate\":20}", cust);
    rc |= emit(billing, "ChargeInfoCreated", svc, data);
    snprintf(data, sizeof data,
             "{\"orderId\":\"open-%ld\",\"status\":\"ACTIVE\",\"effectiveAt\":\"%s\"}", line, at);
    rc |= emit(billing, "ChargeStatusRecorded", svc, data);
    return rc;
}

static int write_invoice(log_writer *billing, long first_line, const char *cust)
{
    char data[8192], id[64];
    size_t n = 0;
    snprintf(id, sizeof id, "INV-202610-%s", cust);
    n += (size_t)snprintf(data + n, sizeof data - n,
                          "{\"invoiceId\":\"%s\",\"customerId\":\"%s\",\"period\":\"2026-10\","
                          "\"email\":\"%s@example.com\",\"lines\":[", id, cust, cust);
    for (long l = 0; l < LINES_PER_CUSTOMER; l++)
        n += (size_t)snprintf(data + n, sizeof data - n,
                              "%s{\"svcContNo\":\"%ld\",\"customerId\":\"%s\",\"productCd\":"
                              "\"IOT-BASIC\",\"period\":\"2026-10\",\"usageBytes\":\"6000000\","
                              "\"billableMb\":6,\"includedMb\":100,\"overageMb\":0,"
                              "\"overageFee\":0,\"activeDays\":31,\"daysInPeriod\":31,"
                              "\"baseFee\":3000,\"subtotal\":3000,\"vat\":300,\"total\":3300}",
                              l ? "," : "", 7000000000L + first_line + l, cust);
    snprintf(data + n, sizeof data - n,
             "],\"subtotal\":30000,\"vat\":3000,\"total\":33000,\"status\":\"ISSUED\","
             "\"issuedAt\":\"2026-11-01T00:10:00.000+09:00\"}");
    return emit(billing, "InvoiceIssued", id, data);
}

int main(int argc, char **argv)
{
    long target = argc > 1 ? atol(argv[1]) : 1000000;
    char replay[PATH_MAX];
    if (argc > 2) {
        snprintf(replay, sizeof replay, "%s", argv[2]);
    } else {
        snprintf(replay, sizeof replay, "%s", argv[0]);
        char *slash = strrchr(replay, '/');
        snprintf(slash ? slash + 1 : replay, sizeof replay - (size_t)(slash ? slash + 1 - replay : 0),
                 "bssiot-replay");
    }
    if (access(replay, X_OK) != 0) {
        printf("bench_replay: %s not found (built without the mypage projection?)\n", replay);
        return 0;
    }
    char dir[PATH_MAX];
    if (bench_mkdtemp("bench-replay", dir, sizeof dir) != 0) {
        perror("bench_replay: mkdtemp");
        return 1;
    }
    log_writer customer, rater, billing;
    int64_t started = bench_now_ns();
    if (writer_open(&customer, dir, "customer") || writer_open(&rater, dir, "rater") ||
        writer_open(&billing, dir, "billing")) {
        bench_rmtree(dir);
        return 1;
    }
    int rc = 0;
    long line = 0;
    char cust[32];
    while (rc == 0 && customer.written + rater.written + billing.written < target) {
        snprintf(cust, sizeof cust, "C-%ld", line / LINES_PER_CUSTOMER);
        rc = write_line(&customer, &rater, &billing, line, cust);
        if (rc == 0 && ++line % LINES_PER_CUSTOMER == 0)
            rc = write_invoice(&billing, line - LINES_PER_CUSTOMER, cust);
    }
    int64_t events = customer.written + rater.written + billing.written;
    rc |= writer_close(&customer) | writer_close(&rater) | writer_close(&billing);
    double gen_s = (double)(bench_now_ns() - started) / 1e9;
    if (rc != 0) {
        bench_rmtree(dir);
        return 1;
    }
    printf("bench_replay: wrote %lld events for %ld lines in %.1f s (customer %lld, rater %lld,"
           " billing %lld)\n", (long long)events, line, gen_s, (long long)customer.written,
           (long long)rater.written, (long long)billing.written);
    fflush(stdout);

    char out[PATH_MAX + 32], data_dir_flag[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/mypage-rebuilt.db", dir);
    snprintf(data_dir_flag, sizeof data_dir_flag, "--data-dir=%s", dir);
    fflush(stdout);
    started = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        execl(replay, replay, "rebuild", "--projection", "mypage", "--out", out, data_dir_flag,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    if (pid < 0 || wait4(pid, &status, 0, &usage) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_replay: the rebuild failed (status %d)\n", status);
        bench_rmtree(dir);
        return 1;
    }
    double secs = (double)(bench_now_ns() - started) / 1e9;
    double rate = (double)events / secs;
    double cpu = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    double load[1] = {0};
    if (getloadavg(load, 1) != 1)
        load[0] = -1;
    printf("bench_replay: rebuild of the mypage read model from %lld events: %.2f s wall,"
           " %.0f events/s (target %.0f: %s)\n", (long long)events, secs, rate,
           TARGET_PER_SECOND, rate >= TARGET_PER_SECOND ? "met" : "MISSED");
    printf("bench_replay: CPU %.2f s (user+system): %.2f us/event, %.0f events per CPU-second;"
           " load average %.1f on %ld cores\n", cpu, cpu > 0 ? cpu * 1e6 / (double)events : 0,
           cpu > 0 ? (double)events / cpu : 0, load[0], sysconf(_SC_NPROCESSORS_ONLN));
    if (getenv("BENCH_REPLAY_KEEP") != NULL)
        printf("bench_replay: logs kept in %s\n", dir);
    else
        bench_rmtree(dir);
    return 0;
}
