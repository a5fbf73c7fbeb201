/* benchutil.c - see benchutil.h. */
#include "benchutil.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t bench_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

int64_t bench_realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }

void bench_sleep_until(int64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000LL),
                          (long)(deadline_ns % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least q of all samples <= it. */
static int64_t rank(const int64_t *v, size_t n, double q)
{
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

void bench_lat_summarise(int64_t *v, size_t n, bench_lat *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return;
    qsort(v, n, sizeof *v, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    out->n = n;
    out->p50 = rank(v, n, 0.50);
    out->p90 = rank(v, n, 0.90);
    out->p99 = rank(v, n, 0.99);
    out->p999 = rank(v, n, 0.999);
    out->max = v[n - 1];
    out->mean = sum / (double)n;
}

int bench_mkdtemp(const char *prefix, char *out, size_t cap)
{
    int n = snprintf(out, cap, "/tmp/%s-XXXXXX", prefix);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) != NULL ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

int bench_rmtree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int bench_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000LL;
    while (len > 0) {
        int wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - bench_now_ns();
            if (left <= 0)
                return -1;
            wait = (int)(left / 1000000LL) + 1;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int rv = poll(&pfd, 1, wait);
        if (rv < 0 && errno == EINTR)
            continue;
        if (rv <= 0)
            return -1;
        ssize_t got = read(fd, p, len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

int bench_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t put = write(fd, p, len);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        p += put;
        len -= (size_t)put;
    }
    return 0;
}
