#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 32
#define MILLI 1000

struct bucket {
    char key[KEY_MAX + 1]; /* "" when free */
    int64_t level;         /* thousandths of a request */
    int64_t updated_ms;
};

struct gw_ratelimit {
    pthread_mutex_t lock;
    int64_t rate;     /* requests per second */
    int64_t capacity; /* burst * MILLI */
    struct bucket slots[GW_RATELIMIT_SLOTS];
};

gw_ratelimit *gw_ratelimit_new(int64_t rate_per_s, int64_t burst)
{
    if (rate_per_s < 1 || burst < 1)
        return NULL;
    gw_ratelimit *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        return NULL;
    if (pthread_mutex_init(&rl->lock, NULL) != 0) {
        free(rl);
        return NULL;
    }
    rl->rate = rate_per_s;
    rl->capacity = burst * MILLI;
    return rl;
}

void gw_ratelimit_free(gw_ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static uint32_t hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

/* The key's bucket, or a recycled one (lock held). Probes at most 16 slots. */
static struct bucket *find(gw_ratelimit *rl, const char *key, int64_t now_ms)
{
    uint32_t start = hash(key) % GW_RATELIMIT_SLOTS;
    struct bucket *oldest = NULL;
    for (uint32_t i = 0; i < 16; i++) {
        struct bucket *b = &rl->slots[(start + i) % GW_RATELIMIT_SLOTS];
        if (strcmp(b->key, key) == 0)
            return b;
        if (b->key[0] == '\0' || oldest == NULL ||
            (oldest->key[0] != '\0' && b->updated_ms < oldest->updated_ms))
            oldest = b;
    }
    size_t n = strlen(key);
    if (n > KEY_MAX)
        n = KEY_MAX;
    memcpy(oldest->key, key, n);
    oldest->key[n] = '\0';
    oldest->level = rl->capacity;
    oldest->updated_ms = now_ms;
    return oldest;
}

int gw_ratelimit_take(gw_ratelimit *rl, const char *key, int64_t now_ms, int *retry_after_s)
{
    pthread_mutex_lock(&rl->lock);
    struct bucket *b = find(rl, key, now_ms);
    int64_t elapsed = now_ms - b->updated_ms;
    if (elapsed > 0) {
        /* rate requests/s = rate thousandths per ms; past capacity ms the
         * bucket is full whatever the rate (rate >= 1), so cap before
         * multiplying. */
        int64_t capped = elapsed > rl->capacity ? rl->capacity : elapsed;
        int64_t refill = capped * rl->rate;
        b->level = b->level + refill > rl->capacity ? rl->capacity : b->level + refill;
        b->updated_ms = now_ms;
    }
    int allowed = b->level >= MILLI;
    if (allowed) {
        b->level -= MILLI;
    } else {
        int64_t missing = MILLI - b->level; /* thousandths */
        int64_t wait_ms = (missing + rl->rate - 1) / rl->rate;
        *retry_after_s = (int)((wait_ms + 999) / 1000);
        if (*retry_after_s < 1)
            *retry_after_s = 1;
    }
    pthread_mutex_unlock(&rl->lock);
    return allowed;
}
