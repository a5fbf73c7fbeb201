/* testutil.c - see testutil.h. */
#include "testutil.h"

#include "bss_error.h"
#include "isotime.h"

#include <curl/curl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tu_begin(char *dir)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    bss_time_set_zone("Asia/Seoul");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

void tu_end(const char *dir)
{
    curl_global_cleanup();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int tu_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

int tu_open_store(const char *path, const char *source, bss_store **store)
{
    char err[BSS_ERRLEN] = "";
    bss_store_options o = {.path = path, .source = source};
    int rc = bss_store_open(&o, store, err);
    if (rc != BSS_OK)
        fprintf(stderr, "store %s: %s\n", path, err);
    return rc;
}

int tu_apply_schema(bss_store *store, int (*schema)(sqlite3 *, char *))
{
    char err[BSS_ERRLEN] = "";
    int rc = bss_store_begin(store, err);
    if (rc == BSS_OK) {
        rc = schema(bss_store_db(store), err);
        if (rc == BSS_OK)
            rc = bss_store_commit(store, err);
        else
            bss_store_rollback(store);
    }
    if (rc != BSS_OK)
        fprintf(stderr, "schema: %s\n", err);
    return rc;
}

/* Runs sql in a transaction that is rolled back; on a first row, calls
 * row(st, out). */
static void query_first(bss_store *store, const char *sql, void (*row)(sqlite3_stmt *, void *),
                        void *out)
{
    if (bss_store_begin(store, NULL) != BSS_OK)
        return;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(bss_store_db(store), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        row(st, out);
    sqlite3_finalize(st);
    bss_store_rollback(store);
}

static void row_int(sqlite3_stmt *st, void *out) { *(int64_t *)out = sqlite3_column_int64(st, 0); }

static void row_text(sqlite3_stmt *st, void *out)
{
    const unsigned char *s = sqlite3_column_text(st, 0);
    if (s != NULL)
        *(char **)out = strdup((const char *)s);
}

int64_t tu_count_rows(bss_store *store, const char *sql)
{
    int64_t n = -1;
    query_first(store, sql, row_int, &n);
    return n;
}

char *tu_query_text(bss_store *store, const char *sql)
{
    char *out = NULL;
    query_first(store, sql, row_text, &out);
    return out;
}

int tu_collect(void *ctx, const bss_event *ev)
{
    tu_events *e = ctx;
    if (e->n < sizeof e->ev / sizeof e->ev[0])
        e->ev[e->n++] = bss_event_clone(ev);
    return 0;
}

void tu_events_free(tu_events *e)
{
    for (size_t i = 0; i < e->n; i++)
        bss_event_free(e->ev[i]);
    e->n = 0;
}

bss_event *tu_event(check_counts *c, const char *source, const char *type, const char *subject,
                    const char *data)
{
    char err[BSS_ERRLEN] = "";
    bss_event *ev = bss_event_new(type, subject, data, err);
    CHECK(c, ev != NULL);
    if (ev == NULL)
        fprintf(stderr, "event: %s\n", err);
    else
        snprintf(ev->source, sizeof ev->source, "%s", source);
    return ev;
}

int tu_apply(check_counts *c, bss_store *store, bss_handler_fn handler, void *ctx,
             const bss_event *ev, tu_events *out)
{
    char err[BSS_ERRLEN] = "";
    int64_t seen = 0;
    tu_events_free(out);
    bss_store_head(store, &seen, NULL);
    CHECK(c, bss_store_begin(store, err) == BSS_OK);
    int rc = handler(ctx, store, ev, err);
    if (rc == BSS_OK)
        CHECK(c, bss_store_commit(store, err) == BSS_OK);
    else
        bss_store_rollback(store);
    bss_store_read_from(store, seen, 64, tu_collect, out, NULL);
    return rc;
}

const char *tu_jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

double tu_jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

bss_http *tu_http_new(const char *service)
{
    char err[BSS_ERRLEN] = "";
    bss_http_options o = {.listen = "127.0.0.1:0", .num_threads = 4, .service = service};
    bss_http *h = bss_http_new(&o, err);
    if (h == NULL)
        fprintf(stderr, "http: %s\n", err);
    return h;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    tu_body *b = ctx;
    size_t len = size * n;
    if (b->len + len < sizeof b->buf) {
        memcpy(b->buf + b->len, p, len);
        b->len += len;
        b->buf[b->len] = '\0';
    }
    return len;
}

long tu_http_get(int port, const char *path, const char *accept, tu_body *b, char *ctype)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    b->len = 0;
    b->buf[0] = '\0';
    if (ctype != NULL)
        ctype[0] = '\0';
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    struct curl_slist *h = NULL;
    if (accept != NULL) {
        char header[256];
        snprintf(header, sizeof header, "Accept: %s", accept);
        h = curl_slist_append(h, header);
    }
    long status = -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ctype != NULL)
            snprintf(ctype, 128, "%s", ct != NULL ? ct : "");
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}
