/*
 * live.c - see mypage.h. The consumer calls the handler on its one thread;
 * the lock only orders it against mypage_live_stop, which runs on the main
 * thread while the consumer may still be applying its last batch.
 */
#include "mypage.h"

#include "bss_error.h"

void mypage_live_init(mypage_live *live)
{
    pthread_mutex_init(&live->lock, NULL);
    live->projection = NULL;
    live->stopped = 0;
}

int mypage_live_handle(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    mypage_live *live = ctx;
    sqlite3 *db = bss_store_db(store);
    pthread_mutex_lock(&live->lock);
    int rc = BSS_OK;
    if (live->projection == NULL && !live->stopped)
        rc = mypage_projection_open(db, &live->projection, err);
    if (rc == BSS_OK)
        rc = live->projection != NULL ? mypage_projection_apply_with(live->projection, ev, err)
                                      : mypage_projection_apply(db, ev, err);
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
