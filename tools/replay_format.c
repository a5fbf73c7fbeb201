/*
 * replay_format.c - see replay_format.h.
 *
 * The key data of each type is a list of field paths into its data (see the
 * ARCHITECTURE event catalog), so a new type costs one table row; unknown
 * types fall back to printing every top-level scalar.
 */
#include "replay_format.h"

#include "bss_error.h"
#include "invoice_id.h"
#include "isotime.h"
#include "period.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

typedef struct key_fields {
    const char *type;
    const char *fields; /* space-separated paths; "a.b" reaches into an object */
} key_fields;

static const key_fields KEY_FIELDS[] = {
    {"OrderCreated", "type status effectiveAt line.customerId line.productCd line.svcContStatus orderId"},
    {"LineStatusChanged", "from to effectiveAt orderId"},
    {"OrderCompleted", "type effectiveAt orderId"},
    {"OrderRejected", "type reason orderId"},
    {"TerminationRequested", "effectiveAt orderId"},
    {"RestoreRequested", "effectiveAt orderId"},
    {"OrdersClosed", "period"},
    {"RaterCreated", "customerId apnCd useYn productCd"},
    {"RaterStatusRecorded", "status effectiveAt orderId"},
    {"RaterTerminated", "effectiveAt orderId"},
    {"RaterRestored", "effectiveAt orderId"},
    {"RaterUnused", "orderId"},
    {"RaterInUse", "orderId"},
    {"ChargeInfoCreated", "customerId productCd productTarif includedMb perMbRate"},
    {"ChargeStatusRecorded", "status effectiveAt orderId"},
    {"UsageRated", "fileName periods"},
    {"AuCloseStarted", "period customerPosition"},
    {"UsageMoved", "period customerId usageBytes records"},
    {"AuCloseCompleted", "period lineCount totalBytes"},
    {"ChargeCalculated", "period usageBytes billableMb includedMb overageMb overageFee activeDays "
                         "daysInPeriod baseFee subtotal vat total"},
    {"InvoiceIssued", "customerId period lineCount subtotal vat total status"},
    {"PeriodInvoiced", "period invoiceCount lineCount chargeCount"},
    {"SettlementCompleted", "period status lineCount invoiceCount totalAmount"},
};

void replay_format_time(int64_t ms, char *out, size_t outlen)
{
    if (bss_time_format(ms, out, outlen) != BSS_OK)
        snprintf(out, outlen, "%" PRId64 "ms", ms);
}

void replay_write_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void print_scalar(FILE *out, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        /* Values are shown bare unless a space would make the line ambiguous. */
        if (strpbrk(v->valuestring, " \t\"") != NULL || v->valuestring[0] == '\0')
            replay_write_json_string(out, v->valuestring);
        else
            fputs(v->valuestring, out);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18)
            fprintf(out, "%lld", (long long)d);
        else
            fprintf(out, "%.17g", d);
    } else if (cJSON_IsBool(v)) {
        fputs(cJSON_IsTrue(v) ? "true" : "false", out);
    } else if (cJSON_IsNull(v)) {
        fputs("null", out);
    } else if (cJSON_IsArray(v)) {
        fprintf(out, "[%d]", cJSON_GetArraySize(v));
    } else {
        fputs("{...}", out);
    }
}

/* UsageRated's periods: "2026-10:5000000B/1" per element. */
static void print_periods(FILE *out, const cJSON *periods)
{
    const char *separator = "";
    for (const cJSON *p = periods->child; p != NULL; p = p->next) {
        const cJSON *period = cJSON_GetObjectItemCaseSensitive(p, "period");
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(p, "bytes");
        const cJSON *records = cJSON_GetObjectItemCaseSensitive(p, "records");
        fputs(separator, out);
        separator = ",";
        print_scalar(out, period);
        fputc(':', out);
        print_scalar(out, bytes);
        fputs("B/", out);
        print_scalar(out, records);
    }
}

static const cJSON *lookup(const cJSON *root, const char *path, size_t len)
{
    char part[64];
    const cJSON *node = root;
    while (len > 0 && node != NULL) {
        const char *dot = memchr(path, '.', len);
        size_t n = dot ? (size_t)(dot - path) : len;
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        node = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, part) : NULL;
        path += n + (dot != NULL);
        len -= n + (dot != NULL);
    }
    return node;
}

