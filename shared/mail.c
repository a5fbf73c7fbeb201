/* mail.c - see mail.h. */
#include "mail.h"

#include "bss_error.h"
#include "isotime.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bss_mailer {
    CURL *curl;
    char *url, *from, *username, *password;
    int timeout_ms;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

bss_mailer *bss_mailer_new(const bss_mail_options *o)
{
    if (o == NULL || o->url == NULL || o->from == NULL || !bss_mail_address_ok(o->from))
        return NULL;
    bss_mailer *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->curl = curl_easy_init();
    m->url = strdup(o->url);
    m->from = strdup(o->from);
    m->username = dup_or_null(o->username);
    m->password = dup_or_null(o->password);
    m->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    if (m->curl == NULL || m->url == NULL || m->from == NULL) {
        bss_mailer_free(m);
        return NULL;
    }
    return m;
}

void bss_mailer_free(bss_mailer *m)
{
    if (m == NULL)
        return;
    if (m->curl != NULL)
        curl_easy_cleanup(m->curl);
    free(m->url);
    free(m->from);
    free(m->username);
    free(m->password);
    free(m);
}

int bss_mail_address_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    const char *at = a ? strchr(a, '@') : NULL;
    if (n < 3 || n > 254 || at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@'))
        return 0;
    return strpbrk(a, "\r\n<>, \t\"") == NULL;
}

static int header_safe(const char *s) { return s != NULL && strpbrk(s, "\r\n") == NULL; }

typedef struct payload {
    const char *data;
    size_t len, pos;
} payload;

static size_t read_payload(char *buf, size_t size, size_t nitems, void *arg)
{
    payload *p = arg;
    size_t room = size * nitems, left = p->len - p->pos;
    size_t n = left < room ? left : room;
    memcpy(buf, p->data + p->pos, n);
    p->pos += n;
    return n;
}

/* Builds the RFC 5322 message; the body's lines end in CRLF. */
static char *build_message(const bss_mailer *m, const char *to, const char *subject,
                           const char *html, const char *message_id, size_t *len)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    size_t cap = strlen(html) * 2 + strlen(subject) + strlen(message_id) + strlen(m->from) +
                 strlen(to) + 512;
    char *msg = malloc(cap);
    if (msg == NULL)
        return NULL;
    int n = snprintf(msg, cap,
                     "Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nMessage-ID: %s\r\n"
                     "Subject: %s\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/html; charset=UTF-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n\r\n",
                     date, m->from, to, message_id, subject);
    if (n < 0 || (size_t)n >= cap) {
        free(msg);
        return NULL;
    }
    size_t o = (size_t)n;
    for (const char *p = html; *p; p++) {
        if (*p == '\n' && (p == html || p[-1] != '\r'))
            msg[o++] = '\r';
        msg[o++] = *p;
    }
    memcpy(msg + o, "\r\n", 3);
    *len = o + 2;
    return msg;
}

int bss_mail_send(bss_mailer *m, const char *to, const char *subject, const char *html,
                  const char *message_id, char *err)
{
    if (!bss_mail_address_ok(to) || !header_safe(subject) || !header_safe(message_id)) {
        bss_seterr(err, "unusable recipient, subject or message id");
        return BSS_ERR_INVALID;
    }
    size_t len = 0;
    char *msg = build_message(m, to, subject, html, message_id, &len);
    if (msg == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    char from[300], rcpt_addr[300];
    snprintf(from, sizeof from, "<%s>", m->from);
    snprintf(rcpt_addr, sizeof rcpt_addr, "<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_addr);
    payload p = {msg, len, 0};
    CURL *c = m->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, m->url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_payload);
    curl_easy_setopt(c, CURLOPT_READDATA, &p);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (m->username != NULL) {
        curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, m->password ? m->password : "");
    }
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    free(msg);
    if (cc == CURLE_OK)
        return BSS_OK;
    bss_seterr(err, "SMTP %s: %s (reply %ld)", m->url, curl_easy_strerror(cc), code);
    /* 5xx replies are permanent (RFC 5321), 4xx and transport errors are not. */
    return code >= 500 && code < 600 ? BSS_ERR_INVALID : BSS_ERR_IO;
}
