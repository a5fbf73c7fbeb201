/*
 * replay_at.c - see replay_at.h.
 *
 * The fold keeps only what the answer shows. Amounts are read from the
 * events as they were written (integer KRW; 64-bit byte counts arrive as
 * decimal strings) and never recomputed here: the point is to show what the
 * system decided, not what it should have.
 */
#include "replay_at.h"

#include "bss_error.h"
#include "isotime.h"
#include "replay_format.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FIELD 96

typedef struct status_change {
    int64_t effective_ms;
    char to[FIELD];
    char order_id[FIELD];
} status_change;

typedef struct usage_period {
    char period[16];
    int64_t bytes, records;
    int moved;             /* UsageMoved seen: handed to billing at AU close */
    int64_t moved_bytes;
} usage_period;

typedef struct charge {
    char period[16];
    char *data; /* the ChargeCalculated data, verbatim */
} charge;

typedef struct invoice {
    char invoice_id[FIELD], period[16], status[FIELD];
    int64_t line_total, invoice_total;
} invoice;

struct replay_line_state {
    char svc[BSS_EVENT_SUBJECT_MAX + 1];
    int64_t at_ms;
    int64_t folded, last_event_ms;
    char customer_id[FIELD], product_cd[FIELD], product_nm[FIELD], apn[FIELD], use_yn[4];
    int64_t tarif;
    int has_tarif;
    char order_id[FIELD], order_type[FIELD], order_status[FIELD], order_reason[FIELD];
    status_change *changes;
    size_t nchanges;
    usage_period *usage;
    size_t nusage;
    charge *charges;
    size_t ncharges;
    invoice *invoices;
    size_t ninvoices;
};

replay_line_state *replay_line_state_new(const char *svc_cont_no, int64_t at_ms)
{
    replay_line_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    snprintf(st->svc, sizeof st->svc, "%s", svc_cont_no);
    st->at_ms = at_ms;
    return st;
}

void replay_line_state_free(replay_line_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->ncharges; i++)
        free(st->charges[i].data);
    free(st->charges);
    free(st->changes);
    free(st->usage);
    free(st->invoices);
    free(st);
}

int replay_line_state_known(const replay_line_state *st) { return st->folded > 0; }

/* The line's charge (its ChargeCalculated data, parsed; cJSON_Delete it)
 * for the period and customer of the invoice d, or NULL. */
static cJSON *line_charge_for(const replay_line_state *st, const cJSON *d)
{
    const cJSON *period = cJSON_GetObjectItemCaseSensitive(d, "period");
    const cJSON *customer = cJSON_GetObjectItemCaseSensitive(d, "customerId");
    if (!cJSON_IsString(period) || !cJSON_IsString(customer))
        return NULL;
    for (size_t i = 0; i < st->ncharges; i++) {
        if (strcmp(st->charges[i].period, period->valuestring) != 0)
            continue;
        cJSON *c = cJSON_Parse(st->charges[i].data);
        const cJSON *owner = cJSON_GetObjectItemCaseSensitive(c, "customerId");
        if (cJSON_IsString(owner) && strcmp(owner->valuestring, customer->valuestring) == 0)
            return c;
        cJSON_Delete(c);
    }
    return NULL;
}

/* Grows *items (element size `size`) by one zeroed element; NULL when out of memory. */
static void *grow(void *items_ptr, size_t *count, size_t size)
{
    void **items = items_ptr;
    char *grown = realloc(*items, (*count + 1) * size);
    if (grown == NULL)
        return NULL;
    *items = grown;
    memset(grown + *count * size, 0, size);
    return grown + (*count)++ * size;
}

static void copy_str(const cJSON *obj, const char *name, char *out, size_t outlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v))
        snprintf(out, outlen, "%s", v->valuestring);
}

