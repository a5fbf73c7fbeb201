/* main.c - the mypage service (the "my page" read model): wiring only.
 *
 * Configuration beyond service.h and eventcore.h:
 *   BSS_MYPAGE_CACHE_MB  memory for rendered pages (cache.h), default 16;
 *                        0 turns the cache off
 */
#include "bss_error.h"
#include "eventcore.h"
#include "mypage.h"
#include "projection.h"
#include "service.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    bss_service_exec_tuned(argv);
    bss_service svc;
    char err[BSS_ERRLEN] = "";
    if (bss_service_init(&svc, "mypage", argc, argv, err) != BSS_OK) {
        fprintf(stderr, "mypage: %s\n", err);
        return 1;
    }
    long long cache_mb = 16;
    if (bss_config_get_int(svc.config, "BSS_MYPAGE_CACHE_MB", 16, &cache_mb, err) != BSS_OK ||
        cache_mb < 0 || cache_mb > 65536) {
        fprintf(stderr, "mypage: BSS_MYPAGE_CACHE_MB: %s\n",
                err[0] ? err : "must be 0 to 65536");
        bss_service_free(&svc);
        return 1;
    }
    mypage_cache *cache = NULL;
    if (cache_mb > 0 && (cache = mypage_cache_new((size_t)cache_mb << 20)) == NULL) {
        fprintf(stderr, "mypage: out of memory\n");
        bss_service_free(&svc);
        return 1;
    }
    mypage_live live;
    mypage_live_init(&live, cache);
    bss_eventcore *core = NULL;
    mypage_reads *reads = NULL;
    bss_eventcore_options o = {.service = "mypage",
                               .config = svc.config,
                               .data_dir = svc.data_dir,
                               .log = svc.log,
                               .metrics = svc.metrics,
                               .streams = mypage_projection_streams,
                               .nstreams = mypage_projection_nstreams,
                               .handler = mypage_live_handle,
                               .handler_ctx = &live,
                               .schema = mypage_projection_schema,
                               .txn_end = cache != NULL ? mypage_cache_txn_end : NULL,
                               .txn_end_ctx = cache};
    int rc = bss_eventcore_open(&o, &core, err);
    if (rc == BSS_OK)
        rc = mypage_reads_open(bss_eventcore_store(core), cache, &reads, err);
    if (rc == BSS_OK)
        rc = mypage_routes_register(svc.http, reads, err);
    if (rc == BSS_OK)
        rc = bss_eventcore_serve_dead_letters(core, svc.http, "/mypage", err);
    if (rc == BSS_OK) {
        bss_http_set_readiness(svc.http, bss_eventcore_ready, core);
        /* Hooks run in reverse: the readers close, then the projection's
         * statements are finalized, then the consumer and the store stop. */
        bss_service_add_shutdown(&svc, bss_eventcore_close, core);
        bss_service_add_shutdown(&svc, mypage_live_stop, &live);
        bss_service_add_shutdown(&svc, mypage_reads_close, reads);
        rc = bss_service_run(&svc, err);
    } else {
        mypage_reads_close(reads);
        mypage_live_stop(&live);
        bss_eventcore_close(core);
    }
    if (rc != BSS_OK)
        bss_log_error(svc.log, "mypage: %s", err);
    mypage_live_destroy(&live);
    mypage_cache_free(cache);
    bss_service_free(&svc);
    return rc == BSS_OK ? 0 : 1;
}
