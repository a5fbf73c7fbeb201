/*
 * line.h - the line aggregate: what a line is and which orders may change
 * it. Pure rules, no storage: the order service (orders.h) applies them.
 *
 * Status: ACTIVE, SUSPENDED, TERMINATED. Orders and their transitions:
 *   OPEN       creates the line, ACTIVE
 *   SUSPEND    ACTIVE -> SUSPENDED                (local, completes at once)
 *   RESUME     SUSPENDED -> ACTIVE                (local, completes at once)
 *   TERMINATE  ACTIVE|SUSPENDED -> TERMINATED     (saga: the rater decides);
 *              on a TERMINATED line it still goes to the rater, which answers
 *              RaterUnused and the order ends REJECTED / ALREADY_TERMINATED
 *   RESTORE    TERMINATED -> ACTIVE within 30 days of the termination (saga)
 * Anything else is an invalid transition.
 */
#ifndef CUSTOMER_LINE_H
#define CUSTOMER_LINE_H

#include <stddef.h>
#include <stdint.h>

#define LINE_RESTORE_WINDOW_MS (30LL * 24 * 60 * 60 * 1000)

#define LINE_SVC_CONT_NO_MAX 32
#define LINE_CUSTOMER_ID_MAX 64
#define LINE_APN_MAX 63
#define LINE_EMAIL_MAX 254
#define LINE_PHONE_MAX 20
#define LINE_ADDRESS_MAX 256
#define LINE_ACCOUNT_MAX 64

typedef enum { LINE_ACTIVE, LINE_SUSPENDED, LINE_TERMINATED } line_status;

typedef enum { ORDER_OPEN, ORDER_SUSPEND, ORDER_RESUME, ORDER_TERMINATE, ORDER_RESTORE } order_type;

typedef enum { ORDER_PENDING, ORDER_COMPLETED, ORDER_REJECTED } order_status;

typedef struct line {
    char svc_cont_no[LINE_SVC_CONT_NO_MAX + 1];
    char customer_id[LINE_CUSTOMER_ID_MAX + 1];
    char product_cd[33];
    char product_nm[65];
    int64_t product_tarif;
    char apn_cd[LINE_APN_MAX + 1];
    char email[LINE_EMAIL_MAX + 1];
    char phone[LINE_PHONE_MAX + 1];
    char address[LINE_ADDRESS_MAX + 1];
    char charge_account[LINE_ACCOUNT_MAX + 1];
    line_status status;
    int64_t opened_ms;         /* the OPEN order's effectiveAt */
    int64_t status_changed_ms; /* effectiveAt of the last status change */
    int64_t terminated_ms;     /* effectiveAt of the termination, 0 if none */
    char pending_order_id[40]; /* "" when no saga order is in flight */
    int64_t version;           /* the line's stream version in the log */
} line;

/* What an order does to a line, decided from the line as it is now. */
typedef enum {
    DECISION_APPLY_NOW,  /* local transition: completes at once to `target` */
    DECISION_ASK_RATER,  /* saga: stays PENDING until the rater answers */
    DECISION_REJECT      /* refused: `code` says why (HTTP 409) */
} order_decision_kind;

typedef struct order_decision {
    order_decision_kind kind;
    line_status target;
    const char *code; /* stable problem code for DECISION_REJECT */
    const char *detail;
} order_decision;

/* Decides what `type` (not OPEN) does to line l effective at effective_ms.
 * Checks, in order: a saga order already in flight (ORDER_IN_PROGRESS), the
 * effective time against the last status change
 * (EFFECTIVE_AT_BEFORE_LAST_CHANGE), the transition (INVALID_TRANSITION),
 * the restore window (RESTORE_WINDOW_EXPIRED). */
order_decision line_decide(const line *l, order_type type, int64_t effective_ms);

/* Names as they appear in the API and events ("ACTIVE", "SUSPEND", ...). */
const char *line_status_name(line_status s);
const char *order_type_name(order_type t);
const char *order_status_name(order_status s);

/* Parses a name; returns 0 and sets *out, or -1 for an unknown name. */
int line_status_parse(const char *name, line_status *out);
int order_type_parse(const char *name, order_type *out);
int order_status_parse(const char *name, order_status *out);

/* Field syntax checks for the API: return 1 when acceptable. */
int line_valid_key(const char *s, size_t max);  /* [A-Za-z0-9._-]{1,max} */
int line_valid_apn(const char *s);              /* [A-Za-z0-9.-]{1,63} */
int line_valid_email(const char *s);            /* local@domain, printable, <= 254 */
int line_valid_phone(const char *s);            /* optional '+', digits and '-', 3..20 */

#endif
