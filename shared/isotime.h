/*
 * isotime.h - instants as milliseconds since the Unix epoch, written and read
 * as ISO-8601 with an explicit offset.
 *
 * Local offsets come from the process's time zone (TZ), which a service sets
 * once at start-up to the billing time zone (default Asia/Seoul) with
 * bss_time_set_zone(). Nothing here changes TZ afterwards.
 */
#ifndef BSS_ISOTIME_H
#define BSS_ISOTIME_H

#include <stddef.h>
#include <stdint.h>

#define BSS_TIME_LEN 29 /* "2026-10-05T10:15:00.123+09:00" */

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t bss_now_ms(void);

/* Monotonic milliseconds, for deadlines and latency. */
int64_t bss_monotonic_ms(void);

/* Monotonic nanoseconds, for latency measurements. */
int64_t bss_monotonic_ns(void);

/* Sets the process time zone (an IANA name such as "Asia/Seoul"). Call once,
 * before any thread starts. Returns BSS_OK or BSS_ERR_INVALID when the zone is
 * unknown to the system's tz database. */
int bss_time_set_zone(const char *zone);

/* Formats ms as "YYYY-MM-DDThh:mm:ss.sss+hh:mm" in the process time zone into
 * out (at least BSS_TIME_LEN + 1 bytes). Returns BSS_OK or BSS_ERR_INVALID. */
int bss_time_format(int64_t ms, char *out, size_t outlen);

/* Parses an ISO-8601 date-time with a mandatory offset ("Z", "+09:00",
 * "+0900") and optional fractional seconds into ms. Returns BSS_OK or
 * BSS_ERR_INVALID (no offset, bad field ranges, trailing garbage). */
int bss_time_parse(const char *s, size_t len, int64_t *ms);

#endif
