/* spool.c - see spool.h. */
#include "spool.h"

#include "bss_error.h"
#include "usage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct rater_spool {
    char dir[PATH_MAX];
    int poll_ms;
    bss_store *store;
    bss_log *log;
    bss_metrics *metrics;
    pthread_t thread;
    _Atomic int stopping;
};

static long long read_fd(void *ctx, char *buf, size_t len)
{
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static int ignored(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || (n > 5 && strcmp(name + n - 5, ".part") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".tmp") == 0) ||
           (n > 12 && strcmp(name + n - 12, ".report.json") == 0);
}

/* Writes text to dir/sub/name.report.json via a temp file and rename. */
static void write_report(const rater_spool *s, const char *sub, const char *name,
                         const char *text)
{
    char tmp[PATH_MAX + 300], path[PATH_MAX + 300];
    snprintf(tmp, sizeof tmp, "%s/%s/.%s.report.json", s->dir, sub, name);
    snprintf(path, sizeof path, "%s/%s/%s.report.json", s->dir, sub, name);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        bss_log_warn(s->log, "spool: cannot write the report of %s", name);
        unlink(tmp);
    }
}

static void move_to(const rater_spool *s, const char *sub, const char *name, cJSON *report)
{
    char from[PATH_MAX + 300], to[PATH_MAX + 300];
    char *text = report ? cJSON_Print(report) : NULL;
    if (text != NULL) {
        write_report(s, sub, name, text);
        free(text);
    }
    snprintf(from, sizeof from, "%s/%s", s->dir, name);
    snprintf(to, sizeof to, "%s/%s/%s", s->dir, sub, name);
    if (rename(from, to) != 0)
        bss_log_error(s->log, "spool: cannot move %s to %s/: %s", name, sub, strerror(errno));
}

static void rate_file(rater_spool *s, const char *name)
{
    char path[PATH_MAX + 300], err[BSS_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    int64_t mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    cJSON *report = NULL;
    sqlite3 *db = NULL;
    int rc = BSS_ERR_NOTFOUND;
    if (bss_store_snapshot_begin(s->store, &db, err) == BSS_OK) {
        rc = usage_report_find_spooled(db, name, (int64_t)st.st_size, mtime_ns, &report, err);
        bss_store_snapshot_end(s->store, db);
    }
    if (rc == BSS_OK) {
        close(fd);
        bss_log_info(s->log, "spool: %s was rated before a restart; moving it", name);
        move_to(s, "processed", name, report);
        cJSON_Delete(report);
        return;
    }
    if (!usage_file_name_valid(name)) {
        close(fd);
        bss_log_warn(s->log, "spool: %s is not a valid usage file name", name);
        cJSON *problem = cJSON_CreateObject();
        cJSON_AddStringToObject(problem, "fileName", name);
        cJSON_AddStringToObject(problem, "error", "INVALID_FILE_NAME");
        move_to(s, "failed", name, problem);
        cJSON_Delete(problem);
        return;
    }
    usage_report r;
    usage_origin origin = {"spool", (int64_t)st.st_size, mtime_ns, (int64_t)st.st_size};
    rc = usage_ingest(s->store, name, &origin, read_fd, &fd, &r, err);
    close(fd);
    if (rc == BSS_OK) {
        report = usage_report_json(&r, USAGE_REPORT_BODY_REJECTIONS);
        bss_log_info(s->log, "spool: rated %s: %lld records, %lld rated, %lld duplicates, "
                             "%lld rejected",
                     name, r.records, r.rated, r.duplicates, r.rejected);
        bss_metrics_counter_add(s->metrics, "bss_usage_records_total", "source=\"spool\"",
                                (uint64_t)r.records);
        move_to(s, "processed", name, report);
        cJSON_Delete(report);
    } else if (rc == BSS_ERR_INVALID) {
        cJSON *problem = cJSON_CreateObject();
        cJSON_AddStringToObject(problem, "fileName", name);
        cJSON_AddStringToObject(problem, "error", "INVALID_HEADER");
        cJSON_AddStringToObject(problem, "detail", err);
        bss_log_warn(s->log, "spool: %s failed: %s", name, err);
        move_to(s, "failed", name, problem);
        cJSON_Delete(problem);
    } else {
        /* Store trouble: leave the file where it is and try again later. */
        bss_log_error(s->log, "spool: %s not rated, will retry: %s", name, err);
    }
}

static void *spool_main(void *arg)
{
    rater_spool *s = arg;
    while (!atomic_load(&s->stopping)) {
        DIR *d = opendir(s->dir);
        struct dirent *e;
        while (d != NULL && !atomic_load(&s->stopping) && (e = readdir(d)) != NULL) {
            if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
                continue;
            if (!ignored(e->d_name))
                rate_file(s, e->d_name);
        }
        if (d != NULL)
            closedir(d);
        struct timespec ts = {s->poll_ms / 1000, (long)(s->poll_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int make_dir(const char *path, char *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        bss_seterr(err, "mkdir %s: %s", path, strerror(errno));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

int rater_spool_start(const char *dir, int poll_ms, bss_store *store, bss_log *log,
                      bss_metrics *metrics, rater_spool **out, char *err)
{
    char sub[PATH_MAX + 16];
    if (strlen(dir) >= PATH_MAX - 16) {
        bss_seterr(err, "spool path too long");
        return BSS_ERR_INVALID;
    }
    int rc = make_dir(dir, err);
    snprintf(sub, sizeof sub, "%s/processed", dir);
    if (rc == BSS_OK)
        rc = make_dir(sub, err);
    snprintf(sub, sizeof sub, "%s/failed", dir);
    if (rc == BSS_OK)
        rc = make_dir(sub, err);
    if (rc != BSS_OK)
        return rc;
    rater_spool *s = calloc(1, sizeof *s);
    if (s == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->poll_ms = poll_ms > 0 ? poll_ms : 250;
    s->store = store;
    s->log = log;
    s->metrics = metrics;
    if (pthread_create(&s->thread, NULL, spool_main, s) != 0) {
        free(s);
        bss_seterr(err, "cannot start the spool thread");
        return BSS_ERR;
    }
    *out = s;
    return BSS_OK;
}

void rater_spool_stop(void *spool)
{
    rater_spool *s = spool;
    if (s == NULL)
        return;
    atomic_store(&s->stopping, 1);
    pthread_join(s->thread, NULL);
    free(s);
}
