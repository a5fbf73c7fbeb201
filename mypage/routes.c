/* routes.c - GET /mypage/{customerId}; see mypage.h. */
#include "mypage.h"

#include "bss_error.h"
#include "readview.h"

#include <stdio.h>

static int get_mypage(bss_request *req, void *ctx)
{
    mypage_reads *reads = ctx;
    const char *customer_id = bss_req_param(req, "customerId");
    char err[BSS_ERRLEN] = "";
    mypage_reader *lease = NULL;
    const char *json = NULL;
    size_t len = 0;
    int rc = mypage_reads_render(reads, customer_id, &lease, &json, &len, err);
    int status;
    if (rc == BSS_OK) {
        status = bss_reply_raw(req, 200, "application/json", json, len, NULL);
    } else if (rc == BSS_ERR_NOTFOUND) {
        status = bss_reply_problemf(req, 404, "CUSTOMER_NOT_FOUND", "Customer not found",
                                    "the read model knows no line and no invoice of customer %s",
                                    customer_id);
    } else {
        char what[160];
        snprintf(what, sizeof what, "GET mypage %.100s", customer_id);
        status = bss_view_read_failed(req, rc, what, err);
    }
    mypage_reads_done(reads, lease);
    return status;
}

int mypage_routes_register(bss_http *http, mypage_reads *reads, char *err)
{
    int rc = bss_http_route(http, "GET", "/mypage/{customerId}", get_mypage, reads);
    if (rc != BSS_OK)
        bss_seterr(err, "route GET /mypage/{customerId}: %s", bss_strerror(rc));
    return rc;
}
