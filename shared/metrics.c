/* metrics.c - see metrics.h.
 *
 * Families (one per metric name) in order of first use, each with its series
 * in order of first use, for rendering; both only grow, under the mutex.
 * Counters and histograms are updated on every HTTP request (two to four
 * times per request in the gateway), by many threads at once: a single
 * mutex around a linear lookup was the most contended lock in the gateway.
 * So every series is also published in a fixed open-addressing index
 * (twice BSS_METRICS_MAX_SERIES slots, never full, never rehashed): an
 * update of an existing series finds it there without the lock and changes
 * its values with atomic operations. Only a series' first use (creation)
 * and gauges take the mutex. */
#include "metrics.h"

#include "bss_error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum family_type { FAM_COUNTER, FAM_GAUGE, FAM_HISTOGRAM };

#define NBUCKETS 13 /* finite buckets; +Inf is the count */

static const double bucket_bounds[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                               0.025,  0.05,  0.1,    0.25,  0.5,
                                               1,      2.5,   5};
static const char *const bucket_names[NBUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5"};

#define INDEX_SLOTS (2 * BSS_METRICS_MAX_SERIES) /* a power of two */

/* Counters and histograms change without the lock (atomics); gauges and
 * the gauge callback only under it. A histogram's count is incremented
 * before its bucket and rendered after the buckets, so a scrape never shows
 * a bucket above the count. */
struct series {
    char *labels;     /* "" for none */
    const char *name; /* the family's */
    int type;
    uint64_t hash;
    atomic_uint_least64_t counter;
    int64_t gauge;
    int64_t (*fn)(void *ctx);
    void *fn_ctx;
    atomic_uint_least64_t buckets[NBUCKETS]; /* non-cumulative */
    atomic_uint_least64_t count;
    atomic_uint_least64_t sum_bits; /* the double sum's bits */
};

struct family {
    char *name;
    char *help;
    int type;
    int typed; /* 0 when only described so far */
    struct series **series;
    size_t n, cap;
};

struct bss_metrics {
    pthread_mutex_t mu;
    struct family *fams;
    size_t n, cap;
    size_t total_series;
    _Atomic(struct series *) *index; /* INDEX_SLOTS slots */
};

bss_metrics *bss_metrics_new(void)
{
    bss_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->index = calloc(INDEX_SLOTS, sizeof *m->index);
    if (m->index == NULL || pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m->index);
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < INDEX_SLOTS; i++)
        atomic_init(&m->index[i], NULL);
    return m;
}

