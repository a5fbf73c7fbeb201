/* upstream.c - see upstream.h.
 *
 * Sockets connect non-blocking, then stay in blocking mode with every call
 * that must not block flagged MSG_DONTWAIT. The one wait that usually
 * happens, for the first bytes of the answer, is a recv bounded by
 * SO_RCVTIMEO (the exchange's timeout); any other wait is a poll() bounded
 * by the exchange's deadline. So a silent upstream can never hold a
 * gateway worker longer than the timeout. Answers are read through one
 * small buffer per exchange: the status line and headers are cut from it,
 * and body bytes are handed on straight from it. */
#include "upstream.h"

#include "isotime.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define AUTHORITY_MAX 300
#define READ_BUFFER 8192
#define HEAD_INLINE 4096

struct idle_conn {
    int fd;
    long recv_timeout_ms; /* its SO_RCVTIMEO */
    int64_t idle_since_ns;
    char authority[AUTHORITY_MAX];
};

struct gw_upstream_pool {
    pthread_mutex_t mu;
    int max_idle;
    int count;
    struct idle_conn *idle; /* max_idle entries, the newest last */
};

gw_upstream_pool *gw_upstream_pool_new(int max_idle)
{
    if (max_idle <= 0)
        return NULL;
    gw_upstream_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->idle = calloc((size_t)max_idle, sizeof *p->idle);
    if (p->idle == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->idle);
        free(p);
        return NULL;
    }
    p->max_idle = max_idle;
    return p;
}

void gw_upstream_pool_free(gw_upstream_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->count; i++)
        close(p->idle[i].fd);
    pthread_mutex_destroy(&p->mu);
    free(p->idle);
    free(p);
}

/* Whether c has been idle long enough for its upstream to have closed it. */
static int idle_too_long(const struct idle_conn *c, int64_t now_ns)
{
    return now_ns - c->idle_since_ns >= (int64_t)GW_UPSTREAM_MAX_IDLE_MS * 1000000;
}

/* The newest idle connection to authority that is young enough, or -1;
 * *recv_timeout_ms is its SO_RCVTIMEO. Stale ones met on the way are
 * closed. */
static int pool_take(gw_upstream_pool *p, const char *authority, long *recv_timeout_ms)
{
    int64_t now = bss_monotonic_ns();
    int fd = -1;
    int stale[8], nstale = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = p->count - 1; i >= 0 && fd < 0; i--) {
        if (strcmp(p->idle[i].authority, authority) != 0)
            continue;
        if (!idle_too_long(&p->idle[i], now)) {
            fd = p->idle[i].fd;
            *recv_timeout_ms = p->idle[i].recv_timeout_ms;
        } else if (nstale < 8) {
            stale[nstale++] = p->idle[i].fd;
        } else {
            continue; /* closed on a later call */
        }
        p->idle[i] = p->idle[--p->count];
        i = p->count; /* the order changed: scan again from the end */
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < nstale; i++)
        close(stale[i]);
    return fd;
}

/* Gives fd back to the pool. Connections of any upstream idle for longer
 * than GW_UPSTREAM_MAX_IDLE_MS are closed on the way: the upstream has
 * closed its end by then (its keep-alive timeout), and a pooled connection
 * to an upstream nobody asks for would otherwise sit in CLOSE_WAIT until
 * the gateway stops (bench/soak.py counts such descriptors). */
static void pool_put(gw_upstream_pool *p, const char *authority, int fd, long recv_timeout_ms)
{
    int kept = 0;
    int stale[8], nstale = 0;
    int64_t now = bss_monotonic_ns();
    pthread_mutex_lock(&p->mu);
    for (int i = p->count - 1; i >= 0 && nstale < 8; i--) {
        if (idle_too_long(&p->idle[i], now)) {
            stale[nstale++] = p->idle[i].fd;
            p->idle[i] = p->idle[--p->count];
        }
    }
    if (p->count < p->max_idle) {
        struct idle_conn *c = &p->idle[p->count++];
        c->fd = fd;
        c->recv_timeout_ms = recv_timeout_ms;
        c->idle_since_ns = bss_monotonic_ns();
        snprintf(c->authority, sizeof c->authority, "%s", authority);
        kept = 1;
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < nstale; i++)
        close(stale[i]);
    if (!kept)
        close(fd);
}

