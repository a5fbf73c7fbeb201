/* bss_error.c - see bss_error.h. */
#include "bss_error.h"

#include <stdarg.h>
#include <stdio.h>

void bss_seterr(char *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, BSS_ERRLEN, fmt, ap);
    va_end(ap);
}

const char *bss_strerror(int status)
{
    switch (status) {
    case BSS_OK: return "BSS_OK";
    case BSS_ERR_CONFLICT: return "BSS_ERR_CONFLICT";
    case BSS_ERR_NOTFOUND: return "BSS_ERR_NOTFOUND";
    case BSS_ERR_INVALID: return "BSS_ERR_INVALID";
    case BSS_ERR_BUSY: return "BSS_ERR_BUSY";
    case BSS_ERR_IO: return "BSS_ERR_IO";
    case BSS_ERR_NOMEM: return "BSS_ERR_NOMEM";
    case BSS_ERR_TIMEOUT: return "BSS_ERR_TIMEOUT";
    case BSS_ERR_CLOSED: return "BSS_ERR_CLOSED";
    default: return "BSS_ERR";
    }
}
