/*
 * log.h - structured, one-line JSON logs for every bssiot process.
 *
 * A bss_log writes one JSON object per line:
 *
 *   {"ts":"2026-10-05T10:15:00.123+09:00","level":"info","service":"customer",
 *    "msg":"...","requestId":"...","correlationId":"..."}
 *
 * requestId and correlationId appear only when given. Every string is
 * JSON-escaped (control characters, quotes, backslashes; bytes that are not
 * valid UTF-8 become U+FFFD), so a line is always one parseable JSON object.
 *
 * Guarantees: each line is handed to the kernel with one write(2) call on a
 * descriptor opened with O_APPEND, so lines written concurrently by many
 * threads (or processes sharing the file) never interleave. A bss_log holds
 * no mutable state after bss_log_open(), so it is safe to use from any number
 * of threads without locking. Every function accepts a NULL bss_log and then
 * does nothing, so code can log unconditionally. Logging never fails loudly:
 * a line that cannot be written is dropped.
 *
 * Messages longer than BSS_LOG_MAXMSG bytes are truncated (marked with
 * "..."), which bounds the size of a line.
 */
#ifndef BSS_LOG_H
#define BSS_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef struct bss_log bss_log;

enum bss_log_level { BSS_LOG_DEBUG, BSS_LOG_INFO, BSS_LOG_WARN, BSS_LOG_ERROR };

#define BSS_LOG_MAXMSG 8192

/* Opens a log for `service` (copied; at most 63 bytes are kept). `path` NULL
 * or "" or "-" writes to stderr; otherwise the file is created if needed
 * (mode 0644) and appended to. Lines below `min_level` (a bss_log_level) are
 * discarded. Returns the log, or NULL when the file cannot be opened or
 * memory runs out (errno tells which). */
bss_log *bss_log_open(const char *service, const char *path, int min_level);

/* Closes the file (never stderr) and frees the log. NULL is a no-op. Must not
 * race with writers: call it after every thread using the log has stopped. */
void bss_log_close(bss_log *log);

/* Returns 1 when a line at `level` would be written, else 0 (also for a NULL
 * log). Use it to skip building expensive arguments. */
int bss_log_enabled(const bss_log *log, int level);

/* Parses "debug", "info", "warn"/"warning" or "error" (any case) into *level.
 * Returns BSS_OK or BSS_ERR_INVALID (then *level is unchanged). */
int bss_log_level_parse(const char *name, int *level);

/* The lowercase name of a level ("info"); "unknown" for anything else. */
const char *bss_log_level_name(int level);

/* Writes one line at `level` with a printf-formatted message. request_id and
 * correlation_id may be NULL (then the field is left out). */
void bss_log_write(bss_log *log, int level, const char *request_id,
                   const char *correlation_id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Like bss_log_write, plus `fields`: extra members already serialized as JSON
 * object members without the braces, e.g. "\"status\":201,\"route\":\"/x\""
 * (NULL or "" for none). They are copied verbatim after "msg", so the caller
 * is responsible for their validity. */
void bss_log_writex(bss_log *log, int level, const char *request_id,
                    const char *correlation_id, const char *fields,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* va_list form of bss_log_writex. */
void bss_log_vwritex(bss_log *log, int level, const char *request_id,
                     const char *correlation_id, const char *fields,
                     const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* Appends `s` to out (capacity outlen, always NUL-terminated when outlen > 0)
 * as the body of a JSON string, without the quotes. Returns the number of
 * bytes the full escaped text needs (like snprintf), so a return value >=
 * outlen means it was truncated; truncation never splits an escape. */
size_t bss_json_escape(const char *s, char *out, size_t outlen);

#define bss_log_debug(log, ...) bss_log_write((log), BSS_LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define bss_log_info(log, ...) bss_log_write((log), BSS_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define bss_log_warn(log, ...) bss_log_write((log), BSS_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define bss_log_error(log, ...) bss_log_write((log), BSS_LOG_ERROR, NULL, NULL, __VA_ARGS__)

#endif