/* A count that is a decimal string (64-bit safe) or a JSON integer. */
static int read_count(const cJSON *obj, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v)) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v->valuestring, &end, 10);
        if (errno != 0 || end == v->valuestring || *end != '\0' || n < 0)
            return BSS_ERR_INVALID;
        *out = n;
        return BSS_OK;
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9.2e18 &&
        v->valuedouble == (double)(int64_t)v->valuedouble) {
        *out = (int64_t)v->valuedouble;
        return BSS_OK;
    }
    return BSS_ERR_INVALID;
}

/* A JSON number as integer KRW: 1 with *out set when it is one (finite,
 * whole, within int64), else 0. The events carry money as JSON integers; a
 * damaged row may carry 1e999, which no cast may see. */
static int money(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) < 9.2e18) ||
        v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (int64_t)v->valuedouble;
    return 1;
}

static usage_period *usage_for(replay_line_state *st, const char *period)
{
    for (size_t i = 0; i < st->nusage; i++)
        if (strcmp(st->usage[i].period, period) == 0)
            return &st->usage[i];
    usage_period *u = grow(&st->usage, &st->nusage, sizeof *u);
    if (u != NULL)
        snprintf(u->period, sizeof u->period, "%s", period);
    return u;
}

static int bad(char *err, const bss_event *ev, const char *what)
{
    bss_seterr(err, "%s #%lld (%s): %s", ev->source, (long long)ev->sequence, ev->type, what);
    return BSS_ERR_INVALID;
}

#define NOMEM (bss_seterr(err, "out of memory"), BSS_ERR_NOMEM)

