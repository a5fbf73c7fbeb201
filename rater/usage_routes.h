/*
 * usage_routes.h - the rater's usage REST surface:
 *
 *   POST /raters/usage-files?name=FILE   rate a usage file (text/csv body)  200
 *   GET  /raters/usage-files/{name}      its latest stored report            200
 *   GET  /raters/{svcContNo}/usage?period=YYYY-MM  a line's usage            200
 *   POST /raters/au-close {"period": "YYYY-MM"}    start (or see) AU close   202
 *   GET  /raters/au-close/{period}       the close's progress                200
 *
 * An upload is streamed to a temporary file under <data dir>/uploads (never
 * held in memory), capped at max_file_bytes, then rated (usage.h). The
 * answer carries at most USAGE_REPORT_BODY_REJECTIONS rejections; the
 * stored report has them all.
 */
#ifndef RATER_USAGE_ROUTES_H
#define RATER_USAGE_ROUTES_H

#include "auclose.h"
#include "evstore.h"
#include "http.h"
#include "metrics.h"

#include <limits.h>
#include <stdint.h>

typedef struct usage_routes {
    bss_store *store;
    char upload_dir[PATH_MAX];
    int64_t max_file_bytes;
    bss_metrics *metrics;
    au_closer *closer;
} usage_routes;

/* Registers the routes above; ctx must outlive the server. */
int usage_routes_register(bss_http *http, usage_routes *ctx, char *err);

#endif
