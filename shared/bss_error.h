/*
 * bss_error.h - the one error convention of bssiot.
 *
 * Every fallible function returns an int: BSS_OK (0) on success or one of
 * the negative BSS_ERR_* codes below. Functions that can say more take a
 * caller-owned buffer `char *err` of at least BSS_ERRLEN bytes (may be NULL)
 * and fill it with a one-line, human-readable reason. A function that
 * returns an error has not taken ownership of anything passed to it and has
 * left no partial state behind unless its header says otherwise.
 */
#ifndef BSS_ERROR_H
#define BSS_ERROR_H

#define BSS_ERRLEN 256

enum bss_status {
    BSS_OK = 0,
    BSS_ERR = -1,          /* unspecified failure */
    BSS_ERR_CONFLICT = -2, /* optimistic concurrency or uniqueness violated */
    BSS_ERR_NOTFOUND = -3, /* the thing asked for does not exist */
    BSS_ERR_INVALID = -4,  /* malformed input */
    BSS_ERR_BUSY = -5,     /* store locked; retry later */
    BSS_ERR_IO = -6,       /* file, socket or disk failure */
    BSS_ERR_NOMEM = -7,    /* allocation failed */
    BSS_ERR_TIMEOUT = -8,  /* a deadline passed */
    BSS_ERR_CLOSED = -9    /* the object is shutting down */
};

/* Formats a reason into err (BSS_ERRLEN bytes) when err is not NULL. */
void bss_seterr(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A static, stable name for a status code ("BSS_ERR_CONFLICT"). */
const char *bss_strerror(int status);

#endif