/* ---- the base URL ------------------------------------------------------------ */

struct base_url {
    char host[256];
    char port[8];
    char authority[AUTHORITY_MAX]; /* as written in the URL, for Host: */
    const char *path;              /* the base path ("" or "/api"), in the URL */
    size_t path_len;
};

static int parse_base(const char *base, struct base_url *u)
{
    if (base == NULL || strncasecmp(base, "http://", 7) != 0)
        return -1;
    const char *a = base + 7;
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || alen >= sizeof u->authority || memchr(a, '@', alen) != NULL)
        return -1;
    memcpy(u->authority, a, alen);
    u->authority[alen] = '\0';
    u->path = a + alen;
    u->path_len = strcspn(u->path, "?#");
    if (u->path[u->path_len] != '\0')
        return -1;
    const char *host = u->authority;
    size_t hlen;
    const char *port;
    if (host[0] == '[') { /* [v6 address] */
        const char *close_br = strchr(host, ']');
        if (close_br == NULL)
            return -1;
        host++;
        hlen = (size_t)(close_br - host);
        port = close_br[1] == ':' ? close_br + 2 : (close_br[1] == '\0' ? "" : NULL);
    } else {
        const char *colon = strchr(host, ':');
        hlen = colon ? (size_t)(colon - host) : alen;
        port = colon ? colon + 1 : "";
    }
    if (port == NULL || hlen == 0 || hlen >= sizeof u->host || strlen(port) >= sizeof u->port)
        return -1;
    for (const char *c = port; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    if (port[0] == '\0')
        port = "80";
    memcpy(u->port, port, strlen(port) + 1); /* checked to fit above */
    return 0;
}

int gw_upstream_supports(const char *base)
{
    struct base_url u;
    return parse_base(base, &u) == 0;
}

/* ---- socket helpers ---------------------------------------------------------- */

static char *put(char *o, const char *text, size_t n)
{
    memcpy(o, text, n);
    return o + n;
}

/* Milliseconds left until deadline_ns, at least 0. */
static int remaining_ms(int64_t deadline_ns)
{
    int64_t left = deadline_ns - bss_monotonic_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > 1000000000 ? 1000000000 : (int)ms;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        int ms = remaining_ms(deadline_ns);
        int rc = poll(&pfd, 1, ms);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static void set_detail(char *detail, size_t len, const char *fmt, const char *arg)
{
    if (detail != NULL && len > 0)
        snprintf(detail, len, fmt, arg);
}

/* A new connection: BSS-style result code, fd in *out. */
static gw_upstream_result connect_new(const struct base_url *u, long timeout_ms, int *out,
                                      char *detail, size_t dlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        set_detail(detail, dlen, "cannot resolve %s", u->host);
        return GW_UPSTREAM_UNAVAILABLE;
    }
    int64_t deadline = bss_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    gw_upstream_result result = GW_UPSTREAM_UNAVAILABLE;
    set_detail(detail, dlen, "cannot connect to %s", u->authority);
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0)
            continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            int ready = wait_fd(fd, POLLOUT, deadline);
            if (ready == 0) {
                close(fd);
                result = GW_UPSTREAM_TIMEOUT;
                set_detail(detail, dlen, "connecting to %s timed out", u->authority);
                break;
            }
            int soerr = 0;
            socklen_t slen = sizeof soerr;
            rc = ready > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 &&
                         soerr == 0
                     ? 0
                     : -1;
        }
        if (rc != 0) {
            close(fd);
            continue;
        }
        /* Blocking from now on: every call that must not block says so
         * (MSG_DONTWAIT); the first read of an answer blocks, bounded by
         * SO_RCVTIMEO (see fill). */
        int one = 1;
        if (fcntl(fd, F_SETFL, 0) != 0) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        *out = fd;
        result = GW_UPSTREAM_OK;
        break;
    }
    freeaddrinfo(res);
    return result;
}

