/*
 * service.h - the skeleton every bssiot service's main() is built on.
 *
 *     int main(int argc, char **argv) {
 *         bss_service_exec_tuned(argv);
 *         bss_service svc;
 *         char err[BSS_ERRLEN];
 *         if (bss_service_init(&svc, "customer", argc, argv, err) != BSS_OK) {
 *             fprintf(stderr, "customer: %s\n", err);
 *             return 1;
 *         }
 *         ... open the store under svc.data_dir, bss_http_route(svc.http, ...),
 *         ... bss_service_add_shutdown(&svc, close_store, store);
 *         int rc = bss_service_run(&svc, err);
 *         bss_service_free(&svc);
 *         return rc == BSS_OK ? 0 : 1;
 *     }
 *
 * Signals: bss_service_init blocks SIGINT and SIGTERM in the calling thread
 * and ignores SIGPIPE, before anything can start a thread, so every thread
 * created later inherits the mask and only bss_service_run's sigtimedwait()
 * ever sees the signals. There is no signal handler and no global flag. Call
 * bss_service_init first thing in main() (after bss_service_exec_tuned),
 * before creating any thread.
 *
 * Memory: bss_service_init sets glibc's malloc to one arena per core and
 * fixed mmap/trim thresholds (256 KiB); bss_service_exec_tuned limits the
 * per-thread caches; while bss_service_run waits for a signal it returns
 * the heap's free pages to the system every 10 s (malloc_trim). Without
 * these a service's RSS grew for many minutes under steady load while its
 * live heap did not (bench/soak.py; docs/RELIABILITY.md#soak).
 *
 * Configuration keys read by bss_service_init (environment BSS_*, or the
 * matching --flag, see config.h):
 *   BSS_TZ              time zone for timestamps and billing (Asia/Seoul)
 *   BSS_DATA_DIR        data directory, created if missing (./data)
 *   BSS_LOG_FILE        log file; unset, "" or "-" means stderr
 *   BSS_LOG_LEVEL       debug|info|warn|error (info)
 *   BSS_<NAME>_LISTEN   listen address for service NAME (uppercased, '-' ->
 *                       '_'), e.g. BSS_CUSTOMER_LISTEN; else BSS_LISTEN; else
 *                       the default (see bss_service_default_listen)
 *   BSS_MAX_BODY_BYTES  request body cap (1048576)
 *   BSS_HTTP_THREADS    HTTP worker threads = max connections (32)
 *   BSS_HTTP_TIMEOUT_MS HTTP request timeout (30000)
 *   BSS_HTTP_DRAIN_MS   on SIGTERM, how long running requests may take to
 *                       finish (10000); see bss_http_stop
 */
#ifndef BSS_SERVICE_H
#define BSS_SERVICE_H

#include <limits.h>
#include <signal.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#define BSS_SERVICE_MAX_HOOKS 32

struct bss_service_hook {
    void (*fn)(void *ctx);
    void *ctx;
};

/* Public fields are read-only for the service after init; the underscore
 * fields are private. The struct is caller-allocated (usually on main's
 * stack) and must stay at the same address from init to free. */
typedef struct bss_service {
    const char *name;     /* the service name given to init */
    bss_config *config;   /* environment + flags; read anything else here */
    bss_log *log;         /* the service log */
    bss_metrics *metrics; /* the registry served at GET /metrics */
    bss_http *http;       /* the server: add routes before bss_service_run */
    char data_dir[PATH_MAX];
    /* private */
    struct bss_internal_auth *internal_auth_; /* the gateway-only gate, or NULL */
    char name_buf_[64];
    sigset_t signals_;
    struct bss_service_hook hooks_[BSS_SERVICE_MAX_HOOKS];
    int nhooks_;
} bss_service;

/* Runs the program again (execv of /proc/self/exe with argv, the same
 * process id) with glibc's per-thread malloc cache limited to blocks of up
 * to 128 bytes (GLIBC_TUNABLES=glibc.malloc.tcache_max=128, appended to
 * what GLIBC_TUNABLES holds already), which glibc only reads at start.
 * Returns without doing anything when GLIBC_TUNABLES already sets a
 * glibc.malloc.tcache* tunable (after the exec, or chosen by whoever
 * started the service), and when the exec fails (the service then runs
 * with glibc's defaults). Call it first thing in main(), before anything
 * else has happened: nothing done before it survives the exec. Under
 * valgrind without --trace-children=yes, set the tunable yourself. */
void bss_service_exec_tuned(char **argv);

/* Initializes svc for service `name` (1-63 chars of [a-z0-9-]): blocks
 * SIGINT/SIGTERM and ignores SIGPIPE, loads the config from the environment
 * and argv, sets the time zone, creates the data directory (mkdir -p, mode
 * 0755), opens the log, creates the metrics registry and the HTTP server
 * (not yet listening) with the default listen address of
 * bss_service_default_listen(name). Returns BSS_OK, or an error with the
 * reason in err (may be NULL): BSS_ERR_INVALID for a bad name, flag or
 * setting (unknown BSS_TZ, non-numeric BSS_MAX_BODY_BYTES, ...), BSS_ERR_IO
 * when the data directory or log file cannot be created, BSS_ERR_NOMEM. On
 * error everything created is released and svc is zeroed (bss_service_free
 * is then a no-op); the signal mask stays as set. */
int bss_service_init(bss_service *svc, const char *name, int argc, char **argv, char *err);

/* Like bss_service_init with an explicit default listen address (used when
 * neither BSS_<NAME>_LISTEN nor BSS_LISTEN is set). */
int bss_service_init_listen(bss_service *svc, const char *name, const char *default_listen,
                            int argc, char **argv, char *err);

/* The built-in default listen address for a service name: gateway "8088"
 * (all interfaces), customer "127.0.0.1:8081", rater "127.0.0.1:8082",
 * billing "127.0.0.1:8083", settlement "127.0.0.1:8084", mypage
 * "127.0.0.1:8085", anything else "127.0.0.1:8080". */
const char *bss_service_default_listen(const char *name);

/* Registers fn(ctx) to run during shutdown, after the HTTP server has
 * stopped and finished in-flight requests. Hooks run in reverse order of
 * registration (the last registered runs first), once, on the thread that
 * called bss_service_run. Register before bss_service_run. Returns BSS_OK,
 * BSS_ERR_INVALID for a NULL fn, or BSS_ERR_NOMEM when
 * BSS_SERVICE_MAX_HOOKS are registered already. */
int bss_service_add_shutdown(bss_service *svc, void (*fn)(void *ctx), void *ctx);

/* Starts the HTTP server, logs "started" (with the port), then waits with
 * sigtimedwait() for SIGINT or SIGTERM. Then logs "stopping", stops the HTTP
 * server (new requests get 503 while the in-flight ones finish, for at most
 * BSS_HTTP_DRAIN_MS; see bss_http_stop), runs the shutdown hooks, logs
 * "stopped" and returns BSS_OK. While it waits it calls malloc_trim(0)
 * every 10 s. When the server cannot start it returns
 * BSS_ERR_IO with the reason in err, after running the shutdown hooks. */
int bss_service_run(bss_service *svc, char *err);

/* Asks a running bss_service_run to shut down, from any thread (sends
 * SIGTERM to the process; every thread has it blocked, so it reaches the
 * sigtimedwait). Returns BSS_OK or BSS_ERR_IO. */
int bss_service_request_stop(bss_service *svc);

/* Frees the server, metrics, log and config (stopping the server if it is
 * still running; shutdown hooks are not run here). Safe on a zeroed or
 * failed-init svc. */
void bss_service_free(bss_service *svc);

#endif
