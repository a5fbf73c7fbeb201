/* usage_routes.c - see usage_routes.h. */
#include "usage_routes.h"

#include "bss_error.h"
#include "isotime.h"
#include "period.h"
#include "usage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static long long read_fd(void *ctx, char *buf, size_t len)
{
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int csv_content_type(const char *type)
{
    if (type == NULL)
        return 0;
    size_t n = strcspn(type, ";");
    while (n > 0 && type[n - 1] == ' ')
        n--;
    return (n == 8 && strncasecmp(type, "text/csv", 8) == 0) ||
           (n == 24 && strncasecmp(type, "application/octet-stream", 24) == 0);
}

/* Streams the request body into an unlinked temp file. Returns its fd, or
 * replies (413, 400, 503) and returns -status. */
static int spool_body(bss_request *req, const usage_routes *u)
{
    const char *length = bss_req_header(req, "Content-Length");
    if (length != NULL && strtoll(length, NULL, 10) > u->max_file_bytes)
        return -bss_reply_problemf(req, 413, "FILE_TOO_LARGE", "Usage file too large",
                                   "usage files are limited to %lld bytes",
                                   (long long)u->max_file_bytes);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/upload-XXXXXX", u->upload_dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return -bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable",
                                    "cannot spool the upload", "Retry-After: 1\r\n");
    unlink(path);
    char *buf = malloc(1 << 16);
    int64_t total = 0;
    long long n = 0;
    while (buf != NULL && (n = bss_req_read(req, buf, 1 << 16)) > 0) {
        total += n;
        if (total > u->max_file_bytes) {
            free(buf);
            close(fd);
            return -bss_reply_problemf(req, 413, "FILE_TOO_LARGE", "Usage file too large",
                                       "usage files are limited to %lld bytes",
                                       (long long)u->max_file_bytes);
        }
        if (write_all(fd, buf, (size_t)n) != 0) {
            n = -2;
            break;
        }
    }
    free(buf);
    if (buf == NULL || n < 0 || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        if (n == -1)
            return -bss_reply_problem(req, 400, "BODY_READ_FAILED", "Bad request",
                                      "the upload was cut short");
        return -bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable",
                                    "cannot spool the upload", "Retry-After: 1\r\n");
    }
    return fd;
}

/* Rates the spooled file fd and answers with its report. The report (the
 * first rejections kept for the body, ~19 KB) lives on the heap: this runs
 * on a civetweb worker, whose stack is 100 KB in Debian's build, and
 * rating the file needs much of it. */
static int rate_and_reply(bss_request *req, usage_routes *u, const char *name, int fd,
                          int64_t upload_ms)
{
    usage_report *r = calloc(1, sizeof *r);
    if (r == NULL)
        return bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable",
                                   "out of memory; nothing was stored", "Retry-After: 1\r\n");
    int64_t started = bss_monotonic_ms();
    char err[BSS_ERRLEN] = "";
    struct stat spooled;
    usage_origin origin = {"http", 0, 0, fstat(fd, &spooled) == 0 ? (int64_t)spooled.st_size : 0};
    int rc = usage_ingest(u->store, name, &origin, read_fd, &fd, r, err);
    int status;
    if (rc == BSS_ERR_INVALID) {
        status = bss_reply_problem(req, 422, "INVALID_HEADER", "Not a usage file", err);
    } else if (rc != BSS_OK) {
        bss_log_write(bss_req_log(req), BSS_LOG_ERROR, bss_req_id(req), NULL,
                      "rating %s failed: %s", name, err);
        status = bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable",
                                     "the usage file could not be rated; nothing was stored",
                                     "Retry-After: 1\r\n");
    } else {
        bss_log_write(bss_req_log(req), BSS_LOG_INFO, bss_req_id(req), NULL,
                      "rated %s: %lld records, %lld rated, %lld duplicates, %lld rejected"
                      " (upload %lld ms, rating %lld ms: records %lld, totals and events %lld,"
                      " commit %lld)",
                      name, r->records, r->rated, r->duplicates, r->rejected,
                      (long long)upload_ms, (long long)(bss_monotonic_ms() - started),
                      (long long)r->records_ms, (long long)r->totals_ms,
                      (long long)r->commit_ms);
        bss_metrics_counter_add(u->metrics, "bss_usage_records_total", "source=\"http\"",
                                (uint64_t)r->records);
        status = bss_reply_json_owned(req, 200,
                                      usage_report_json(r, USAGE_REPORT_BODY_REJECTIONS));
    }
    free(r);
    return status;
}

static int upload(bss_request *req, void *ctx)
{
    usage_routes *u = ctx;
    char name[USAGE_FILE_NAME_MAX + 2];
    if (bss_req_query_param(req, "name", name, sizeof name) != BSS_OK ||
        !usage_file_name_valid(name))
        return bss_reply_problem(req, 422, "VALIDATION_FAILED", "The request is not valid",
                                 "query parameter 'name' must be 1-200 of [A-Za-z0-9._-],"
                                 " not starting with '.'");
    if (!csv_content_type(bss_req_header(req, "Content-Type")))
        return bss_reply_problem(req, 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type",
                                 "send the usage file as text/csv");
    int64_t started = bss_monotonic_ms();
    int fd = spool_body(req, u);
    if (fd < 0)
        return -fd;
    int64_t received = bss_monotonic_ms();
    int status = rate_and_reply(req, u, name, fd, received - started);
    close(fd);
    return status;
}

