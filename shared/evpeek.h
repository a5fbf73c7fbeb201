/*
 * evpeek.h - an event envelope's type and source without decoding it.
 *
 * A consumer that follows a stream sees every event of it, also the many it
 * does nothing with (settlement reads a million ChargeCalculated at month
 * end to reach the invoices). Decoding each with bss_event_decode (a full
 * JSON parse) cost settlement more than everything else it did. This scan
 * reads only the structure of the envelope and copies two attributes out,
 * so the consumer can move past an event whose type its handler ignores.
 *
 * It agrees with bss_event_decode (envelope.h) wherever both succeed: the
 * first member of that name, compared byte for byte (tests/fuzz/
 * fuzz_evpeek.c checks exactly this). It refuses anything it cannot read
 * with certainty (escapes in the two values or in any top-level name,
 * nesting deeper than 64, anything but whitespace after the object), and
 * the caller then decodes the event the slow way.
 */
#ifndef BSS_EVPEEK_H
#define BSS_EVPEEK_H

#include <stddef.h>

/* Scans buf[0..len): one JSON object whose top-level members "type" and
 * "source" are strings. Copies them, NUL-terminated, into type (tcap bytes)
 * and source (scap bytes). Returns BSS_OK, or BSS_ERR_INVALID when the
 * envelope cannot be read this way (see above) or a value does not fit;
 * type and source are then "". */
int bss_event_peek(const char *buf, size_t len, char *type, size_t tcap, char *source,
                   size_t scap);

#endif
