/* cache.c - see cache.h. A chained hash table of pages with an LRU list,
 * plus a fixed array of generation slots that outlive the pages. */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096 /* a power of two */
#define FIRST_BUCKETS 1024

struct entry {
    struct entry *chain; /* next in its bucket */
    struct entry *newer, *older;
    uint64_t hash;
    size_t key_len, page_len;
    char data[]; /* key, NUL, page */
};

struct mypage_cache {
    pthread_mutex_t lock;
    size_t max_bytes, bytes, count;
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    struct entry *newest, *oldest;
    uint64_t epoch;
    uint64_t gen[SLOTS];
    /* Notes of the open write transaction. */
    char **pending;
    size_t npending, pending_cap;
    int pending_all;
};

static uint64_t hash_of(const char *s, size_t *len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    const char *p = s;
    for (; *p != '\0'; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    *len = (size_t)(p - s);
    return h;
}

static size_t entry_bytes(const struct entry *e)
{
    return sizeof *e + e->key_len + 1 + e->page_len;
}

mypage_cache *mypage_cache_new(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    mypage_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->buckets = calloc(FIRST_BUCKETS, sizeof *c->buckets);
    if (c->buckets == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->nbuckets = FIRST_BUCKETS;
    c->max_bytes = max_bytes;
    return c;
}

static void clear_pending(mypage_cache *c)
{
    for (size_t i = 0; i < c->npending; i++)
        free(c->pending[i]);
    c->npending = 0;
    c->pending_all = 0;
}

/* ---- with the lock held ------------------------------------------------- */

static struct entry **find(mypage_cache *c, uint64_t hash, const char *key, size_t key_len)
{
    struct entry **at = &c->buckets[hash & (c->nbuckets - 1)];
    while (*at != NULL && ((*at)->hash != hash || (*at)->key_len != key_len ||
                           memcmp((*at)->data, key, key_len) != 0))
        at = &(*at)->chain;
    return at;
}

static void lru_unlink(mypage_cache *c, struct entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(mypage_cache *c, struct entry *e)
{
    e->newer = NULL;
    e->older = c->newest;
    if (c->newest != NULL)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

/* Unlinks *at (from its bucket and the LRU list) and frees it. */
static void drop_at(mypage_cache *c, struct entry **at)
{
    struct entry *e = *at;
    *at = e->chain;
    lru_unlink(c, e);
    c->bytes -= entry_bytes(e);
    c->count--;
    free(e);
}

static void drop_key(mypage_cache *c, const char *key)
{
    size_t len;
    uint64_t h = hash_of(key, &len);
    c->gen[h & (SLOTS - 1)]++;
    struct entry **at = find(c, h, key, len);
    if (*at != NULL)
        drop_at(c, at);
}

static void drop_all(mypage_cache *c)
{
    struct entry *e = c->newest;
    while (e != NULL) {
        struct entry *older = e->older;
        free(e);
        e = older;
    }
    memset(c->buckets, 0, c->nbuckets * sizeof *c->buckets);
    c->newest = c->oldest = NULL;
    c->bytes = 0;
    c->count = 0;
    c->epoch++;
}

void mypage_cache_free(mypage_cache *c)
{
    if (c == NULL)
        return;
    drop_all(c);
    clear_pending(c);
    free(c->pending);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Doubles the bucket array when the chains grow long; a failed grow just
 * leaves them longer. */
static void maybe_grow(mypage_cache *c)
{
    if (c->count < c->nbuckets)
        return;
    size_t n = c->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e != NULL) {
            struct entry *next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

/* ---- the API -------------------------------------------------------------- */

mypage_cache_ticket mypage_cache_ticket_for(mypage_cache *c, const char *customer_id)
{
    size_t len;
    uint64_t h = hash_of(customer_id, &len);
    pthread_mutex_lock(&c->lock);
    mypage_cache_ticket t = {c->epoch, c->gen[h & (SLOTS - 1)]};
    pthread_mutex_unlock(&c->lock);
    return t;
}

int mypage_cache_get(mypage_cache *c, const char *customer_id, char **buf, size_t *cap,
                     size_t *len, mypage_cache_ticket *ticket)
{
    size_t key_len;
    uint64_t h = hash_of(customer_id, &key_len);
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (ticket != NULL) {
        ticket->epoch = c->epoch;
        ticket->gen = c->gen[h & (SLOTS - 1)];
    }
    struct entry *e = *find(c, h, customer_id, key_len);
    if (e != NULL) {
        if (e->page_len + 1 > *cap) {
            char *bigger = realloc(*buf, e->page_len + 1);
            if (bigger == NULL) {
                pthread_mutex_unlock(&c->lock);
                return -1;
            }
            *buf = bigger;
            *cap = e->page_len + 1;
        }
        memcpy(*buf, e->data + e->key_len + 1, e->page_len);
        (*buf)[e->page_len] = '\0';
        *len = e->page_len;
        if (c->newest != e) {
            lru_unlink(c, e);
            lru_push(c, e);
        }
        rc = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void mypage_cache_put(mypage_cache *c, const char *customer_id, mypage_cache_ticket ticket,
                      const char *page, size_t len)
{
    size_t key_len;
    uint64_t h = hash_of(customer_id, &key_len);
    size_t need = sizeof(struct entry) + key_len + 1 + len;
    if (need > c->max_bytes / 4)
        return; /* one page must not empty the cache */
    struct entry *e = malloc(need);
    if (e == NULL)
        return;
    e->hash = h;
    e->key_len = key_len;
    e->page_len = len;
    memcpy(e->data, customer_id, key_len + 1);
    memcpy(e->data + key_len + 1, page, len);
    pthread_mutex_lock(&c->lock);
    if (ticket.epoch != c->epoch || ticket.gen != c->gen[h & (SLOTS - 1)]) {
        pthread_mutex_unlock(&c->lock);
        free(e);
        return; /* a change committed since the page was read */
    }
    struct entry **at = find(c, h, customer_id, key_len);
    if (*at != NULL)
        drop_at(c, at); /* another reader stored the same state first */
    while (c->oldest != NULL && c->bytes + need > c->max_bytes) {
        struct entry *old = c->oldest;
        drop_at(c, find(c, old->hash, old->data, old->key_len));
    }
    maybe_grow(c);
    at = &c->buckets[h & (c->nbuckets - 1)];
    e->chain = *at;
    *at = e;
    lru_push(c, e);
    c->bytes += need;
    c->count++;
    pthread_mutex_unlock(&c->lock);
}

void mypage_cache_note(mypage_cache *c, const char *customer_id)
{
    pthread_mutex_lock(&c->lock);
    if (!c->pending_all) {
        char *copy = strdup(customer_id);
        if (copy != NULL && c->npending == c->pending_cap) {
            size_t n = c->pending_cap ? c->pending_cap * 2 : 16;
            char **grown = realloc(c->pending, n * sizeof *grown);
            if (grown != NULL) {
                c->pending = grown;
                c->pending_cap = n;
            }
        }
        if (copy != NULL && c->npending < c->pending_cap) {
            c->pending[c->npending++] = copy;
        } else {
            free(copy);
            clear_pending(c);
            c->pending_all = 1;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void mypage_cache_note_all(mypage_cache *c)
{
    pthread_mutex_lock(&c->lock);
    clear_pending(c);
    c->pending_all = 1;
    pthread_mutex_unlock(&c->lock);
}

void mypage_cache_txn_end(void *ctx, int committed)
{
    (void)committed;
    mypage_cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->pending_all)
        drop_all(c);
    else
        for (size_t i = 0; i < c->npending; i++)
            drop_key(c, c->pending[i]);
    clear_pending(c);
    pthread_mutex_unlock(&c->lock);
}

void mypage_cache_usage(mypage_cache *c, size_t *pages, size_t *bytes)
{
    pthread_mutex_lock(&c->lock);
    *pages = c->count;
    *bytes = c->bytes;
    pthread_mutex_unlock(&c->lock);
}