/* Writes every byte of iov[0..n) (modified as it goes). 0 sent, -1 the
 * connection failed, -2 timed out. */
static int send_all(int fd, struct iovec *iov, int n, int64_t deadline_ns)
{
    while (n > 0) {
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            int ready = wait_fd(fd, POLLOUT, deadline_ns);
            if (ready <= 0)
                return ready == 0 ? -2 : -1;
            continue;
        }
        size_t left = (size_t)sent;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* ---- reading the answer -------------------------------------------------------- */

struct reader {
    int fd;             /* the connection, or -1 to read from mem */
    int wait_in_recv;   /* the next recv may block (SO_RCVTIMEO bounds it) */
    const char *mem;    /* the rest of an answer held in memory (fd -1) */
    size_t mem_len;
    int64_t deadline_ns;
    size_t pos, len;
    long long received; /* bytes of the answer seen so far */
    char buf[READ_BUFFER];
};

/* One recv into the free end of r's buffer; what recv returns (errno set
 * when < 0). */
static ssize_t recv_into(struct reader *r, int flags)
{
    ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, flags);
    if (n > 0) {
        r->len += (size_t)n;
        r->received += n;
    }
    return n;
}

/* Reads more into the buffer (after moving what is left to the front).
 * > 0 bytes read, 0 end of stream, -1 error, -2 timeout. */
static int fill(struct reader *r)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == sizeof r->buf)
        return -1; /* a line longer than the buffer: the caller refuses it */
    if (r->fd < 0) {
        size_t n = sizeof r->buf - r->len;
        if (n > r->mem_len)
            n = r->mem_len;
        memcpy(r->buf + r->len, r->mem, n);
        r->mem += n;
        r->mem_len -= n;
        r->len += n;
        r->received += (long long)n;
        return (int)n;
    }
    /* Right after the request went out the answer cannot be there yet: the
     * first read waits in recv itself (one system call instead of a poll
     * and a recv), bounded by the connection's SO_RCVTIMEO, the exchange's
     * timeout (the exchange allows it only when sending took under a
     * millisecond, so the deadline is overrun by less than that). Later
     * reads wait in poll, bounded by the deadline. */
    if (r->wait_in_recv) {
        r->wait_in_recv = 0;
        ssize_t n = recv_into(r, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -2;
        if (errno != EINTR)
            return -1;
    } else if (r->received == 0 && r->len == 0) {
        int ready = wait_fd(r->fd, POLLIN, r->deadline_ns);
        if (ready <= 0)
            return ready == 0 ? -2 : -1;
    }
    for (;;) {
        ssize_t n = recv_into(r, MSG_DONTWAIT);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int ready = wait_fd(r->fd, POLLIN, r->deadline_ns);
        if (ready <= 0)
            return ready == 0 ? -2 : -1;
    }
}

/* The next line (without CRLF or LF) in *line and *len, pointing into the
 * buffer until the next read. 1 ok, else fill's code (0: stream ended). */
static int read_line(struct reader *r, const char **line, size_t *len)
{
    for (;;) {
        char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (r->buf + r->pos));
            *line = r->buf + r->pos;
            *len = n > 0 && (*line)[n - 1] == '\r' ? n - 1 : n;
            r->pos += n + 1;
            return 1;
        }
        if (r->len - r->pos >= GW_UPSTREAM_LINE_MAX)
            return -1;
        int rc = fill(r);
        if (rc <= 0)
            return rc;
    }
}

/* Hands `want` body bytes on (want < 0: until the stream ends). 1 ok, 2
 * on_body stopped it, else fill's code. */
static int read_body(struct reader *r, long long want, const gw_upstream_answer *a)
{
    for (;;) {
        size_t have = r->len - r->pos;
        if (want >= 0 && (long long)have > want)
            have = (size_t)want;
        if (have > 0) {
            if (a->on_body != NULL && a->on_body(a->ctx, r->buf + r->pos, have) != 0)
                return 2;
            r->pos += have;
            if (want >= 0)
                want -= (long long)have;
        }
        if (want == 0)
            return 1;
        r->pos = r->len = 0;
        int rc = fill(r);
        if (rc == 0 && want < 0)
            return 1;
        if (rc <= 0)
            return rc;
    }
}

