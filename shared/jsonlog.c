/* jsonlog.c - see jsonlog.h. */
#include "jsonlog.h"

#include "bss_error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Looks through the log for a complete line whose member key is the
 * string value (needle is that member as JSON text, a cheap first test).
 * *found is 1 when there is one; *needs_newline is 1 when the log ends in
 * a line cut short. A missing log is empty. */
static int log_scan(const char *path, const char *needle, const char *key, const char *value,
                    int *found, int *needs_newline, char *err)
{
    *found = 0;
    *needs_newline = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return BSS_OK;
        bss_seterr(err, "cannot read %s: %s", path, strerror(errno));
        return BSS_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!*found && (n = getline(&line, &cap, f)) > 0) {
        int complete = line[n - 1] == '\n';
        *needs_newline = !complete;
        if (!complete || strstr(line, needle) == NULL)
            continue;
        /* A cheap match; confirm on the parsed line. */
        cJSON *o = cJSON_Parse(line);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        *found = cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
        cJSON_Delete(o);
    }
    int failed = ferror(f);
    free(line);
    fclose(f);
    if (failed) {
        bss_seterr(err, "cannot read %s", path);
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

/* *needs_newline = 1 when the file at path ends in a byte other than '\n'
 * (a line cut short). A missing or empty file needs none. */
static int log_tail(const char *path, int *needs_newline, char *err)
{
    *needs_newline = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return BSS_OK;
        bss_seterr(err, "cannot read %s: %s", path, strerror(errno));
        return BSS_ERR_IO;
    }
    struct stat st;
    char last = '\n';
    int rc = BSS_OK;
    if (fstat(fd, &st) != 0 ||
        (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)) {
        bss_seterr(err, "cannot read %s: %s", path, strerror(errno));
        rc = BSS_ERR_IO;
    }
    close(fd);
    *needs_newline = last != '\n';
    return rc;
}

/* Appends text (+ '\n', after a '\n' first when lead) with one write(2)
 * where possible, so lines of concurrent writers do not interleave. */
static int log_write(const char *path, const char *text, int lead, char *err)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 2);
    if (buf == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    size_t o = 0;
    if (lead)
        buf[o++] = '\n';
    memcpy(buf + o, text, len);
    o += len;
    buf[o++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    int rc = BSS_OK;
    if (fd < 0) {
        bss_seterr(err, "cannot append to %s: %s", path, strerror(errno));
        rc = BSS_ERR_IO;
    }
    for (size_t done = 0; rc == BSS_OK && done < o;) {
        ssize_t w = write(fd, buf + done, o - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bss_seterr(err, "cannot write %s: %s", path, strerror(errno));
            rc = BSS_ERR_IO;
        } else {
            done += (size_t)w;
        }
    }
    if (fd >= 0 && close(fd) != 0 && rc == BSS_OK) {
        bss_seterr(err, "cannot write %s: %s", path, strerror(errno));
        rc = BSS_ERR_IO;
    }
    free(buf);
    return rc;
}

int bss_jsonlog_append(const char *path, const char *line, char *err)
{
    int lead = 0;
    int rc = log_tail(path, &lead, err);
    return rc == BSS_OK ? log_write(path, line, lead, err) : rc;
}

int bss_jsonlog_append_once(const char *path, const char *line, const char *key,
                            const char *value, char *err)
{
    /* The needle is `"key":"value"` as compact JSON writes it. */
    cJSON *k = cJSON_CreateString(key), *v = cJSON_CreateString(value);
    char *kj = k != NULL ? cJSON_PrintUnformatted(k) : NULL;
    char *vj = v != NULL ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(k);
    cJSON_Delete(v);
    char *needle = NULL;
    if (kj != NULL && vj != NULL && (needle = malloc(strlen(kj) + strlen(vj) + 2)) != NULL)
        sprintf(needle, "%s:%s", kj, vj);
    free(kj);
    free(vj);
    if (needle == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    int found = 0, lead = 0;
    int rc = log_scan(path, needle, key, value, &found, &lead, err);
    free(needle);
    if (rc == BSS_OK && !found)
        rc = log_write(path, line, lead, err);
    return rc;
}
