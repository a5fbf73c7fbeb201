/*
 * html.h - building HTML documents in memory: a growable text buffer, HTML
 * escaping of interpolated text, and the digit grouping and won amounts
 * that printed KRW figures use ("1,234,567", "₩3,300").
 *
 * Both the printable invoice (billing) and the settlement report mail
 * (settlement) are built with it, so that escaping and number formatting
 * are the same wherever a page is made.
 *
 * A bss_hbuf latches its first allocation failure: every later append is a
 * no-op, so a page can be built without checking each call and the failure
 * is reported once, at the end (bss_hbuf.failed).
 */
#ifndef BSS_HTML_H
#define BSS_HTML_H

#include <stddef.h>
#include <stdint.h>

/* Room for any int64 with separators and sign ("-9,223,372,036,854,775,808"). */
#define BSS_GROUPED_LEN 32

/* Room for any int64 as a won amount (the 3-byte won sign plus the above). */
#define BSS_KRW_LEN 40

/* A growable, always NUL-terminated text. Initialise with {0}; p is NULL
 * until the first append; the owner frees p. failed is 1 once an
 * allocation failed (p then holds what was appended before). */
typedef struct bss_hbuf {
    char *p;
    size_t len, cap;
    int failed;
} bss_hbuf;

/* Appends the n bytes at s (no-op once failed). */
void bss_hbuf_put(bss_hbuf *b, const char *s, size_t n);

/* Appends the NUL-terminated text s (no-op once failed). */
void bss_hbuf_puts(bss_hbuf *b, const char *s);

/* Appends s with &, <, >, " and ' written as &amp; &lt; &gt; &quot; &#39;,
 * so the text is safe both in element content and in quoted attributes. */
void bss_hbuf_escaped(bss_hbuf *b, const char *s);

/* Writes value in decimal with ',' between groups of three digits
 * ("1,234,567", "-5", also INT64_MIN) into out. outlen >= BSS_GROUPED_LEN
 * is always enough; a shorter buffer gets the text's beginning,
 * NUL-terminated (nothing when outlen is 0). Returns out. */
const char *bss_format_grouped(int64_t value, char *out, size_t outlen);

/* Writes value as a won amount, "₩1,234" (UTF-8 U+20A9 WON SIGN, grouped
 * digits, no decimals: KRW has none) into out; outlen >= BSS_KRW_LEN is
 * always enough, a shorter buffer is truncated like bss_format_grouped's.
 * Returns out. */
const char *bss_format_krw(int64_t value, char *out, size_t outlen);

#endif
