/* test_jsonlimits.c - the nesting scan that guards the JSON parser. */
#include "check.h"
#include "jsonlimits.h"

#include <string.h>

static int depth(const char *s, int limit) { return bss_json_depth(s, strlen(s), limit); }

int main(void)
{
    check_counts c = {0, 0};
    CHECK(&c, depth("{}", 32) == 1);
    CHECK(&c, depth("{\"a\":[1,{\"b\":[]}]}", 32) == 4);
    CHECK(&c, depth("{\"a\":\"[[[[[[\"}", 32) == 1);         /* brackets in strings */
    CHECK(&c, depth("{\"a\":\"\\\"[[[[\"}", 32) == 1);       /* escaped quote */
    CHECK(&c, depth("[[[[[[[[[[", 5) == 6);                  /* stops past the limit */
    CHECK(&c, depth("]]]{", 32) == 1);                       /* malformed: no underflow */
    CHECK(&c, depth("", 32) == 0);
    return CHECK_DONE(&c);
}
