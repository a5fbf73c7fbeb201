/*
 * customer_events.h - the customer service's events as the services that
 * follow it read them (see the event catalog in docs/ARCHITECTURE.md).
 *
 * The event catalog is the contract between services; this module is the
 * one place where a consumer turns a customer event's `data` into a struct,
 * so every follower (rater, billing, later the read model) accepts and
 * rejects exactly the same inputs. Each parser checks every field it
 * returns and answers BSS_ERR_INVALID, with the offending field named in
 * err, for data that breaks the contract: the consumer dead-letters such an
 * event instead of retrying it forever.
 *
 * Times are kept twice: as epoch milliseconds for computing, and as the
 * original ISO-8601 text for echoing back unchanged.
 */
#ifndef BSS_CUSTOMER_EVENTS_H
#define BSS_CUSTOMER_EVENTS_H

#include "envelope.h"

#include <stdint.h>

#define BSS_CEV_ID_MAX 64          /* orderId, customerId */
#define BSS_CEV_SVC_CONT_NO_MAX BSS_EVENT_SUBJECT_MAX
#define BSS_CEV_CODE_MAX 32        /* productCd, apnCd */
#define BSS_CEV_NAME_MAX 64        /* productNm */
#define BSS_CEV_EMAIL_MAX 254
#define BSS_CEV_TIME_MAX 40        /* ISO-8601 text */
#define BSS_CEV_WORD_MAX 16        /* order type, order status, line status */

/* The line as carried by OrderCreated.line (only what followers use). */
typedef struct bss_cev_line {
    char customer_id[BSS_CEV_ID_MAX + 1];
    char svc_cont_no[BSS_CEV_SVC_CONT_NO_MAX + 1];
    char product_cd[BSS_CEV_CODE_MAX + 1];
    char product_nm[BSS_CEV_NAME_MAX + 1];
    int64_t product_tarif; /* monthly fee, KRW */
    char apn_cd[BSS_CEV_CODE_MAX + 1];
    char email[BSS_CEV_EMAIL_MAX + 1]; /* "" when absent */
} bss_cev_line;

/* OrderCreated {orderId, type, status, effectiveAt, line{...}}. */
typedef struct bss_cev_order_created {
    char order_id[BSS_CEV_ID_MAX + 1];
    char type[BSS_CEV_WORD_MAX + 1];   /* OPEN, SUSPEND, RESUME, TERMINATE, RESTORE */
    char status[BSS_CEV_WORD_MAX + 1]; /* the order's status, "" when absent */
    int64_t effective_ms;
    char effective_at[BSS_CEV_TIME_MAX + 1];
    int has_line;      /* 1 when `line` was parsed (always for OPEN) */
    bss_cev_line line;
} bss_cev_order_created;

/* LineStatusChanged {orderId, from (null for OPEN), to, effectiveAt, customerId}. */
typedef struct bss_cev_status_changed {
    char order_id[BSS_CEV_ID_MAX + 1];
    char from[BSS_CEV_WORD_MAX + 1]; /* "" for null */
    char to[BSS_CEV_WORD_MAX + 1];   /* ACTIVE, SUSPENDED or TERMINATED */
    int64_t effective_ms;
    char effective_at[BSS_CEV_TIME_MAX + 1];
    char customer_id[BSS_CEV_ID_MAX + 1]; /* "" when absent */
} bss_cev_status_changed;

/* TerminationRequested / RestoreRequested {orderId, effectiveAt}. */
typedef struct bss_cev_order_request {
    char order_id[BSS_CEV_ID_MAX + 1];
    int64_t effective_ms;
    char effective_at[BSS_CEV_TIME_MAX + 1];
} bss_cev_order_request;

/* 1 when s is a line status of the contract (ACTIVE, SUSPENDED,
 * TERMINATED), else 0. */
int bss_cev_is_line_status(const char *s);

/* Parses an OrderCreated event's data into out. orderId, type (one of the
 * five order types) and effectiveAt are required. For type OPEN the line is
 * required too: customerId, svcContNo (must equal the event's subject),
 * productCd, productNm, apnCd, productTarif (integer >= 0); email is
 * optional. For other types the line is parsed when it is well-formed and
 * otherwise ignored (has_line = 0), since followers do not need it.
 * Returns BSS_OK, or BSS_ERR_INVALID with the reason in err. */
int bss_cev_parse_order_created(const bss_event *ev, bss_cev_order_created *out, char *err);

/* Parses a LineStatusChanged event's data: orderId, to (a line status) and
 * effectiveAt are required; from is null/absent or a line status;
 * customerId is optional. Returns BSS_OK or BSS_ERR_INVALID. */
int bss_cev_parse_status_changed(const bss_event *ev, bss_cev_status_changed *out, char *err);

/* Parses TerminationRequested or RestoreRequested data: orderId and
 * effectiveAt, both required. Returns BSS_OK or BSS_ERR_INVALID. */
int bss_cev_parse_order_request(const bss_event *ev, bss_cev_order_request *out, char *err);

#endif
