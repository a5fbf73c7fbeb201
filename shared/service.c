/* service.c - see service.h. */
#include "service.h"

#include "internal_auth.h"

#include "bss_error.h"
#include "isotime.h"

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-'))
            return 0;
    return 1;
}

/* mkdir -p path with mode 0755. */
static int mkdir_p(const char *path, char *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        bss_seterr(err, "data dir \"%s\": bad length", path);
        return BSS_ERR_INVALID;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            bss_seterr(err, "mkdir %s: %s", buf, strerror(errno));
            return BSS_ERR_IO;
        }
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        bss_seterr(err, "data dir %s is not a directory", path);
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

const char *bss_service_default_listen(const char *name)
{
    static const struct {
        const char *name, *listen;
    } defaults[] = {
        {"gateway", "8088"},
        {"customer", "127.0.0.1:8081"},
        {"rater", "127.0.0.1:8082"},
        {"billing", "127.0.0.1:8083"},
        {"settlement", "127.0.0.1:8084"},
        {"mypage", "127.0.0.1:8085"},
    };
    for (size_t i = 0; name != NULL && i < sizeof defaults / sizeof defaults[0]; i++)
        if (strcmp(defaults[i].name, name) == 0)
            return defaults[i].listen;
    return "127.0.0.1:8080";
}

int bss_service_init(bss_service *svc, const char *name, int argc, char **argv, char *err)
{
    return bss_service_init_listen(svc, name, bss_service_default_listen(name), argc, argv,
                                   err);
}

static int get_positive(const bss_config *cfg, const char *key, long long fallback,
                        long long max, long long *out, char *err)
{
    int rc = bss_config_get_int(cfg, key, fallback, out, err);
    if (rc != BSS_OK)
        return rc;
    if (*out <= 0 || *out > max) {
        bss_seterr(err, "%s: %lld is out of range 1..%lld", key, *out, max);
        return BSS_ERR_INVALID;
    }
    return BSS_OK;
}