static int header_is(const char *line, size_t len, const char *name, const char **value,
                     size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return 0;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return 1;
}

/* 1 when the comma-separated value contains token (case-insensitive). */
static int has_token(const char *v, size_t vlen, const char *token)
{
    size_t t = strlen(token);
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == t && strncasecmp(v + start, token, t) == 0)
            return 1;
    }
    return 0;
}

/* How the answer's body is framed, from its headers. */
struct framing {
    long long content_length; /* -1 unknown */
    int chunked;
    int close_after;
};

/* Reads a chunked body. 1 ok, 2 stopped, -3 malformed, else fill's code. */
static int read_chunked(struct reader *r, const gw_upstream_answer *a)
{
    for (;;) {
        const char *line;
        size_t len;
        int rc = read_line(r, &line, &len);
        if (rc != 1)
            return rc == 0 ? -3 : rc;
        long long size = 0;
        size_t i = 0;
        for (; i < len; i++) {
            char c = line[i];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (size > (1LL << 40))
                return -3;
            size = size * 16 + d;
        }
        if (i == 0 || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
            return -3;
        if (size == 0)
            break;
        rc = read_body(r, size, a);
        if (rc != 1)
            return rc == 0 ? -3 : rc;
        rc = read_line(r, &line, &len); /* the CRLF after the data */
        if (rc != 1 || len != 0)
            return rc == 1 || rc == 0 ? -3 : rc;
    }
    for (;;) { /* trailers, up to the empty line */
        const char *line;
        size_t len;
        int rc = read_line(r, &line, &len);
        if (rc != 1)
            return rc == 0 ? -3 : rc;
        if (len == 0)
            return 1;
    }
}

/* Reads one complete answer. Returns GW_UPSTREAM_OK (status set, *reusable
 * says whether the connection may serve another request) or a failure;
 * *got_nothing is 1 when the stream ended or failed before any byte came. */
static gw_upstream_result read_answer(struct reader *r, const gw_upstream_answer *a,
                                      int *status, int *reusable, int *got_nothing,
                                      char *detail, size_t dlen)
{
    *reusable = 0;
    *got_nothing = 0;
    struct framing f;
    int code = 0;
    for (;;) { /* status line, skipping 1xx interim answers */
        const char *line;
        size_t len;
        int rc = read_line(r, &line, &len);
        if (rc != 1) {
            *got_nothing = r->received == 0;
            if (rc == -2) {
                set_detail(detail, dlen, "%s", "no answer in time");
                return GW_UPSTREAM_TIMEOUT;
            }
            set_detail(detail, dlen, "%s",
                       rc == 0 ? "the connection closed before an answer" : "bad status line");
            return rc == 0 && r->received == 0 ? GW_UPSTREAM_UNAVAILABLE
                                                : GW_UPSTREAM_BAD_ANSWER;
        }
        if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
            line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' ||
            line[11] < '0' || line[11] > '9' || (len > 12 && line[12] != ' ')) {
            set_detail(detail, dlen, "%s", "bad status line");
            return GW_UPSTREAM_BAD_ANSWER;
        }
        int minor = line[7] - '0';
        code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        f.content_length = -1;
        f.chunked = 0;
        f.close_after = minor == 0; /* HTTP/1.0 closes unless it says keep-alive */
        for (;;) {
            rc = read_line(r, &line, &len);
            if (rc != 1) {
                set_detail(detail, dlen, "%s", rc == -2 ? "no answer in time" : "bad headers");
                return rc == -2 ? GW_UPSTREAM_TIMEOUT : GW_UPSTREAM_BAD_ANSWER;
            }
            if (len == 0)
                break;
            const char *v;
            size_t vlen;
            if (header_is(line, len, "Content-Length", &v, &vlen)) {
                char *end = NULL;
                char num[24];
                if (vlen == 0 || vlen >= sizeof num) {
                    set_detail(detail, dlen, "%s", "bad Content-Length");
                    return GW_UPSTREAM_BAD_ANSWER;
                }
                memcpy(num, v, vlen);
                num[vlen] = '\0';
                long long n = strtoll(num, &end, 10);
                if (*end != '\0' || n < 0 || (f.content_length >= 0 && n != f.content_length)) {
                    set_detail(detail, dlen, "%s", "bad Content-Length");
                    return GW_UPSTREAM_BAD_ANSWER;
                }
                f.content_length = n;
            } else if (header_is(line, len, "Transfer-Encoding", &v, &vlen)) {
                f.chunked = has_token(v, vlen, "chunked");
            } else if (header_is(line, len, "Connection", &v, &vlen)) {
                if (has_token(v, vlen, "close"))
                    f.close_after = 1;
                else if (has_token(v, vlen, "keep-alive"))
                    f.close_after = 0;
            }
            if (code >= 200 && a->on_header != NULL)
                a->on_header(a->ctx, line, len);
        }
        if (code >= 200 || code == 101)
            break;
    }
    *status = code;
    int rc = 1;
    if (code == 204 || code == 304 || code == 101) {
        rc = 1;
    } else if (f.chunked) {
        rc = read_chunked(r, a);
    } else if (f.content_length >= 0) {
        rc = read_body(r, f.content_length, a);
        if (rc == 0)
            rc = -3; /* ended early */
    } else {
        f.close_after = 1;
        rc = read_body(r, -1, a);
    }
    if (rc == 2) {
        set_detail(detail, dlen, "%s", "the answer was refused");
        return GW_UPSTREAM_ABORTED;
    }
    if (rc == -2) {
        set_detail(detail, dlen, "%s", "the answer did not complete in time");
        return GW_UPSTREAM_TIMEOUT;
    }
    if (rc != 1) {
        set_detail(detail, dlen, "%s", "the answer broke off");
        return GW_UPSTREAM_BAD_ANSWER;
    }
    *reusable = !f.close_after && code != 101 && r->pos == r->len;
    return GW_UPSTREAM_OK;
}

