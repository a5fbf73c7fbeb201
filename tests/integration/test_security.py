"""Access control and abuse handling at the gateway, end to end: tokens
issued by bssiot-admin, roles, customers confined to their own data (404,
never 403, for anything else), revocation, rate limits, Idempotency-Key
replays, size limits, services refusing callers that are not the gateway,
and the operator's dead-letter routes."""
import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, wait_until  # noqa: E402
from system import System, http_request  # noqa: E402

BIN_DIR = None


class Security(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir()
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        # A tight rate limit so the test can reach it; every other request
        # of this test stays far below it per token.
        cls.system = System(BIN_DIR, cls.dir, cls.procs,
                            {"BSS_GATEWAY_RATE_PER_S": "5", "BSS_GATEWAY_RATE_BURST": "40",
                             "BSS_GATEWAY_MAX_BODY_BYTES": str(8 * 1024 * 1024)})
        cls.system.start_all(("customer", "rater", "billing", "gateway"))
        cls.operator = cls.system.token("operator")
        cls.mediation = cls.system.token("mediation")
        cls.serial = 0

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        cls.workdir_ctx.__exit__(None, None, None)

    # -- helpers -----------------------------------------------------------
    def call(self, token, method, path, body=None, headers=None):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return http_request(self.system.port, method, path, body, h)

    def open_line(self, customer):
        Security.serial += 1
        body = {"customerId": customer, "productCd": "IOT-BASIC", "apnCd": "iot.meter.kr",
                "email": f"{customer.lower()}@example.com"}
        resp = self.call(self.operator, "POST", "/customers", body)
        self.assertEqual(resp.status, 201, resp)
        return resp.json()["svcContNo"]

    def assert_problem(self, resp, status, code):
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.header("Content-Type"), "application/problem+json", resp)
        self.assertEqual(resp.json()["code"], code, resp)

    # -- authentication ----------------------------------------------------
    def test_no_token_is_401_with_challenge(self):
        resp = self.call(None, "GET", "/customers")
        self.assert_problem(resp, 401, "UNAUTHORIZED")
        self.assertEqual(resp.header("WWW-Authenticate"), 'Bearer realm="bssiot"')
        self.assertTrue(resp.header("X-Request-Id"))

    def test_bad_tokens_are_401_invalid_token(self):
        good = self.operator
        for bad in ("nonsense", good[:-1] + ("A" if good[-1] != "A" else "B"),
                    "bss_0000000000000000_" + "A" * 43):
            resp = self.call(bad, "GET", "/customers")
            self.assert_problem(resp, 401, "INVALID_TOKEN")
            self.assertIn('error="invalid_token"', resp.header("WWW-Authenticate"))

    def test_health_needs_no_token(self):
        for path in ("/healthz", "/readyz"):
            self.assertEqual(http_request(self.system.port, "GET", path).status, 200)

    def test_revoked_token_stops_working(self):
        token = self.system.token("operator")
        self.assertEqual(self.call(token, "GET", "/customers?customerId=X").status, 200)
        self.system.admin("token", "revoke", token[4:20])
        wait_until(lambda: self.call(token, "GET", "/customers?customerId=X").status == 401,
                   timeout=10, what="the revoked token to be refused")

    def test_token_is_stored_only_as_hash(self):
        token = self.system.token("operator")
        with open(os.path.join(self.system.data_dir, "gateway.db"), "rb") as f:
            content = f.read()
        wal = os.path.join(self.system.data_dir, "gateway.db-wal")
        if os.path.exists(wal):
            with open(wal, "rb") as f:
                content += f.read()
        self.assertNotIn(token[21:].encode(), content)

    # -- roles ---------------------------------------------------------------
    def test_mediation_only_usage_and_au_close(self):
        resp = self.call(self.mediation, "POST", "/customers",
                         {"customerId": "M", "productCd": "IOT-BASIC", "apnCd": "a"})
        self.assert_problem(resp, 403, "FORBIDDEN")
        self.assertEqual(self.call(self.mediation, "GET", "/customers?customerId=X").status, 403)
        csv = b"recordId,svcContNo,apnCd,usageStart,bytes\n"
        resp = self.call(self.mediation, "POST", "/raters/usage-files?name=med-empty.csv", csv,
                         {"Content-Type": "text/csv"})
        self.assertEqual(resp.status, 200, resp)
        resp = self.call(self.mediation, "GET", "/raters/usage-files/med-empty.csv")
        self.assertEqual(resp.status, 200, resp)

    def test_customer_sees_only_its_own(self):
        mine = self.open_line("SEC-C1")
        theirs = self.open_line("SEC-C2")
        token = self.system.token("customer", "SEC-C1")
        resp = self.call(token, "GET", f"/customers/{mine}")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["customerId"], "SEC-C1")
        # Another customer's line answers exactly like a line that does not exist.
        foreign = self.call(token, "GET", f"/customers/{theirs}")
        missing = self.call(token, "GET", "/customers/99999999999")
        self.assert_problem(foreign, 404, "NOT_FOUND")
        self.assertEqual(missing.status, 404)
        self.assertEqual(self.call(token, "GET", f"/customers/{mine}/orders").status, 200)
        self.assert_problem(self.call(token, "GET", f"/customers/{theirs}/orders"), 404,
                            "NOT_FOUND")
        self.assertEqual(self.call(token, "GET",
                                   "/billings/invoices?customerId=SEC-C1").status, 200)
        own = self.call(token, "GET", "/customers?customerId=SEC-C1")
        self.assertEqual(own.status, 200, own)
        self.assertEqual([ln["svcContNo"] for ln in own.json()["items"]], [mine])
        for path in ("/billings/invoices?customerId=SEC-C2",
                     "/billings/invoices?customerId=SEC-C1&customerId=SEC-C2",
                     "/mypage/SEC-C2", "/customers?customerId=SEC-C2",
                     "/billings/charges?period=2026-01",
                     "/settlements", f"/raters/{mine}"):
            self.assert_problem(self.call(token, "GET", path), 404, "NOT_FOUND")
        # Customers do not write.
        resp = self.call(token, "POST", f"/customers/{mine}/orders", {"type": "SUSPEND"})
        self.assert_problem(resp, 404, "NOT_FOUND")

    # -- abuse ---------------------------------------------------------------
    def test_rate_limit_429_with_retry_after(self):
        token = self.system.token("operator")
        statuses = [self.call(token, "GET", "/customers?customerId=RL").status
                    for _ in range(60)]
        self.assertIn(429, statuses)
        self.assertEqual(statuses[0], 200)
        resp = self.call(token, "GET", "/customers?customerId=RL")
        if resp.status == 429:
            self.assertGreaterEqual(int(resp.header("Retry-After")), 1)
            self.assertEqual(resp.json()["code"], "TOO_MANY_REQUESTS")
        # Another token is not affected.
        self.assertEqual(self.call(self.system.token("operator"), "GET",
                                   "/customers?customerId=RL").status, 200)

    def test_idempotency_key_replays_the_first_answer(self):
        body = {"customerId": "SEC-IDEM", "productCd": "IOT-PLUS", "apnCd": "iot.meter.kr"}
        key = {"Idempotency-Key": "open-SEC-IDEM-1"}
        first = self.call(self.operator, "POST", "/customers", body, key)
        self.assertEqual(first.status, 201, first)
        again = self.call(self.operator, "POST", "/customers", body, key)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        lines = self.call(self.operator, "GET", "/customers?customerId=SEC-IDEM")
        self.assertEqual(lines.status, 200, lines)
        self.assertEqual(lines.json()["total"], 1)
        changed = dict(body, productCd="IOT-BASIC")
        resp = self.call(self.operator, "POST", "/customers", changed, key)
        self.assert_problem(resp, 422, "IDEMPOTENCY_KEY_REUSED")
        # Keys belong to the token that used them.
        other = self.call(self.system.token("operator"), "POST", "/customers",
                          dict(body, customerId="SEC-IDEM-2"), key)
        self.assertEqual(other.status, 201, other)
        bad = self.call(self.operator, "POST", "/customers", body, {"Idempotency-Key": ""})
        self.assert_problem(bad, 400, "INVALID_IDEMPOTENCY_KEY")

    def test_idempotency_key_on_a_streamed_usage_file(self):
        svc = self.open_line("SEC-USAGE")
        rows = "".join(f"sec-{i},{svc},iot.meter.kr,2026-01-05T10:00:00+09:00,{1000 + i}\n"
                       for i in range(20000))
        csv = ("recordId,svcContNo,apnCd,usageStart,bytes\n" + rows).encode()
        self.assertGreater(len(csv), 256 * 1024)  # big enough to be streamed
        key = {"Idempotency-Key": "usage-file-1", "Content-Type": "text/csv"}
        first = self.call(self.mediation, "POST", "/raters/usage-files?name=sec.csv", csv, key)
        self.assertEqual(first.status, 200, first)
        again = self.call(self.mediation, "POST", "/raters/usage-files?name=sec.csv", csv, key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(again.body, first.body)
        other = csv.replace(b"sec-0,", b"sec-x,")
        resp = self.call(self.mediation, "POST", "/raters/usage-files?name=sec.csv", other, key)
        self.assert_problem(resp, 422, "IDEMPOTENCY_KEY_REUSED")

    def test_oversized_and_deep_json_refused_nothing_stored(self):
        big = {"customerId": "SEC-BIG", "productCd": "IOT-BASIC", "apnCd": "a",
               "address": "x" * (2 * 1024 * 1024)}
        resp = self.call(self.operator, "POST", "/customers", big)
        self.assertIn(resp.status, (413, 422), resp)
        deep = '{"customerId":"SEC-DEEP","productCd":"IOT-BASIC","apnCd":"a","x":' + \
            "[" * 200 + "]" * 200 + "}"
        resp = self.call(self.operator, "POST", "/customers", deep.encode(),
                         {"Content-Type": "application/json"})
        self.assert_problem(resp, 422, "JSON_TOO_DEEP")
        long_field = {"customerId": "C" * 1000, "productCd": "IOT-BASIC", "apnCd": "a"}
        resp = self.call(self.operator, "POST", "/customers", long_field)
        self.assertEqual(resp.status, 422, resp)
        events = self.system.events("customer", "data LIKE '%SEC-BIG%' OR data LIKE '%SEC-DEEP%'"
                                                " OR data LIKE '%CCCCCCCCCC%'")
        self.assertEqual(events, [])

    # -- services trust only the gateway ---------------------------------
    def test_services_refuse_direct_callers(self):
        for name in ("customer", "rater", "billing"):
            resp = http_request(self.system.service_port(name), "GET",
                                {"customer": "/customers", "rater": "/raters/1",
                                 "billing": "/billings/charges?period=2026-01"}[name])
            self.assert_problem(resp, 401, "GATEWAY_ONLY")
            # Health stays open for probes.
            self.assertEqual(http_request(self.system.service_port(name), "GET",
                                          "/healthz").status, 200)

    # -- dead letters ----------------------------------------------------
    def test_dead_letters_are_for_operators(self):
        resp = self.call(self.operator, "GET", "/billings/dead-letters")
        self.assertEqual(resp.status, 200, resp)
        self.assertIsInstance(resp.json()["deadLetters"], list)
        self.assertEqual(self.call(self.mediation, "GET", "/billings/dead-letters").status, 403)
        cust = self.system.token("customer", "SEC-C1")
        self.assertEqual(self.call(cust, "GET", "/billings/dead-letters").status, 404)
        resp = self.call(self.operator, "POST", "/billings/dead-letters/999999/redrive")
        self.assert_problem(resp, 404, "DEAD_LETTER_NOT_FOUND")


def main():
    global BIN_DIR
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
