/*
 * readview.h - answering a GET from one consistent read of a service's
 * store.
 *
 * A read endpoint does the same four things every time: take a store
 * snapshot (bss_store_snapshot_begin: one consistent view per request),
 * build a JSON view from it, end the snapshot, and answer: 200 with the
 * view, 404 with a problem naming what is missing, or 503
 * STORE_UNAVAILABLE when the store could not be read. Running out of
 * memory is not the store's fault: it is answered 500 by returning
 * BSS_ERR_NOMEM to the HTTP runtime (http.h). Read failures are logged
 * with the request's ids.
 *
 * The view builder runs while the snapshot is held and must only read.
 */
#ifndef BSS_READVIEW_H
#define BSS_READVIEW_H

#include "evstore.h"
#include "http.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>

/* Builds a view from db (a snapshot) into *view (the caller frees it).
 * Returns BSS_OK, BSS_ERR_NOTFOUND when the thing asked for does not exist,
 * BSS_ERR_NOMEM, or another error (err filled) when the read failed. */
typedef int (*bss_view_fn)(sqlite3 *db, const void *arg, cJSON **view, char *err);

/* Runs build(db, arg, view, err) inside a snapshot of store. Returns the
 * snapshot's error when one cannot be taken (*view untouched), else
 * build's result; *view is set only on BSS_OK. */
int bss_view_read(bss_store *store, bss_view_fn build, const void *arg, cJSON **view,
                  char *err);

/* Answers a failed read: logs "<what>: <err>" as an error of req, then
 * returns BSS_ERR_NOMEM (a 500) when rc is BSS_ERR_NOMEM, else replies
 * 503 STORE_UNAVAILABLE with err as the detail and returns that status. */
int bss_view_read_failed(bss_request *req, int rc, const char *what, const char *err);

/* The problem a GET answers with when its view does not exist. */
typedef struct bss_view_notfound {
    const char *code;   /* "LINE_NOT_FOUND" */
    const char *title;  /* "Line not found" */
    const char *detail; /* "no rater info for line L1" */
} bss_view_notfound;

/* The whole GET: bss_view_read, then 200 with the view, 404 with
 * not_found's problem when the builder says BSS_ERR_NOTFOUND (not_found
 * NULL: that is a failed read like any other), or bss_view_read_failed
 * with `what` naming the request in the log ("GET rater L1"). Returns what
 * an HTTP handler returns. */
int bss_view_reply(bss_request *req, bss_store *store, bss_view_fn build, const void *arg,
                   const char *what, const bss_view_notfound *not_found);

#endif