void bss_metrics_free(bss_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct family *f = &m->fams[i];
        for (size_t j = 0; j < f->n; j++) {
            free(f->series[j]->labels);
            free(f->series[j]);
        }
        free(f->series);
        free(f->name);
        free(f->help);
    }
    free(m->fams);
    free(m->index);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 c == ':' || (p != name && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Finds or creates family `name`; type < 0 means "any" (describe). Returns
 * NULL on a type mismatch or allocation failure. Lock held. */
static struct family *get_family(bss_metrics *m, const char *name, int type)
{
    for (size_t i = 0; i < m->n; i++) {
        struct family *f = &m->fams[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (type >= 0 && !f->typed) {
            f->type = type;
            f->typed = 1;
        }
        return (type < 0 || f->type == type) ? f : NULL;
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct family *n = realloc(m->fams, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        m->fams = n;
        m->cap = ncap;
    }
    struct family *f = &m->fams[m->n];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    if (f->name == NULL)
        return NULL;
    f->type = type < 0 ? FAM_GAUGE : type;
    f->typed = type >= 0;
    m->n++;
    return f;
}

/* Mixes a string into h eight bytes at a time (a series is hashed on every
 * update, and byte-wise FNV over a name and its labels cost as much as the
 * lookup it replaced). */
static uint64_t mix_string(uint64_t h, const char *s)
{
    size_t n = strlen(s);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w ^ (uint64_t)n << 56) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static uint64_t series_hash(const char *name, const char *labels)
{
    return mix_string(mix_string(14695981039346656037ULL, name), labels);
}

/* The published series name{labels}, or NULL when there is none yet (or
 * it has another type). Needs no lock. */
static struct series *find_series(bss_metrics *m, uint64_t hash, const char *name,
                                  const char *labels, int type)
{
    for (size_t i = (size_t)hash & (INDEX_SLOTS - 1);; i = (i + 1) & (INDEX_SLOTS - 1)) {
        struct series *s = atomic_load_explicit(&m->index[i], memory_order_acquire);
        if (s == NULL)
            return NULL;
        if (s->hash == hash && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s->type == type ? s : NULL;
    }
}

/* Finds or creates the series of `name`{labels} of `type`. Lock held. */
static struct series *get_series(bss_metrics *m, const char *name, const char *labels,
                                 int type)
{
    if (!valid_name(name))
        return NULL;
    if (labels == NULL)
        labels = "";
    struct family *f = get_family(m, name, type);
    if (f == NULL)
        return NULL;
    uint64_t hash = series_hash(name, labels);
    struct series *found = find_series(m, hash, name, labels, type);
    if (found != NULL)
        return found;
    if (m->total_series >= BSS_METRICS_MAX_SERIES)
        return NULL;
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 8;
        struct series **n = realloc(f->series, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        f->series = n;
        f->cap = ncap;
    }
    struct series *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->labels = strdup(labels);
    if (s->labels == NULL) {
        free(s);
        return NULL;
    }
    s->name = f->name;
    s->type = f->type;
    s->hash = hash;
    f->series[f->n++] = s;
    m->total_series++;
    /* Published last: a lock-free reader sees it only complete. */
    size_t i = (size_t)hash & (INDEX_SLOTS - 1);
    while (atomic_load_explicit(&m->index[i], memory_order_relaxed) != NULL)
        i = (i + 1) & (INDEX_SLOTS - 1);
    atomic_store_explicit(&m->index[i], s, memory_order_release);
    return s;
}

/* The series for a lock-free update: found in the index, or created under
 * the lock on first use. */
static struct series *series_for_update(bss_metrics *m, const char *name, const char *labels,
                                        int type)
{
    if (name == NULL)
        return NULL;
    if (labels == NULL)
        labels = "";
    struct series *s = find_series(m, series_hash(name, labels), name, labels, type);
    if (s != NULL)
        return s;
    pthread_mutex_lock(&m->mu);
    s = get_series(m, name, labels, type);
    pthread_mutex_unlock(&m->mu);
    return s;
}

void bss_metrics_describe(bss_metrics *m, const char *name, const char *help)
{
    if (m == NULL || !valid_name(name) || help == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    struct family *f = get_family(m, name, -1);
    if (f != NULL) {
        char *h = strdup(help);
        if (h != NULL) {
            free(f->help);
            f->help = h;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void bss_metrics_counter_add(bss_metrics *m, const char *name, const char *labels,
                             uint64_t delta)
{
    if (m == NULL)
        return;
    struct series *s = series_for_update(m, name, labels, FAM_COUNTER);
    if (s != NULL)
        atomic_fetch_add_explicit(&s->counter, delta, memory_order_relaxed);
}

void bss_metrics_gauge_set(bss_metrics *m, const char *name, const char *labels,
                           int64_t value)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    struct series *s = get_series(m, name, labels, FAM_GAUGE);
    if (s != NULL && s->fn == NULL)
        s->gauge = value;
    pthread_mutex_unlock(&m->mu);
}

void bss_metrics_gauge_add(bss_metrics *m, const char *name, const char *labels,
                           int64_t delta)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    struct series *s = get_series(m, name, labels, FAM_GAUGE);
    if (s != NULL && s->fn == NULL)
        s->gauge += delta;
    pthread_mutex_unlock(&m->mu);
}

void bss_metrics_gauge_fn(bss_metrics *m, const char *name, const char *labels,
                          int64_t (*fn)(void *ctx), void *ctx)
{
    if (m == NULL || fn == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    struct series *s = get_series(m, name, labels, FAM_GAUGE);
    if (s != NULL) {
        s->fn = fn;
        s->fn_ctx = ctx;
    }
    pthread_mutex_unlock(&m->mu);
}

void bss_metrics_observe(bss_metrics *m, const char *name, const char *labels,
                         double seconds)
{
    if (m == NULL)
        return;
    struct series *s = series_for_update(m, name, labels, FAM_HISTOGRAM);
    if (s == NULL)
        return;
    atomic_fetch_add(&s->count, 1);
    for (int i = 0; i < NBUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            atomic_fetch_add(&s->buckets[i], 1);
            break;
        }
    }
    uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed), next;
    do {
        double sum;
        memcpy(&sum, &old, sizeof sum);
        sum += seconds;
        memcpy(&next, &sum, sizeof next);
    } while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old, next,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
}

size_t bss_metrics_label_escape(const char *value, char *out, size_t outlen)
{
    /* Most values (route patterns, service names) need no escape at all. */
    size_t plain = value != NULL ? strcspn(value, "\\\"\n") : 0;
    if (value != NULL && value[plain] == '\0' && plain < outlen) {
        memcpy(out, value, plain + 1);
        return plain;
    }
    size_t need = 0, used = 0;
    int full = 0;
    for (const char *p = value ? value : ""; *p; p++) {
        char esc[2];
        size_t n = 1;
        esc[0] = *p;
        if (*p == '\\' || *p == '"') {
            esc[0] = '\\';
            esc[1] = *p;
            n = 2;
        } else if (*p == '\n') {
            esc[0] = '\\';
            esc[1] = 'n';
            n = 2;
        }
        if (!full && outlen > 0 && used + n < outlen) {
            memcpy(out + used, esc, n);
            used += n;
        } else {
            full = 1;
        }
        need += n;
    }
    if (outlen > 0)
        out[used] = '\0';
    return need;
}

/* Output buffer for rendering. */
struct outbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void ob_printf(struct outbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ob_printf(struct outbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2;
        while (ncap < b->len + (size_t)n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static const char *type_name(int type)
{
    return type == FAM_COUNTER ? "counter" : type == FAM_GAUGE ? "gauge" : "histogram";
}

/* Writes the help text with '\' and newline escaped. */
static void ob_help(struct outbuf *b, const char *name, const char *help)
{
    ob_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            ob_printf(b, "\\\\");
        else if (*p == '\n')
            ob_printf(b, "\\n");
        else
            ob_printf(b, "%c", *p);
    }
    ob_printf(b, "\n");
}

static void render_family(struct outbuf *b, const struct family *f)
{
    if (f->n == 0)
        return;
    if (f->help != NULL)
        ob_help(b, f->name, f->help);
    ob_printf(b, "# TYPE %s %s\n", f->name, type_name(f->type));
    for (size_t j = 0; j < f->n; j++) {
        struct series *s = f->series[j];
        const char *l = s->labels;
        int has = l[0] != '\0';
        if (f->type == FAM_COUNTER) {
            ob_printf(b, "%s%s%s%s %llu\n", f->name, has ? "{" : "", l, has ? "}" : "",
                      (unsigned long long)atomic_load(&s->counter));
        } else if (f->type == FAM_GAUGE) {
            ob_printf(b, "%s%s%s%s %lld\n", f->name, has ? "{" : "", l, has ? "}" : "",
                      (long long)s->gauge);
        } else {
            uint64_t cum = 0;
            for (int i = 0; i < NBUCKETS; i++) {
                cum += atomic_load(&s->buckets[i]);
                ob_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, l, has ? "," : "",
                          bucket_names[i], (unsigned long long)cum);
            }
            uint64_t count = atomic_load(&s->count), bits = atomic_load(&s->sum_bits);
            double sum;
            memcpy(&sum, &bits, sizeof sum);
            ob_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, l, has ? "," : "",
                      (unsigned long long)count);
            ob_printf(b, "%s_sum%s%s%s %.9g\n", f->name, has ? "{" : "", l, has ? "}" : "",
                      sum);
            ob_printf(b, "%s_count%s%s%s %llu\n", f->name, has ? "{" : "", l,
                      has ? "}" : "", (unsigned long long)count);
        }
    }
}

/* Evaluates every gauge callback without the lock and stores the results. */
static int refresh_gauge_fns(bss_metrics *m)
{
    struct pending {
        size_t fam, ser;
        int64_t (*fn)(void *);
        void *ctx;
        int64_t value;
    } *todo = NULL;
    size_t ntodo = 0, cap = 0;

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->fams[i].n; j++) {
            const struct series *s = m->fams[i].series[j];
            if (s->fn == NULL)
                continue;
            if (ntodo == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct pending *n = realloc(todo, ncap * sizeof *n);
                if (n == NULL) {
                    pthread_mutex_unlock(&m->mu);
                    free(todo);
                    return BSS_ERR_NOMEM;
                }
                todo = n;
                cap = ncap;
            }
            todo[ntodo].fam = i;
            todo[ntodo].ser = j;
            todo[ntodo].fn = s->fn;
            todo[ntodo].ctx = s->fn_ctx;
            ntodo++;
        }
    }
    pthread_mutex_unlock(&m->mu);

    for (size_t k = 0; k < ntodo; k++)
        todo[k].value = todo[k].fn(todo[k].ctx);

    /* Families and series are never removed, so the indices still hold. */
    pthread_mutex_lock(&m->mu);
    for (size_t k = 0; k < ntodo; k++)
        m->fams[todo[k].fam].series[todo[k].ser]->gauge = todo[k].value;
    pthread_mutex_unlock(&m->mu);
    free(todo);
    return BSS_OK;
}

int bss_metrics_render(bss_metrics *m, char **out, size_t *len)
{
    struct outbuf b = {malloc(4096), 0, 4096, 0};
    *out = NULL;
    if (b.p == NULL)
        return BSS_ERR_NOMEM;
    b.p[0] = '\0';
    if (m != NULL) {
        if (refresh_gauge_fns(m) != BSS_OK) {
            free(b.p);
            return BSS_ERR_NOMEM;
        }
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < m->n; i++)
            render_family(&b, &m->fams[i]);
        pthread_mutex_unlock(&m->mu);
    }
    if (b.failed) {
        free(b.p);
        return BSS_ERR_NOMEM;
    }
    *out = b.p;
    if (len != NULL)
        *len = b.len;
    return BSS_OK;
}
