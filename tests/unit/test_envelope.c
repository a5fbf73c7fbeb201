/*
 * test_envelope.c - the CloudEvents envelope round-trips and the decoder
 * refuses every malformed attribute; the bus frame parsers likewise.
 */
#include "bss_error.h"
#include "busframe.h"
#include "check.h"
#include "envelope.h"
#include "isotime.h"
#include "uuid.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static check_counts counts;

static int decodes(const char *json)
{
    bss_event *ev = NULL;
    char err[BSS_ERRLEN];
    int rc = bss_event_decode(json, strlen(json), &ev, err);
    bss_event_free(ev);
    return rc == BSS_OK;
}

static void test_round_trip(void)
{
    char err[BSS_ERRLEN];
    bss_event *ev = bss_event_new("OrderCreated", "7000001",
                                  "{ \"type\" : \"OPEN\", \"note\": \"tab\\t\\\"q\\\"\" }", err);
    CHECK(&counts, ev != NULL);
    if (ev == NULL)
        return;
    CHECK(&counts, strcmp(ev->data, "{\"type\":\"OPEN\",\"note\":\"tab\\t\\\"q\\\"\"}") == 0);
    snprintf(ev->source, sizeof ev->source, "customer");
    ev->version = 3;
    ev->sequence = 42;
    bss_event_set_correlation(ev, "req-1");
    size_t len = 0;
    char *json = bss_event_encode(ev, &len);
    CHECK(&counts, json != NULL && len == strlen(json));
    if (json == NULL) {
        bss_event_free(ev);
        return;
    }
    CHECK(&counts, strstr(json, "\"specversion\":\"1.0\"") != NULL);
    CHECK(&counts, strstr(json, "\"datacontenttype\":\"application/json\"") != NULL);
    bss_event *back = NULL;
    CHECK(&counts, bss_event_decode(json, len, &back, err) == BSS_OK);
    if (back != NULL) {
        CHECK(&counts, strcmp(back->id, ev->id) == 0 && strcmp(back->type, "OrderCreated") == 0);
        CHECK(&counts, strcmp(back->subject, "7000001") == 0);
        CHECK(&counts, strcmp(back->source, "customer") == 0);
        CHECK(&counts, back->version == 3 && back->sequence == 42);
        CHECK(&counts, back->time_ms == ev->time_ms);
        CHECK(&counts, strcmp(back->correlation_id, "req-1") == 0 && back->causation_id[0] == 0);
        CHECK(&counts, strcmp(back->data, ev->data) == 0);
        bss_event *child = bss_event_new("RaterCreated", "7000001", NULL, err);
        bss_event_caused_by(child, back);
        CHECK(&counts, strcmp(child->correlation_id, "req-1") == 0);
        CHECK(&counts, strcmp(child->causation_id, ev->id) == 0);
        bss_event_free(child);
    }
    bss_event_free(back);
    free(json);
    bss_event_free(ev);
}

static void test_rejections(void)
{
    const char *good = "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"customer\","
                       "\"type\":\"T\",\"subject\":\"S\",\"time\":\"2026-10-05T10:15:00+09:00\","
                       "\"data\":{}}";
    CHECK(&counts, decodes(good));
    const char *bad[] = {
        "",
        "[]",
        "{",
        "{\"specversion\":\"0.3\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-02-30T10:15:00Z\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":[]}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{},\"sequence\":-1}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{},\"sequence\":1.5}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{},\"datacontenttype\":\"text/xml\"}",
        "{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"a-source-name-that-is-far-too-long-"
        "for-us\",\"type\":\"T\",\"subject\":\"S\",\"time\":\"2026-10-05T10:15:00Z\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"id\":7,\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
        "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int ok = decodes(bad[i]);
        CHECK(&counts, !ok);
        if (ok)
            fprintf(stderr, "accepted bad envelope #%zu\n", i);
    }
    CHECK(&counts, bss_event_new("", "S", NULL, NULL) == NULL);
    CHECK(&counts, bss_event_new("T", "S", "[1]", NULL) == NULL);
    CHECK(&counts, bss_event_new("T", "S", "{", NULL) == NULL);

    /* Adopted data is kept as written, and owned (freed) in every case. */
    char err[BSS_ERRLEN];
    char *mine = strdup("{\"a\":1}");
    bss_event *adopted = bss_event_adopt("T", "S", mine, err);
    CHECK(&counts, adopted != NULL && adopted->data == mine && adopted->id[0] != '\0');
    bss_event_free(adopted);
    CHECK(&counts, bss_event_adopt("T", "S", strdup("[1]"), err) == NULL);
    CHECK(&counts, bss_event_adopt("", "S", strdup("{}"), err) == NULL);
    CHECK(&counts, bss_event_adopt("T", "S", NULL, err) == NULL);
}