static int snapshot(bss_request *req, usage_routes *u, sqlite3 **db)
{
    char err[BSS_ERRLEN];
    if (bss_store_snapshot_begin(u->store, db, err) != BSS_OK)
        return bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable", err,
                                   "Retry-After: 1\r\n");
    return 0;
}

static int get_report(bss_request *req, void *ctx)
{
    usage_routes *u = ctx;
    sqlite3 *db = NULL;
    int replied = snapshot(req, u, &db);
    if (replied)
        return replied;
    cJSON *report = NULL;
    char err[BSS_ERRLEN];
    int rc = usage_report_load(db, bss_req_param(req, "name"), &report, err);
    bss_store_snapshot_end(u->store, db);
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problem(req, 404, "USAGE_FILE_NOT_FOUND", "Not found",
                                 "no usage file of that name was rated");
    if (rc != BSS_OK)
        return rc;
    return bss_reply_json_owned(req, 200, report);
}

static int line_exists(sqlite3 *db, const char *svc)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM rater_info WHERE svc_cont_no = ?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

static int get_usage(bss_request *req, void *ctx)
{
    usage_routes *u = ctx;
    char text[16];
    bss_period period;
    if (bss_req_query_param(req, "period", text, sizeof text) != BSS_OK ||
        bss_period_parse(text, &period) != BSS_OK)
        return bss_reply_problem(req, 422, "VALIDATION_FAILED", "The request is not valid",
                                 "query parameter 'period' must be YYYY-MM");
    sqlite3 *db = NULL;
    int replied = snapshot(req, u, &db);
    if (replied)
        return replied;
    const char *svc = bss_req_param(req, "svcContNo");
    cJSON *json = NULL;
    char err[BSS_ERRLEN];
    int rc = line_exists(db, svc) ? usage_period_json(db, svc, text, &json, err)
                                  : BSS_ERR_NOTFOUND;
    bss_store_snapshot_end(u->store, db);
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problem(req, 404, "LINE_NOT_FOUND", "Not found",
                                 "no rater info for this line");
    if (rc != BSS_OK)
        return rc;
    return bss_reply_json_owned(req, 200, json);
}

static int request_close(bss_request *req, void *ctx)
{
    usage_routes *u = ctx;
    int status = 0;
    cJSON *body = bss_req_json(req, &status);
    if (body == NULL)
        return status;
    const cJSON *period = cJSON_GetObjectItemCaseSensitive(body, "period");
    char text[16] = "";
    if (cJSON_IsString(period) && strlen(period->valuestring) < sizeof text)
        snprintf(text, sizeof text, "%s", period->valuestring);
    cJSON_Delete(body);
    cJSON *close = NULL;
    int created = 0;
    char err[BSS_ERRLEN] = "";
    int rc = au_close_request(u->closer, text, &close, &created, err);
    if (rc == BSS_ERR_INVALID)
        return bss_reply_problem(req, 422, "VALIDATION_FAILED", "The request is not valid",
                                 "field 'period' must be YYYY-MM");
    if (rc == BSS_ERR_CONFLICT)
        return bss_reply_problem(req, 409, "PERIOD_NOT_ENDED", "The period has not ended", err);
    if (rc != BSS_OK)
        return bss_reply_problem_h(req, 503, "STORE_UNAVAILABLE", "Service unavailable", err,
                                   "Retry-After: 1\r\n");
    bss_log_write(bss_req_log(req), BSS_LOG_INFO, bss_req_id(req), NULL, "AU close %s %s", text,
                  created ? "started" : "requested again: answering with the existing close");
    char location[64];
    snprintf(location, sizeof location, "Location: /raters/au-close/%s\r\n", text);
    char *json = cJSON_PrintUnformatted(close);
    cJSON_Delete(close);
    if (json == NULL)
        return BSS_ERR_NOMEM;
    status = bss_reply_raw(req, 202, "application/json", json, strlen(json), location);
    free(json);
    return status;
}

static int get_close(bss_request *req, void *ctx)
{
    usage_routes *u = ctx;
    sqlite3 *db = NULL;
    int replied = snapshot(req, u, &db);
    if (replied)
        return replied;
    cJSON *close = NULL;
    char err[BSS_ERRLEN];
    int rc = au_close_status(db, bss_req_param(req, "period"), &close, err);
    bss_store_snapshot_end(u->store, db);
    if (rc == BSS_ERR_NOTFOUND)
        return bss_reply_problem(req, 404, "AU_CLOSE_NOT_FOUND", "Not found",
                                 "no AU close was requested for this period");
    if (rc != BSS_OK)
        return rc;
    return bss_reply_json_owned(req, 200, close);
}

int usage_routes_register(bss_http *http, usage_routes *ctx, char *err)
{
    if (bss_http_route(http, "POST", "/raters/au-close", request_close, ctx) != BSS_OK ||
        bss_http_route(http, "GET", "/raters/au-close/{period}", get_close, ctx) != BSS_OK) {
        bss_seterr(err, "cannot route the AU close endpoints");
        return BSS_ERR;
    }
    if (bss_http_route(http, "POST", "/raters/usage-files", upload, ctx) != BSS_OK ||
        bss_http_route(http, "GET", "/raters/usage-files/{name}", get_report, ctx) != BSS_OK ||
        bss_http_route(http, "GET", "/raters/{svcContNo}/usage", get_usage, ctx) != BSS_OK) {
        bss_seterr(err, "cannot route the usage endpoints");
        return BSS_ERR;
    }
    return BSS_OK;
}
