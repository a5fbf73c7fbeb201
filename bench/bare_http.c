/*
 * bare_http.c - the machine's own HTTP limit for the benchmarks: a bare
 * civetweb server whose only handler answers a fixed small JSON body, with
 * the same thread count and keep-alive settings as the bssiot services.
 * Whatever a bssiot route costs on top of this is ours.
 *
 *   bare_http PORT [THREADS]      serves until SIGINT/SIGTERM
 */
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int answer(struct mg_connection *conn, void *ctx)
{
    (void)ctx;
    static const char body[] = "{\"status\":\"ok\",\"svcContNo\":\"7000000001\"}";
    const struct mg_request_info *ri = mg_get_request_info(conn);
    long long left = ri->content_length > 0 ? ri->content_length : 0;
    char buf[4096];
    while (left > 0) {
        int n = mg_read(conn, buf, sizeof buf);
        if (n <= 0)
            break;
        left -= n;
    }
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Connection: keep-alive\r\n\r\n%s",
              sizeof body - 1, body);
    return 200;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[1]);
    const char *threads = argc > 2 ? argv[2] : "32";
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    const char *options[] = {"listening_ports", listen, "num_threads", threads,
                             "enable_keep_alive", "yes", "keep_alive_timeout_ms", "5000",
                             NULL};
    mg_init_library(0);
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    struct mg_context *ctx = mg_start(&callbacks, NULL, options);
    if (ctx == NULL) {
        fprintf(stderr, "bare_http: cannot listen on %s\n", listen);
        return 1;
    }
    mg_set_request_handler(ctx, "/", answer, NULL);
    int sig = 0;
    sigwait(&stop, &sig);
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}
