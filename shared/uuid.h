/*
 * uuid.h - random (version 4) UUIDs for event, order and request ids.
 */
#ifndef BSS_UUID_H
#define BSS_UUID_H

#define BSS_UUID_LEN 36 /* without the terminating NUL */

/* Writes a new lowercase RFC 9562 version-4 UUID into out (37 bytes) using
 * getrandom(2). Returns BSS_OK, or BSS_ERR_IO if the kernel gave no entropy. */
int bss_uuid_v4(char out[BSS_UUID_LEN + 1]);

/* Returns 1 if s is a well-formed UUID string (any version, any case). */
int bss_uuid_valid(const char *s);

#endif
