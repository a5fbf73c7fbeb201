/* log.c - see log.h.
 *
 * A line is built in a stack buffer (or, for long lines, one heap buffer)
 * and written with a single write(2). The descriptor is opened with O_APPEND
 * so concurrent writers, threads or processes, each land a whole line. */
#include "log.h"

#include "bss_error.h"
#include "isotime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct bss_log {
    char service[64];
    int fd;
    int owns_fd;
    int min_level;
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

bss_log *bss_log_open(const char *service, const char *path, int min_level)
{
    bss_log *log = calloc(1, sizeof *log);
    if (log == NULL)
        return NULL;
    snprintf(log->service, sizeof log->service, "%s", service ? service : "");
    log->min_level = min_level;
    if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0) {
        log->fd = STDERR_FILENO;
        log->owns_fd = 0;
    } else {
        log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log->fd < 0) {
            int saved = errno;
            free(log);
            errno = saved;
            return NULL;
        }
        log->owns_fd = 1;
    }
    return log;
}

void bss_log_close(bss_log *log)
{
    if (log == NULL)
        return;
    if (log->owns_fd)
        close(log->fd);
    free(log);
}

int bss_log_enabled(const bss_log *log, int level)
{
    return log != NULL && level >= log->min_level;
}

int bss_log_level_parse(const char *name, int *level)
{
    if (name == NULL)
        return BSS_ERR_INVALID;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *level = i;
            return BSS_OK;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *level = BSS_LOG_WARN;
        return BSS_OK;
    }
    return BSS_ERR_INVALID;
}

const char *bss_log_level_name(int level)
{
    return (level >= 0 && level < 4) ? level_names[level] : "unknown";
}

/* Length of the well-formed UTF-8 sequence starting at s (1-4), or 0 when
 * the bytes there are not valid UTF-8 (overlong forms and surrogates are
 * rejected). */
static int utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0;
        if (c == 0xed && s[1] >= 0xa0)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0;
        if (c == 0xf4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

size_t bss_json_escape(const char *s, char *out, size_t outlen)
{
    size_t need = 0;
    size_t used = 0; /* bytes written to out, excluding the NUL */
    int full = 0;    /* once something did not fit, write nothing more */
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        char esc[8];
        const char *piece = esc;
        size_t plen;
        int adv = 1;
        unsigned char c = *p;
        if (c == '"') {
            piece = "\\\"";
            plen = 2;
        } else if (c == '\\') {
            piece = "\\\\";
            plen = 2;
        } else if (c == '\n') {
            piece = "\\n";
            plen = 2;
        } else if (c == '\r') {
            piece = "\\r";
            plen = 2;
        } else if (c == '\t') {
            piece = "\\t";
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            plen = 6;
        } else if (c < 0x80) {
            piece = (const char *)p;
            plen = 1;
        } else {
            adv = utf8_seq_len(p);
            if (adv == 0) {
                piece = "\\ufffd";
                plen = 6;
                adv = 1;
            } else {
                piece = (const char *)p;
                plen = (size_t)adv;
            }
        }
        if (!full && outlen > 0 && used + plen < outlen) {
            memcpy(out + used, piece, plen);
            used += plen;
        } else {
            full = 1;
        }
        need += plen;
        p += adv;
    }
    if (outlen > 0)
        out[used] = '\0';
    return need;
}

/* A growable buffer that starts on the stack. */
struct linebuf {
    char *p;
    size_t len, cap;
    int heap, failed;
    char stack[4096];
};

static void lb_init(struct linebuf *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof b->stack;
    b->heap = 0;
    b->failed = 0;
}

static int lb_reserve(struct linebuf *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t ncap = b->cap * 2;
    while (ncap < b->len + extra + 1)
        ncap *= 2;
    char *n = b->heap ? realloc(b->p, ncap) : malloc(ncap);
    if (n == NULL) {
        b->failed = 1;
        return 0;
    }
    if (!b->heap)
        memcpy(n, b->p, b->len);
    b->p = n;
    b->cap = ncap;
    b->heap = 1;
    return 1;
}

static void lb_put(struct linebuf *b, const char *s, size_t n)
{
    if (!lb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void lb_puts(struct linebuf *b, const char *s) { lb_put(b, s, strlen(s)); }

static void lb_put_json_string(struct linebuf *b, const char *s)
{
    size_t need = bss_json_escape(s, NULL, 0);
    if (!lb_reserve(b, need + 2))
        return;
    b->p[b->len++] = '"';
    bss_json_escape(s, b->p + b->len, need + 1);
    b->len += need;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

static void lb_free(struct linebuf *b)
{
    if (b->heap)
        free(b->p);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void bss_log_vwritex(bss_log *log, int level, const char *request_id,
                     const char *correlation_id, const char *fields,
                     const char *fmt, va_list ap)
{
    if (!bss_log_enabled(log, level))
        return;
    char msg[BSS_LOG_MAXMSG];
    int n = 0;
    if (fmt != NULL)
        n = vsnprintf(msg, sizeof msg, fmt, ap);
    else
        msg[0] = '\0';
    if (n < 0)
        snprintf(msg, sizeof msg, "(unformattable message)");
    else if ((size_t)n >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);

    char ts[BSS_TIME_LEN + 8];
    if (bss_time_format(bss_now_ms(), ts, sizeof ts) != BSS_OK)
        snprintf(ts, sizeof ts, "1970-01-01T00:00:00.000+00:00");

    struct linebuf b;
    lb_init(&b);
    lb_puts(&b, "{\"ts\":\"");
    lb_puts(&b, ts);
    lb_puts(&b, "\",\"level\":\"");
    lb_puts(&b, bss_log_level_name(level));
    lb_puts(&b, "\",\"service\":");
    lb_put_json_string(&b, log->service);
    lb_puts(&b, ",\"msg\":");
    lb_put_json_string(&b, msg);
    if (fields != NULL && fields[0] != '\0') {
        lb_puts(&b, ",");
        lb_puts(&b, fields);
    }
    if (request_id != NULL) {
        lb_puts(&b, ",\"requestId\":");
        lb_put_json_string(&b, request_id);
    }
    if (correlation_id != NULL) {
        lb_puts(&b, ",\"correlationId\":");
        lb_put_json_string(&b, correlation_id);
    }
    lb_puts(&b, "}\n");
    if (!b.failed)
        write_all(log->fd, b.p, b.len);
    lb_free(&b);
}

void bss_log_writex(bss_log *log, int level, const char *request_id,
                    const char *correlation_id, const char *fields,
                    const char *fmt, ...)
{
    if (!bss_log_enabled(log, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    bss_log_vwritex(log, level, request_id, correlation_id, fields, fmt, ap);
    va_end(ap);
}

void bss_log_write(bss_log *log, int level, const char *request_id,
                   const char *correlation_id, const char *fmt, ...)
{
    if (!bss_log_enabled(log, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    bss_log_vwritex(log, level, request_id, correlation_id, NULL, fmt, ap);
    va_end(ap);
}
