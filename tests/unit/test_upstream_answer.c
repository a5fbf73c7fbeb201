/*
 * test_upstream_answer.c - how the gateway's upstream client
 * (gateway/upstream.h) reads an answer: Content-Length, chunked and
 * close-delimited bodies, interim 1xx answers, which headers it hands on,
 * when the connection may be reused, and what it refuses; and, over a real
 * loopback socket, that an answer sent early (before the request body was
 * read) is relayed even though writing the rest of the body failed. The
 * client's pooling and timeouts are exercised end to end by the gateway
 * integration test (tests/integration/test_gateway.py).
 */
#include "check.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static check_counts counts;

struct got {
    char headers[1024];
    char body[1024];
    size_t body_len;
    int stop_after; /* on_body refuses once this many bytes arrived (0: never) */
};

static void on_header(void *ctx, const char *line, size_t len)
{
    struct got *g = ctx;
    strncat(g->headers, line, len);
    strcat(g->headers, "|");
}

static int on_body(void *ctx, const char *data, size_t len)
{
    struct got *g = ctx;
    if (g->body_len + len < sizeof g->body) {
        memcpy(g->body + g->body_len, data, len);
        g->body_len += len;
        g->body[g->body_len] = '\0';
    }
    return g->stop_after > 0 && g->body_len >= (size_t)g->stop_after;
}

static gw_upstream_result parse(const char *text, struct got *g, int *status, int *reusable)
{
    memset(g->headers, 0, sizeof g->headers);
    memset(g->body, 0, sizeof g->body);
    g->body_len = 0;
    gw_upstream_answer a = {on_header, on_body, g};
    *status = 0;
    *reusable = -1;
    return gw_upstream_parse_answer(text, strlen(text), &a, status, reusable);
}

/* An upstream that reads only the request head, answers 413 and closes
 * with the body unread (so the kernel resets the connection), as a
 * service refusing a body over its limit does. */
struct early_server {
    int listen_fd;
    int port;
};