/* Encodes ev (as a store would have stamped it) and decodes it again. */
static bss_event *through_wire(bss_event *ev)
{
    char err[BSS_ERRLEN];
    snprintf(ev->source, sizeof ev->source, "rater");
    ev->version = 1;
    ev->sequence = 1;
    size_t len = 0;
    char *json = bss_event_encode(ev, &len);
    bss_event *back = NULL;
    if (json == NULL || bss_event_decode(json, len, &back, err) != BSS_OK)
        back = NULL;
    free(json);
    return back;
}

/* Regression: data used to be re-printed through cJSON, whose numbers are
 * doubles, so integers beyond 2^53 came back as 1.7953864042925581e+18. */
static void test_data_verbatim(void)
{
    char err[BSS_ERRLEN];
    const char *cases[][2] = {
        {"{\"t\":1795386404292558123}", "{\"t\":1795386404292558123}"},
        {"{\"a\":9007199254740993,\"b\":-9223372036854775808,\"c\":18446744073709551615}",
         "{\"a\":9007199254740993,\"b\":-9223372036854775808,\"c\":18446744073709551615}"},
        {"{\"x\":1.10,\"y\":1E+2,\"z\":-0.0}", "{\"x\":1.10,\"y\":1E+2,\"z\":-0.0}"},
        /* strings holding braces, brackets, quotes, escaped quotes, colons */
        {"{ \"s\" : \"}{ ][ \\\" \\\\\\\" : , \" , \"n\":{\"k\":[\"}\",{\"q\":\"\\\\\"}]},"
         "\"e\":\"\\u00e9 \\/\"  }",
         "{\"s\":\"}{ ][ \\\" \\\\\\\" : , \",\"n\":{\"k\":[\"}\",{\"q\":\"\\\\\"}]},"
         "\"e\":\"\\u00e9 \\/\"}"},
        {"\n\t {\"data\":{\"data\":true},\"v\":null}\r\n ", "{\"data\":{\"data\":true},\"v\":null}"},
        {"{}", "{}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bss_event *ev = bss_event_new("UsageRecorded", "S", cases[i][0], err);
        CHECK(&counts, ev != NULL);
        if (ev == NULL) {
            fprintf(stderr, "case %zu rejected: %s\n", i, err);
            continue;
        }
        CHECK(&counts, strcmp(ev->data, cases[i][1]) == 0);
        bss_event *back = through_wire(ev);
        CHECK(&counts, back != NULL && strcmp(back->data, cases[i][1]) == 0);
        if (back != NULL && strcmp(back->data, cases[i][1]) != 0)
            fprintf(stderr, "case %zu came back as %s\n", i, back->data);
        bss_event_free(back);
        bss_event_free(ev);
    }
    /* trailing garbage is not an object */
    CHECK(&counts, bss_event_new("T", "S", "{\"a\":1} x", NULL) == NULL);
    CHECK(&counts, bss_event_new("T", "S", "{\"a\":1}{}", NULL) == NULL);
    CHECK(&counts, bss_event_new("T", "S", "\"{}\"", NULL) == NULL);
    CHECK(&counts, bss_event_new("T", "S", "", NULL) == NULL);
}

/* Decoding cuts data out of the envelope: whichever member order, whatever
 * the strings before it contain, pretty-printed or not; the first "data"
 * member wins, as cJSON's lookup does. */
static void test_decode_data_span(void)
{
    struct {
        const char *json;
        const char *data;
    } cases[] = {
        {"{\"data\":{\"n\":12345678901234567890},\"specversion\":\"1.0\",\"id\":\"a\","
         "\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\",\"time\":\"2026-10-05T10:15:00Z\"}",
         "{\"n\":12345678901234567890}"},
        {"\xEF\xBB\xBF {\n  \"specversion\" : \"1.0\", \"id\": \"a\\\"data\\\":{}\",\n"
         "  \"source\":\"c\",\"type\":\"T\",\"subject\":\"S\",\"x\":[{\"data\":1},\"]}\"],\n"
         "  \"time\":\"2026-10-05T10:15:00Z\",\n  \"data\" : {\n    \"k\" : [ 1 , 2 ],\n"
         "    \"s\" : \"a b\\\\\"\n  }, \"data\": {\"second\":1}\n}",
         "{\"k\":[1,2],\"s\":\"a b\\\\\"}"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
         "\"time\":\"2026-10-05T10:15:00Z\",\"d\\u0061ta\":{\"esc\":\"key\"}}",
         "{\"esc\":\"key\"}"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"c\",\"type\":\"T\",\"subject\":\"S\","
         "\"time\":\"2026-10-05T10:15:00Z\",\"data\":{\"raw\":\"tab\there\"}}",
         "{\"raw\":\"tab\\u0009here\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bss_event *ev = NULL;
        char err[BSS_ERRLEN];
        int rc = bss_event_decode(cases[i].json, strlen(cases[i].json), &ev, err);
        CHECK(&counts, rc == BSS_OK && strcmp(ev->data, cases[i].data) == 0);
        if (rc != BSS_OK)
            fprintf(stderr, "span case %zu rejected: %s\n", i, err);
        else if (strcmp(ev->data, cases[i].data) != 0)
            fprintf(stderr, "span case %zu: %s\n", i, ev->data);
        bss_event_free(ev);
    }
    /* Every truncation of a valid envelope is refused, never over-read
     * (ASan builds check the "never"). */
    const char *full = cases[1].json;
    size_t n = strlen(full);
    for (size_t cut = 0; cut < n; cut++) {
        char *copy = malloc(cut ? cut : 1);
        if (copy == NULL)
            break;
        memcpy(copy, full, cut);
        bss_event *ev = NULL;
        char err[BSS_ERRLEN];
        CHECK(&counts, bss_event_decode(copy, cut, &ev, err) != BSS_OK);
        bss_event_free(ev);
        free(copy);
    }
}

/* Event ids are UUIDv7: well formed, version 7, RFC variant, the current
 * Unix time in their first 48 bits, and strictly increasing within a
 * process (so the UNIQUE(id) index is appended to). */
static void test_uuid_v7(void)
{
    char prev[BSS_UUID_LEN + 1] = "", id[BSS_UUID_LEN + 1];
    int64_t before = bss_now_ms();
    int ordered = 1, formed = 1;
    for (int i = 0; i < 20000; i++) {
        if (bss_uuid_v7(id) != BSS_OK || !bss_uuid_valid(id) || id[14] != '7' ||
            strchr("89ab", id[19]) == NULL)
            formed = 0;
        if (i > 0 && strcmp(prev, id) >= 0)
            ordered = 0;
        memcpy(prev, id, sizeof id);
    }
    CHECK(&counts, formed);
    CHECK(&counts, ordered);
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    int64_t ms = (int64_t)strtoll(hex, NULL, 16);
    CHECK(&counts, ms >= before && ms <= bss_now_ms() + 1000);
    char err[BSS_ERRLEN];
    bss_event *a = bss_event_new("T", "S", NULL, err);
    bss_event *b = bss_event_new("T", "S", NULL, err);
    CHECK(&counts, a != NULL && b != NULL && a->id[14] == '7' && strcmp(a->id, b->id) < 0);
    bss_event_free(a);
    bss_event_free(b);
    char v4[BSS_UUID_LEN + 1];
    CHECK(&counts, bss_uuid_v4(v4) == BSS_OK && bss_uuid_valid(v4) && v4[14] == '4');
}

static void test_time(void)
{
    int64_t ms = 0;
    CHECK(&counts, bss_time_parse("2026-10-05T10:15:00+09:00", 25, &ms) == BSS_OK);
    int64_t utc = 0;
    CHECK(&counts, bss_time_parse("2026-10-05T01:15:00Z", 20, &utc) == BSS_OK && utc == ms);
    CHECK(&counts, bss_time_parse("2026-10-05T01:15:00.250Z", 24, &utc) == BSS_OK &&
                       utc == ms + 250);
    CHECK(&counts, bss_time_parse("2026-10-04T20:15:00-0500", 24, &utc) == BSS_OK && utc == ms);
    CHECK(&counts, bss_time_parse("1970-01-01T00:00:00Z", 20, &utc) == BSS_OK && utc == 0);
    CHECK(&counts, bss_time_parse("2024-02-29T00:00:00Z", 20, &utc) == BSS_OK);
    CHECK(&counts, bss_time_parse("2025-02-29T00:00:00Z", 20, &utc) == BSS_ERR_INVALID);
    CHECK(&counts, bss_time_parse("2026-10-05T24:00:00Z", 20, &utc) == BSS_ERR_INVALID);
    CHECK(&counts, bss_time_parse("2026-10-05 10:15:00+09:00x", 26, &utc) == BSS_ERR_INVALID);
    CHECK(&counts, bss_time_set_zone("Asia/Seoul") == BSS_OK);
    char text[40];
    CHECK(&counts, bss_time_format(ms, text, sizeof text) == BSS_OK &&
                       strcmp(text, "2026-10-05T10:15:00.000+09:00") == 0);
    CHECK(&counts, bss_time_format(ms + 7, text, sizeof text) == BSS_OK &&
                       strcmp(text, "2026-10-05T10:15:00.007+09:00") == 0);
    CHECK(&counts, bss_time_format(ms, text, BSS_TIME_LEN) == BSS_ERR_INVALID);
    CHECK(&counts, bss_time_set_zone("America/St_Johns") == BSS_OK); /* UTC-02:30 in October */
    CHECK(&counts, bss_time_format(ms + 999, text, sizeof text) == BSS_OK &&
                       strcmp(text, "2026-10-04T22:45:00.999-02:30") == 0);
    CHECK(&counts, bss_time_set_zone("Asia/Seoul") == BSS_OK);
    CHECK(&counts, bss_time_set_zone("Nowhere/Special") == BSS_ERR_INVALID);
}

/* Attributes that need escaping go through the encoder's escaped runs and
 * come back from the decoder unchanged. */
static void test_encode_escapes(void)
{
    char err[BSS_ERRLEN];
    const char *subjects[] = {"plain", "\"q\"", "back\\slash", "a\nb\rc\td",
                              "\x01ctl\x1f", "\"", "end\\", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        bss_event *ev = bss_event_new("T", subjects[i], "{}", err);
        CHECK(&counts, ev != NULL);
        if (ev == NULL)
            continue;
        snprintf(ev->subject, sizeof ev->subject, "%s", subjects[i]);
        snprintf(ev->correlation_id, sizeof ev->correlation_id, "%s", subjects[i]);
        bss_event *back = through_wire(ev);
        CHECK(&counts, back != NULL && strcmp(back->subject, subjects[i]) == 0 &&
                           strcmp(back->correlation_id, subjects[i]) == 0);
        bss_event_free(back);
        bss_event_free(ev);
    }
}

/* What bss_time_format writes when it asks localtime_r for every call (as
 * it did before it kept zone offsets per thread). */
static void reference_format(int64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    int n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, millis, sign, off / 60, off % 60);
    if (n < 0 || (size_t)n >= outlen)
        out[0] = '\0';
}

/* The per-thread offset memo must give what localtime_r gives, across DST
 * transitions (days with two offsets are never memoised), half-hour and
 * odd historical offsets, times before 1970 and a zone change. */
static void test_time_format_zones(void)
{
    static const char *const zones[] = {"Asia/Seoul", "America/New_York", "Europe/London",
                                        "Australia/Lord_Howe", "Asia/Kolkata", "UTC"};
    /* Around the 2026 transitions of New York (Mar 8, Nov 1), London (Mar 29,
     * Oct 25) and Lord Howe (Apr 5, Oct 4, half an hour), and long before. */
    static const int64_t anchors[] = {1772953200000LL, 1793512800000LL, 1774746000000LL,
                                      1792890000000LL, 1775314800000LL, 1791041400000LL,
                                      0LL, -1LL, -2208988800000LL, 1000000000000LL};
    int mismatches = 0;
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        CHECK(&counts, bss_time_set_zone(zones[z]) == BSS_OK);
        for (size_t a = 0; a < sizeof anchors / sizeof anchors[0]; a++) {
            /* Every 7 min 13.457 s across 6 hours either side. */
            for (int64_t d = -6 * 3600000LL; d <= 6 * 3600000LL; d += 433457) {
                char got[40], want[40];
                int64_t ms = anchors[a] + d;
                if (bss_time_format(ms, got, sizeof got) != BSS_OK)
                    mismatches++;
                reference_format(ms, want, sizeof want);
                if (strcmp(got, want) != 0 && mismatches++ < 5)
                    fprintf(stderr, "%s %lld: %s, want %s\n", zones[z], (long long)ms, got,
                            want);
            }
        }
    }
    CHECK(&counts, mismatches == 0);
    CHECK(&counts, bss_time_set_zone("Asia/Seoul") == BSS_OK);
}

