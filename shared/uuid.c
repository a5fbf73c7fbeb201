/* uuid.c - see uuid.h. */
#include "uuid.h"

#include "bss_error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int bss_uuid_v4(char out[BSS_UUID_LEN + 1])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n <= 0)
            return BSS_ERR_IO;
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, BSS_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
    return BSS_OK;
}

int bss_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != BSS_UUID_LEN)
        return 0;
    for (int i = 0; i < BSS_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}
