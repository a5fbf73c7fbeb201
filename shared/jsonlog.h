/*
 * jsonlog.h - the development "outbox" files: a notification channel with
 * no real gateway configured (no SMTP server, no SMS gateway) appends each
 * message as one JSON line to a log file under the data directory
 * (mail.log, sms.log), which is what a development system reads.
 *
 * Each line is written with one write(2) to a file opened O_APPEND, so the
 * lines of concurrent writers do not interleave. A line cut short by a
 * crash (a last line without its '\n') is ended before the next line is
 * written, so it never swallows its successor. bss_jsonlog_append_once
 * also makes the write exactly once per message: when a complete line of
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

/* Like bss_jsonlog_append, unless a complete line of the log is a JSON
 * object whose member `key` is the string `value`: then nothing is written
 * and BSS_OK is returned. A missing log is empty. */
int bss_jsonlog_append_once(const char *path, const char *line, const char *key,
                            const char *value, char *err);

#endif