static void print_key_data(FILE *out, const bss_event *ev, const cJSON *root, const char *focus)
{
    const char *fields = NULL;
    for (size_t i = 0; i < sizeof KEY_FIELDS / sizeof KEY_FIELDS[0]; i++)
        if (strcmp(KEY_FIELDS[i].type, ev->type) == 0)
            fields = KEY_FIELDS[i].fields;
    if (fields == NULL) {
        const cJSON *v;
        cJSON_ArrayForEach(v, root) {
            if (cJSON_IsObject(v) || cJSON_IsArray(v))
                continue;
            fprintf(out, " %s=", v->string);
            print_scalar(out, v);
        }
        return;
    }
    for (const char *p = fields; *p;) {
        size_t n = strcspn(p, " ");
        const cJSON *v = lookup(root, p, n);
        if (v != NULL) {
            const char *dot = memchr(p, '.', n);
            const char *name = dot ? dot + 1 : p;
            fprintf(out, " %.*s=", (int)(p + n - name), name);
            if (cJSON_IsArray(v) && n == 7 && memcmp(p, "periods", 7) == 0)
                print_periods(out, v);
            else
                print_scalar(out, v);
        }
        p += n;
        p += strspn(p, " ");
    }
    /* An invoice is about many lines; the one in focus wants its own share. */
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(root, "lines");
    if (focus != NULL && cJSON_IsArray(lines)) {
        const cJSON *line;
        cJSON_ArrayForEach(line, lines) {
            const cJSON *svc = cJSON_GetObjectItemCaseSensitive(line, "svcContNo");
            const cJSON *total = cJSON_GetObjectItemCaseSensitive(line, "total");
            if (cJSON_IsString(svc) && strcmp(svc->valuestring, focus) == 0 && total != NULL) {
                fputs(" lineTotal=", out);
                print_scalar(out, total);
            }
        }
    }
}

int replay_charge_invoice_id(const bss_event *ev, char *out, size_t len)
{
    if (strcmp(ev->type, "ChargeCalculated") != 0 || ev->data == NULL)
        return 0;
    cJSON *d = cJSON_Parse(ev->data);
    const cJSON *customer = cJSON_GetObjectItemCaseSensitive(d, "customerId");
    const cJSON *period = cJSON_GetObjectItemCaseSensitive(d, "period");
    bss_period p;
    int ok = cJSON_IsString(customer) && cJSON_IsString(period) &&
             bss_period_parse(period->valuestring, &p) == BSS_OK &&
             bss_invoice_id(period->valuestring, customer->valuestring, out, len) == BSS_OK;
    cJSON_Delete(d);
    return ok;
}

int replay_print_text(FILE *out, const bss_event *ev, const char *focus,
                      const char *line_total)
{
    char when[48], where[BSS_EVENT_SOURCE_MAX + 24];
    replay_format_time(ev->time_ms, when, sizeof when);
    snprintf(where, sizeof where, "%s#%" PRId64, ev->source, ev->sequence);
    fprintf(out, "%s %-14s %-20s %-14s", when, where, ev->type, ev->subject);
    cJSON *root = ev->data ? cJSON_Parse(ev->data) : NULL;
    if (root != NULL)
        print_key_data(out, ev, root, line_total != NULL ? NULL : focus);
    cJSON_Delete(root);
    if (line_total != NULL)
        fprintf(out, " lineTotal=%s", line_total);
    fputc('\n', out);
    return ferror(out) ? BSS_ERR_IO : BSS_OK;
}

/* Writes validated JSON without whitespace outside strings: stored data is
 * compact already, but a hand-edited row must not break one-object-a-line. */
static void write_compact(FILE *out, const char *json)
{
    int in_string = 0;
    for (const char *p = json; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1] != '\0') {
                fputc(*p++, out);
            } else if (*p == '"') {
                in_string = 0;
            }
        } else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            continue;
        } else if (*p == '"') {
            in_string = 1;
        }
        fputc(*p, out);
    }
}

int replay_print_json(FILE *out, const bss_event *ev)
{
    char when[48];
    replay_format_time(ev->time_ms, when, sizeof when);
    fputs("{\"time\":", out);
    replay_write_json_string(out, when);
    fprintf(out, ",\"timeMs\":%" PRId64 ",\"source\":", ev->time_ms);
    replay_write_json_string(out, ev->source);
    fprintf(out, ",\"sequence\":%" PRId64 ",\"type\":", ev->sequence);
    replay_write_json_string(out, ev->type);
    fputs(",\"subject\":", out);
    replay_write_json_string(out, ev->subject);
    fputs(",\"id\":", out);
    replay_write_json_string(out, ev->id);
    fprintf(out, ",\"version\":%" PRId64 ",\"correlationId\":", ev->version);
    replay_write_json_string(out, ev->correlation_id);
    fputs(",\"causationId\":", out);
    replay_write_json_string(out, ev->causation_id);
    fputs(",\"data\":", out);
    write_compact(out, ev->data ? ev->data : "{}");
    fputs("}\n", out);
    return ferror(out) ? BSS_ERR_IO : BSS_OK;
}
