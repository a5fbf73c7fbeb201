/*
 * replay_timeline.h - gathering events from every source's log and putting
 * them in one order.
 *
 * The causal order (timeline, at): an event comes after the event that
 * caused it (its causationid, when that event is among those gathered) and
 * after the events before it in its own source's log (sequence order);
 * among the events this allows at each step, the earliest time_ms goes
 * first, then the source name, then the sequence. It is a topological order
 * of the "caused by" and "logged after" relations that follows the clock
 * wherever they leave a choice, so clocks that disagree by a few
 * milliseconds between processes (or machines) can never put an effect
 * before its cause. Should corrupted ids ever form a cycle, what remains is
 * appended in time order.
 *
 * The streaming merge (events): the sources' logs are read side by side and
 * the head with the earliest time_ms (then source name) goes first. Each
 * source stays in its sequence order and memory stays constant however long
 * the logs are.
 */
#ifndef BSS_REPLAY_TIMELINE_H
#define BSS_REPLAY_TIMELINE_H

#include "envelope.h"
#include "replay_log.h"

#include <stddef.h>
#include <stdio.h>

/* A growable list of owned events (each with its own data copy). */
typedef struct replay_events {
    bss_event *items;
    size_t count, cap;
} replay_events;

/* Frees every event and the list; leaves it empty (reusable). */
void replay_events_free(replay_events *list);

/* Keeps an event (1) or not (0); NULL keeps all. */
typedef int (*replay_keep_fn)(void *ctx, const bss_event *ev);

/* Reads each of sources[0..nsources) from src (its store under the data
 * dir, see replay_store_path, or its Kafka topic) with filter f and appends
 * the events keep() accepts to out, each source in sequence order. A store
 * or topic that does not exist is passed over; a corrupt row is reported to diag and counted in *skipped. Returns
 * BSS_OK, or BSS_ERR_IO / BSS_ERR_NOMEM (err filled) when a store cannot be
 * read; out keeps what was gathered. */
int replay_collect(const replay_source *src, const char *const *sources, size_t nsources,
                   const replay_filter *f, replay_keep_fn keep, void *ctx, replay_events *out,
                   size_t *skipped, FILE *diag, char *err);

/* Reorders list into the causal order described above. BSS_OK or
 * BSS_ERR_NOMEM (list unchanged). */
int replay_causal_order(replay_events *list);

/* Called per event by replay_merge, in merged order; non-zero stops. */
typedef int (*replay_event_fn)(void *ctx, const bss_event *ev);

/* The streaming merge described above over the given sources' logs in src
 * with filter f. Corrupt rows are reported to diag and counted in *skipped.
 * Returns BSS_OK, or BSS_ERR_IO / BSS_ERR_NOMEM with err filled. */
int replay_merge(const replay_source *src, const char *const *sources, size_t nsources,
                 const replay_filter *f, replay_event_fn fn, void *ctx, size_t *skipped,
                 FILE *diag, char *err);

#endif
