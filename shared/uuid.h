/*
 * uuid.h - UUIDs: time-ordered (version 7) for event ids, random (version 4)
 * for order and request ids.
 */
#ifndef BSS_UUID_H
#define BSS_UUID_H

#include <stddef.h>

#define BSS_UUID_LEN 36 /* without the terminating NUL */

/* Writes a new lowercase RFC 9562 version-4 UUID into out (37 bytes) from
 * bss_random_bytes. Returns BSS_OK, or BSS_ERR_IO if the kernel gave no
 * entropy. */
int bss_uuid_v4(char out[BSS_UUID_LEN + 1]);

/* Fills out with n (<= 64) random bytes from getrandom(2), drawn in blocks
 * per thread (one system call per few hundred bytes; a request id and a
 * trace id each cost one a request otherwise) and never shared with a
 * forked child. Bytes handed out are wiped from the pool. Thread-safe.
 * Returns BSS_OK, BSS_ERR_INVALID for n > 64, or BSS_ERR_IO. */
int bss_random_bytes(unsigned char *out, size_t n);

/* Writes a new lowercase RFC 9562 version-7 UUID into out (37 bytes): 48 bits
 * of Unix time in milliseconds, then 12 bits of sub-millisecond time (RFC
 * 9562 section 6.2, method 3), then 62 random bits. Ids made by one process
 * are strictly increasing, as strings too (should the clock step back, the
 * last timestamp is carried on), so an index on them is appended to rather
 * than written at random places. The random bits come from getrandom(2),
 * drawn in blocks per thread and never shared with a forked child.
 * Thread-safe. Returns BSS_OK, or BSS_ERR_IO if the kernel gave no entropy. */
int bss_uuid_v7(char out[BSS_UUID_LEN + 1]);

/* Returns 1 if s is a well-formed UUID string (any version, any case). */
int bss_uuid_valid(const char *s);

#endif
