/*
 * replay_at.h - a line's state at a past instant, folded from events alone
 * (bssiot-replay at --line N --time T).
 *
 * "As of T" means what the system had recorded by T: only events whose
 * time_ms <= T are folded (in causal order, see replay_timeline.h). Status
 * changes carry their own business effective time, which may lie before or
 * after the moment they were recorded; the status shown is the one in effect
 * at T among the changes recorded by T (latest effectiveAt <= T, ties to the
 * later recorded), and a recorded change that takes effect after T is shown
 * as scheduled. Usage, charges and invoices are those recorded by T.
 */
#ifndef BSS_REPLAY_AT_H
#define BSS_REPLAY_AT_H

#include "envelope.h"

#include <stdint.h>
#include <stdio.h>

typedef struct replay_line_state replay_line_state;

/* A state for line svc_cont_no as of at_ms, empty. NULL when out of memory. */
replay_line_state *replay_line_state_new(const char *svc_cont_no, int64_t at_ms);

/* Folds one event about the line (its subject, or an invoice listing it).
 * Events must come in causal order; ones recorded after at_ms are ignored.
 * Returns BSS_OK, BSS_ERR_INVALID when the data of a type it reads is not
 * what the type promises (err filled; the state is unchanged), or
 * BSS_ERR_NOMEM. */
int replay_line_state_apply(replay_line_state *st, const bss_event *ev, char *err);

/* 1 once any event of the line was folded. */
int replay_line_state_known(const replay_line_state *st);

/* Prints the state for people (several "name  value" lines) or as one JSON
 * object and a newline. Return BSS_OK or BSS_ERR_IO. */
int replay_line_state_print_text(FILE *out, const replay_line_state *st);
int replay_line_state_print_json(FILE *out, const replay_line_state *st);

void replay_line_state_free(replay_line_state *st); /* NULL is fine */

#endif
