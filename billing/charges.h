/*
 * charges.h - the charge rules of a line for one billing period, as pure
 * functions (no store, no clock): the exact arithmetic of the contract, so
 * it can be tested value by value.
 *
 *   billableMb  = ceil(usageBytes / 1048576)
 *   overageMb   = max(0, billableMb - includedMb)   (0 for unlimited plans)
 *   overageFee  = overageMb * perMbRate
 *   activeDays  = calendar days of the period (billing time zone) on which the
 *                 line was ACTIVE at any moment
 *   baseFee     = floor(productTarif * activeDays / daysInPeriod)
 *   subtotal    = baseFee + overageFee
 *   vat         = floor(subtotal / 10)
 *   total       = subtotal + vat
 *
 * A line with activeDays = 0 and no usage gets no charge at all.
 *
 * Money is integer KRW in int64_t, never floating point. Every step is
 * overflow-checked: usageBytes may be anything up to 2^63-1 (the ceiling is
 * q + (r != 0), never (x + 1048575) / 1048576), and every amount must stay
 * within CHARGE_AMOUNT_MAX so that it travels exactly as a JSON number.
 */
#ifndef BILLING_CHARGES_H
#define BILLING_CHARGES_H

#include "period.h"

#include <stddef.h>
#include <stdint.h>

#define CHARGE_BYTES_PER_MB 1048576LL

/* Largest amount, MB count or sum a charge or invoice may hold: 2^53, the
 * last integer a JSON number carries exactly (see jsonfield.h). */
#define CHARGE_AMOUNT_MAX 9007199254740992LL

/* What a line's charge for one period is computed from. */
typedef struct charge_input {
    int64_t usage_bytes;   /* the period's usage, >= 0 */
    int64_t included_mb;   /* data included per month, >= 0; -1 = unlimited */
    int64_t per_mb_rate;   /* KRW per MB beyond included_mb, >= 0 */
    int64_t product_tarif; /* monthly fee, KRW, >= 0 */
    int active_days;       /* 0 .. days_in_period */
    int days_in_period;    /* >= 1 (28..31 for a calendar month) */
} charge_input;

/* The computed charge. */
typedef struct charge_result {
    int chargeable;      /* 0: active_days = 0 and no usage, no charge at all */
    int64_t billable_mb;
    int64_t overage_mb;
    int64_t overage_fee;
    int64_t base_fee;
    int64_t subtotal;
    int64_t vat;
    int64_t total;
} charge_result;

/* Computes the charge of `in` into *out by the rules above (also when
 * chargeable is 0: every amount is then 0). Returns BSS_OK, or
 * BSS_ERR_INVALID (err filled, *out zeroed) for an input out of range or a
 * result beyond CHARGE_AMOUNT_MAX. */
int charge_compute(const charge_input *in, charge_result *out, char *err);

/* ceil(bytes / 1048576) for bytes >= 0, without overflow for any int64_t;
 * -1 for negative bytes. */
int64_t charge_billable_mb(int64_t bytes);

/* floor(tarif * days / days_in_period) for tarif >= 0 and
 * 0 <= days <= days_in_period, exact and without overflow for any int64_t
 * tarif; -1 for arguments out of range. */
int64_t charge_prorate(int64_t tarif, int days, int days_in_period);

/* One entry of a line's status history: the status that holds from
 * effective_ms on. */
typedef struct charge_status_point {
    int64_t effective_ms;
    int active; /* 1 when the status is ACTIVE, else 0 (SUSPENDED, TERMINATED) */
} charge_status_point;

/* Counts the days on which the line was ACTIVE at any moment. Day i
 * (0 <= i < ndays) is [bounds[i], bounds[i + 1]), so bounds has ndays + 1
 * increasing instants. hist[0..n) is the line's whole history in effective
 * order (ties in the order the entries were recorded). The status in effect
 * at an instant t is that of the last entry with effective_ms <= t; before
 * the first entry the line does not exist (not active). A day counts when
 * the status in effect at its start is ACTIVE, or when an entry inside it
 * (start < effective_ms < end) makes it ACTIVE. So a line suspended at
 * exactly midnight is not active that day unless it is made ACTIVE again
 * later the same day.
 * Returns the count (0..ndays), or -1 when the arguments are inconsistent
 * (NULL, ndays < 0, bounds not increasing, hist out of order). */
int charge_active_days_in(const charge_status_point *hist, size_t n, const int64_t *bounds,
                          int ndays);

/* charge_active_days_in over the calendar days of period p in the process
 * time zone (bss_period_day_start). Returns BSS_OK with *days set, or
 * BSS_ERR_INVALID (err filled). */
int charge_active_days(const charge_status_point *hist, size_t n, bss_period p, int *days,
                       char *err);

/* The calendar days of one period, computed once and reused: working them
 * out (time zone rules for each of ~31 midnights) cost more than the rest
 * of a line's charge. valid = 0 means empty; one calendar holds one period
 * at a time and belongs to one thread. */
typedef struct charge_calendar {
    int valid;
    bss_period period;
    int ndays;
    int64_t bounds[32]; /* day i is [bounds[i], bounds[i + 1]) */
} charge_calendar;

/* Makes cal hold the days of p (bss_period_day_start), unless it does
 * already. Returns BSS_OK, or BSS_ERR_INVALID (err filled; cal empty). */
int charge_calendar_for(charge_calendar *cal, bss_period p, char *err);

/* charge_active_days with the day bounds taken from (and kept in) cal. */
int charge_active_days_cal(const charge_status_point *hist, size_t n, charge_calendar *cal,
                           bss_period p, int *days, char *err);

/* Parses a non-negative 64-bit count written in decimal ("0".."9223372036854775807",
 * digits only, no sign, no spaces) into *out. Returns BSS_OK or
 * BSS_ERR_INVALID (empty, not digits, or beyond INT64_MAX). */
int charge_parse_count(const char *s, int64_t *out);

#endif
