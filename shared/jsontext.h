/*
 * jsontext.h - JSON text written directly, byte for byte as cJSON prints
 * it unformatted, for hot paths that would otherwise build a cJSON tree
 * only to print it (event data, answers).
 *
 * A bss_jtext grows on the heap (zero-initialise it; free t.s), or fills a
 * caller's buffer when set up with bss_jtext_fixed. The text is always
 * NUL-terminated. A write that does not fit (an allocation failed, or the
 * fixed buffer is full) marks the text failed and every later write does
 * nothing, so a writer checks `failed` once, at the end.
 *
 * Numbers are written as integers: cJSON prints a whole number within
 * int's range with "%d" and anything else as a double, so a caller whose
 * value may leave that range and must match cJSON's text checks it first.
 */
#ifndef BSS_JSONTEXT_H
#define BSS_JSONTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct bss_jtext {
    char *s;
    size_t len, cap;
    int failed;
    int fixed; /* s is the caller's buffer: never grown nor freed */
} bss_jtext;

/* Writes into buf[0..cap) instead of the heap. */
void bss_jtext_fixed(bss_jtext *t, char *buf, size_t cap);

/* Empties the text for reuse, keeping its storage. */
void bss_jtext_reset(bss_jtext *t);

/* s[0..n) as it is. */
void bss_jtext_raw(bss_jtext *t, const char *s, size_t n);

/* The C string s as it is. */
void bss_jtext_str(bss_jtext *t, const char *s);

/* s as a JSON string: quotes; '"', '\\' and \b \f \n \r \t escaped by name,
 * other bytes below 0x20 as \u00xx; every other byte (UTF-8 included) as
 * it is. */
void bss_jtext_string(bss_jtext *t, const char *s);

/* ,"name": (without the comma when first); name is an identifier of ours,
 * written without escaping. */
void bss_jtext_name(bss_jtext *t, const char *name, int first);

/* ,"name":"value" and ,"name":value (without the comma when first). */
void bss_jtext_string_member(bss_jtext *t, const char *name, const char *value, int first);
void bss_jtext_int_member(bss_jtext *t, const char *name, int64_t value, int first);

#endif
