/* isotime.c - see isotime.h. */
#include "isotime.h"

#include "bss_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    return BSS_OK;
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
    if (localtime_r(&secs, &tm) == NULL)
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
