/*
 * live.c - see mypage.h. The consumer calls the handler on its one thread;
 * the lock only orders it against mypage_live_stop, which runs on the main
 * thread while the consumer may still be applying its last batch.
 */
#include "mypage.h"

#include "bss_error.h"

#include <string.h>

void mypage_live_init(mypage_live *live, mypage_cache *cache)
{
    pthread_mutex_init(&live->lock, NULL);
    live->projection = NULL;
    live->cache = cache;
    live->stopped = 0;
}

/* Every projection row a page shows is keyed by its event's subject: a
 * line (svcContNo) or an invoice (invoiceId). Notes the customer owning
 * that row, if any. */
static int note_owner(mypage_cache *cache, sqlite3 *db, const char *subject, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bss_store_prepare_cached(
        db,
        "SELECT customer_id FROM mypage_line WHERE svc_cont_no = ?1"
        " UNION ALL SELECT customer_id FROM mypage_invoice WHERE invoice_id = ?1",
        &st, err);
    if (rc != BSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        mypage_cache_note(cache, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_DONE) {
        bss_seterr(err, "mypage page owner: %s", sqlite3_errmsg(db));
        return BSS_ERR_IO;
    }
    return BSS_OK;
}

static int projection_reads(const char *type)
{
    for (size_t i = 0; mypage_projection_types[i] != NULL; i++)
        if (strcmp(mypage_projection_types[i], type) == 0)
            return 1;
    return 0;
}

int mypage_live_handle(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    mypage_live *live = ctx;
    sqlite3 *db = bss_store_db(store);
    pthread_mutex_lock(&live->lock);
    int rc = BSS_OK;
    /* Before and after: an event that sets a row's customer takes the page
     * it leaves as well as the one it joins. */
    int noted = live->cache != NULL && projection_reads(ev->type);
    if (noted && strcmp(ev->type, "AuCloseStarted") == 0) {
        mypage_cache_note_all(live->cache); /* every line of the period */
        noted = 0;
    }
    if (noted)
        rc = note_owner(live->cache, db, ev->subject, err);
    if (rc == BSS_OK && live->projection == NULL && !live->stopped)
        rc = mypage_projection_open(db, &live->projection, err);
    if (rc == BSS_OK)
        rc = live->projection != NULL ? mypage_projection_apply_with(live->projection, ev, err)
                                      : mypage_projection_apply(db, ev, err);
    if (rc == BSS_OK && noted)
        rc = note_owner(live->cache, db, ev->subject, err);
    pthread_mutex_unlock(&live->lock);
    return rc;
}

void mypage_live_stop(void *ctx)
{
    mypage_live *live = ctx;
    pthread_mutex_lock(&live->lock);
    mypage_projection_close(live->projection);
    live->projection = NULL;
    live->stopped = 1;
    pthread_mutex_unlock(&live->lock);
}

void mypage_live_destroy(mypage_live *live)
{
    mypage_projection_close(live->projection);
    live->projection = NULL;
    pthread_mutex_destroy(&live->lock);
}
