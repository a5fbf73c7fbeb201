/*
 * test_gateway_security.c - the gateway's access pieces on their own: API
 * tokens in a real SQLite file, the role policy, the token bucket and the
 * idempotency store. The end-to-end behaviour through a running gateway is
 * in tests/integration/test_security.py.
 */
#include "access.h"
#include "bss_error.h"
#include "check.h"
#include "idempotency.h"
#include "ratelimit.h"
#include "testutil.h"
#include "tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_tokens(check_counts *c, const char *dir)
{
    char path[512], err[BSS_ERRLEN];
    snprintf(path, sizeof path, "%s/gateway.db", dir);
    gw_tokens *t = NULL;
    CHECK(c, gw_tokens_open(path, 0, &t, err) == BSS_OK);
    if (t == NULL)
        return;

    char op[GW_TOKEN_LEN + 1], cu[GW_TOKEN_LEN + 1];
    gw_token_info info;
    CHECK(c, gw_tokens_create(t, GW_ROLE_OPERATOR, NULL, "ops", op, &info, err) == BSS_OK);
    CHECK(c, strlen(op) == GW_TOKEN_LEN && strncmp(op, "bss_", 4) == 0);
    CHECK(c, gw_tokens_create(t, GW_ROLE_CUSTOMER, "C-1", NULL, cu, &info, err) == BSS_OK);
    /* customer tokens need a customer, others must not have one */
    char bad[GW_TOKEN_LEN + 1];
    CHECK(c, gw_tokens_create(t, GW_ROLE_CUSTOMER, NULL, NULL, bad, NULL, err) ==
                 BSS_ERR_INVALID);
    CHECK(c, gw_tokens_create(t, GW_ROLE_MEDIATION, "C-1", NULL, bad, NULL, err) ==
                 BSS_ERR_INVALID);

    gw_principal who;
    CHECK(c, gw_tokens_verify(t, op, &who, err) == BSS_OK && who.role == GW_ROLE_OPERATOR);
    CHECK(c, gw_tokens_verify(t, cu, &who, err) == BSS_OK && who.role == GW_ROLE_CUSTOMER &&
                 strcmp(who.customer_id, "C-1") == 0);

    /* one wrong character of the secret, a wrong id, junk: all "not found" */
    char wrong[GW_TOKEN_LEN + 1];
    memcpy(wrong, op, sizeof wrong);
    wrong[GW_TOKEN_LEN - 1] = wrong[GW_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    CHECK(c, gw_tokens_verify(t, wrong, &who, err) == BSS_ERR_NOTFOUND);
    memcpy(wrong, op, sizeof wrong);
    wrong[5] = wrong[5] == 'a' ? 'b' : 'a';
    CHECK(c, gw_tokens_verify(t, wrong, &who, err) == BSS_ERR_NOTFOUND);
    CHECK(c, gw_tokens_verify(t, "bss_x", &who, err) == BSS_ERR_NOTFOUND);
    CHECK(c, gw_tokens_verify(t, "", &who, err) == BSS_ERR_NOTFOUND);

    /* only the hash is stored: the token text appears nowhere in the file */
    FILE *f = fopen(path, "rb");
    CHECK(c, f != NULL);
    if (f != NULL) {
        static char content[1 << 20];
        size_t n = fread(content, 1, sizeof content - 1, f);
        fclose(f);
        content[n] = '\0';
        CHECK(c, memmem(content, n, op + 21, GW_TOKEN_SECRET_LEN) == NULL);
    }

    /* revocation */
    char id[GW_TOKEN_ID_LEN + 1];
    memcpy(id, op + 4, GW_TOKEN_ID_LEN);
    id[GW_TOKEN_ID_LEN] = '\0';
    CHECK(c, gw_tokens_revoke(t, id, err) == BSS_OK);
    CHECK(c, gw_tokens_revoke(t, id, err) == BSS_OK);
    CHECK(c, gw_tokens_revoke(t, "0123456789abcdef", err) == BSS_ERR_NOTFOUND);
    CHECK(c, gw_tokens_verify(t, op, &who, err) == BSS_ERR_NOTFOUND);

    gw_token_info *rows = NULL;
    size_t n = 0;
    CHECK(c, gw_tokens_list(t, &rows, &n, err) == BSS_OK && n == 2);
    /* Both were created in the same millisecond: find each by its id. */
    for (size_t i = 0; i < n; i++)
        CHECK(c, (strcmp(rows[i].token_id, id) == 0) == (rows[i].revoked_ms != 0));
    free(rows);
    gw_tokens_close(t);
}

static gw_access decide(gw_role role, const char *customer, const char *method,
                        const char *path, const char *query)
{
    gw_principal who;
    memset(&who, 0, sizeof who);
    who.role = role;
    snprintf(who.customer_id, sizeof who.customer_id, "%s", customer);
    return gw_access_decide(&who, method, path, query).access;
}

static void test_access(check_counts *c)
{
    CHECK(c, decide(GW_ROLE_OPERATOR, "", "DELETE", "/anything", NULL) == GW_ACCESS_ALLOW);

    CHECK(c, decide(GW_ROLE_MEDIATION, "", "POST", "/raters/usage-files", "name=a.csv") ==
                 GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_MEDIATION, "", "GET", "/raters/usage-files/a.csv", NULL) ==
                 GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_MEDIATION, "", "POST", "/raters/au-close", NULL) == GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_MEDIATION, "", "GET", "/raters/au-close/2026-10", NULL) ==
                 GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_MEDIATION, "", "GET", "/customers/1", NULL) == GW_ACCESS_FORBID);
    CHECK(c, decide(GW_ROLE_MEDIATION, "", "GET", "/raters/1", NULL) == GW_ACCESS_FORBID);
    CHECK(c, decide(GW_ROLE_MEDIATION, "", "DELETE", "/raters/au-close/2026-10", NULL) ==
                 GW_ACCESS_FORBID);

    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/mypage/C1", NULL) == GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "HEAD", "/mypage/C1", NULL) == GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/mypage/C2", NULL) == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/mypage/C1/x", NULL) == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/customers/77", NULL) ==
                 GW_ACCESS_CHECK_RESPONSE);
    gw_principal who = {.role = GW_ROLE_CUSTOMER, .customer_id = "C1"};
    gw_access_decision d = gw_access_decide(&who, "GET", "/customers/77/orders/o1", NULL);
    CHECK(c, d.access == GW_ACCESS_CHECK_LINE && strcmp(d.svc_cont_no, "77") == 0);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/customers/77/orders", NULL) ==
                 GW_ACCESS_CHECK_LINE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/customers", NULL) == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/customers", "customerId=C1&page=2") ==
                 GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/customers", "customerId=C2") ==
                 GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "POST", "/customers/77/orders", NULL) ==
                 GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/invoices", "customerId=C1&period=2026-10") ==
                 GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C 1", "GET", "/billings/invoices", "customerId=C+1") ==
                 GW_ACCESS_ALLOW);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/invoices", "customerId=C2") ==
                 GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/invoices",
                    "customerId=C1&customerId=C2") == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/invoices", NULL) == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/invoices", "customerId=%4") ==
                 GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/invoices/i-1", NULL) ==
                 GW_ACCESS_CHECK_RESPONSE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/billings/charges", "period=2026-10") ==
                 GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/settlements", NULL) == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "C1", "GET", "/raters/77/usage", NULL) == GW_ACCESS_HIDE);
    CHECK(c, decide(GW_ROLE_CUSTOMER, "", "GET", "/mypage/", NULL) == GW_ACCESS_HIDE);

    const char *mine = "{\"customerId\":\"C1\",\"svcContNo\":\"7\"}";
    CHECK(c, gw_access_owned_by(mine, strlen(mine), "C1") == 1);
    CHECK(c, gw_access_owned_by(mine, strlen(mine), "C2") == 0);
    CHECK(c, gw_access_owned_by("[1]", 3, "C1") == 0);
    CHECK(c, gw_access_owned_by("{\"customerId\":1}", 16, "C1") == 0);
}

