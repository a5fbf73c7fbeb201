/* period.c - see period.h. Local calendar arithmetic goes through mktime
 * and localtime_r, which follow the process time zone. */
#include "period.h"

#include "bss_error.h"

#include <stdio.h>
#include <time.h>

int bss_period_of(int64_t ms, bss_period *out)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (localtime_r(&secs, &tm) == NULL)
        return BSS_ERR_INVALID;
    out->year = tm.tm_year + 1900;
    out->month = tm.tm_mon + 1;
    return BSS_OK;
}

int bss_period_parse(const char *t, bss_period *out)
{
    if (t == NULL)
        return BSS_ERR_INVALID;
    for (int i = 0; i < BSS_PERIOD_LEN; i++) {
        if (i == 4 ? t[i] != '-' : (t[i] < '0' || t[i] > '9'))
            return BSS_ERR_INVALID;
    }
    if (t[BSS_PERIOD_LEN] != '\0')
        return BSS_ERR_INVALID;
    int year = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + (t[2] - '0') * 10 + (t[3] - '0');
    int month = (t[5] - '0') * 10 + (t[6] - '0');
    if (year < 1970 || month < 1 || month > 12)
        return BSS_ERR_INVALID;
    out->year = year;
    out->month = month;
    return BSS_OK;
}

void bss_period_format(bss_period p, char *out, size_t outlen)
{
    snprintf(out, outlen, "%04d-%02d", p.year, p.month);
}

int bss_period_day_start(bss_period p, int day, int64_t *ms)
{
    struct tm tm = {0};
    tm.tm_year = p.year - 1900;
    tm.tm_mon = p.month - 1;
    tm.tm_mday = day;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return BSS_ERR_INVALID;
    *ms = (int64_t)t * 1000;
    return BSS_OK;
}

int bss_period_bounds(bss_period p, int64_t *start_ms, int64_t *end_ms)
{
    if (bss_period_day_start(p, 1, start_ms) != BSS_OK)
        return BSS_ERR_INVALID;
    return bss_period_day_start(bss_period_next(p), 1, end_ms);
}

int bss_period_days(bss_period p)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (p.year % 4 == 0 && p.year % 100 != 0) || p.year % 400 == 0;
    return p.month == 2 && leap ? 29 : days[p.month - 1];
}

bss_period bss_period_next(bss_period p)
{
    bss_period n = {p.month == 12 ? p.year + 1 : p.year, p.month == 12 ? 1 : p.month + 1};
    return n;
}

bss_period bss_period_prev(bss_period p)
{
    bss_period n = {p.month == 1 ? p.year - 1 : p.year, p.month == 1 ? 12 : p.month - 1};
    return n;
}

int bss_period_cmp(bss_period a, bss_period b)
{
    return a.year != b.year ? a.year - b.year : a.month - b.month;
}