static void *answer_early(void *arg)
{
    struct early_server *srv = arg;
    int fd = accept(srv->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char head[4096];
    size_t have = 0;
    while (have < sizeof head - 1) {
        ssize_t n = recv(fd, head + have, sizeof head - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        head[have] = '\0';
        if (strstr(head, "\r\n\r\n") != NULL)
            break;
    }
    static const char answer[] = "HTTP/1.1 413 Payload Too Large\r\n"
                                 "Content-Type: application/problem+json\r\n"
                                 "Content-Length: 20\r\nConnection: close\r\n\r\n"
                                 "{\"code\":\"TOO_LARGE\"}";
    ssize_t w = send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL);
    (void)w;
    close(fd);
    return NULL;
}

static void check_early_answer_is_relayed(void)
{
    struct early_server srv = {.listen_fd = socket(AF_INET, SOCK_STREAM, 0)};
    CHECK(&counts, srv.listen_fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    CHECK(&counts, bind(srv.listen_fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
                       listen(srv.listen_fd, 1) == 0 &&
                       getsockname(srv.listen_fd, (struct sockaddr *)&addr, &alen) == 0);
    srv.port = ntohs(addr.sin_port);
    pthread_t thread;
    CHECK(&counts, pthread_create(&thread, NULL, answer_early, &srv) == 0);

    /* Far more than the socket buffers hold, so the write is still going
     * when the upstream closes. */
    size_t body_len = 16u << 20;
    char *body = malloc(body_len);
    CHECK(&counts, body != NULL);
    if (body == NULL)
        return;
    memset(body, 'x', body_len);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);
    gw_upstream_pool *pool = gw_upstream_pool_new(2);
    gw_upstream_request rq = {.base = base, .method = "POST", .target = "/customers",
                              .send_body = 1, .body = body, .body_len = body_len,
                              .timeout_ms = 10000};
    struct got g = {.stop_after = 0};
    gw_upstream_answer a = {on_header, on_body, &g};
    int status = 0;
    char detail[128];
    gw_upstream_result rc = gw_upstream_exchange(pool, &rq, &a, &status, detail, sizeof detail);
    CHECK(&counts, rc == GW_UPSTREAM_OK);
    CHECK(&counts, status == 413);
    CHECK(&counts, strcmp(g.body, "{\"code\":\"TOO_LARGE\"}") == 0);
    if (rc != GW_UPSTREAM_OK)
        fprintf(stderr, "exchange: %d %s\n", (int)rc, detail);
    pthread_join(thread, NULL);
    gw_upstream_pool_free(pool);
    free(body);
    close(srv.listen_fd);
}

int main(void)
{
    struct got g = {.stop_after = 0};
    int status, reusable;

    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: 15\r\n\r\n{\"status\":\"ok\"}",
                         &g, &status, &reusable) == GW_UPSTREAM_OK);
    CHECK(&counts, status == 200 && reusable == 1);
    CHECK(&counts, strcmp(g.body, "{\"status\":\"ok\"}") == 0);
    CHECK(&counts,
          strcmp(g.headers, "Content-Type: application/json|Content-Length: 15|") == 0);

    /* Chunked, with an extension and trailers; an interim 100 first. */
    CHECK(&counts, parse("HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                         "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
                         &g, &status, &reusable) == GW_UPSTREAM_OK);
    CHECK(&counts, status == 201 && reusable == 1);
    CHECK(&counts, strcmp(g.body, "hello world") == 0);
    CHECK(&counts, strstr(g.headers, "X-Interim") == NULL); /* interim headers dropped */

    /* No length: the body runs to the close, and the connection is done. */
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\n\r\nuntil the end", &g, &status, &reusable) ==
                       GW_UPSTREAM_OK);
    CHECK(&counts, strcmp(g.body, "until the end") == 0 && reusable == 0);

    /* Connection: close and HTTP/1.0 are not reused; 1.0 keep-alive is. */
    CHECK(&counts, parse("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", &g, &status,
                         &reusable) == GW_UPSTREAM_OK);
    CHECK(&counts, status == 204 && reusable == 0);
    CHECK(&counts, parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &g, &status,
                         &reusable) == GW_UPSTREAM_OK && reusable == 0);
    CHECK(&counts, parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                         &g, &status, &reusable) == GW_UPSTREAM_OK && reusable == 1);
    /* Bytes after the answer: never reuse that connection. */
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", &g, &status,
                         &reusable) == GW_UPSTREAM_OK && reusable == 0);

    /* Nothing at all: the upstream closed without answering. */
    CHECK(&counts, parse("", &g, &status, &reusable) == GW_UPSTREAM_UNAVAILABLE);
    /* Broken answers. */
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", &g, &status,
                         &reusable) == GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                         "hello!",
                         &g, &status, &reusable) == GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &g, &status,
                         &reusable) == GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &g,
                         &status, &reusable) == GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", &g,
                         &status, &reusable) == GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("SIP/2.0 200 OK\r\n\r\n", &g, &status, &reusable) ==
                       GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("HTTP/1.1 600 Nope\r\n\r\n", &g, &status, &reusable) ==
                       GW_UPSTREAM_BAD_ANSWER);
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nNo-End: of headers", &g, &status, &reusable) ==
                       GW_UPSTREAM_BAD_ANSWER);

    /* A header line longer than GW_UPSTREAM_LINE_MAX is refused. */
    static char huge[GW_UPSTREAM_LINE_MAX + 200];
    strcpy(huge, "HTTP/1.1 200 OK\r\nX-Long: ");
    size_t n = strlen(huge);
    memset(huge + n, 'a', GW_UPSTREAM_LINE_MAX + 10);
    strcpy(huge + n + GW_UPSTREAM_LINE_MAX + 10, "\r\n\r\n");
    CHECK(&counts, parse(huge, &g, &status, &reusable) == GW_UPSTREAM_BAD_ANSWER);

    /* on_body can stop the transfer (the gateway does when an answer is too
     * large). */
    g.stop_after = 3;
    CHECK(&counts, parse("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef", &g, &status,
                         &reusable) == GW_UPSTREAM_ABORTED);
    g.stop_after = 0;

    /* Which base URLs the client takes. */
    CHECK(&counts, gw_upstream_supports("http://127.0.0.1:8089"));
    CHECK(&counts, gw_upstream_supports("http://[::1]:8089/api"));
    CHECK(&counts, gw_upstream_supports("http://customer"));
    CHECK(&counts, !gw_upstream_supports("https://127.0.0.1:8089"));
    CHECK(&counts, !gw_upstream_supports("http://user@host:1"));
    CHECK(&counts, !gw_upstream_supports("http://host:port"));
    CHECK(&counts, !gw_upstream_supports("http://"));

    check_early_answer_is_relayed();
    return CHECK_DONE(&counts);
}