static int count_records(void *ctx, int64_t position, const char *payload, size_t len)
{
    (void)position;
    (void)payload;
    (void)len;
    (*(int *)ctx)++;
    return 0;
}

static void test_frames(void)
{
    bss_frame f;
    const char e[] = "E customer 42\n{\"x\":1}";
    CHECK(&counts, bss_frame_parse(e, sizeof e - 1, &f) == BSS_OK && f.kind == 'E' &&
                       f.position == 42 && strcmp(f.stream, "customer") == 0 && f.len == 7);
    const char h[] = "H rater 7\n";
    CHECK(&counts, bss_frame_parse(h, sizeof h - 1, &f) == BSS_OK && f.kind == 'H' &&
                       f.position == 7 && f.payload == NULL);
    const char *bad[] = {"E customer 42\n", "E Customer 1\n{}", "E customer -1\n{}",
                         "X customer 1\n{}", "E  1\n{}", "E customer 99999999999999999999\n{}",
                         "H rater 7\nextra", "E customer 0\n{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(&counts, bss_frame_parse(bad[i], strlen(bad[i]), &f) == BSS_ERR_INVALID);

    int64_t after = 0;
    int limit = 0;
    CHECK(&counts, bss_catchup_request_parse("10 512", 6, &after, &limit) == BSS_OK &&
                       after == 10 && limit == 512);
    CHECK(&counts, bss_catchup_request_parse("10 0", 4, &after, &limit) == BSS_ERR_INVALID);
    CHECK(&counts, bss_catchup_request_parse("10 99999", 8, &after, &limit) == BSS_ERR_INVALID);

    int n = 0, count = 0;
    const char reply[] = "OK 2\n1 2\n{}3 7\n{\"a\":1}";
    CHECK(&counts, bss_catchup_reply_parse(reply, sizeof reply - 1, count_records, &n, &count) ==
                           BSS_OK && n == 2 && count == 2);
    const char truncated[] = "OK 2\n1 2\n{}3 70\n{\"a\":1}";
    n = 0;
    CHECK(&counts, bss_catchup_reply_parse(truncated, sizeof truncated - 1, count_records, &n,
                                           &count) == BSS_ERR_INVALID);
    const char unordered[] = "OK 2\n3 2\n{}1 2\n{}";
    CHECK(&counts, bss_catchup_reply_parse(unordered, sizeof unordered - 1, count_records, &n,
                                           &count) == BSS_ERR_INVALID);
    CHECK(&counts, bss_catchup_reply_parse("ERR disk", 8, count_records, &n, &count) ==
                       BSS_ERR_IO);
}

int main(void)
{
    test_round_trip();
    test_rejections();
    test_data_verbatim();
    test_decode_data_span();
    test_uuid_v7();
    test_time();
    test_time_format_zones();
    test_encode_escapes();
    test_frames();
    return CHECK_DONE(&counts);
}
