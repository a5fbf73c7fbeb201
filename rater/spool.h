/*
 * spool.h - the rater's spool directory: usage files dropped there are
 * rated like uploaded ones and then moved, with their report beside them,
 * to processed/ (or to failed/ when the file cannot be rated at all, e.g. a
 * bad header).
 *
 * Writers must make a file appear complete: write it under a name starting
 * with '.' or ending in ".part" or ".tmp" (ignored) and rename it when done.
 * A file rated just before a crash, but not yet moved, is recognised by its
 * name, size and modification time and only moved on restart, never rated
 * twice.
 */
#ifndef RATER_SPOOL_H
#define RATER_SPOOL_H

#include "evstore.h"
#include "log.h"
#include "metrics.h"

typedef struct rater_spool rater_spool;

/* Creates dir, dir/processed and dir/failed if missing and starts the
 * watcher thread, which looks every poll_ms (0 means 250). */
int rater_spool_start(const char *dir, int poll_ms, bss_store *store, bss_log *log,
                      bss_metrics *metrics, rater_spool **out, char *err);

/* Stops after the file being rated, if any. NULL is fine. */
void rater_spool_stop(void *spool);

#endif
