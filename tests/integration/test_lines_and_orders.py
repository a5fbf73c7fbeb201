"""Lines and orders end to end, through the gateway, every service a real
process: the reference design's checks 1 and 2, the termination saga and its
compensation path, validation, SMS, crash recovery mid-saga, 502."""
import argparse
import datetime
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import SmsSink, System  # noqa: E402

BIN_DIR = None
KST = datetime.timezone(datetime.timedelta(hours=9))


def iso(dt):
    return dt.isoformat(timespec="seconds")


class LinesAndOrders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir()
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        cls.sms = SmsSink()
        cls.system = System(BIN_DIR, cls.dir, cls.procs, {"BSS_SMS_URL": cls.sms.url})
        cls.system.start_all()
        cls.serial = 0

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        cls.sms.close()
        cls.workdir_ctx.__exit__(None, None, None)

    def tearDown(self):
        # Whatever a test did, every service is up again for the next one.
        for name in ("customer", "rater", "billing", "gateway"):
            proc = self.procs.procs.get(name)
            if proc is None or proc.poll() is not None:
                self.system.start(name)
            self.system.wait_ready(name)

    # -- helpers -----------------------------------------------------------
    def open_line(self, **fields):
        LinesAndOrders.serial += 1
        body = {"customerId": f"CUST-{self.serial}", "productCd": "IOT-BASIC",
                "apnCd": "iot.meter.kr", "email": f"c{self.serial}@example.com",
                "phone": f"010-0000-{self.serial:04d}", "address": "Seoul",
                "chargeAccount": f"ACC-{self.serial}"}
        body.update(fields)
        resp = self.system.call("POST", "/customers", body)
        self.assertEqual(resp.status, 201, resp)
        return resp.json()

    def order(self, svc, type_, expect=202, **extra):
        resp = self.system.call("POST", f"/customers/{svc}/orders", dict(type=type_, **extra))
        self.assertEqual(resp.status, expect, resp)
        return resp.json()

    def wait_order(self, svc, order_id, status):
        def check():
            resp = self.system.call("GET", f"/customers/{svc}/orders/{order_id}")
            return resp.json() if resp.status == 200 and resp.json()["status"] == status else None
        return wait_until(check, what=f"order {order_id} to be {status}")

    def line(self, svc):
        resp = self.system.call("GET", f"/customers/{svc}")
        self.assertEqual(resp.status, 200, resp)
        return resp.json()

    def rater(self, svc):
        resp = self.system.call("GET", f"/raters/{svc}")
        return resp.json() if resp.status == 200 else None

    def wait_use_yn(self, svc, use_yn):
        wait_until(lambda: (self.rater(svc) or {}).get("useYn") == use_yn,
                   what=f"rater useYn of {svc} to be {use_yn}")

    def customer_state(self, svc):
        """Everything the customer service holds about a line."""
        return (query(self.system.db("customer"), "SELECT * FROM lines WHERE svc_cont_no = ?",
                      (svc,)),
                query(self.system.db("customer"), "SELECT COUNT(*) FROM orders")[0][0],
                query(self.system.db("customer"), "SELECT COUNT(*) FROM events")[0][0],
                query(self.system.db("customer"), "SELECT COUNT(*) FROM notifications")[0][0])

    def sms_for(self, order_id):
        return [m for m in self.sms.messages() if m["body"]["orderId"] == order_id]

    # -- the reference design's check 1 ------------------------------------
    def test_services_run_with_small_per_thread_malloc_caches(self):
        # bss_service_exec_tuned: each service ran itself again, same pid,
        # with glibc's per-thread cache limited (issue 9's soak: the caches
        # of 50 threads held megabytes).
        for name in ("customer", "rater", "billing", "gateway"):
            pid = self.procs.procs[name].pid
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
            self.assertIn(b"glibc.malloc.tcache_max=128", env.get(b"GLIBC_TUNABLES", b""), name)

    def test_opening_a_line_creates_rater_and_charge_info(self):
        line = self.open_line(productCd="IOT-PLUS", apnCd="iot.tracker")
        svc = line["svcContNo"]
        self.assertEqual(line["svcContStatus"], "ACTIVE")
        self.assertEqual(line["productNm"], "IoT Plus")
        self.assertEqual(line["productTarif"], 9900)
        for field in ("customerId", "productCd", "apnCd", "email", "phone", "address",
                      "chargeAccount"):
            self.assertIn(field, line)
        rater = wait_until(lambda: self.rater(svc), what="rater info")
        self.assertEqual((rater["useYn"], rater["apnCd"], rater["customerId"]),
                         ("Y", "iot.tracker", line["customerId"]))
        # Charge info (from OrderCreated) and its first status record (from
        # LineStatusChanged) are two events: wait for both.
        billing = wait_until(lambda: (lambda r: r.json() if r.status == 200 and
                                      r.json()["statusHistory"] else None)(
            self.system.call("GET", f"/billings/{svc}")), what="charge info and its status")
        self.assertEqual((billing["productCd"], billing["productTarif"], billing["includedMb"],
                          billing["perMbRate"]), ("IOT-PLUS", 9900, 1024, 10))
        self.assertEqual([h["status"] for h in billing["statusHistory"]], ["ACTIVE"])
        listed = self.system.call("GET", f"/customers?customerId={line['customerId']}").json()
        self.assertEqual([item["svcContNo"] for item in listed["items"]], [svc])
        self.assertEqual(listed["total"], 1)

    def test_client_chosen_number_and_effective_time(self):
        opened = iso(datetime.datetime.now(KST) - datetime.timedelta(days=3))
        line = self.open_line(svcContNo="TRK-0001", effectiveAt=opened)
        self.assertEqual(line["svcContNo"], "TRK-0001")
        self.assertEqual(line["effectiveAt"][:19], opened[:19])
        dup = self.system.call("POST", "/customers", {"customerId": "X", "productCd": "IOT-BASIC",
                                                      "apnCd": "a.b", "svcContNo": "TRK-0001"})
        self.assertEqual(dup.status, 409, dup)
        self.assertEqual(dup.json()["code"], "LINE_EXISTS")

    # -- the reference design's check 2 ------------------------------------
    def test_every_status_transition(self):
        line = self.open_line()
        svc = line["svcContNo"]
        self.wait_use_yn(svc, "Y")
        suspended = self.order(svc, "SUSPEND")
        self.assertEqual(suspended["status"], "COMPLETED")
        self.assertEqual(self.line(svc)["svcContStatus"], "SUSPENDED")
        resumed = self.order(svc, "RESUME")
        self.assertEqual(resumed["status"], "COMPLETED")
        self.assertEqual(self.line(svc)["svcContStatus"], "ACTIVE")
        self.order(svc, "SUSPEND")
        terminated = self.order(svc, "TERMINATE")
        self.assertEqual(terminated["status"], "PENDING")
        self.wait_order(svc, terminated["orderId"], "COMPLETED")
        self.assertEqual(self.line(svc)["svcContStatus"], "TERMINATED")
        self.wait_use_yn(svc, "N")
        restored = self.order(svc, "RESTORE")
        self.assertEqual(restored["status"], "PENDING")
        self.wait_order(svc, restored["orderId"], "COMPLETED")
        self.assertEqual(self.line(svc)["svcContStatus"], "ACTIVE")
        self.wait_use_yn(svc, "Y")
        orders = self.system.call("GET", f"/customers/{svc}/orders").json()["items"]
        self.assertEqual([(o["type"], o["status"]) for o in orders],
                         [("OPEN", "COMPLETED"), ("SUSPEND", "COMPLETED"),
                          ("RESUME", "COMPLETED"), ("SUSPEND", "COMPLETED"),
                          ("TERMINATE", "COMPLETED"), ("RESTORE", "COMPLETED")])
        expected = ["ACTIVE", "SUSPENDED", "ACTIVE", "SUSPENDED", "TERMINATED", "ACTIVE"]
        wait_until(lambda: [h["status"] for h in self.system.call(
            "GET", f"/billings/{svc}").json()["statusHistory"]] == expected,
            what="billing's status history")
        # The rater hears of the last status change after it answered the
        # RESTORE (useYn Y): wait for it as for billing.
        wait_until(lambda: [h["status"] for h in (self.rater(svc) or {}).get(
            "statusHistory", [])] == expected, what="rater's status history")

    def test_backdated_orders(self):
        now = datetime.datetime.now(KST)
        line = self.open_line(effectiveAt=iso(now - datetime.timedelta(days=10)))
        svc = line["svcContNo"]
        self.order(svc, "SUSPEND", effectiveAt=iso(now - datetime.timedelta(days=5)))
        before = self.customer_state(svc)
        early = self.order(svc, "RESUME", expect=409,
                           effectiveAt=iso(now - datetime.timedelta(days=6)))
        self.assertEqual(early["code"], "EFFECTIVE_AT_BEFORE_LAST_CHANGE")
        future = self.order(svc, "RESUME", expect=422,
                            effectiveAt=iso(now + datetime.timedelta(hours=1)))
        self.assertEqual(future["code"], "EFFECTIVE_AT_IN_FUTURE")
        self.assertEqual(self.customer_state(svc), before)
        self.order(svc, "RESUME", effectiveAt=iso(now - datetime.timedelta(days=4)))
        self.assertEqual(self.line(svc)["svcContStatus"], "ACTIVE")

    def test_restore_window(self):
        now = datetime.datetime.now(KST)
        line = self.open_line(effectiveAt=iso(now - datetime.timedelta(days=60)))
        svc = line["svcContNo"]
        term = self.order(svc, "TERMINATE", effectiveAt=iso(now - datetime.timedelta(days=31)))
        self.wait_order(svc, term["orderId"], "COMPLETED")
        late = self.order(svc, "RESTORE", expect=409)
        self.assertEqual(late["code"], "RESTORE_WINDOW_EXPIRED")

    # -- the compensation path ----------------------------------------------
    def test_terminate_twice_is_rejected_by_the_rater(self):
        line = self.open_line()
        svc = line["svcContNo"]
        first = self.order(svc, "TERMINATE")
        self.wait_order(svc, first["orderId"], "COMPLETED")
        second = self.order(svc, "TERMINATE")
        self.assertEqual(second["status"], "PENDING")
        rejected = self.wait_order(svc, second["orderId"], "REJECTED")
        self.assertEqual(rejected["reason"], "ALREADY_TERMINATED")
        self.assertEqual(self.line(svc)["svcContStatus"], "TERMINATED")
        unused = self.system.events("rater", "type = 'RaterUnused' AND subject = ?", (svc,))
        self.assertEqual([e[2]["orderId"] for e in unused], [second["orderId"]])
        terminated = self.system.events("rater", "type = 'RaterTerminated' AND subject = ?", (svc,))
        self.assertEqual([e[2]["orderId"] for e in terminated], [first["orderId"]])

    # -- bad input changes nothing -----------------------------------------
    def test_invalid_transitions_and_bodies(self):
        line = self.open_line()
        svc = line["svcContNo"]
        before = self.customer_state(svc)
        cases = [
            ("POST", f"/customers/{svc}/orders", {"type": "RESUME"}, 409, "INVALID_TRANSITION"),
            ("POST", f"/customers/{svc}/orders", {"type": "RESTORE"}, 409, "INVALID_TRANSITION"),
            ("POST", f"/customers/{svc}/orders", {"type": "OPEN"}, 422, "VALIDATION_FAILED"),
            ("POST", f"/customers/{svc}/orders", {"type": "EXPLODE"}, 422, "VALIDATION_FAILED"),
            ("POST", f"/customers/{svc}/orders", {}, 422, "VALIDATION_FAILED"),
            ("POST", f"/customers/{svc}/orders", {"type": "SUSPEND", "effectiveAt": "yesterday"},
             422, "VALIDATION_FAILED"),
            ("POST", f"/customers/{svc}/orders",
             {"type": "SUSPEND", "effectiveAt": "2026-10-05T10:15:00"}, 422, "VALIDATION_FAILED"),
            ("POST", "/customers/NO-SUCH-LINE/orders", {"type": "SUSPEND"}, 404,
             "LINE_NOT_FOUND"),
            ("GET", "/customers/NO-SUCH-LINE", None, 404, "LINE_NOT_FOUND"),
            ("GET", f"/customers/{svc}/orders/nope", None, 404, "ORDER_NOT_FOUND"),
            ("POST", "/customers", {"productCd": "IOT-BASIC", "apnCd": "a.b"}, 422,
             "VALIDATION_FAILED"),
            ("POST", "/customers", {"customerId": 7, "productCd": "IOT-BASIC", "apnCd": "a.b"},
             422, "VALIDATION_FAILED"),
            ("POST", "/customers", {"customerId": "C", "productCd": "IOT-GOLD", "apnCd": "a.b"},
             422, "UNKNOWN_PRODUCT"),
            ("POST", "/customers", {"customerId": "C", "productCd": "IOT-BASIC", "apnCd": "a.b",
                                    "productTarif": 100}, 422, "PRODUCT_MISMATCH"),
            ("POST", "/customers", {"customerId": "C", "productCd": "IOT-BASIC", "apnCd": "a.b",
                                    "productNm": "Cheap"}, 422, "PRODUCT_MISMATCH"),
            ("POST", "/customers", {"customerId": "C", "productCd": "IOT-BASIC", "apnCd": "bad apn"},
             422, "VALIDATION_FAILED"),
            ("POST", "/customers", {"customerId": "C", "productCd": "IOT-BASIC", "apnCd": "a.b",
                                    "email": "not-an-email"}, 422, "VALIDATION_FAILED"),
            ("POST", "/customers", {"customerId": "C", "productCd": "IOT-BASIC", "apnCd": "a.b",
                                    "effectiveAt": "2999-01-01T00:00:00+09:00"}, 422,
             "EFFECTIVE_AT_IN_FUTURE"),
            ("POST", "/customers", "{not json", 400, "MALFORMED_JSON"),
            ("POST", "/customers", [1, 2], 400, "MALFORMED_JSON"),
            ("GET", "/customers", None, 422, "VALIDATION_FAILED"),
        ]
        for method, path, body, status, code in cases:
            headers = {"Content-Type": "application/json"} if isinstance(body, str) else None
            resp = self.system.call(method, path, body, headers)
            self.assertEqual(resp.status, status, (method, path, body, resp))
            self.assertEqual(resp.header("Content-Type"), "application/problem+json",
                             (path, body))
            problem = resp.json()
            self.assertEqual(problem["code"], code, (path, body, problem))
            self.assertEqual(problem["status"], status)
            self.assertTrue(problem["type"].startswith("https://"), problem)
            self.assertTrue(resp.header("X-Request-Id"))
        wrong_type = self.system.call("POST", "/customers", "customerId=C",
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(wrong_type.status, 415, wrong_type)
        self.assertEqual(self.customer_state(svc), before)
        self.assertEqual(query(self.system.db("customer"),
                               "SELECT COUNT(*) FROM lines WHERE customer_id = 'C'"), [(0,)])

    # -- SMS -----------------------------------------------------------------
    def test_one_sms_per_order_status_change(self):
        line = self.open_line()
        svc = line["svcContNo"]
        suspend = self.order(svc, "SUSPEND")
        resume = self.order(svc, "RESUME")
        term = self.order(svc, "TERMINATE")
        self.wait_order(svc, term["orderId"], "COMPLETED")
        again = self.order(svc, "TERMINATE")
        self.wait_order(svc, again["orderId"], "REJECTED")
        orders = self.system.call("GET", f"/customers/{svc}/orders").json()["items"]
        open_id = orders[0]["orderId"]
        expected = {(open_id, "COMPLETED"), (suspend["orderId"], "COMPLETED"),
                    (resume["orderId"], "COMPLETED"), (term["orderId"], "PENDING"),
                    (term["orderId"], "COMPLETED"), (again["orderId"], "PENDING"),
                    (again["orderId"], "REJECTED")}
        ids = {o["orderId"] for o in orders}

        def received():
            got = [(m["body"]["orderId"], m["body"]["status"]) for m in self.sms.messages()
                   if m["body"]["orderId"] in ids]
            return got if set(got) == expected else None
        got = wait_until(received, what="every SMS to arrive")
        self.assertEqual(len(got), len(expected), "an SMS was sent twice")
        for m in self.sms.messages():
            if m["body"]["orderId"] in ids:
                self.assertEqual(m["body"]["to"], line["phone"])
                self.assertEqual(m["key"], f"{m['body']['orderId']}:{m['body']['status']}")

    def test_sms_gateway_failure_is_retried(self):
        self.sms.fail_next = 2
        line = self.open_line()
        orders = self.system.call("GET", f"/customers/{line['svcContNo']}/orders").json()["items"]
        wait_until(lambda: len(self.sms_for(orders[0]["orderId"])) == 1, timeout=30,
                   what="the SMS to get through after two failures")
        self.assertEqual(self.sms.fail_next, 0)

    # -- crashes mid-saga ----------------------------------------------------
    def test_rater_killed_mid_saga(self):
        line = self.open_line()
        svc = line["svcContNo"]
        self.wait_use_yn(svc, "Y")
        self.system.kill9("rater")
        term = self.order(svc, "TERMINATE")
        self.assertEqual(term["status"], "PENDING")
        self.system.start("rater")
        self.wait_order(svc, term["orderId"], "COMPLETED")
        self.assertEqual(self.line(svc)["svcContStatus"], "TERMINATED")
        self.assert_saga_once(svc, term["orderId"])

    def test_customer_killed_mid_saga(self):
        line = self.open_line()
        svc = line["svcContNo"]
        self.wait_use_yn(svc, "Y")
        term = self.order(svc, "TERMINATE")
        # Killed right after answering: the request may or may not have been
        # published, and the rater's answer may come while it is down.
        self.system.kill9("customer")
        self.system.start("customer")
        self.wait_order(svc, term["orderId"], "COMPLETED")
        self.assert_saga_once(svc, term["orderId"])

    def assert_saga_once(self, svc, order_id):
        def rater_events():
            return [e[0] for e in self.system.events("rater", "subject = ?", (svc,))
                    if e[2].get("orderId") == order_id]
        # The rater answers once, then records the status change it caused.
        wait_until(lambda: rater_events() == ["RaterTerminated", "RaterStatusRecorded"],
                   what="the rater's answer and status record, once each")
        customer = [e[0] for e in self.system.events("customer", "subject = ?", (svc,))
                    if e[2].get("orderId") == order_id]
        self.assertEqual(customer, ["OrderCreated", "TerminationRequested", "LineStatusChanged",
                                    "OrderCompleted"])
        # A kill between the SMS gateway's answer and the queue's record of
        # it resends that SMS with the same Idempotency-Key (at least once,
        # deduplicated by the gateway): count SMS by key.
        def distinct_sms():
            by_key = {}
            for m in self.sms_for(order_id):
                by_key.setdefault(m["key"], set()).add(m["body"]["status"])
            return sorted(s for statuses in by_key.values() for s in statuses)
        wait_until(lambda: distinct_sms() == ["COMPLETED", "PENDING"],
                   what="both SMS of the saga, once each per Idempotency-Key")
        wait_until(lambda: [e[2]["status"] for e in self.system.events(
            "billing", "type = 'ChargeStatusRecorded' AND subject = ?", (svc,))] ==
            ["ACTIVE", "TERMINATED"], what="billing to record the termination once")

    # -- the gateway ---------------------------------------------------------
    def test_gateway_502_when_an_upstream_is_down(self):
        self.system.stop("billing")
        resp = self.system.call("GET", "/billings/anything")
        self.assertEqual(resp.status, 502, resp)
        self.assertEqual(resp.json()["code"], "UPSTREAM_UNAVAILABLE")
        self.assertEqual(resp.header("Content-Type"), "application/problem+json")
        unknown = self.system.call("GET", "/nowhere")
        self.assertEqual(unknown.status, 404)
        self.assertEqual(unknown.json()["code"], "ROUTE_NOT_FOUND")
        traced = self.system.call("GET", "/customers/NO-SUCH-LINE",
                                  headers={"X-Request-Id": "trace-me-1"})
        self.assertEqual(traced.header("X-Request-Id"), "trace-me-1")
        self.assertEqual(traced.json()["requestId"], "trace-me-1")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