static void test_ratelimit(check_counts *c)
{
    gw_ratelimit *rl = gw_ratelimit_new(10, 3); /* 10/s, burst 3 */
    CHECK(c, rl != NULL);
    if (rl == NULL)
        return;
    int retry = 0, allowed = 0;
    for (int i = 0; i < 5; i++)
        allowed += gw_ratelimit_take(rl, "a", 1000, &retry);
    CHECK(c, allowed == 3);
    CHECK(c, retry == 1);
    CHECK(c, gw_ratelimit_take(rl, "b", 1000, &retry) == 1); /* buckets are per key */
    CHECK(c, gw_ratelimit_take(rl, "a", 1099, &retry) == 0); /* 99 ms refill 0.99 requests */
    CHECK(c, gw_ratelimit_take(rl, "a", 1100, &retry) == 1); /* 100 ms: exactly one */
    CHECK(c, gw_ratelimit_take(rl, "a", 1100, &retry) == 0);
    CHECK(c, gw_ratelimit_take(rl, "a", 1000 + 60000, &retry) == 1); /* refilled, capped */
    allowed = 0;
    for (int i = 0; i < 5; i++)
        allowed += gw_ratelimit_take(rl, "a", 1000 + 60000, &retry);
    CHECK(c, allowed == 2);
    gw_ratelimit_free(rl);
    CHECK(c, gw_ratelimit_new(0, 1) == NULL);
}

