/*
 * replay_timeline.c - see replay_timeline.h.
 */
#include "replay_timeline.h"

#include "bss_error.h"

#include <stdlib.h>
#include <string.h>

void replay_events_free(replay_events *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].data);
    free(list->items);
    memset(list, 0, sizeof *list);
}

static int append_copy(replay_events *list, const bss_event *ev)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        bss_event *grown = realloc(list->items, cap * sizeof *grown);
        if (grown == NULL)
            return BSS_ERR_NOMEM;
        list->items = grown;
        list->cap = cap;
    }
    bss_event *copy = &list->items[list->count];
    *copy = *ev;
    copy->data = strdup(ev->data ? ev->data : "{}");
    if (copy->data == NULL)
        return BSS_ERR_NOMEM;
    list->count++;
    return BSS_OK;
}

/* Opens one source's log; *log stays NULL when the source has none. */
static int open_source(const replay_source *src, const char *source, const replay_filter *f,
                       replay_log **log, char *err)
{
    *log = NULL;
    int rc = replay_log_open(src, source, f, log, err);
    return rc == BSS_ERR_NOTFOUND ? BSS_OK : rc;
}

int replay_collect(const replay_source *src, const char *const *sources, size_t nsources,
                   const replay_filter *f, replay_keep_fn keep, void *ctx, replay_events *out,
                   size_t *skipped, FILE *diag, char *err)
{
    replay_item *item = malloc(sizeof *item);
    if (item == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int rc = BSS_OK;
    for (size_t s = 0; s < nsources && rc == BSS_OK; s++) {
        replay_log *log = NULL;
        rc = open_source(src, sources[s], f, &log, err);
        while (rc == BSS_OK && log != NULL) {
            int step = replay_log_next(log, item, err);
            if (step == BSS_ERR_NOTFOUND)
                break;
            if (step != BSS_OK) {
                rc = step;
            } else if (!item->ok) {
                replay_report_corrupt(diag, log, item);
                (*skipped)++;
            } else if (keep == NULL || keep(ctx, &item->event)) {
                rc = append_copy(out, &item->event);
                if (rc != BSS_OK)
                    bss_seterr(err, "out of memory");
            }
        }
        replay_log_close(log);
    }
    free(item);
    return rc;
}

/* ---- causal order ---- */

/* qsort has no context argument in C11; the id index is sorted through a
 * small array of pointers instead. */
static int cmp_id_ptr(const void *a, const void *b)
{
    const bss_event *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

static int key_less(const bss_event *a, const bss_event *b)
{
    if (a->time_ms != b->time_ms)
        return a->time_ms < b->time_ms;
    int c = strcmp(a->source, b->source);
    if (c != 0)
        return c < 0;
    return a->sequence < b->sequence;
}

/* Min-heap of indices into ev by key_less. */
typedef struct heap {
    size_t *at;
    size_t n;
    const bss_event *ev;
} heap;

static void heap_push(heap *h, size_t i)
{
    size_t k = h->n++;
    h->at[k] = i;
    while (k > 0) {
        size_t parent = (k - 1) / 2;
        if (!key_less(&h->ev[h->at[k]], &h->ev[h->at[parent]]))
            break;
        size_t t = h->at[k];
        h->at[k] = h->at[parent];
        h->at[parent] = t;
        k = parent;
    }
}

static size_t heap_pop(heap *h)
{
    size_t top = h->at[0];
    h->at[0] = h->at[--h->n];
    size_t k = 0;
    while (1) {
        size_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < h->n && key_less(&h->ev[h->at[l]], &h->ev[h->at[m]]))
            m = l;
        if (r < h->n && key_less(&h->ev[h->at[r]], &h->ev[h->at[m]]))
            m = r;
        if (m == k)
            break;
        size_t t = h->at[k];
        h->at[k] = h->at[m];
        h->at[m] = t;
        k = m;
    }
    return top;
}

static int cmp_key_ptr(const void *a, const void *b)
{
    const bss_event *const *x = a, *const *y = b;
    return key_less(*x, *y) ? -1 : key_less(*y, *x) ? 1 : 0;
}

int replay_causal_order(replay_events *list)
{
    size_t n = list->count;
    if (n < 2)
        return BSS_OK;
    const bss_event *ev = list->items;
    const bss_event **by_id = malloc(n * sizeof *by_id);
    size_t *parent_cause = malloc(n * sizeof *parent_cause);
    size_t *child_start = calloc(n + 1, sizeof *child_start);
    size_t *children = malloc(2 * n * sizeof *children);
    int *indegree = calloc(n, sizeof *indegree);
    size_t *order = malloc(n * sizeof *order);
    unsigned char *done = calloc(n, 1);
    heap h = {malloc(n * sizeof(size_t)), 0, ev};
    bss_event *sorted = malloc(n * sizeof *sorted);
    int rc = BSS_ERR_NOMEM;
    if (!by_id || !parent_cause || !child_start || !children || !indegree || !order || !done ||
        !h.at || !sorted)
        goto out;

    for (size_t i = 0; i < n; i++)
        by_id[i] = &ev[i];
    qsort(by_id, n, sizeof *by_id, cmp_id_ptr);
    /* Parents: the cause (when gathered) and the previous event of the same
     * source (the list holds each source's events in sequence order). */
    for (size_t i = 0; i < n; i++) {
        parent_cause[i] = SIZE_MAX;
        if (ev[i].causation_id[0] != '\0') {
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(by_id[mid]->id, ev[i].causation_id);
                if (c < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < n && strcmp(by_id[lo]->id, ev[i].causation_id) == 0) {
                size_t p = (size_t)(by_id[lo] - ev);
                if (p != i)
                    parent_cause[i] = p;
            }
        }
    }
    /* Children in compressed rows: count, prefix-sum, fill. */
    for (size_t i = 0; i < n; i++) {
        if (parent_cause[i] != SIZE_MAX)
            child_start[parent_cause[i] + 1]++;
        if (i > 0 && strcmp(ev[i - 1].source, ev[i].source) == 0)
            child_start[i]++; /* i-1's row: index (i-1)+1 */
    }
    for (size_t i = 0; i < n; i++)
        child_start[i + 1] += child_start[i];
    size_t *fill = order; /* borrowed as a cursor per row until the walk */
    for (size_t i = 0; i < n; i++)
        fill[i] = child_start[i];
    for (size_t i = 0; i < n; i++) {
        if (parent_cause[i] != SIZE_MAX) {
            children[fill[parent_cause[i]]++] = i;
            indegree[i]++;
        }
        if (i > 0 && strcmp(ev[i - 1].source, ev[i].source) == 0) {
            children[fill[i - 1]++] = i;
            indegree[i]++;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (indegree[i] == 0)
            heap_push(&h, i);
    size_t emitted = 0;
    while (h.n > 0) {
        size_t i = heap_pop(&h);
        order[emitted++] = i;
        done[i] = 1;
        for (size_t c = child_start[i]; c < child_start[i + 1]; c++)
            if (--indegree[children[c]] == 0)
                heap_push(&h, children[c]);
    }
    if (emitted < n) {
        /* A cycle (only corrupted ids can make one): the rest by time. */
        size_t rest = 0;
        for (size_t i = 0; i < n; i++)
            if (!done[i])
                by_id[rest++] = &ev[i];
        qsort(by_id, rest, sizeof *by_id, cmp_key_ptr);
        for (size_t k = 0; k < rest; k++)
            order[emitted++] = (size_t)(by_id[k] - ev);
    }
    for (size_t k = 0; k < n; k++)
        sorted[k] = ev[order[k]];
    memcpy(list->items, sorted, n * sizeof *sorted);
    rc = BSS_OK;
out:
    free(by_id);
    free(parent_cause);
    free(child_start);
    free(children);
    free(indegree);
    free(order);
    free(done);
    free(h.at);
    free(sorted);
    return rc;
}

/* ---- streaming merge ---- */

typedef struct merge_head {
    replay_log *log;
    replay_item item;
    int live; /* item holds an event not yet handed out */
} merge_head;

/* Advances head to its next good event, reporting corrupt rows. */
static int advance(merge_head *head, size_t *skipped, FILE *diag, char *err)
{
    head->live = 0;
    while (head->log != NULL) {
        int rc = replay_log_next(head->log, &head->item, err);
        if (rc == BSS_ERR_NOTFOUND)
            return BSS_OK;
        if (rc != BSS_OK)
            return rc;
        if (head->item.ok) {
            head->live = 1;
            return BSS_OK;
        }
        replay_report_corrupt(diag, head->log, &head->item);
        (*skipped)++;
    }
    return BSS_OK;
}

int replay_merge(const replay_source *src, const char *const *sources, size_t nsources,
                 const replay_filter *f, replay_event_fn fn, void *ctx, size_t *skipped,
                 FILE *diag, char *err)
{
    merge_head *heads = calloc(nsources ? nsources : 1, sizeof *heads);
    if (heads == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    int rc = BSS_OK;
    for (size_t s = 0; s < nsources && rc == BSS_OK; s++) {
        rc = open_source(src, sources[s], f, &heads[s].log, err);
        if (rc == BSS_OK)
            rc = advance(&heads[s], skipped, diag, err);
    }
    while (rc == BSS_OK) {
        merge_head *best = NULL;
        for (size_t s = 0; s < nsources; s++)
            if (heads[s].live && (best == NULL || key_less(&heads[s].item.event, &best->item.event)))
                best = &heads[s];
        if (best == NULL)
            break;
        if (fn(ctx, &best->item.event))
            break;
        rc = advance(best, skipped, diag, err);
    }
    for (size_t s = 0; s < nsources; s++)
        replay_log_close(heads[s].log);
    free(heads);
    return rc;
}
