/*
 * test_evpeek.c - bss_event_peek (evpeek.h): it reads the type and source
 * of what bss_event_encode writes, agrees with bss_event_decode, is not
 * fooled by members of the same name inside data, and refuses what it
 * cannot read with certainty (so the consumer decodes those in full).
 */
#include "bss_error.h"
#include "check.h"
#include "envelope.h"
#include "evpeek.h"

#include <stdlib.h>
#include <string.h>

static check_counts C;

static int peek(const char *json, char *type, char *source)
{
    return bss_event_peek(json, strlen(json), type, BSS_EVENT_TYPE_MAX + 1, source,
                          BSS_EVENT_SOURCE_MAX + 1);
}

static void test_encoded_envelope(void)
{
    char err[BSS_ERRLEN];
    bss_event *ev = bss_event_new("ChargeCalculated", "7000000001",
                                  "{\"type\":\"OPEN\",\"source\":\"x\",\"lines\":[{\"a\":[1,"
                                  "{\"type\":\"deep\"}]}],\"n\":-1.5e3,\"ok\":true,\"z\":null}",
                                  err);
    CHECK(&C, ev != NULL);
    if (ev == NULL)
        return;
    snprintf(ev->source, sizeof ev->source, "billing");
    ev->sequence = 7;
    size_t len = 0;
    char *json = bss_event_encode(ev, &len);
    CHECK(&C, json != NULL);
    if (json != NULL) {
        char type[BSS_EVENT_TYPE_MAX + 1], source[BSS_EVENT_SOURCE_MAX + 1];
        CHECK(&C, bss_event_peek(json, len, type, sizeof type, source, sizeof source) == BSS_OK);
        CHECK(&C, strcmp(type, "ChargeCalculated") == 0 && strcmp(source, "billing") == 0);
        bss_event *back = NULL;
        CHECK(&C, bss_event_decode(json, len, &back, err) == BSS_OK && back != NULL &&
                      strcmp(back->type, type) == 0 && strcmp(back->source, source) == 0);
        bss_event_free(back);
        /* Cut anywhere, it is not one whole object any more. */
        for (size_t cut = 0; cut < len; cut += 7)
            CHECK(&C, bss_event_peek(json, cut, type, sizeof type, source, sizeof source) ==
                          BSS_ERR_INVALID &&
                          type[0] == '\0' && source[0] == '\0');
        free(json);
    }
    bss_event_free(ev);
}

static void test_members(void)
{
    char type[BSS_EVENT_TYPE_MAX + 1], source[BSS_EVENT_SOURCE_MAX + 1];
    /* Data comes first and holds members of the same names: the top-level
     * ones count. */
    CHECK(&C, peek(" {\"data\":{\"type\":\"no\",\"source\":\"no\"},\"source\":\"rater\","
                   "\"type\":\"UsageMoved\"}\n",
                   type, source) == BSS_OK &&
                  strcmp(type, "UsageMoved") == 0 && strcmp(source, "rater") == 0);
    /* The first of two members with one name, as cJSON picks it. */
    CHECK(&C, peek("{\"type\":\"First\",\"source\":\"s\",\"type\":\"Second\"}", type, source) ==
                      BSS_OK &&
                  strcmp(type, "First") == 0);
    /* Missing, not a string, escaped, too long, trailing bytes, escaped
     * names: refused. */
    CHECK(&C, peek("{\"type\":\"T\"}", type, source) == BSS_ERR_INVALID);
    CHECK(&C, peek("{\"type\":1,\"source\":\"s\"}", type, source) == BSS_ERR_INVALID);
    CHECK(&C, peek("{\"type\":\"a\\\"b\",\"source\":\"s\"}", type, source) == BSS_ERR_INVALID);
    CHECK(&C, peek("{\"typ\\u0065\":\"X\",\"type\":\"Y\",\"source\":\"s\"}", type, source) ==
                  BSS_ERR_INVALID);
    CHECK(&C, peek("{\"type\":\"T\",\"source\":\"s\"} x", type, source) == BSS_ERR_INVALID);
    CHECK(&C, peek("{\"type\":\"T\",\"source\":\"s\",}", type, source) == BSS_ERR_INVALID);
    CHECK(&C, peek("[\"type\",\"T\"]", type, source) == BSS_ERR_INVALID);
    CHECK(&C, peek("", type, source) == BSS_ERR_INVALID);
    char small[4];
    CHECK(&C, bss_event_peek("{\"type\":\"Long\",\"source\":\"s\"}", 29, small, sizeof small,
                             source, sizeof source) == BSS_ERR_INVALID);
    /* Nesting beyond the limit is refused, not recursed into. */
    char deep[400] = "{\"type\":\"T\",\"source\":\"s\",\"data\":";
    size_t at = strlen(deep);
    for (int i = 0; i < 100; i++)
        deep[at++] = '[';
    for (int i = 0; i < 100; i++)
        deep[at++] = ']';
    deep[at++] = '}';
    deep[at] = '\0';
    CHECK(&C, peek(deep, type, source) == BSS_ERR_INVALID);
}

int main(void)
{
    test_encoded_envelope();
    test_members();
    return CHECK_DONE(&C);
}