static void fingerprint(const char *body, unsigned char out[GW_IDEM_FINGERPRINT_LEN])
{
    gw_idem_hasher *h = gw_idem_hasher_start("POST", "/customers", "");
    size_t n = strlen(body);
    gw_idem_hasher_update(h, body, n / 2); /* in pieces, as a streamed body */
    gw_idem_hasher_update(h, body + n / 2, n - n / 2);
    gw_idem_hasher_finish(h, out);
}

static void test_idempotency(check_counts *c, const char *dir)
{
    char path[512], err[BSS_ERRLEN];
    snprintf(path, sizeof path, "%s/idem.db", dir);
    gw_idem *idem = NULL;
    CHECK(c, gw_idem_open(path, 24 * 3600, 30000, &idem, err) == BSS_OK);
    if (idem == NULL)
        return;
    unsigned char a[GW_IDEM_FINGERPRINT_LEN], b[GW_IDEM_FINGERPRINT_LEN];
    fingerprint("{\"x\":1}", a);
    fingerprint("{\"x\":2}", b);
    CHECK(c, memcmp(a, b, sizeof a) != 0);
    gw_idem_state state;
    gw_idem_response stored;
    int64_t t0 = 1700000000000;

    CHECK(c, gw_idem_begin(idem, "tok", "k1", a, t0, &state, &stored, err) == BSS_OK &&
                 state == GW_IDEM_NEW);
    CHECK(c, gw_idem_begin(idem, "tok", "k1", a, t0 + 1, &state, &stored, err) == BSS_OK &&
                 state == GW_IDEM_IN_PROGRESS);
    gw_idem_response answer = {.status = 201, .content_type = "application/json",
                               .location = "/customers/9", .body = "{\"svcContNo\":\"9\"}",
                               .len = 17};
    CHECK(c, gw_idem_complete(idem, "tok", "k1", NULL, &answer, err) == BSS_OK);
    unsigned char peeked[GW_IDEM_FINGERPRINT_LEN];
    CHECK(c, gw_idem_peek_done(idem, "tok", "k1", t0 + 2, peeked, err) == 1 &&
                 memcmp(peeked, a, sizeof a) == 0);
    CHECK(c, gw_idem_peek_done(idem, "tok", "nope", t0 + 2, peeked, err) == 0);
    CHECK(c, gw_idem_begin(idem, "tok", "k1", a, t0 + 2, &state, &stored, err) == BSS_OK &&
                 state == GW_IDEM_REPLAY);
    CHECK(c, stored.status == 201 && stored.len == 17 &&
                 memcmp(stored.body, answer.body, 17) == 0 &&
                 strcmp(stored.location, "/customers/9") == 0);
    gw_idem_response_clear(&stored);
    CHECK(c, gw_idem_begin(idem, "tok", "k1", b, t0 + 3, &state, &stored, err) == BSS_OK &&
                 state == GW_IDEM_MISMATCH);
    /* keys are per token */
    CHECK(c, gw_idem_begin(idem, "other", "k1", b, t0 + 3, &state, &stored, err) == BSS_OK &&
                 state == GW_IDEM_NEW);
    CHECK(c, gw_idem_release(idem, "other", "k1", err) == BSS_OK);
    CHECK(c, gw_idem_begin(idem, "other", "k1", a, t0 + 4, &state, &stored, err) == BSS_OK &&
                 state == GW_IDEM_NEW);
    /* a request left running by a crashed gateway is taken over once stale */
    CHECK(c, gw_idem_begin(idem, "other", "k1", a, t0 + 30004, &state, &stored, err) ==
                 BSS_OK && state == GW_IDEM_NEW);
    /* after 24 h the key is free again */
    CHECK(c, gw_idem_begin(idem, "tok", "k1", b, t0 + 24LL * 3600 * 1000, &state, &stored,
                           err) == BSS_OK && state == GW_IDEM_NEW);
    gw_idem_close(idem);

    CHECK(c, gw_idem_key_valid("abc-123") == 1);
    CHECK(c, gw_idem_key_valid("") == 0);
    CHECK(c, gw_idem_key_valid("a b") == 0);
    CHECK(c, gw_idem_status_stored(201) && gw_idem_status_stored(422) &&
                 gw_idem_status_stored(500) && !gw_idem_status_stored(503) &&
                 !gw_idem_status_stored(502));
}

int main(void)
{
    check_counts c = {0, 0};
    char dir[] = "/tmp/bss-gwsec-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    test_tokens(&c, dir);
    test_access(&c);
    test_ratelimit(&c);
    test_idempotency(&c, dir);
    tu_end(dir);
    return CHECK_DONE(&c);
}
