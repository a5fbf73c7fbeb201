/*
 * jsonlog.h - the development "outbox" files: a notification channel with
 * no real gateway configured (no SMTP server, no SMS gateway) appends each
 * message as one JSON line to a log file under the data directory
 * (mail.log, sms.log), which is what a development system reads.
 *
 * Each line is written with one write(2) to a file opened O_APPEND, so the
 * lines of concurrent writers do not interleave. A line cut short by a
 * crash (a last line without its '\n') is ended before the next line is
 * written, so it never swallows its successor. bss_jsonlog_once also makes
 * the write exactly once per message: when a complete line of
 * the log already carries the message's key, a resend (after a crash
 * between the write and the notification queue's bookkeeping) writes
 * nothing.
 */
#ifndef BSS_JSONLOG_H
#define BSS_JSONLOG_H

/* Appends line (one JSON text without a newline) plus '\n' to the file at
 * path, created with mode 0644 when missing. Returns BSS_OK, or BSS_ERR_IO
 * (err filled) when the file cannot be read, opened or written or memory
 * runs out (worth retrying later). */
int bss_jsonlog_append(const char *path, const char *line, char *err);

/* A log written exactly once per message: it remembers the `key` member of
 * every complete line, reading the file once (on the first append), so each
 * later check costs O(1). One process's channel uses one of these from one
 * thread; lines other processes append later to the same file are not seen,
 * which is fine as long as they carry other keys (each service its own
 * message ids). */
typedef struct bss_jsonlog_once bss_jsonlog_once;

/* NULL on no memory. Nothing is read yet. */
bss_jsonlog_once *bss_jsonlog_once_new(const char *path, const char *key);

void bss_jsonlog_once_free(bss_jsonlog_once *log);

/* Like bss_jsonlog_append, unless a complete line of the log already has
 * member `key` equal to the string `value` (a resend after a crash between
 * the write and the notification queue's bookkeeping): then nothing is
 * written and BSS_OK is returned. A missing log is empty. */
int bss_jsonlog_once_append(bss_jsonlog_once *log, const char *line, const char *value,
                            char *err);

#endif
