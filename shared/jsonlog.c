/* jsonlog.c - see jsonlog.h. */
#include "jsonlog.h"

#include "bss_error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- exactly once --------------------------------------------------- */

struct bss_jsonlog_once {
    char *path;
    char *key;
    int loaded;
    char **slots; /* open addressing, NULL = empty */
    size_t cap, count;
};

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int seen(const bss_jsonlog_once *log, const char *value)
{
    if (log->cap == 0)
        return 0;
    for (size_t i = hash_text(value) & (log->cap - 1); log->slots[i] != NULL;
         i = (i + 1) & (log->cap - 1))
        if (strcmp(log->slots[i], value) == 0)
            return 1;
    return 0;
}

static int remember(bss_jsonlog_once *log, const char *value)
{
    if (seen(log, value))
        return BSS_OK;
    if ((log->count + 1) * 2 > log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 256;
        char **slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return BSS_ERR_NOMEM;
        for (size_t i = 0; i < log->cap; i++) {
            if (log->slots[i] == NULL)
                continue;
            size_t j = hash_text(log->slots[i]) & (cap - 1);
            while (slots[j] != NULL)
                j = (j + 1) & (cap - 1);
            slots[j] = log->slots[i];
        }
        free(log->slots);
        log->slots = slots;
        log->cap = cap;
    }
    char *copy = strdup(value);
    if (copy == NULL)
        return BSS_ERR_NOMEM;
    size_t i = hash_text(value) & (log->cap - 1);
    while (log->slots[i] != NULL)
        i = (i + 1) & (log->cap - 1);
    log->slots[i] = copy;
    log->count++;
    return BSS_OK;
}

/* Reads every complete line of the file once and remembers its key. */
static int load(bss_jsonlog_once *log, char *err)
{
    FILE *f = fopen(log->path, "r");
    if (f == NULL) {
        if (errno == ENOENT) {
            log->loaded = 1;
            return BSS_OK;
        }
        bss_seterr(err, "cannot read %s: %s", log->path, strerror(errno));
        return BSS_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = BSS_OK;
    while (rc == BSS_OK && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            continue; /* cut short by a crash: it will be ended, not trusted */
        cJSON *o = cJSON_Parse(line);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, log->key);
        if (cJSON_IsString(v))
            rc = remember(log, v->valuestring);
        cJSON_Delete(o);
    }
    int failed = ferror(f);
    free(line);
    fclose(f);
    if (failed || rc != BSS_OK) {
        bss_seterr(err, "cannot read %s", log->path);
        return BSS_ERR_IO;
    }
    log->loaded = 1;
    return BSS_OK;
}

bss_jsonlog_once *bss_jsonlog_once_new(const char *path, const char *key)
{
    bss_jsonlog_once *log = calloc(1, sizeof *log);
    if (log == NULL || (log->path = strdup(path)) == NULL || (log->key = strdup(key)) == NULL) {
        bss_jsonlog_once_free(log);
        return NULL;
    }
    return log;
}

void bss_jsonlog_once_free(bss_jsonlog_once *log)
{
    if (log == NULL)
        return;
    for (size_t i = 0; i < log->cap; i++)
        free(log->slots[i]);
    free(log->slots);
    free(log->path);
    free(log->key);
    free(log);
}

int bss_jsonlog_once_append(bss_jsonlog_once *log, const char *line, const char *value,
                            char *err)
{
    if (!log->loaded) {
        int rc = load(log, err);
        if (rc != BSS_OK)
            return rc;
    }
    if (seen(log, value))
        return BSS_OK;
    int rc = bss_jsonlog_append(log->path, line, err);
    if (rc == BSS_OK && remember(log, value) != BSS_OK) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_IO;
    }
    return rc;
}