static int apply_parsed(replay_line_state *st, const bss_event *ev, const cJSON *d, char *err)
{
    const char *t = ev->type;
    int is_line = strcmp(ev->subject, st->svc) == 0;
    if (is_line && strcmp(t, "OrderCreated") == 0) {
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(d, "line");
        if (!cJSON_IsObject(line))
            return bad(err, ev, "no line object");
        copy_str(line, "customerId", st->customer_id, sizeof st->customer_id);
        copy_str(line, "productCd", st->product_cd, sizeof st->product_cd);
        copy_str(line, "productNm", st->product_nm, sizeof st->product_nm);
        copy_str(line, "apnCd", st->apn, sizeof st->apn);
        const cJSON *tarif = cJSON_GetObjectItemCaseSensitive(line, "productTarif");
        if (money(tarif, &st->tarif))
            st->has_tarif = 1;
        copy_str(d, "orderId", st->order_id, sizeof st->order_id);
        copy_str(d, "type", st->order_type, sizeof st->order_type);
        copy_str(d, "status", st->order_status, sizeof st->order_status);
        st->order_reason[0] = '\0';
    } else if (is_line && strcmp(t, "LineStatusChanged") == 0) {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(d, "to");
        const cJSON *eff = cJSON_GetObjectItemCaseSensitive(d, "effectiveAt");
        int64_t when = ev->time_ms;
        if (!cJSON_IsString(to))
            return bad(err, ev, "'to' is not a string");
        if (cJSON_IsString(eff) &&
            bss_time_parse(eff->valuestring, strlen(eff->valuestring), &when) != BSS_OK)
            return bad(err, ev, "'effectiveAt' is not a time");
        status_change *c = grow(&st->changes, &st->nchanges, sizeof *c);
        if (c == NULL)
            return NOMEM;
        c->effective_ms = when;
        snprintf(c->to, sizeof c->to, "%s", to->valuestring);
        copy_str(d, "orderId", c->order_id, sizeof c->order_id);
    } else if (is_line && (strcmp(t, "OrderCompleted") == 0 || strcmp(t, "OrderRejected") == 0)) {
        char order_id[FIELD] = "";
        copy_str(d, "orderId", order_id, sizeof order_id);
        if (strcmp(order_id, st->order_id) == 0) {
            snprintf(st->order_status, sizeof st->order_status, "%s",
                     t[5] == 'C' ? "COMPLETED" : "REJECTED");
            copy_str(d, "reason", st->order_reason, sizeof st->order_reason);
        }
    } else if (is_line && strcmp(t, "RaterCreated") == 0) {
        copy_str(d, "useYn", st->use_yn, sizeof st->use_yn);
    } else if (is_line && strcmp(t, "RaterTerminated") == 0) {
        strcpy(st->use_yn, "N");
    } else if (is_line && strcmp(t, "RaterRestored") == 0) {
        strcpy(st->use_yn, "Y");
    } else if (is_line && strcmp(t, "UsageRated") == 0) {
        const cJSON *periods = cJSON_GetObjectItemCaseSensitive(d, "periods"), *p;
        if (!cJSON_IsArray(periods))
            return bad(err, ev, "'periods' is not an array");
        cJSON_ArrayForEach(p, periods) {
            const cJSON *period = cJSON_GetObjectItemCaseSensitive(p, "period");
            int64_t bytes = 0, records = 0;
            if (!cJSON_IsString(period) || read_count(p, "bytes", &bytes) != BSS_OK ||
                read_count(p, "records", &records) != BSS_OK)
                return bad(err, ev, "a period without period, bytes and records");
            usage_period *u = usage_for(st, period->valuestring);
            if (u == NULL)
                return NOMEM;
            u->bytes += bytes;
            u->records += records;
        }
    } else if (is_line && strcmp(t, "UsageMoved") == 0) {
        const cJSON *period = cJSON_GetObjectItemCaseSensitive(d, "period");
        int64_t bytes = 0;
        if (!cJSON_IsString(period) || read_count(d, "usageBytes", &bytes) != BSS_OK)
            return bad(err, ev, "no period or usageBytes");
        usage_period *u = usage_for(st, period->valuestring);
        if (u == NULL)
            return NOMEM;
        u->moved = 1;
        u->moved_bytes = bytes;
    } else if (is_line && strcmp(t, "ChargeCalculated") == 0) {
        const cJSON *period = cJSON_GetObjectItemCaseSensitive(d, "period");
        if (!cJSON_IsString(period))
            return bad(err, ev, "no period");
        charge *c = NULL;
        for (size_t i = 0; i < st->ncharges; i++)
            if (strcmp(st->charges[i].period, period->valuestring) == 0)
                c = &st->charges[i];
        if (c == NULL && (c = grow(&st->charges, &st->ncharges, sizeof *c)) == NULL)
            return NOMEM;
        char *copy = strdup(ev->data);
        if (copy == NULL)
            return NOMEM;
        free(c->data);
        c->data = copy;
        snprintf(c->period, sizeof c->period, "%s", period->valuestring);
    } else if (strcmp(t, "InvoiceIssued") == 0) {
        const cJSON *lines = cJSON_GetObjectItemCaseSensitive(d, "lines"), *line;
        const cJSON *mine = NULL;
        cJSON_ArrayForEach(line, lines) {
            const cJSON *svc = cJSON_GetObjectItemCaseSensitive(line, "svcContNo");
            if (cJSON_IsString(svc) && strcmp(svc->valuestring, st->svc) == 0)
                mine = line;
        }
        /* The summary form lists no lines: the line's invoice is the one of
         * its charge's customer and period. */
        cJSON *charge_data = NULL;
        if (mine == NULL)
            mine = charge_data = line_charge_for(st, d);
        if (mine == NULL)
            return BSS_OK; /* mentions the line elsewhere; not its invoice */
        invoice *inv = grow(&st->invoices, &st->ninvoices, sizeof *inv);
        if (inv == NULL) {
            cJSON_Delete(charge_data);
            return NOMEM;
        }
        copy_str(d, "invoiceId", inv->invoice_id, sizeof inv->invoice_id);
        copy_str(d, "period", inv->period, sizeof inv->period);
        copy_str(d, "status", inv->status, sizeof inv->status);
        const cJSON *total = cJSON_GetObjectItemCaseSensitive(d, "total");
        const cJSON *line_total = cJSON_GetObjectItemCaseSensitive(mine, "total");
        if (!money(total, &inv->invoice_total))
            inv->invoice_total = 0;
        if (!money(line_total, &inv->line_total))
            inv->line_total = 0;
        cJSON_Delete(charge_data);
    }
    return BSS_OK;
}