static int init_inner(bss_service *svc, const char *default_listen, int argc, char **argv,
                      char *err)
{
    svc->config = bss_config_load(argc, argv, err);
    if (svc->config == NULL)
        return BSS_ERR_INVALID;
    const bss_config *cfg = svc->config;

    const char *tz = bss_config_get(cfg, "BSS_TZ", "Asia/Seoul");
    if (bss_time_set_zone(tz) != BSS_OK) {
        bss_seterr(err, "BSS_TZ: unknown time zone \"%s\"", tz);
        return BSS_ERR_INVALID;
    }

    const char *dir = bss_config_get(cfg, "BSS_DATA_DIR", "./data");
    if (strlen(dir) >= sizeof svc->data_dir) {
        bss_seterr(err, "BSS_DATA_DIR is too long");
        return BSS_ERR_INVALID;
    }
    int rc = mkdir_p(dir, err);
    if (rc != BSS_OK)
        return rc;
    snprintf(svc->data_dir, sizeof svc->data_dir, "%s", dir);

    int level = BSS_LOG_INFO;
    const char *lvl = bss_config_get(cfg, "BSS_LOG_LEVEL", "info");
    if (bss_log_level_parse(lvl, &level) != BSS_OK) {
        bss_seterr(err, "BSS_LOG_LEVEL: \"%s\" is not debug, info, warn or error", lvl);
        return BSS_ERR_INVALID;
    }
    const char *logfile = bss_config_get(cfg, "BSS_LOG_FILE", NULL);
    svc->log = bss_log_open(svc->name, logfile, level);
    if (svc->log == NULL) {
        bss_seterr(err, "cannot open log %s: %s", logfile ? logfile : "stderr",
                   strerror(errno));
        return BSS_ERR_IO;
    }

    svc->metrics = bss_metrics_new();
    if (svc->metrics == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }

    char key[96];
    size_t k = (size_t)snprintf(key, sizeof key, "BSS_");
    for (const char *p = svc->name; *p && k + 1 < sizeof key; p++)
        key[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    snprintf(key + k, sizeof key - k, "_LISTEN");
    const char *listen =
        bss_config_get(cfg, key, bss_config_get(cfg, "BSS_LISTEN", default_listen));

    long long max_body, threads, timeout, drain;
    if ((rc = get_positive(cfg, "BSS_MAX_BODY_BYTES", BSS_HTTP_DEFAULT_MAX_BODY,
                           (long long)1 << 40, &max_body, err)) != BSS_OK ||
        (rc = get_positive(cfg, "BSS_HTTP_THREADS", BSS_HTTP_DEFAULT_THREADS, 10000, &threads,
                           err)) != BSS_OK ||
        (rc = get_positive(cfg, "BSS_HTTP_TIMEOUT_MS", BSS_HTTP_DEFAULT_TIMEOUT_MS,
                           24LL * 3600 * 1000, &timeout, err)) != BSS_OK ||
        (rc = get_positive(cfg, "BSS_HTTP_DRAIN_MS", BSS_HTTP_DEFAULT_DRAIN_MS,
                           3600LL * 1000, &drain, err)) != BSS_OK)
        return rc;

    bss_http_options opts;
    memset(&opts, 0, sizeof opts);
    opts.listen = listen;
    opts.num_threads = (int)threads;
    opts.max_body_bytes = (size_t)max_body;
    opts.request_timeout_ms = (int)timeout;
    opts.drain_timeout_ms = (int)drain;
    opts.service = svc->name;
    opts.log = svc->log;
    opts.metrics = svc->metrics;
    svc->http = bss_http_new(&opts, err);
    if (svc->http == NULL)
        return BSS_ERR_INVALID;
    /* Every service but the gateway itself answers only the gateway. */
    if (strcmp(svc->name, "gateway") != 0)
        return bss_internal_auth_install(svc->http, cfg, &svc->internal_auth_, err);
    return BSS_OK;
}

/* glibc gives threads up to 8 malloc arenas per core and returns little of
 * an arena's freed memory to the system: with civetweb's workers, the
 * consumer, the relay and the rater's per-file threads each landing in
 * arenas of their own, a service's RSS crept up for minutes under steady
 * load (bench/soak.py: the rater +97 % in 5 minutes, +23 % in 3 minutes
 * with one arena per core). One arena per core bounds that part of the
 * growth; threads that allocate at the same moment may then share an
 * arena's lock.
 *
 * The mmap threshold is fixed too: left alone, glibc raises it to the size
 * of each mmap'd block freed (up to 32 MB), and the trim threshold with it.
 * After the rater's first usage file its ~8 MB of per-file buffers
 * (rater/usage.c: batches, read buffer) came from the arenas instead,
 * were kept there once freed, and the heap's resident part grew with every
 * file while the live heap stayed flat (heaptrack, bench/soak.py: +19 to
 * +37 % in 3 minutes). Blocks this large are rare and short-lived, so
 * mmap and munmap per block cost little and hand them back at once.
 * Set before any thread exists, as mallopt wants. */
#define MALLOC_MMAP_THRESHOLD (256 * 1024)

/* What the thresholds cannot catch: memory freed in the middle of a heap.
 * glibc returns an arena's free pages to the system only from its top, so
 * pages freed between live blocks stay resident: SQLite's pages (4 KB
 * blocks, freed as caches shrink and statements end), request buffers and
 * events of every size. Under steady load they added up to megabytes that
 * the live heap did not need (bench/soak.py: the rater's free heap 1.8 ->
 * 3.9 MB in 3 minutes while its live heap was flat). The main thread, which
 * otherwise only waits for a signal, gives such pages back this often
 * (malloc_trim walks the arenas' free blocks: well under a millisecond for
 * the heaps of these services). */
#define MALLOC_TRIM_SECONDS 10

static void tune_malloc(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, cores > 2 ? (int)cores : 2);
    mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, MALLOC_MMAP_THRESHOLD);
}

/* glibc also keeps a cache of freed blocks per thread (tcache): up to 7
 * blocks of each size up to 1032 bytes, some 240 KB a thread, held for the
 * thread's life and never returned, and a service has ~50 threads (32
 * civetweb workers, nng's, its own). Under steady load the workers' caches
 * filled with blocks of every size (SQLite's text and blob values, JSON,
 * events): the rater's held 2.5 MB after 4 minutes, 207 KB in the fullest
 * worker, and still growing (gdb on the soak's rater). Only the smallest
 * blocks, the ones most often allocated, keep their per-thread cache: the
 * bound becomes some 5 KB a thread. glibc reads this setting once, from the
 * environment, when the program starts (there is no mallopt for it), so the
 * program runs itself again with it set. */
#define TCACHE_TUNABLE "glibc.malloc.tcache_max"
#define TCACHE_MAX_BYTES 128

