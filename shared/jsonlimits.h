/*
 * jsonlimits.h - limits on JSON from outside, checked before it is parsed.
 *
 * cJSON parses recursively (its own nesting cap is 1000), so a body of a
 * few KB of '[' would recurse deep and a legitimate request of ours never
 * nests beyond a handful of levels. The scan is one pass over the text that
 * tracks strings and escapes, so brackets inside strings do not count.
 */
#ifndef BSS_JSONLIMITS_H
#define BSS_JSONLIMITS_H

#include <stddef.h>

/* Request bodies may nest objects/arrays this deep (the body itself is 1). */
#define BSS_JSON_MAX_DEPTH 32

/* The deepest nesting of objects and arrays in text[0..len), counting
 * only brackets outside strings; stops counting (and returns it) as soon as
 * it exceeds limit. Malformed text is not diagnosed here (the parser does
 * that). */
int bss_json_depth(const char *text, size_t len, int limit);

#endif
