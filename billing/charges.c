/* charges.c - see charges.h. Integer arithmetic only; every product and sum
 * that could leave int64_t is checked before it is formed. */
#include "charges.h"

#include "bss_error.h"

#include <string.h>

int64_t charge_billable_mb(int64_t bytes)
{
    if (bytes < 0)
        return -1;
    return bytes / CHARGE_BYTES_PER_MB + (bytes % CHARGE_BYTES_PER_MB != 0);
}

int64_t charge_prorate(int64_t tarif, int days, int days_in_period)
{
    if (tarif < 0 || days_in_period < 1 || days < 0 || days > days_in_period)
        return -1;
    /* tarif = q * dip + r, so tarif * days / dip = q * days + r * days / dip
     * exactly; q * days <= tarif and r * days < dip^2 < 2^62. */
    int64_t q = tarif / days_in_period, r = tarif % days_in_period;
    return q * days + r * days / days_in_period;
}

static int invalid(charge_result *out, char *err, const char *what)
{
    memset(out, 0, sizeof *out);
    bss_seterr(err, "charge: %s", what);
    return BSS_ERR_INVALID;
}

int charge_compute(const charge_input *in, charge_result *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (in->usage_bytes < 0)
        return invalid(out, err, "usageBytes is negative");
    if (in->included_mb < -1)
        return invalid(out, err, "includedMb is below -1");
    if (in->per_mb_rate < 0 || in->product_tarif < 0)
        return invalid(out, err, "a rate or tarif is negative");
    if (in->days_in_period < 1 || in->active_days < 0 || in->active_days > in->days_in_period)
        return invalid(out, err, "activeDays is not within 0..daysInPeriod");
    if (in->active_days == 0 && in->usage_bytes == 0)
        return BSS_OK; /* no charge: chargeable stays 0 */

    charge_result r;
    memset(&r, 0, sizeof r);
    r.chargeable = 1;
    r.billable_mb = charge_billable_mb(in->usage_bytes); /* <= 2^43 */
    if (in->included_mb >= 0 && r.billable_mb > in->included_mb)
        r.overage_mb = r.billable_mb - in->included_mb;
    if (r.overage_mb > 0 && in->per_mb_rate > CHARGE_AMOUNT_MAX / r.overage_mb)
        return invalid(out, err, "overageFee is beyond 2^53");
    r.overage_fee = r.overage_mb * in->per_mb_rate;
    r.base_fee = charge_prorate(in->product_tarif, in->active_days, in->days_in_period);
    if (r.base_fee > CHARGE_AMOUNT_MAX || r.overage_fee > CHARGE_AMOUNT_MAX - r.base_fee)
        return invalid(out, err, "subtotal is beyond 2^53");
    r.subtotal = r.base_fee + r.overage_fee;
    r.vat = r.subtotal / 10; /* subtotal >= 0: C division is the floor */
    if (r.vat > CHARGE_AMOUNT_MAX - r.subtotal)
        return invalid(out, err, "total is beyond 2^53");
    r.total = r.subtotal + r.vat;
    *out = r;
    return BSS_OK;
}

int charge_active_days_in(const charge_status_point *hist, size_t n, const int64_t *bounds,
                          int ndays)
{
    if ((hist == NULL && n > 0) || bounds == NULL || ndays < 0)
        return -1;
    for (int d = 0; d < ndays; d++) {
        if (bounds[d] >= bounds[d + 1])
            return -1;
    }
    for (size_t i = 1; i < n; i++) {
        if (hist[i].effective_ms < hist[i - 1].effective_ms)
            return -1;
    }
    size_t i = 0;
    int active_now = 0; /* the status in effect at the instant reached */
    int count = 0;
    for (int d = 0; d < ndays; d++) {
        /* The status in effect at the day's start: entries up to and
         * including it, the last one winning. */
        while (i < n && hist[i].effective_ms <= bounds[d])
            active_now = hist[i++].active;
        int active_day = active_now;
        /* Changes strictly inside the day. */
        while (i < n && hist[i].effective_ms < bounds[d + 1]) {
            active_now = hist[i++].active;
            active_day |= active_now;
        }
        count += active_day;
    }
    return count;
}

int charge_calendar_for(charge_calendar *cal, bss_period p, char *err)
{
    if (cal->valid && cal->period.year == p.year && cal->period.month == p.month)
        return BSS_OK;
    cal->valid = 0;
    if (p.month < 1 || p.month > 12) {
        bss_seterr(err, "period month %d is not 1..12", p.month);
        return BSS_ERR_INVALID;
    }
    int ndays = bss_period_days(p);
    for (int d = 0; d <= ndays; d++) {
        if (bss_period_day_start(p, d + 1, &cal->bounds[d]) != BSS_OK) {
            bss_seterr(err, "period %04d-%02d: day %d has no start", p.year, p.month, d + 1);
            return BSS_ERR_INVALID;
        }
    }
    cal->period = p;
    cal->ndays = ndays;
    cal->valid = 1;
    return BSS_OK;
}

int charge_active_days_cal(const charge_status_point *hist, size_t n, charge_calendar *cal,
                           bss_period p, int *days, char *err)
{
    int rc = charge_calendar_for(cal, p, err);
    if (rc != BSS_OK)
        return rc;
    int count = charge_active_days_in(hist, n, cal->bounds, cal->ndays);
    if (count < 0) {
        bss_seterr(err, "status history out of order");
        return BSS_ERR_INVALID;
    }
    *days = count;
    return BSS_OK;
}

int charge_active_days(const charge_status_point *hist, size_t n, bss_period p, int *days,
                       char *err)
{
    charge_calendar cal = {0};
    return charge_active_days_cal(hist, n, &cal, p, days, err);
}

int charge_parse_count(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return BSS_ERR_INVALID;
    int64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return BSS_ERR_INVALID;
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return BSS_ERR_INVALID;
        v = v * 10 + digit;
    }
    *out = v;
    return BSS_OK;
}