void bss_service_exec_tuned(char **argv)
{
    const char *have = getenv("GLIBC_TUNABLES");
    /* Set by the exec below, or by whoever started us: theirs wins. */
    if (argv == NULL || argv[0] == NULL || (have != NULL && strstr(have, "glibc.malloc.tcache")))
        return;
    char before[512] = "";
    if (have != NULL && strlen(have) >= sizeof before)
        return;
    if (have != NULL)
        snprintf(before, sizeof before, "%s", have);
    char value[sizeof before + 64];
    snprintf(value, sizeof value, "%s%s" TCACHE_TUNABLE "=%d", before, before[0] ? ":" : "",
             TCACHE_MAX_BYTES);
    if (setenv("GLIBC_TUNABLES", value, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* No /proc, or no exec: run on with glibc's defaults, and leave the
     * environment children would see as it was. */
    if (have != NULL)
        setenv("GLIBC_TUNABLES", before, 1);
    else
        unsetenv("GLIBC_TUNABLES");
}

/* SQLite counts every allocation it makes (sqlite3_memory_used) under one
 * process-wide mutex, taken twice per malloc/free: a read of a line on a
 * request thread takes it a dozen times, and with 16 request threads it was
 * the most contended lock of the customer service (a third of its futex
 * calls under bench_http.py's GET load). Nothing here reads those counts,
 * and they are only needed for sqlite3_soft_heap_limit, which no store
 * sets. Must run before SQLite initialises (any open); it is refused
 * (SQLITE_MISUSE, harmless) afterwards. */
static void tune_sqlite(void) { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int bss_service_init_listen(bss_service *svc, const char *name, const char *default_listen,
                            int argc, char **argv, char *err)
{
    if (svc == NULL)
        return BSS_ERR_INVALID;
    memset(svc, 0, sizeof *svc);
    if (!valid_name(name)) {
        bss_seterr(err, "bad service name \"%s\"", name ? name : "(null)");
        return BSS_ERR_INVALID;
    }
    if (default_listen == NULL)
        default_listen = bss_service_default_listen(name);

    /* Before anything can create a thread: every later thread inherits this
     * mask, so SIGINT/SIGTERM only ever reach sigtimedwait() in bss_service_run. */
    sigemptyset(&svc->signals_);
    sigaddset(&svc->signals_, SIGINT);
    sigaddset(&svc->signals_, SIGTERM);
    int prc = pthread_sigmask(SIG_BLOCK, &svc->signals_, NULL);
    if (prc != 0) {
        bss_seterr(err, "pthread_sigmask: %s", strerror(prc));
        return BSS_ERR;
    }
    signal(SIGPIPE, SIG_IGN);
    tune_malloc();
    tune_sqlite();

    snprintf(svc->name_buf_, sizeof svc->name_buf_, "%s", name);
    svc->name = svc->name_buf_;
    int rc = init_inner(svc, default_listen, argc, argv, err);
    if (rc != BSS_OK) {
        sigset_t keep = svc->signals_;
        bss_service_free(svc);
        memset(svc, 0, sizeof *svc);
        svc->signals_ = keep;
    }
    return rc;
}

int bss_service_add_shutdown(bss_service *svc, void (*fn)(void *ctx), void *ctx)
{
    if (svc == NULL || fn == NULL)
        return BSS_ERR_INVALID;
    if (svc->nhooks_ >= BSS_SERVICE_MAX_HOOKS)
        return BSS_ERR_NOMEM;
    svc->hooks_[svc->nhooks_].fn = fn;
    svc->hooks_[svc->nhooks_].ctx = ctx;
    svc->nhooks_++;
    return BSS_OK;
}

static void run_hooks(bss_service *svc)
{
    while (svc->nhooks_ > 0) {
        struct bss_service_hook hk = svc->hooks_[--svc->nhooks_];
        hk.fn(hk.ctx);
    }
}

int bss_service_run(bss_service *svc, char *err)
{
    if (svc == NULL || svc->http == NULL) {
        bss_seterr(err, "service not initialized");
        return BSS_ERR_INVALID;
    }
    char why[BSS_ERRLEN] = "";
    if (bss_http_start(svc->http, why) != BSS_OK) {
        bss_log_error(svc->log, "cannot start: %s", why);
        bss_seterr(err, "%s", why);
        run_hooks(svc);
        return BSS_ERR_IO;
    }
    bss_log_writex(svc->log, BSS_LOG_INFO, NULL, NULL, NULL, "started on port %d (pid %d)",
                   bss_http_port(svc->http), (int)getpid());
    int sig = 0;
    for (;;) {
        const struct timespec trim_every = {MALLOC_TRIM_SECONDS, 0};
        sig = sigtimedwait(&svc->signals_, NULL, &trim_every);
        if (sig > 0)
            break;
        if (errno == EAGAIN) {
            malloc_trim(0);
            continue;
        }
        if (errno != EINTR) {
            bss_log_error(svc->log, "sigtimedwait: %s", strerror(errno));
            break;
        }
    }
    bss_log_info(svc->log, "stopping (signal %d)", sig);
    bss_http_stop(svc->http);
    run_hooks(svc);
    bss_log_info(svc->log, "stopped");
    return BSS_OK;
}

int bss_service_request_stop(bss_service *svc)
{
    (void)svc;
    return kill(getpid(), SIGTERM) == 0 ? BSS_OK : BSS_ERR_IO;
}

void bss_service_free(bss_service *svc)
{
    if (svc == NULL)
        return;
    bss_http_free(svc->http);
    bss_internal_auth_free(svc->internal_auth_);
    svc->internal_auth_ = NULL;
    bss_metrics_free(svc->metrics);
    bss_log_close(svc->log);
    bss_config_free(svc->config);
    svc->http = NULL;
    svc->metrics = NULL;
    svc->log = NULL;
    svc->config = NULL;
}
