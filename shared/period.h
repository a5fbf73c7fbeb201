/*
 * period.h - billing periods: calendar months in the billing time zone
 * (the process time zone, set once at start from BSS_TZ; see isotime.h).
 *
 * A period is written "YYYY-MM". It starts at local midnight of the 1st and
 * ends (exclusive) at local midnight of the 1st of the next month, so its
 * length in days follows the calendar (28..31), whatever DST does.
 */
#ifndef BSS_PERIOD_H
#define BSS_PERIOD_H

#include <stddef.h>
#include <stdint.h>

#define BSS_PERIOD_LEN 7 /* "YYYY-MM" */

typedef struct bss_period {
    int year;  /* 1970..9999 */
    int month; /* 1..12 */
} bss_period;

/* The period containing instant ms (local calendar). */
int bss_period_of(int64_t ms, bss_period *out);

/* Parses exactly "YYYY-MM". Returns BSS_OK or BSS_ERR_INVALID. */
int bss_period_parse(const char *text, bss_period *out);

/* Writes "YYYY-MM" into out (at least BSS_PERIOD_LEN + 1 bytes). */
void bss_period_format(bss_period p, char *out, size_t outlen);

/* [start, end) of the period in epoch ms. */
int bss_period_bounds(bss_period p, int64_t *start_ms, int64_t *end_ms);

/* Days in the period's month (28..31). */
int bss_period_days(bss_period p);

/* The next / previous period. */
bss_period bss_period_next(bss_period p);
bss_period bss_period_prev(bss_period p);

/* <0, 0, >0 like strcmp. */
int bss_period_cmp(bss_period a, bss_period b);

/* Local midnight starting day `day` (1-based) of the period, in epoch ms. */
int bss_period_day_start(bss_period p, int day, int64_t *ms);

#endif
