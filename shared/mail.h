/*
 * mail.h - sending one HTML mail over SMTP with libcurl (invoices to
 * customers, the settlement report to the business department).
 *
 * A bss_mailer holds one curl handle (connection reuse) and is used by one
 * thread at a time, typically a notifier thread (notify.h). Call
 * curl_global_init once in main first.
 *
 * Configuration is passed in: the server URL (smtp://host:port or
 * smtps://...), the sender address, optional credentials.
 */
#ifndef BSS_MAIL_H
#define BSS_MAIL_H

#include <stddef.h>

typedef struct bss_mailer bss_mailer;

typedef struct bss_mail_options {
    const char *url;      /* smtp://127.0.0.1:2525 */
    const char *from;     /* billing@bssiot.local */
    const char *username; /* may be NULL */
    const char *password; /* may be NULL */
    int timeout_ms;       /* 0 means 10000 */
} bss_mail_options;

/* NULL on no memory or a missing url/from. */
bss_mailer *bss_mailer_new(const bss_mail_options *options);

void bss_mailer_free(bss_mailer *mailer);

/* Sends one message. message_id (e.g. "<invoice-123@bssiot>") lets the
 * receiving side recognise a resend. Returns BSS_OK when the server accepted
 * it, BSS_ERR_INVALID when it never will (a refused recipient, a header that
 * would break the message), BSS_ERR_IO to retry later. */
int bss_mail_send(bss_mailer *mailer, const char *to, const char *subject, const char *html,
                  const char *message_id, char *err);

/* 1 when addr is a plausible single address to put in a header (no CR, LF,
 * '<', '>', ',' or spaces; one '@'). */
int bss_mail_address_ok(const char *addr);

#endif
