/*
 * usage_seen.h - the rater's memory of every recordId it ever received, the
 * DUPLICATE check "across all files ever received" (usage.h).
 *
 * The ids are kept sorted in blocks, one row per block in the rater store:
 * usage_seen_block(first_id TEXT PRIMARY KEY, ids BLOB), each block holding
 * up to about USAGE_SEEN_BLOCK_BYTES of ids (each a length byte then its
 * bytes, in byte order, i.e. SQLite's BINARY collation). Why blocks and not
 * a row per id: a file of a million records would otherwise cost a million
 * B-tree inserts, each a statement run that descends the index from its
 * root; mediation systems number their records in order, so the ids of a
 * file almost always land past the last block or inside a few blocks, and
 * a block row is written once for a hundred or more ids. Random ids (UUIDs)
 * still work, at about the cost of the row-per-id design: each one rewrites
 * its block.
 *
 * All calls run inside the caller's open write transaction on db, so the
 * ids a file adds commit (or roll back) with the rest of the file.
 */
#ifndef RATER_USAGE_SEEN_H
#define RATER_USAGE_SEEN_H

#include <sqlite3.h>
#include <stddef.h>

#define USAGE_SEEN_BLOCK_BYTES 2048

typedef struct usage_seen usage_seen;

/* Creates usage_seen_block if missing and moves the ids of the earlier
 * row-per-id table (usage_seen), if there is one, into blocks, dropping it.
 * Called from the usage schema hook, inside its transaction. Returns BSS_OK
 * or BSS_ERR_IO / BSS_ERR_NOMEM with err filled. */
int usage_seen_schema(sqlite3 *db, char *err);

/* Takes its statements on db (the write connection, in a transaction) from
 * the connection's statement cache (bss_store_prepare_cached), preparing
 * them the first time: a file is opened per usage file, and parsing six
 * statements for each was most of a small file's allocations. Returns
 * BSS_OK with *out, or BSS_ERR_IO / BSS_ERR_NOMEM. */
int usage_seen_open(sqlite3 *db, usage_seen **out, char *err);

/* Resets the statements, leaving them to the connection (which finalizes
 * them when it closes; a caller closing db itself finalizes them first, see
 * sqlite3_next_stmt), and frees s. NULL is fine. */
void usage_seen_close(usage_seen *s);

/* ids[0..n): distinct ids (1-255 bytes each, lens[i] bytes, no NUL needed)
 * in strictly ascending byte order. Remembers the ones not seen before and
 * sets fresh[i] to 1 for them, 0 for ids already known. Returns BSS_OK;
 * BSS_ERR_INVALID when ids are not strictly ascending or a length is out of
 * range (nothing written); BSS_ERR_IO / BSS_ERR_NOMEM when the store failed
 * (the caller must roll the transaction back). */
int usage_seen_add_sorted(usage_seen *s, const char *const *ids, const unsigned char *lens,
                          size_t n, unsigned char *fresh, char *err);

/* Byte-order comparison of two ids, as the store orders them. */
int usage_seen_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
