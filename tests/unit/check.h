/*
 * check.h - the assertion macros of bssiot's C unit tests.
 *
 * CHECK records a failure and goes on, so one run reports every broken
 * expectation; CHECK_DONE prints the closing "N passed, N failed" line that
 * ctest output readers expect and yields the process exit status.
 */
#ifndef BSS_CHECK_H
#define BSS_CHECK_H

#include <stdio.h>

typedef struct check_counts {
    int passed;
    int failed;
} check_counts;

#define CHECK(counts, cond)                                                               \
    do {                                                                                  \
        if (cond) {                                                                       \
            (counts)->passed++;                                                           \
        } else {                                                                          \
            (counts)->failed++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                 \
    } while (0)

#define CHECK_DONE(counts)                                                                \
    (printf("%d passed, %d failed\n", (counts)->passed, (counts)->failed),                \
     (counts)->failed == 0 && (counts)->passed > 0 ? 0 : 1)

#endif
