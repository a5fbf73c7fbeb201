/*
 * fuzz_gateway_access.c - the gateway's parsing of what a client controls
 * before any service sees it: the request line's path and query against
 * the role policy (segments, percent-decoding of customerId), the owner
 * check on a service's answer, and the Idempotency-Key check.
 *
 * Input: "<role digit><customer>\n<method>\n<path>\n<query>\n<body>".
 * Invariants checked: a customer is never allowed a path of another
 * customer's my page, and an operator is always allowed. The request line's
 * first field is also presented as a bearer token to a token store (in
 * memory, with no token in it): nothing may verify.
 */
#include "access.h"
#include "bss_error.h"
#include "idempotency.h"
#include "tokens.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The next '\n'-terminated field of [*p, end) as a fresh string. */
static char *field(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += nl ? n + 1 : n;
    return s;
}

/* One empty store for the whole run: opening SQLite per input would drown
 * the fuzzer in set-up. */
static gw_tokens *empty_store(void)
{
    static gw_tokens *store;
    char err[BSS_ERRLEN];
    if (store == NULL && gw_tokens_open(":memory:", 0, &store, err) != BSS_OK)
        abort();
    return store;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    gw_principal who;
    memset(&who, 0, sizeof who);
    who.role = (gw_role)(1 + data[0] % 3);
    char *customer = field(&p, end);
    if (who.role == GW_ROLE_CUSTOMER)
        strncpy(who.customer_id, customer, GW_CUSTOMER_ID_MAX);
    char *method = field(&p, end), *path = field(&p, end), *query = field(&p, end);
    gw_access_decision d = gw_access_decide(&who, method, path, query);
    if (who.role == GW_ROLE_OPERATOR && d.access != GW_ACCESS_ALLOW)
        abort();
    if (who.role == GW_ROLE_CUSTOMER && d.access == GW_ACCESS_ALLOW &&
        strncmp(path, "/mypage/", 8) == 0 && strcmp(path + 8, who.customer_id) != 0)
        abort();
    (void)gw_access_owned_by(p, (size_t)(end - p), who.customer_id);
    (void)gw_idem_key_valid(query);
    gw_principal presented;
    if (gw_tokens_verify(empty_store(), customer, &presented, NULL) != BSS_ERR_NOTFOUND)
        abort();
    free(customer);
    free(method);
    free(path);
    free(query);
    return 0;
}
