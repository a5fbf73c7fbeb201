/*
 * fuzz_replay_event.c - libFuzzer target for bssiot-replay's event decoding:
 * a stored row (any bytes in any column) through replay_event_from_row and,
 * when accepted, everything the tool then does with one event: both output
 * formats, the "mentions" check and the point-in-time fold.
 *
 * Input: the row's columns separated by 0x1f, in the order
 * sequence, version, time_ms, id, type, subject, correlation_id,
 * causation_id, data; a leading byte's low bits set the column defects
 * (REPLAY_ROW_*), and a column that is exactly "\x00" stands for SQL NULL.
 * The same `data` column also goes through the Kafka reader's message check
 * (replay_kafka_event_from_message) as a message value, with the sequence
 * column as its bss-sequence header, and an event it accepts through the
 * same consumers.
 */
#include "bss_error.h"
#include "replay_at.h"
#include "replay_event.h"
#include "replay_format.h"
#include "replay_kafka.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLUMNS 9

static long long number(const replay_text *t)
{
    char buf[32];
    size_t n = t->len < sizeof buf - 1 ? t->len : sizeof buf - 1;
    memcpy(buf, t->text ? t->text : "", n);
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    replay_text col[COLUMNS] = {{0}};
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    for (int c = 0; c < COLUMNS; c++) {
        const char *sep = c < COLUMNS - 1 ? memchr(p, 0x1f, (size_t)(end - p)) : NULL;
        const char *stop = sep ? sep : end;
        col[c].text = p;
        col[c].len = (size_t)(stop - p);
        if (col[c].len == 1 && p[0] == '\0')
            col[c].text = NULL, col[c].len = 0;
        p = sep ? sep + 1 : end;
    }
    replay_row row = {
        .sequence = number(&col[0]), .version = number(&col[1]), .time_ms = number(&col[2]),
        .id = col[3], .type = col[4], .subject = col[5], .correlation_id = col[6],
        .causation_id = col[7], .data = col[8], .defects = data[0] & 3u};
    static FILE *sink;
    if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
        abort();
    char *buf = malloc(row.data.len + 1);
    if (buf == NULL)
        return 0;
    bss_event ev;
    char err[BSS_ERRLEN];
    if (replay_event_from_row(&row, "customer", &ev, buf, row.data.len + 1, err) == BSS_OK) {
        /* What was accepted must be usable by every consumer in the tool. */
        if (strlen(ev.data) != row.data.len || replay_event_mentions(&ev, ev.subject) != 1)
            abort();
        replay_print_text(sink, &ev, ev.subject, NULL);
        replay_print_json(sink, &ev);
        replay_line_state *st = replay_line_state_new(ev.subject, INT64_MAX);
        if (st != NULL) {
            replay_line_state_apply(st, &ev, err);
            replay_line_state_print_text(sink, st);
            replay_line_state_print_json(sink, st);
            replay_line_state_free(st);
        }
    }
    free(buf);
    bss_event *message = NULL;
    if (replay_kafka_event_from_message(col[8].text, col[8].len, row.sequence, "customer",
                                        &message, err) == BSS_OK) {
        if (message->sequence < 1 || strcmp(message->source, "customer") != 0)
            abort();
        replay_print_text(sink, message, message->subject, "1");
        replay_print_json(sink, message);
        replay_event_mentions(message, message->subject);
        bss_event_free(message);
    }
    return 0;
}