int replay_line_state_apply(replay_line_state *st, const bss_event *ev, char *err)
{
    if (ev->time_ms > st->at_ms)
        return BSS_OK;
    cJSON *d = cJSON_Parse(ev->data ? ev->data : "{}");
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return bad(err, ev, "data is not a JSON object");
    }
    int rc = apply_parsed(st, ev, d, err);
    cJSON_Delete(d);
    if (rc == BSS_OK) {
        st->folded++;
        st->last_event_ms = ev->time_ms;
    }
    return rc;
}

/* The change in effect at st->at_ms (NULL: none yet) and the first one
 * scheduled after it (NULL: none). Later recorded wins a tie. */
static void status_at(const replay_line_state *st, const status_change **current,
                      const status_change **scheduled)
{
    *current = NULL;
    *scheduled = NULL;
    for (size_t i = 0; i < st->nchanges; i++) {
        const status_change *c = &st->changes[i];
        if (c->effective_ms <= st->at_ms) {
            if (*current == NULL || c->effective_ms >= (*current)->effective_ms)
                *current = c;
        } else if (*scheduled == NULL || c->effective_ms < (*scheduled)->effective_ms) {
            *scheduled = c;
        }
    }
}

static long long charge_field(const cJSON *d, const char *name)
{
    int64_t v = 0;
    return read_count(d, name, &v) == BSS_OK ? (long long)v : -1;
}

int replay_line_state_print_text(FILE *out, const replay_line_state *st)
{
    char when[48], eff[48];
    replay_format_time(st->at_ms, when, sizeof when);
    fprintf(out, "line        %s as of %s (%" PRId64 " events recorded by then)\n", st->svc,
            when, st->folded);
    if (!replay_line_state_known(st)) {
        fprintf(out, "status      UNKNOWN (no event about the line was recorded by then)\n");
        return ferror(out) ? BSS_ERR_IO : BSS_OK;
    }
    const status_change *current, *scheduled;
    status_at(st, &current, &scheduled);
    fprintf(out, "customer    %s\n", st->customer_id);
    if (current != NULL) {
        replay_format_time(current->effective_ms, eff, sizeof eff);
        fprintf(out, "status      %s (effective %s)\n", current->to, eff);
    } else {
        fprintf(out, "status      NONE (not yet in effect)\n");
    }
    if (scheduled != NULL) {
        replay_format_time(scheduled->effective_ms, eff, sizeof eff);
        fprintf(out, "scheduled   %s (effective %s)\n", scheduled->to, eff);
    }
    fprintf(out, "product     %s %s", st->product_cd, st->product_nm);
    if (st->has_tarif)
        fprintf(out, ", %" PRId64 " KRW/month", st->tarif);
    fprintf(out, "\napn         %s, in use %s\n", st->apn, st->use_yn[0] ? st->use_yn : "?");
    if (st->order_id[0] != '\0')
        fprintf(out, "last order  %s %s%s%s (%s)\n", st->order_type, st->order_status,
                st->order_reason[0] ? " " : "", st->order_reason, st->order_id);
    for (size_t i = 0; i < st->nusage; i++) {
        const usage_period *u = &st->usage[i];
        fprintf(out, "usage       %s: %" PRId64 " bytes in %" PRId64 " records", u->period,
                u->bytes, u->records);
        if (u->moved)
            fprintf(out, ", %" PRId64 " bytes moved to billing at AU close", u->moved_bytes);
        fputc('\n', out);
    }
    for (size_t i = 0; i < st->ncharges; i++) {
        cJSON *d = cJSON_Parse(st->charges[i].data);
        fprintf(out,
                "charge      %s: total %lld KRW = base %lld + overage %lld (%lld MB over %lld"
                " included) + vat %lld; %lld/%lld active days\n",
                st->charges[i].period, charge_field(d, "total"), charge_field(d, "baseFee"),
                charge_field(d, "overageFee"), charge_field(d, "overageMb"),
                charge_field(d, "includedMb"), charge_field(d, "vat"),
                charge_field(d, "activeDays"), charge_field(d, "daysInPeriod"));
        cJSON_Delete(d);
    }
    for (size_t i = 0; i < st->ninvoices; i++) {
        const invoice *inv = &st->invoices[i];
        fprintf(out, "invoice     %s %s %s: this line %" PRId64 " KRW of %" PRId64 " KRW\n",
                inv->invoice_id, inv->period, inv->status, inv->line_total, inv->invoice_total);
    }
    return ferror(out) ? BSS_ERR_IO : BSS_OK;
}

