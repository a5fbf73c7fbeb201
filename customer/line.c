/* line.c - see line.h. */
#include "line.h"

#include <string.h>

static const char *const STATUS_NAMES[] = {"ACTIVE", "SUSPENDED", "TERMINATED"};
static const char *const TYPE_NAMES[] = {"OPEN", "SUSPEND", "RESUME", "TERMINATE", "RESTORE"};
static const char *const ORDER_STATUS_NAMES[] = {"PENDING", "COMPLETED", "REJECTED"};

const char *line_status_name(line_status s) { return STATUS_NAMES[s]; }
const char *order_type_name(order_type t) { return TYPE_NAMES[t]; }
const char *order_status_name(order_status s) { return ORDER_STATUS_NAMES[s]; }

static int parse_name(const char *name, const char *const *names, int count)
{
    for (int i = 0; name != NULL && i < count; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int line_status_parse(const char *name, line_status *out)
{
    int i = parse_name(name, STATUS_NAMES, 3);
    if (i < 0)
        return -1;
    *out = (line_status)i;
    return 0;
}

int order_type_parse(const char *name, order_type *out)
{
    int i = parse_name(name, TYPE_NAMES, 5);
    if (i < 0)
        return -1;
    *out = (order_type)i;
    return 0;
}

int order_status_parse(const char *name, order_status *out)
{
    int i = parse_name(name, ORDER_STATUS_NAMES, 3);
    if (i < 0)
        return -1;
    *out = (order_status)i;
    return 0;
}

static order_decision reject(const char *code, const char *detail)
{
    order_decision d = {DECISION_REJECT, LINE_ACTIVE, code, detail};
    return d;
}

order_decision line_decide(const line *l, order_type type, int64_t effective_ms)
{
    if (l->pending_order_id[0] != '\0')
        return reject("ORDER_IN_PROGRESS", "another order on this line is still pending");
    if (effective_ms < l->status_changed_ms)
        return reject("EFFECTIVE_AT_BEFORE_LAST_CHANGE",
                      "effectiveAt is before the line's previous status change");
    order_decision apply = {DECISION_APPLY_NOW, LINE_ACTIVE, NULL, NULL};
    order_decision ask = {DECISION_ASK_RATER, LINE_ACTIVE, NULL, NULL};
    switch (type) {
    case ORDER_SUSPEND:
        if (l->status != LINE_ACTIVE)
            break;
        apply.target = LINE_SUSPENDED;
        return apply;
    case ORDER_RESUME:
        if (l->status != LINE_SUSPENDED)
            break;
        return apply;
    case ORDER_TERMINATE:
        ask.target = LINE_TERMINATED;
        return ask;
    case ORDER_RESTORE:
        if (l->status != LINE_TERMINATED)
            break;
        if (effective_ms - l->terminated_ms > LINE_RESTORE_WINDOW_MS)
            return reject("RESTORE_WINDOW_EXPIRED",
                          "a line can be restored only within 30 days of its termination");
        return ask;
    case ORDER_OPEN:
        return reject("INVALID_TRANSITION", "a line is opened with POST /customers");
    }
    return reject("INVALID_TRANSITION", "this order is not allowed in the line's status");
}

static int all_of(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr(extra, c) != NULL;
        if (!ok)
            return 0;
    }
    return 1;
}

int line_valid_key(const char *s, size_t max) { return all_of(s, max, "._-"); }

int line_valid_apn(const char *s) { return all_of(s, LINE_APN_MAX, ".-"); }

int line_valid_email(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > LINE_EMAIL_MAX)
        return 0;
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == '<' || s[i] == '>')
            return 0;
    return 1;
}

int line_valid_phone(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > LINE_PHONE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '-' || (c == '+' && i == 0)))
            return 0;
    }
    return 1;
}
