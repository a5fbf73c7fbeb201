/* isotime.c - see isotime.h. */
#include "isotime.h"

#include "bss_error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The zone's UTC offset is looked up once per day of time formatted, per
 * thread: localtime_r takes glibc's process-wide tzset lock on every call,
 * which request threads formatting a line's three times contended for, and
 * costs more than the rest of the formatting. Each thread keeps the offsets
 * of the last DAY_MEMOS (UTC) days it formatted, direct-mapped: a page of
 * usage over a month stays within it. A day is kept only when its first and
 * last second have the same offset, so a day with a transition (two a year
 * in zones with summer time) is always formatted the slow way.
 * zone_generation moves on with every bss_time_set_zone, so no thread keeps
 * an offset of the zone before. */
static atomic_uint zone_generation;

int64_t bss_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bss_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t bss_monotonic_ms(void) { return bss_monotonic_ns() / 1000000; }

int bss_time_set_zone(const char *zone)
{
    if (zone == NULL || zone[0] == '\0' || strstr(zone, "..") != NULL)
        return BSS_ERR_INVALID;
    if (strcmp(zone, "UTC") != 0) {
        char path[512];
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            return BSS_ERR_INVALID;
        fclose(f);
    }
    if (setenv("TZ", zone, 1) != 0)
        return BSS_ERR;
    tzset();
    atomic_fetch_add(&zone_generation, 1);
    return BSS_OK;
}

#define DAY_MEMOS 32 /* a power of two */

struct zone_day {
    int64_t day; /* secs / 86400 (floored) */
    long gmtoff; /* seconds east of UTC throughout that day */
    unsigned generation;
    int valid;
};

/* _Thread_local; spelled so cppcheck follows it */
static __thread struct zone_day zone_memo[DAY_MEMOS];

/* y-m-d of a day count since 1970-01-01 (Howard Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* The offset at secs when its day is memoised or can be; 0 when the slow
 * path (localtime_r) must tell. */
static int day_offset(time_t secs, long *gmtoff)
{
    int64_t day = (secs >= 0 ? secs : secs - 86399) / 86400;
    unsigned generation = atomic_load_explicit(&zone_generation, memory_order_relaxed);
    struct zone_day *memo = &zone_memo[(uint64_t)day & (DAY_MEMOS - 1)];
    if (memo->valid && memo->day == day && memo->generation == generation) {
        *gmtoff = memo->gmtoff;
        return 1;
    }
    time_t first = (time_t)(day * 86400), last = first + 86399;
    struct tm a, b;
    if (localtime_r(&first, &a) == NULL || localtime_r(&last, &b) == NULL ||
        a.tm_gmtoff != b.tm_gmtoff)
        return 0;
    memo->day = day;
    memo->gmtoff = a.tm_gmtoff;
    memo->generation = generation;
    memo->valid = 1;
    *gmtoff = a.tm_gmtoff;
    return 1;
}

/* The local calendar time of secs, as localtime_r fills it (the fields
 * bss_time_format uses). 0 when the system cannot convert it. */
static int local_time(time_t secs, struct tm *tm)
{
    long gmtoff;
    if (!day_offset(secs, &gmtoff))
        return localtime_r(&secs, tm) != NULL;
    int64_t local = (int64_t)secs + gmtoff;
    int64_t days = (local >= 0 ? local : local - 86399) / 86400;
    int64_t sod = local - days * 86400;
    int64_t y;
    int mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y - 1900 < -2147483647LL || y - 1900 > 2147483647LL)
        return localtime_r(&secs, tm) != NULL;
    tm->tm_year = (int)(y - 1900);
    tm->tm_mon = mo - 1;
    tm->tm_mday = d;
    tm->tm_hour = (int)(sod / 3600);
    tm->tm_min = (int)(sod / 60 % 60);
    tm->tm_sec = (int)(sod % 60);
    tm->tm_gmtoff = gmtoff;
    return 1;
}

/* Writes v (0 <= v < 10^width) as exactly width digits at *p. */
static void put_digits(char **p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        (*p)[i] = (char)('0' + v % 10);
        v /= 10;
    }
    *p += width;
}

int bss_time_format(int64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    if (!local_time(secs, &tm))
        return BSS_ERR_INVALID;
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    int year = tm.tm_year + 1900;
    /* Digits by hand, not snprintf: every event's envelope carries one. */
    if (outlen < sizeof "YYYY-MM-DDThh:mm:ss.sss+hh:mm" || year < 0 || year > 9999 ||
        off / 60 > 99)
        return BSS_ERR_INVALID;
    char *p = out;
    put_digits(&p, year, 4);
    *p++ = '-';
    put_digits(&p, tm.tm_mon + 1, 2);
    *p++ = '-';
    put_digits(&p, tm.tm_mday, 2);
    *p++ = 'T';
    put_digits(&p, tm.tm_hour, 2);
    *p++ = ':';
    put_digits(&p, tm.tm_min, 2);
    *p++ = ':';
    put_digits(&p, tm.tm_sec, 2);
    *p++ = '.';
    put_digits(&p, millis, 3);
    *p++ = sign;
    put_digits(&p, (int)(off / 60), 2);
    *p++ = ':';
    put_digits(&p, (int)(off % 60), 2);
    *p = '\0';
    return BSS_OK;
}

static int read_digits(const char *s, size_t len, size_t *pos, int count, int *value)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
            return 0;
        v = v * 10 + (s[*pos] - '0');
        (*pos)++;
    }
    *value = v;
    return 1;
}

static int expect_char(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return 0;
    (*pos)++;
    return 1;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return mdays[m - 1];
}

int bss_time_parse(const char *s, size_t len, int64_t *ms)
{
    size_t pos = 0;
    int y, mo, d, h, mi, sec, millis = 0;
    if (s == NULL)
        return BSS_ERR_INVALID;
    if (!read_digits(s, len, &pos, 4, &y) || !expect_char(s, len, &pos, '-') ||
        !read_digits(s, len, &pos, 2, &mo) || !expect_char(s, len, &pos, '-') ||
        !read_digits(s, len, &pos, 2, &d))
        return BSS_ERR_INVALID;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return BSS_ERR_INVALID;
    pos++;
    if (!read_digits(s, len, &pos, 2, &h) || !expect_char(s, len, &pos, ':') ||
        !read_digits(s, len, &pos, 2, &mi) || !expect_char(s, len, &pos, ':') ||
        !read_digits(s, len, &pos, 2, &sec))
        return BSS_ERR_INVALID;
    if (pos < len && (s[pos] == '.' || s[pos] == ',')) {
        pos++;
        int digits = 0;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            if (digits < 3)
                millis = millis * 10 + (s[pos] - '0');
            digits++;
            pos++;
        }
        if (digits == 0 || digits > 9)
            return BSS_ERR_INVALID;
        for (int i = digits; i < 3; i++)
            millis *= 10;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 59)
        return BSS_ERR_INVALID;
    int offset_min;
    if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
        offset_min = 0;
        pos++;
    } else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
        int sign = s[pos] == '-' ? -1 : 1;
        int oh, om;
        pos++;
        if (!read_digits(s, len, &pos, 2, &oh))
            return BSS_ERR_INVALID;
        if (pos < len && s[pos] == ':')
            pos++;
        if (!read_digits(s, len, &pos, 2, &om) || oh > 18 || om > 59)
            return BSS_ERR_INVALID;
        offset_min = sign * (oh * 60 + om);
    } else {
        return BSS_ERR_INVALID;
    }
    if (pos != len)
        return BSS_ERR_INVALID;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *ms = secs * 1000 + millis;
    return BSS_OK;
}