/* ---- one exchange ------------------------------------------------------------- */

gw_upstream_result gw_upstream_exchange(gw_upstream_pool *pool, const gw_upstream_request *rq,
                                        const gw_upstream_answer *answer, int *status,
                                        char *detail, size_t dlen)
{
    struct base_url u;
    if (detail != NULL && dlen > 0)
        detail[0] = '\0';
    if (parse_base(rq->base, &u) != 0) {
        set_detail(detail, dlen, "unsupported upstream URL %s", rq->base);
        return GW_UPSTREAM_BAD_ANSWER;
    }
    /* The request head, built once; sent again as is on a retry. */
    char inline_head[HEAD_INLINE];
    size_t need = strlen(rq->method) + u.path_len + strlen(rq->target) + strlen(u.authority) +
                  rq->headers_len + 96;
    char *head = need <= sizeof inline_head ? inline_head : malloc(need);
    if (head == NULL)
        return GW_UPSTREAM_NOMEM;
    char *o = put(head, rq->method, strlen(rq->method));
    *o++ = ' ';
    o = put(o, u.path, u.path_len);
    o = put(o, rq->target, strlen(rq->target));
    o = put(o, " HTTP/1.1\r\nHost: ", 17);
    o = put(o, u.authority, strlen(u.authority));
    o = put(o, "\r\n", 2);
    if (rq->headers_len > 0)
        o = put(o, rq->headers, rq->headers_len);
    if (rq->send_body) {
        char digits[24];
        int nd = 0;
        size_t v = rq->body_len;
        do {
            digits[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0);
        o = put(o, "Content-Length: ", 16);
        while (nd > 0)
            *o++ = digits[--nd];
        o = put(o, "\r\n", 2);
    }
    o = put(o, "\r\n", 2);
    size_t head_len = (size_t)(o - head);

    struct reader *r = malloc(sizeof *r);
    if (r == NULL) {
        if (head != inline_head)
            free(head);
        return GW_UPSTREAM_NOMEM;
    }
    gw_upstream_result result = GW_UPSTREAM_UNAVAILABLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        /* A retry never takes another pooled connection: it could be just
         * as stale as the first. */
        long recv_timeout_ms = 0; /* none set */
        int fd = attempt == 0 ? pool_take(pool, u.authority, &recv_timeout_ms) : -1;
        int reused = fd >= 0;
        if (!reused) {
            result = connect_new(&u, rq->timeout_ms, &fd, detail, dlen);
            if (result != GW_UPSTREAM_OK)
                break;
        }
        /* SO_RCVTIMEO of zero means no timeout at all: only a positive one
         * is set (and only then may fill wait in recv). */
        if (rq->timeout_ms > 0 && recv_timeout_ms != rq->timeout_ms) {
            struct timeval tv = {rq->timeout_ms / 1000, (rq->timeout_ms % 1000) * 1000};
            recv_timeout_ms =
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 ? rq->timeout_ms : 0;
        }
        int64_t timeout_ns = (int64_t)rq->timeout_ms * 1000000;
        int64_t deadline = bss_monotonic_ns() + timeout_ns;
        struct iovec iov[2] = {{head, head_len}, {(void *)rq->body, rq->body_len}};
        int sent = send_all(fd, iov, rq->send_body && rq->body_len > 0 ? 2 : 1, deadline);
        if (sent == -2) {
            close(fd);
            set_detail(detail, dlen, "%s", "sending the request timed out");
            result = GW_UPSTREAM_TIMEOUT;
            break;
        }
        /* A failed write is not yet a failed exchange: an upstream may answer
         * early (413 for a body over its limit) and close while the rest is
         * still on the way. Whatever answer it sent is read below; only when
         * there is none does the failed write count. */
        r->fd = fd;
        /* Waiting in recv may overrun the deadline by what sending took:
         * only when that was under a millisecond (the usual case). */
        r->wait_in_recv = sent == 0 && rq->timeout_ms > 0 &&
                          recv_timeout_ms == rq->timeout_ms &&
                          deadline - bss_monotonic_ns() >= timeout_ns - 1000000;
        r->mem = NULL;
        r->mem_len = 0;
        r->deadline_ns = deadline;
        r->pos = r->len = 0;
        r->received = 0;
        int reusable = 0, got_nothing = 0;
        result = read_answer(r, answer, status, &reusable, &got_nothing, detail, dlen);
        if (sent != 0 && result != GW_UPSTREAM_OK && got_nothing) {
            close(fd);
            if (reused)
                continue; /* the upstream closed it while idle: once more, fresh */
            set_detail(detail, dlen, "%s", "sending the request failed");
            result = GW_UPSTREAM_UNAVAILABLE;
            break;
        }
        if (result == GW_UPSTREAM_OK && reusable && sent == 0) {
            pool_put(pool, u.authority, fd, recv_timeout_ms);
        } else {
            close(fd);
        }
        if (result != GW_UPSTREAM_OK && result != GW_UPSTREAM_TIMEOUT && got_nothing &&
            reused)
            continue;
        break;
    }
    free(r);
    if (head != inline_head)
        free(head);
    return result;
}

gw_upstream_result gw_upstream_parse_answer(const char *data, size_t len,
                                            const gw_upstream_answer *answer, int *status,
                                            int *reusable)
{
    struct reader *r = malloc(sizeof *r);
    if (r == NULL)
        return GW_UPSTREAM_NOMEM;
    r->fd = -1;
    r->wait_in_recv = 0;
    r->mem = data;
    r->mem_len = len;
    r->deadline_ns = 0;
    r->pos = r->len = 0;
    r->received = 0;
    int got_nothing = 0, keep = 0;
    char detail[128];
    gw_upstream_result rc =
        read_answer(r, answer, status, &keep, &got_nothing, detail, sizeof detail);
    free(r);
    if (reusable != NULL)
        *reusable = keep;
    return rc;
}
