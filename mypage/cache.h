/*
 * cache.h - rendered "my page" views kept in memory, so that a read which
 * finds its customer's page here runs no SQL at all.
 *
 * One rule keeps a cached page from ever outliving a change: a page enters
 * the cache only if nothing that could change it committed since the reader
 * took its ticket, and the reader takes the ticket before it opens its read
 * transaction.
 *
 *   writer (the consumer's thread, inside its transaction): names each
 *     customer an event touches (mypage_cache_note, or mypage_cache_note_all
 *     for an event that can touch every page);
 *   the store's end-of-transaction hook (mypage_cache_txn_end, see
 *     bss_store_on_txn_end) then publishes the notes once the outcome is
 *     final: every noted customer's slot moves to a new generation and its
 *     page is dropped;
 *   reader: ticket = mypage_cache_ticket_for() (or from mypage_cache_get's
 *     miss); hit -> done; miss -> render from one read transaction, then
 *     mypage_cache_put(ticket): stored only if the customer's slot is still
 *     at the ticket's generation.
 *
 * So a page rendered from a snapshot older than some commit is never stored
 * after that commit's notes were published, and a stored page is dropped by
 * the next commit that touches its customer. Between a commit and the
 * publication of its notes (the same thread, right after COMMIT) a read may
 * still get the page as it was just before: a whole, consistent view a few
 * microseconds old, which an eventually consistent read model allows; never
 * a half-applied event.
 *
 * Memory is bounded by max_bytes (pages, keys and entry headers); the least
 * recently read pages go first. Customers share generation slots by hash, so
 * a note may also cost a neighbour its cached page: harmless.
 *
 * Thread-safe: one mutex, held for lookups and short copies only.
 */
#ifndef MYPAGE_CACHE_H
#define MYPAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mypage_cache mypage_cache;

/* A cache of at most max_bytes (> 0); NULL when memory runs out. */
mypage_cache *mypage_cache_new(size_t max_bytes);

/* NULL is fine. No other call may run. */
void mypage_cache_free(mypage_cache *cache);

typedef struct mypage_cache_ticket {
    uint64_t epoch; /* moves on with mypage_cache_note_all */
    uint64_t gen;   /* the customer's slot generation */
} mypage_cache_ticket;

/* The customer's ticket, to be taken before the read transaction opens. */
mypage_cache_ticket mypage_cache_ticket_for(mypage_cache *cache, const char *customer_id);

/* Copies the customer's cached page into *buf (grown with realloc as
 * needed; *cap is its size), NUL-terminated, and sets *len. Returns 1 on a hit, 0 on a miss,
 * -1 when the buffer could not grow (treat as a miss). *ticket (may be
 * NULL) is set as mypage_cache_ticket_for would set it, under the same
 * lock, before the lookup: a reader that misses needs no second trip. */
int mypage_cache_get(mypage_cache *cache, const char *customer_id, char **buf, size_t *cap,
                     size_t *len, mypage_cache_ticket *ticket);

/* Stores a copy of page (len bytes) for the customer if its slot is still
 * at the ticket's generation and the page fits the bound; else does
 * nothing. */
void mypage_cache_put(mypage_cache *cache, const char *customer_id, mypage_cache_ticket ticket,
                      const char *page, size_t len);

/* Writer side: the customer's page may change with the open transaction.
 * When the note cannot be kept (out of memory) every page is noted instead,
 * which is always safe. */
void mypage_cache_note(mypage_cache *cache, const char *customer_id);

/* Writer side: every page may change with the open transaction. */
void mypage_cache_note_all(mypage_cache *cache);

/* A bss_store_txn_end_fn (ctx: the cache): publishes the notes of the
 * transaction that just ended, committed or not (a rolled-back change
 * costs some cached pages, never a wrong one). */
void mypage_cache_txn_end(void *cache, int committed);

/* Pages and bytes held now, for metrics and tests. */
void mypage_cache_usage(mypage_cache *cache, size_t *pages, size_t *bytes);

#endif