static void json_field(FILE *out, const char *name, const char *value, int comma)
{
    fprintf(out, "%s\"%s\":", comma ? "," : "", name);
    replay_write_json_string(out, value);
}

int replay_line_state_print_json(FILE *out, const replay_line_state *st)
{
    char when[48], eff[48];
    replay_format_time(st->at_ms, when, sizeof when);
    const status_change *current, *scheduled;
    status_at(st, &current, &scheduled);
    fputc('{', out);
    json_field(out, "svcContNo", st->svc, 0);
    json_field(out, "asOf", when, 1);
    fprintf(out, ",\"eventsFolded\":%" PRId64 ",\"known\":%s", st->folded,
            replay_line_state_known(st) ? "true" : "false");
    json_field(out, "customerId", st->customer_id, 1);
    json_field(out, "status", current ? current->to : (st->folded ? "NONE" : "UNKNOWN"), 1);
    if (current != NULL) {
        replay_format_time(current->effective_ms, eff, sizeof eff);
        json_field(out, "statusEffectiveAt", eff, 1);
    }
    if (scheduled != NULL) {
        replay_format_time(scheduled->effective_ms, eff, sizeof eff);
        fputs(",\"scheduled\":{", out);
        json_field(out, "status", scheduled->to, 0);
        json_field(out, "effectiveAt", eff, 1);
        fputc('}', out);
    }
    json_field(out, "productCd", st->product_cd, 1);
    json_field(out, "productNm", st->product_nm, 1);
    if (st->has_tarif)
        fprintf(out, ",\"productTarif\":%" PRId64, st->tarif);
    json_field(out, "apnCd", st->apn, 1);
    json_field(out, "useYn", st->use_yn, 1);
    fputs(",\"lastOrder\":", out);
    if (st->order_id[0] != '\0') {
        fputc('{', out);
        json_field(out, "orderId", st->order_id, 0);
        json_field(out, "type", st->order_type, 1);
        json_field(out, "status", st->order_status, 1);
        if (st->order_reason[0] != '\0')
            json_field(out, "reason", st->order_reason, 1);
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    fputs(",\"usage\":[", out);
    for (size_t i = 0; i < st->nusage; i++) {
        const usage_period *u = &st->usage[i];
        fprintf(out, "%s{\"period\":", i ? "," : "");
        replay_write_json_string(out, u->period);
        fprintf(out, ",\"bytes\":\"%" PRId64 "\",\"records\":%" PRId64, u->bytes, u->records);
        if (u->moved)
            fprintf(out, ",\"movedBytes\":\"%" PRId64 "\"", u->moved_bytes);
        fputc('}', out);
    }
    fputs("],\"charges\":[", out);
    for (size_t i = 0; i < st->ncharges; i++)
        fprintf(out, "%s%s", i ? "," : "", st->charges[i].data);
    fputs("],\"invoices\":[", out);
    for (size_t i = 0; i < st->ninvoices; i++) {
        const invoice *inv = &st->invoices[i];
        fputs(i ? ",{" : "{", out);
        json_field(out, "invoiceId", inv->invoice_id, 0);
        json_field(out, "period", inv->period, 1);
        json_field(out, "status", inv->status, 1);
        fprintf(out, ",\"lineTotal\":%" PRId64 ",\"total\":%" PRId64 "}", inv->line_total,
                inv->invoice_total);
    }
    fputs("]}\n", out);
    return ferror(out) ? BSS_ERR_IO : BSS_OK;
}
