/*
 * busframe.h - the byte formats of the nng backend, kept apart so that the
 * parsers of everything arriving off the bus can be fuzzed on their own.
 *
 * Pushed frame (PUB/SUB), one per message:
 *   "E <stream> <position>\n<envelope JSON>"   an event
 *   "H <stream> <head>\n"                      a heartbeat: the producer's head
 * Catch-up request (REQ): "<after> <limit>"
 * Catch-up reply (REP): "OK <count>\n" then count records, each
 *   "<position> <length>\n<length bytes of envelope JSON>"
 * or "ERR <reason>" when the producer cannot read its log.
 *
 * Streams are 1..BSS_EVENT_SOURCE_MAX bytes of [a-z0-9_-]; positions are
 * decimal, 1..2^63-1; no field may have leading '+', '-' or spaces.
 */
#ifndef BSS_BUSFRAME_H
#define BSS_BUSFRAME_H

#include "envelope.h"

#include <stddef.h>
#include <stdint.h>

#define BSS_CATCHUP_MAX_LIMIT 4096

typedef struct bss_frame {
    char kind; /* 'E' or 'H' */
    char stream[BSS_EVENT_SOURCE_MAX + 1];
    int64_t position;
    const char *payload; /* points into the parsed buffer; NULL for 'H' */
    size_t len;
} bss_frame;

/* Parses one pushed frame from buf[0..len). Returns BSS_OK or BSS_ERR_INVALID. */
int bss_frame_parse(const char *buf, size_t len, bss_frame *out);

/* Writes the header of a pushed frame into out; returns its length, or -1
 * when it does not fit. */
int bss_frame_header(char *out, size_t cap, char kind, const char *stream, int64_t position);

/* Parses a catch-up request. Returns BSS_OK with after >= 0 and 1 <= limit <=
 * BSS_CATCHUP_MAX_LIMIT, or BSS_ERR_INVALID. */
int bss_catchup_request_parse(const char *buf, size_t len, int64_t *after, int *limit);

/* Called for each record of a catch-up reply, in order; non-zero stops. */
typedef int (*bss_catchup_record_fn)(void *ctx, int64_t position, const char *payload,
                                     size_t len);

/* Walks a catch-up reply. Returns BSS_OK with *count records handed to fn,
 * BSS_ERR_IO when the producer answered ERR, BSS_ERR_INVALID when malformed
 * (records before the malformed one may already have been handed to fn). */
int bss_catchup_reply_parse(const char *buf, size_t len, bss_catchup_record_fn fn, void *ctx,
                            int *count);

#endif
