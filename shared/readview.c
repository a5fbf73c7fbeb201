/* readview.c - see readview.h. */
#include "readview.h"

#include "bss_error.h"

int bss_view_read(bss_store *store, bss_view_fn build, const void *arg, cJSON **view,
                  char *err)
{
    sqlite3 *db = NULL;
    int rc = bss_store_snapshot_begin(store, &db, err);
    if (rc != BSS_OK)
        return rc;
    rc = build(db, arg, view, err);
    bss_store_snapshot_end(store, db);
    return rc;
}

int bss_view_read_failed(bss_request *req, int rc, const char *what, const char *err)
{
    bss_log_write(bss_req_log(req), BSS_LOG_ERROR, bss_req_id(req), bss_req_correlation_id(req),
                  "%s: %s", what, err);
    return rc == BSS_ERR_NOMEM
               ? rc
               : bss_reply_problem(req, 503, "STORE_UNAVAILABLE", "Store unavailable", err);
}

int bss_view_reply(bss_request *req, bss_store *store, bss_view_fn build, const void *arg,
                   const char *what, const bss_view_notfound *not_found)
{
    char err[BSS_ERRLEN] = "";
    cJSON *view = NULL;
    int rc = bss_view_read(store, build, arg, &view, err);
    if (rc == BSS_ERR_NOTFOUND && not_found != NULL)
        return bss_reply_problem(req, 404, not_found->code, not_found->title, not_found->detail);
    if (rc != BSS_OK)
        return bss_view_read_failed(req, rc, what, err);
    return bss_reply_json_owned(req, 200, view);
}
