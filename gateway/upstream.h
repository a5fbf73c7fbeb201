/*
 * upstream.h - the gateway's own HTTP/1.1 client for the common case: a
 * request whose body is already in memory (or absent), sent to a plain
 * http:// upstream over a pooled keep-alive TCP connection.
 *
 * Why not libcurl for these: a forwarded GET cost the gateway about 80 us of
 * CPU through a libcurl multi handle (option setup and reset, header lists,
 * four polls per transfer), eight times a bare civetweb request. This
 * client writes the request with one sendmsg and reads the answer with as
 * few recv calls as it takes, nothing else. libcurl stays for what it does
 * well (proxy.c): streamed and chunked uploads, https upstreams, HEAD.
 *
 * What goes out: "<method> <base path><target> HTTP/1.1", Host (the base
 * URL's authority), the caller's header block verbatim, then
 * "Content-Length: <n>" when the request carries a body (send_body; also
 * when it is empty, as for a POST without one), and the body.
 *
 * What comes back: 1xx interim answers are skipped; the final status, each
 * header line (without its CRLF, in order) to on_header, the body to
 * on_body in pieces. Bodies framed by Content-Length, by chunked
 * Transfer-Encoding (trailers are read and dropped) or, failing both, by
 * the upstream closing the connection are understood; 204 and 304 have
 * none.
 *
 * Connections: kept per authority ("host:port") in a pool shared by every
 * thread (one mutex, held only to take or put a socket), at most max_idle
 * of them; one is reused only when the previous answer was completely read,
 * was not "Connection: close", and it has been idle for less than
 * GW_UPSTREAM_MAX_IDLE_MS (below bss_http's 5 s keep-alive timeout, so the
 * upstream has not closed it). If a reused connection fails before a
 * single byte of the answer arrived (the upstream closed it meanwhile), the
 * request is sent once more on a new connection, as libcurl does.
 *
 * Timeouts: connecting may take timeout_ms; then the whole exchange
 * (sending the request and receiving the complete answer) has timeout_ms
 * more (give or take a millisecond: the wait for the first bytes of the
 * answer is a recv bounded by SO_RCVTIMEO, used only when sending took
 * less than that).
 *
 * Threading: gw_upstream_exchange may run on any number of threads at once.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stddef.h>

#define GW_UPSTREAM_MAX_IDLE_MS 4000
#define GW_UPSTREAM_LINE_MAX 8192 /* longest status or header line accepted */

typedef struct gw_upstream_pool gw_upstream_pool;

/* Outcome of one exchange. */
typedef enum gw_upstream_result {
    GW_UPSTREAM_OK = 0,      /* a complete answer was read */
    GW_UPSTREAM_UNAVAILABLE, /* cannot connect (refused, unresolvable), or the
                                upstream closed without answering */
    GW_UPSTREAM_TIMEOUT,     /* connecting or the exchange took too long */
    GW_UPSTREAM_BAD_ANSWER,  /* the answer is not HTTP/1.x we understand, or
                                it broke off midway */
    GW_UPSTREAM_ABORTED,     /* on_body asked to stop */
    GW_UPSTREAM_NOMEM
} gw_upstream_result;

typedef struct gw_upstream_request {
    const char *base;    /* "http://host[:port][/path]" (port 80 by default) */
    const char *method;  /* "GET", "POST", ... */
    const char *target;  /* the encoded path and query, appended to base's path */
    const char *headers; /* "Name: value\r\n"... without Host/Content-Length; may be NULL */
    size_t headers_len;
    int send_body;       /* 1: send Content-Length and body (maybe empty) */
    const char *body;
    size_t body_len;
    long timeout_ms;     /* > 0 */
} gw_upstream_request;

typedef struct gw_upstream_answer {
    /* One response header line (no CRLF), for each header of the final
     * answer. May be NULL. */
    void (*on_header)(void *ctx, const char *line, size_t len);
    /* A piece of the body; return 0 to go on, anything else to stop (the
     * exchange then ends GW_UPSTREAM_ABORTED and the connection is closed). */
    int (*on_body)(void *ctx, const char *data, size_t len);
    void *ctx;
} gw_upstream_answer;

/* A pool keeping at most max_idle idle connections (> 0). NULL when memory
 * runs out. */
gw_upstream_pool *gw_upstream_pool_new(int max_idle);

/* Closes every pooled connection and frees the pool; only when no
 * exchange runs. NULL is a no-op. */
void gw_upstream_pool_free(gw_upstream_pool *pool);

/* 1 when this client can talk to base (an http:// URL it can parse), else
 * 0 (https, or anything else: use libcurl). */
int gw_upstream_supports(const char *base);

/* Sends the request and delivers the answer to `answer`. Returns
 * GW_UPSTREAM_OK with *status set (100..599), or one of the failures
 * above with a short reason in detail (detail_len bytes; may be NULL). */
gw_upstream_result gw_upstream_exchange(gw_upstream_pool *pool, const gw_upstream_request *req,
                                        const gw_upstream_answer *answer, int *status,
                                        char *detail, size_t detail_len);

/* Parses one answer held whole in memory, exactly as gw_upstream_exchange
 * parses what it receives (the end of data is the upstream closing the
 * connection). *reusable (may be NULL) tells whether the connection could
 * have served another request: the answer was framed, complete, not
 * "Connection: close", and nothing followed it. For the fuzz target and
 * tests. */
gw_upstream_result gw_upstream_parse_answer(const char *data, size_t len,
                                            const gw_upstream_answer *answer, int *status,
                                            int *reusable);

#endif
