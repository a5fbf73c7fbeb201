/*
 * metrics.h - counters, gauges and latency histograms, exposed in the
 * Prometheus text format (version 0.0.4) at GET /metrics.
 *
 * A series is identified by a metric name and a label string written the way
 * it appears between the braces, e.g. "route=\"/customers\",status=\"201\""
 * (NULL or "" for none). The first use of a name fixes its type; a later use
 * of the same name as another type is ignored. Label strings come from code,
 * not from users: callers must escape label values themselves (see
 * bss_metrics_label_escape) and keep cardinality small. The registry holds at
 * most BSS_METRICS_MAX_SERIES series; updates to new series beyond that are
 * dropped, so a bug cannot make memory grow without bound.
 *
 * Thread safety: every function may be called from any thread. Counter
 * and histogram updates of a series that exists take no lock (atomics);
 * creating a series, gauges and rendering take the registry's mutex. A
 * scrape taken while updates run shows each value as of some moment, and
 * a histogram's buckets never above its count. Every function accepts a
 * NULL registry and does nothing, so instrumented code works without
 * metrics.
 */
#ifndef BSS_METRICS_H
#define BSS_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bss_metrics bss_metrics;

#define BSS_METRICS_MAX_SERIES 4096

/* A new, empty registry, or NULL when memory runs out. */
bss_metrics *bss_metrics_new(void);

/* Frees the registry. NULL is a no-op. No other thread may be using it. */
void bss_metrics_free(bss_metrics *m);

/* Optional "# HELP name text" line for `name` (text is copied; newlines and
 * backslashes are escaped on output). Can be set before or after first use. */
void bss_metrics_describe(bss_metrics *m, const char *name, const char *help);

/* Adds delta to counter name{labels}, creating it at 0 first. */
void bss_metrics_counter_add(bss_metrics *m, const char *name, const char *labels,
                             uint64_t delta);

/* Sets gauge name{labels} to value. */
void bss_metrics_gauge_set(bss_metrics *m, const char *name, const char *labels,
                           int64_t value);

/* Adds delta (may be negative) to gauge name{labels}. */
void bss_metrics_gauge_add(bss_metrics *m, const char *name, const char *labels,
                           int64_t delta);

/* Registers gauge name{labels} whose value is fn(ctx), evaluated at every
 * render (outbox backlog, consumer lag). fn runs on the rendering thread
 * without the registry lock held, so it may use the registry; it must stay
 * callable (and ctx valid) until the registry is freed. Registering the same
 * series again replaces fn and ctx. */
void bss_metrics_gauge_fn(bss_metrics *m, const char *name, const char *labels,
                          int64_t (*fn)(void *ctx), void *ctx);

/* Records one observation, in seconds, into histogram name{labels}, whose
 * buckets are fixed: 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
 * 0.25, 0.5, 1, 2.5, 5, +Inf. Rendered as name_bucket{labels,le="..."}
 * (cumulative), name_sum and name_count. */
void bss_metrics_observe(bss_metrics *m, const char *name, const char *labels,
                         double seconds);

/* Renders every series as Prometheus text: series of one name are grouped,
 * preceded by "# HELP" (if described) and one "# TYPE name
 * counter|gauge|histogram" line; names appear in order of first use. *out is
 * a NUL-terminated malloc'd string the caller frees; *len (may be NULL) is
 * its length. A NULL registry renders as "". Returns BSS_OK or BSS_ERR_NOMEM
 * (then *out is NULL). */
int bss_metrics_render(bss_metrics *m, char **out, size_t *len);

/* Escapes a label value (backslash, double quote, newline) into out
 * (capacity outlen, always NUL-terminated when outlen > 0). Returns the
 * length the full escaped value needs; >= outlen means truncated. */
size_t bss_metrics_label_escape(const char *value, char *out, size_t outlen);

#endif
