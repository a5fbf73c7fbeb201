"""The "my page" read model end to end: every service a real process, every
request through the gateway. Lines, orders (a rejected one too), usage and a
month end show up in GET /mypage/{customerId}; a write shows up within a
deadline; kill -9 of the mypage process in the middle of a stream of events
ends, after a restart, with the same view as the sources (no usage counted
twice)."""
import argparse
import datetime
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import System  # noqa: E402

BIN_DIR = None
SERVICES = ("customer", "rater", "billing", "mypage", "gateway")
HEADER = "recordId,svcContNo,apnCd,usageStart,bytes"
MB = 1048576
# A restarted consumer is ready once it has caught up; on Kafka that waits
# for the killed member's group session to expire first.
READY_AFTER_RESTART_S = 60


class MyPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir()
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        cls.system = System(BIN_DIR, cls.dir, cls.procs)
        cls.system.start_all(SERVICES)
        cls.serial = 0

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        cls.workdir_ctx.__exit__(None, None, None)

    def tearDown(self):
        for name in SERVICES:
            proc = self.procs.procs.get(name)
            if proc is None or proc.poll() is not None:
                self.system.start(name)
            self.system.wait_ready(name, timeout=READY_AFTER_RESTART_S)

    # -- helpers -----------------------------------------------------------
    def call(self, method, path, body=None, expect=None, headers=None):
        resp = self.system.call(method, path, body, headers)
        if expect is not None:
            self.assertEqual(resp.status, expect, f"{method} {path}: {resp}")
        return resp

    def open_line(self, customer, product="IOT-BASIC", apn="iot.meter",
                  opened="2026-09-01T00:00:00+09:00"):
        resp = self.call("POST", "/customers", {"customerId": customer, "productCd": product,
                                                "apnCd": apn, "effectiveAt": opened}, 201)
        svc = resp.json()["svcContNo"]
        # Usage is rated against the rater's copy of the line and its status
        # history (a record before the rater knows the line is ACTIVE is
        # rejected): wait for both.
        wait_until(lambda: (lambda r: r.status == 200 and r.json().get("statusHistory"))(
            self.call("GET", f"/raters/{svc}")), what=f"rater info of {svc}")
        return svc

    def order(self, svc, type_, when=None, final="COMPLETED"):
        body = {"type": type_}
        if when:
            body["effectiveAt"] = when
        order = self.call("POST", f"/customers/{svc}/orders", body, 202).json()
        wait_until(lambda: self.call("GET", f"/customers/{svc}/orders/{order['orderId']}")
                   .json()["status"] == final, what=f"{type_} of {svc} to be {final}")
        return order["orderId"]

    def upload(self, name, rows):
        body = "\n".join([HEADER] + [",".join(str(f) for f in r) for r in rows]) + "\n"
        resp = self.call("POST", f"/raters/usage-files?name={name}", body,
                         headers={"Content-Type": "text/csv"})
        self.assertEqual(resp.status, 200, resp)
        return resp.json()

    def mypage(self, customer):
        resp = self.call("GET", f"/mypage/{customer}")
        return resp.json() if resp.status == 200 else None

    def wait_view(self, customer, check, what, timeout=20):
        """Polls GET /mypage/{customer} until check(view) holds; the view."""
        return wait_until(lambda: (lambda v: v if v is not None and check(v) else None)(
            self.mypage(customer)), timeout=timeout, what=what)

    def rid(self):
        MyPage.serial += 1
        return f"mp-{self.serial}"

    def expected_view(self, customer):
        """The view as the owning services tell it, through their own APIs:
        what the read model must converge to."""
        items = self.call("GET", f"/customers?customerId={customer}", None, 200).json()["items"]
        lines = []
        for item in sorted(items, key=lambda i: i["svcContNo"]):
            svc = item["svcContNo"]
            orders = self.call("GET", f"/customers/{svc}/orders", None, 200).json()["items"]
            last = orders[-1]
            last_order = {"orderId": last["orderId"], "type": last["type"],
                          "status": last["status"]}
            if last.get("reason"):
                last_order["reason"] = last["reason"]
            periods = [r[0] for r in query(self.system.db("rater"),
                                           "SELECT period FROM usage_period WHERE svc_cont_no = ?"
                                           " ORDER BY period DESC LIMIT 1", (svc,))]
            usage = None
            if periods:
                got = self.call("GET", f"/raters/{svc}/usage?period={periods[0]}", None,
                                200).json()
                closed = bool(query(self.system.db("rater"),
                                    "SELECT 1 FROM au_close WHERE period = ?", (periods[0],)))
                usage = {"period": periods[0], "bytes": got["bytes"], "closed": closed}
            lines.append({"svcContNo": svc, "productCd": item["productCd"],
                          "productNm": item["productNm"], "svcContStatus": item["svcContStatus"],
                          "apnCd": item["apnCd"], "currentUsage": usage,
                          "lastOrder": last_order})
        invoices = self.call("GET", f"/billings/invoices?customerId={customer}", None,
                             200).json()["items"]
        return {"customerId": customer, "lines": lines,
                "invoices": [{"invoiceId": i["invoiceId"], "period": i["period"],
                              "total": i["total"], "status": i["status"]}
                             for i in sorted(invoices, key=lambda i: (i["period"],
                                                                      i["invoiceId"]))]}

    def assert_converges(self, customer, timeout=30):
        """Waits until the view equals what the owning services say (asked
        again on every poll, since they may still be moving too)."""
        def same():
            view = self.mypage(customer)
            expected = self.expected_view(customer)
            if not expected["lines"] and not expected["invoices"]:
                return self.call("GET", f"/mypage/{customer}").status == 404
            if view is None:
                return None
            view = dict(view)
            view.pop("asOf")
            return view if view == expected else None
        try:
            return wait_until(same, timeout=timeout, interval=0.1,
                              what=f"my page of {customer}")
        except AssertionError:
            self.assertEqual(self.mypage(customer), self.expected_view(customer))
            raise

    # -- the view ------------------------------------------------------------
    def test_1_lines_orders_and_usage(self):
        a1 = self.open_line("MP-A", "IOT-BASIC", "iot.meter")
        a2 = self.open_line("MP-A", "IOT-PLUS", "iot.tracker")
        b1 = self.open_line("MP-B", "IOT-UNLIMITED", "iot.vend")
        suspend = self.order(a1, "SUSPEND", "2026-10-20T00:00:00+09:00")
        terminate = self.order(a2, "TERMINATE", "2026-10-25T00:00:00+09:00")
        rejected = self.order(a2, "TERMINATE", "2026-10-26T00:00:00+09:00", final="REJECTED")
        report = self.upload("mp-oct.csv", [
            (self.rid(), a1, "iot.meter", "2026-09-30T10:00:00+09:00", 7 * MB),
            (self.rid(), a1, "iot.meter", "2026-10-05T10:00:00+09:00", 10 * MB),
            (self.rid(), a1, "iot.meter", "2026-10-06T10:00:00+09:00", 5 * MB),
            (self.rid(), a1, "iot.other", "2026-10-06T11:00:00+09:00", 99),  # other APN
            (self.rid(), a2, "iot.tracker", "2026-10-07T10:00:00+09:00", 3 * MB),
            (self.rid(), b1, "iot.vend", "2026-11-02T10:00:00+09:00", 1234),
        ])
        self.assertEqual(report["rated"], 5, report)

        def usage_of(v, svc):
            line = next((ln for ln in v["lines"] if ln["svcContNo"] == svc), None)
            return ((line or {}).get("currentUsage") or {}).get("bytes")

        # Each line's UsageRated is its own event: wait for both, not one.
        view = self.wait_view("MP-A", lambda v: len(v["lines"]) == 2 and
                              v["lines"][1]["lastOrder"].get("status") == "REJECTED" and
                              usage_of(v, a1) == 15 * MB and usage_of(v, a2) == 3 * MB,
                              what="MP-A's lines, orders and usage")
        self.assertEqual([l["svcContNo"] for l in view["lines"]], sorted([a1, a2]))
        by_svc = {l["svcContNo"]: l for l in view["lines"]}
        self.assertEqual(by_svc[a1], {
            "svcContNo": a1, "productCd": "IOT-BASIC", "productNm": by_svc[a1]["productNm"],
            "svcContStatus": "SUSPENDED", "apnCd": "iot.meter",
            "currentUsage": {"period": "2026-10", "bytes": 15 * MB, "closed": False},
            "lastOrder": {"orderId": suspend, "type": "SUSPEND", "status": "COMPLETED"}})
        self.assertEqual(by_svc[a2]["svcContStatus"], "TERMINATED")
        self.assertEqual(by_svc[a2]["productCd"], "IOT-PLUS")
        self.assertEqual(by_svc[a2]["currentUsage"],
                         {"period": "2026-10", "bytes": 3 * MB, "closed": False})
        self.assertEqual(by_svc[a2]["lastOrder"], {"orderId": rejected, "type": "TERMINATE",
                                                   "status": "REJECTED",
                                                   "reason": "ALREADY_TERMINATED"})
        self.assertNotEqual(rejected, terminate)
        self.assertEqual(view["invoices"], [])
        as_of = datetime.datetime.fromisoformat(view["asOf"])
        self.assertEqual(as_of.utcoffset(), datetime.timedelta(hours=9))
        self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - as_of)
                            .total_seconds()), 600)

        b = self.wait_view("MP-B", lambda v: v["lines"] and v["lines"][0]["currentUsage"],
                           what="MP-B's usage")
        self.assertEqual(b["lines"][0]["currentUsage"],
                         {"period": "2026-11", "bytes": 1234, "closed": False})
        self.assertEqual(b["lines"][0]["svcContStatus"], "ACTIVE")
        self.assertEqual(b["lines"][0]["lastOrder"]["type"], "OPEN")
        self.assertNotIn("reason", b["lines"][0]["lastOrder"])
        self.assert_converges("MP-A")
        self.assert_converges("MP-B")

    def test_2_month_end_shows_invoices(self):
        c1 = self.open_line("MP-C", "IOT-BASIC", "iot.meter")
        report = self.upload("mp-c.csv", [(self.rid(), c1, "iot.meter",
                                           "2026-10-03T10:00:00+09:00", 120 * MB)])
        self.assertEqual(report["rated"], 1, report)
        self.wait_view("MP-C", lambda v: v["lines"][0]["currentUsage"], what="MP-C's usage")
        resp = self.call("POST", "/raters/au-close", {"period": "2026-10"})
        self.assertIn(resp.status, (200, 202), resp)
        view = self.wait_view("MP-C", lambda v: v["invoices"], timeout=60,
                              what="MP-C's invoice")
        billed = self.call("GET", "/billings/invoices?customerId=MP-C&period=2026-10", None,
                           200).json()["items"]
        self.assertEqual(view["invoices"], [{"invoiceId": billed[0]["invoiceId"],
                                             "period": "2026-10", "total": billed[0]["total"],
                                             "status": "ISSUED"}])
        self.assertGreater(view["invoices"][0]["total"], 0)
        self.assertEqual(view["lines"][0]["currentUsage"],
                         {"period": "2026-10", "bytes": 120 * MB, "closed": True})
        # Every customer with lines in October got the invoice billing issued.
        for customer in ("MP-A", "MP-B"):
            self.assert_converges(customer, timeout=60)
        self.assert_converges("MP-C")

    def test_3_unknown_customer_is_404(self):
        resp = self.call("GET", "/mypage/NO-SUCH-CUSTOMER")
        self.assertEqual(resp.status, 404, resp)
        self.assertTrue(resp.header("Content-Type").startswith("application/problem+json"))
        self.assertEqual(resp.json()["code"], "CUSTOMER_NOT_FOUND")
        self.assertEqual(self.call("POST", "/mypage/MP-A", {}).status, 405)

    def test_4_a_write_shows_up_in_the_read_model(self):
        svc = self.open_line("MP-D")
        self.wait_view("MP-D", lambda v: [l["svcContNo"] for l in v["lines"]] == [svc],
                       timeout=10, what="the new line in the read model")
        order = self.order(svc, "SUSPEND")
        self.wait_view("MP-D", lambda v: v["lines"][0]["lastOrder"]["orderId"] == order and
                       v["lines"][0]["svcContStatus"] == "SUSPENDED", timeout=10,
                       what="the suspension in the read model")

    def test_5_kill9_mid_stream_then_restart_gives_the_same_view(self):
        lines = [self.open_line("MP-E", "IOT-BASIC", "iot.meter") for _ in range(3)]
        stop = threading.Event()
        errors = []

        def writer():
            # A stream of usage files and orders while mypage dies and restarts.
            n = 0
            try:
                while not stop.is_set() and n < 40:
                    n += 1
                    rows = [(self.rid(), svc, "iot.meter",
                             f"2026-11-{1 + n % 20:02d}T10:00:00+09:00", 1000 + n)
                            for svc in lines]
                    report = self.upload(f"mp-e-{n}.csv", rows)
                    if report["rated"] != len(rows):
                        errors.append(report)
                    if n == 10:
                        self.order(lines[0], "SUSPEND")
                    if n == 20:
                        self.order(lines[0], "RESUME")
            except Exception as exc:  # reported by the test thread
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            wait_until(lambda: self.mypage("MP-E") and
                       (self.mypage("MP-E")["lines"][0]["currentUsage"] or {}).get("bytes"),
                       what="the stream to reach the read model")
            self.system.kill9("mypage")
            wait_until(lambda: len(query(self.system.db("rater"),
                                         "SELECT 1 FROM usage_file WHERE name LIKE 'mp-e-%'"))
                       >= 15, what="more files while mypage is down")
            self.system.start("mypage")
            self.system.wait_ready("mypage", timeout=READY_AFTER_RESTART_S)
            self.system.kill9("mypage")
            self.system.start("mypage")
        finally:
            thread.join(timeout=120)
            stop.set()
        self.assertEqual(errors, [])
        self.system.wait_ready("mypage", timeout=READY_AFTER_RESTART_S)
        view = self.assert_converges("MP-E")
        for line in view["lines"]:
            self.assertEqual(line["currentUsage"]["bytes"], sum(1000 + n for n in range(1, 41)))
        # What the projection applied equals what the producers logged (on
        # nng the inbox positions are the producers' sequences; on Kafka
        # they are offsets, which the views above already cover).
        if getattr(self.system, "bus", "nng") == "nng":
            heads = {name: query(self.system.db(name), "SELECT MAX(sequence) FROM events")[0][0]
                     for name in ("customer", "rater", "billing")}
            wait_until(lambda: {s: p for s, p in query(self.system.db("mypage"),
                                                       "SELECT stream, position FROM inbox")}
                       == heads, what="mypage's inbox to reach every producer's head")
        self.assertEqual(query(self.system.db("mypage"), "SELECT COUNT(*) FROM dead_letters"),
                         [(0,)])
        for customer in ("MP-A", "MP-B", "MP-C", "MP-D"):
            self.assert_converges(customer)

    def test_6_sigterm_stops_cleanly_and_the_view_survives(self):
        before = self.mypage("MP-A")
        self.assertEqual(self.system.stop("mypage"), 0, self.procs.log_of("mypage"))
        log = self.procs.log_of("mypage")
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)
        self.assertEqual(self.call("GET", "/mypage/MP-A").status, 502)
        self.system.start("mypage")
        self.system.wait_ready("mypage", timeout=READY_AFTER_RESTART_S)
        self.assertEqual(self.mypage("MP-A"), before)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
