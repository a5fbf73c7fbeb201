/*
 * benchutil.h - small helpers shared by the event-core benchmarks: clocks,
 * latency percentiles, temporary directories and the machine-readable
 * result line. Benchmarks only; nothing in a service links this.
 */
#ifndef BSS_BENCHUTIL_H
#define BSS_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
int64_t bench_now_ns(void);

/* Wall-clock nanoseconds since the epoch (CLOCK_REALTIME): comparable
 * between processes of one machine. */
int64_t bench_realtime_ns(void);

/* Sleeps until the monotonic instant `deadline_ns` (absolute, so pacing
 * errors do not accumulate). Returns at once when it has passed. */
void bench_sleep_until(int64_t deadline_ns);

/* Latency summary of n samples, in nanoseconds. */
typedef struct bench_lat {
    size_t n;
    int64_t p50, p90, p99, p999, max;
    double mean;
} bench_lat;

/* Sorts v[0..n) in place and fills *out (nearest-rank percentiles); all
 * zero when n is 0. */
void bench_lat_summarise(int64_t *v, size_t n, bench_lat *out);

/* Creates a fresh directory /tmp/<prefix>-XXXXXX and writes its path into
 * out (cap bytes). Returns 0, or -1 with errno set. */
int bench_mkdtemp(const char *prefix, char *out, size_t cap);

/* Removes path and everything below it (files, sockets, directories).
 * Returns 0, or -1 when something could not be removed. */
int bench_rmtree(const char *path);

/* Reads/writes exactly len bytes on a descriptor (retrying on EINTR and
 * short transfers). Reading waits at most timeout_ms in total (-1: for
 * ever). Return 0, or -1 on error, end of file or timeout. */
int bench_read_full(int fd, void *buf, size_t len, int timeout_ms);
int bench_write_full(int fd, const void *buf, size_t len);

#endif
