/* uuid.c - see uuid.h. */
#include "uuid.h"

#include "bss_error.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char HEX[] = "0123456789abcdef";

static void format_uuid(const unsigned char b[16], char out[BSS_UUID_LEN + 1])
{
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = HEX[b[i] >> 4];
        *o++ = HEX[b[i] & 15];
    }
    *o = '\0';
}

static int fill_random(unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r <= 0)
            return BSS_ERR_IO;
        got += (size_t)r;
    }
    return BSS_OK;
}

/* Random bytes for ids, drawn from the kernel a block at a time per
 * thread (one getrandom per 256 v7 ids, or per 50 gateway requests). A forked child
 * must not hand out its parent's leftover bytes, so each fork bumps
 * fork_generation and a thread's pool is only used in the generation it was
 * filled in. */
#define POOL_BYTES 2048
static _Atomic unsigned fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
typedef struct random_pool {
    unsigned char bytes[POOL_BYTES];
    size_t used;
    unsigned generation;
    int filled;
} random_pool;
static __thread random_pool pool; /* _Thread_local; spelled so cppcheck follows it */

static void after_fork_in_child(void) { atomic_fetch_add(&fork_generation, 1); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, after_fork_in_child); }

static int pooled_random(unsigned char *out, size_t n)
{
    pthread_once(&atfork_once, register_atfork);
    unsigned generation = atomic_load(&fork_generation);
    if (!pool.filled || pool.generation != generation || pool.used + n > POOL_BYTES) {
        if (fill_random(pool.bytes, POOL_BYTES) != BSS_OK)
            return BSS_ERR_IO;
        pool.filled = 1;
        pool.generation = generation;
        pool.used = 0;
    }
    memcpy(out, pool.bytes + pool.used, n);
    memset(pool.bytes + pool.used, 0, n);
    pool.used += n;
    return BSS_OK;
}

/* The last (milliseconds << 12 | sub-millisecond fraction) handed out. */
static _Atomic uint64_t last_stamp;

int bss_uuid_v7(char out[BSS_UUID_LEN + 1])
{
    unsigned char b[16];
    if (pooled_random(b + 8, 8) != BSS_OK)
        return BSS_ERR_IO;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t frac = ((uint64_t)ts.tv_nsec % 1000000u) * 4096u / 1000000u;
    uint64_t stamp = (ms << 12) | frac;
    uint64_t last = atomic_load(&last_stamp);
    for (;;) {
        uint64_t next = stamp > last ? stamp : last + 1;
        if (atomic_compare_exchange_weak(&last_stamp, &last, next)) {
            stamp = next;
            break;
        }
    }
    ms = stamp >> 12;
    frac = stamp & 0xfff;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (frac >> 8));
    b[7] = (unsigned char)(frac & 0xff);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
    return BSS_OK;
}

int bss_random_bytes(unsigned char *out, size_t n)
{
    if (n > 64)
        return BSS_ERR_INVALID;
    return pooled_random(out, n);
}

int bss_uuid_v4(char out[BSS_UUID_LEN + 1])
{
    unsigned char b[16];
    if (pooled_random(b, sizeof b) != BSS_OK)
        return BSS_ERR_IO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
    return BSS_OK;
}

int bss_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != BSS_UUID_LEN)
        return 0;
    for (int i = 0; i < BSS_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}
