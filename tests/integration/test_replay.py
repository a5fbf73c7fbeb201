"""bssiot-replay against the logs of a real system: every service a real
process, a workload through the gateway (lines opened, suspended, resumed,
terminated, a usage file, the month end), then the tool run as an operator
would run it, beside the running services: timeline, events, at, corrupt
rows, and rebuild + verify of the mypage read model."""
import argparse
import collections
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import System  # noqa: E402

BIN_DIR = None
STORES = ("customer", "rater", "billing", "settlement")


def iso(ms):
    """An instant in epoch ms as ISO-8601 with offset, to the millisecond."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(
        timespec="milliseconds")


class ReplayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir()
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        cls.has_mypage = os.path.exists(os.path.join(BIN_DIR, "bssiot-mypage"))
        cls.system = System(BIN_DIR, cls.dir, cls.procs, {"BSS_RATER_SPOOL_POLL_MS": "50"})
        services = ["customer", "rater", "billing", "settlement"]
        if cls.has_mypage:
            services.append("mypage")
        cls.system.start_all(tuple(services) + ("gateway",))
        try:
            cls.workload()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        cls.workdir_ctx.__exit__(None, None, None)

    @classmethod
    def call(cls, method, path, body=None, expect=None, headers=None):
        resp = cls.system.call(method, path, body, headers)
        if expect is not None and resp.status != expect:
            raise AssertionError(f"{method} {path}: {resp}")
        return resp

    @classmethod
    def open_line(cls, customer, product):
        return cls.call("POST", "/customers", {
            "customerId": customer, "productCd": product, "apnCd": "iot.fleet",
            "email": f"{customer.lower()}@example.com",
            "effectiveAt": "2026-10-01T00:00:00+09:00"}, 201).json()["svcContNo"]

    @classmethod
    def order(cls, svc, type_, when):
        order = cls.call("POST", f"/customers/{svc}/orders",
                         {"type": type_, "effectiveAt": when}, 202).json()
        wait_until(lambda: cls.call("GET", f"/customers/{svc}/orders/{order['orderId']}")
                   .json()["status"] == "COMPLETED", what=f"{type_} of {svc}")

    @classmethod
    def workload(cls):
        cls.l1 = cls.open_line("CUST-R1", "IOT-BASIC")
        cls.l2 = cls.open_line("CUST-R1", "IOT-PLUS")
        cls.l3 = cls.open_line("CUST-R2", "IOT-BASIC")
        cls.order(cls.l1, "SUSPEND", "2026-10-05T00:00:00+09:00")
        cls.order(cls.l1, "RESUME", "2026-10-06T00:00:00+09:00")
        cls.order(cls.l1, "TERMINATE", "2026-10-20T00:00:00+09:00")
        rows = [f"rp-1,{cls.l1},iot.fleet,2026-10-03T08:00:00+09:00,5000000",
                f"rp-2,{cls.l2},iot.fleet,2026-10-04T08:00:00+09:00,7000000",
                f"rp-3,{cls.l1},iot.fleet,2026-10-07T08:00:00+09:00,1000000"]
        body = "recordId,svcContNo,apnCd,usageStart,bytes\n" + "\n".join(rows) + "\n"
        resp = cls.call("POST", "/raters/usage-files?name=replay.csv", body, 200,
                        {"Content-Type": "text/csv"})
        assert resp.json()["rated"] == 3, resp
        cls.call("POST", "/raters/au-close", {"period": "2026-10"}, 202)
        wait_until(lambda: (lambda r: r.status == 200 and r.json()["status"] == "COMPLETED")(
            cls.call("GET", "/settlements/2026-10")), timeout=60,
            what="settlement of 2026-10 to complete")

    def replay(self, *args, data_dir=None, expect=0):
        """Runs bssiot-replay; asserts its exit status; (stdout, stderr)."""
        env = dict(os.environ, BSS_DATA_DIR=data_dir or self.system.data_dir, BSS_TZ="Asia/Seoul")
        proc = subprocess.run([os.path.join(BIN_DIR, "bssiot-replay"), *args], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, expect,
                         f"bssiot-replay {' '.join(args)}: {proc.stderr}\n{proc.stdout[:2000]}")
        return proc.stdout, proc.stderr

    def json_lines(self, *args, **kw):
        out, _ = self.replay(*args, "--json", **kw)
        return [json.loads(line) for line in out.splitlines()]

    def assert_causal(self, events):
        """Each event after its cause (when listed) and after every earlier
        event of its own source."""
        seen, last_seq = set(), {}
        ids = {e["id"] for e in events}
        for e in events:
            if e["causationId"] in ids:
                self.assertIn(e["causationId"], seen, f"{e['type']} before its cause")
            self.assertGreater(e["sequence"], last_seq.get(e["source"], 0))
            last_seq[e["source"]] = e["sequence"]
            seen.add(e["id"])

    def test_timeline_of_a_line_tells_its_whole_story_in_causal_order(self):
        events = self.json_lines("timeline", "--line", self.l1)
        self.assert_causal(events)
        counts = collections.Counter((e["source"], e["type"]) for e in events)
        self.assertEqual(counts, collections.Counter({
            ("customer", "OrderCreated"): 4, ("customer", "LineStatusChanged"): 4,
            ("customer", "OrderCompleted"): 4, ("customer", "TerminationRequested"): 1,
            ("rater", "RaterCreated"): 1, ("rater", "RaterStatusRecorded"): 4,
            ("rater", "RaterTerminated"): 1, ("rater", "UsageRated"): 1,
            ("rater", "UsageMoved"): 1,
            ("billing", "ChargeInfoCreated"): 1, ("billing", "ChargeStatusRecorded"): 4,
            ("billing", "ChargeCalculated"): 1, ("billing", "InvoiceIssued"): 1}))
        customer = [e["type"] for e in events if e["source"] == "customer"]
        self.assertEqual(customer, ["OrderCreated", "LineStatusChanged", "OrderCompleted"] * 3 +
                         ["OrderCreated", "TerminationRequested", "LineStatusChanged",
                          "OrderCompleted"])
        types = [e["type"] for e in events]
        # The saga: asked, confirmed by the rater, then the status changes.
        self.assertLess(types.index("TerminationRequested"), types.index("RaterTerminated"))
        terminated = next(i for i, e in enumerate(events) if e["type"] == "LineStatusChanged"
                          and e["data"]["to"] == "TERMINATED")
        self.assertLess(types.index("RaterTerminated"), terminated)
        # Why it was charged: usage -> moved -> charge -> invoice.
        order = [types.index(t) for t in ("UsageRated", "UsageMoved", "ChargeCalculated",
                                          "InvoiceIssued")]
        self.assertEqual(order, sorted(order))
        charge = events[types.index("ChargeCalculated")]["data"]
        self.assertEqual(charge["usageBytes"], "6000000")
        invoice = events[types.index("InvoiceIssued")]
        self.assertEqual(invoice["subject"], "INV-202610-CUST-R1")
        self.assertNotIn(self.l2, {e["subject"] for e in events})

        text, _ = self.replay("timeline", "--line", self.l1)
        lines = text.splitlines()
        self.assertEqual(len(lines), len(events))
        charge_line = next(line for line in lines if " ChargeCalculated " in line)
        self.assertIn("usageBytes=6000000", charge_line)
        self.assertIn(f"total={charge['total']}", charge_line)
        self.assertIn("+09:00 billing#", charge_line)
        self.assertIn(f"lineTotal={charge['total']}",
                      next(line for line in lines if " InvoiceIssued " in line))

    def test_timeline_of_a_customer_covers_its_lines_and_invoice(self):
        events = self.json_lines("timeline", "--customer", "CUST-R1")
        self.assert_causal(events)
        subjects = {e["subject"] for e in events}
        self.assertLessEqual({self.l1, self.l2, "INV-202610-CUST-R1"}, subjects)
        self.assertNotIn(self.l3, subjects)
        self.assertEqual(sum(e["type"] == "ChargeCalculated" for e in events), 2)

    def test_events_filters_by_source_type_subject_and_time(self):
        charges = self.json_lines("events", "--source", "billing", "--type", "ChargeCalculated")
        expected = query(self.system.db("billing"), "SELECT sequence, subject FROM events"
                         " WHERE type = 'ChargeCalculated' ORDER BY sequence")
        self.assertEqual([(e["sequence"], e["subject"]) for e in charges], expected)
        self.assertEqual({e["subject"] for e in charges}, {self.l1, self.l2, self.l3})

        only_l2 = self.json_lines("events", "--subject", self.l2)
        self.assertTrue(only_l2)
        self.assertEqual({e["subject"] for e in only_l2}, {self.l2})
        self.assertEqual({e["source"] for e in only_l2}, {"customer", "rater", "billing"})

        times = [t for (t,) in query(self.system.db("customer"),
                                     "SELECT time_ms FROM events ORDER BY sequence")]
        since, until = times[3], times[-4]
        window = self.json_lines("events", "--source", "customer", "--since", iso(since),
                                 "--until", iso(until))
        expected = query(self.system.db("customer"), "SELECT sequence FROM events WHERE"
                         " time_ms BETWEEN ? AND ? ORDER BY sequence", (since, until))
        self.assertEqual([e["sequence"] for e in window], [s for (s,) in expected])

        everything = self.json_lines("events")
        total = sum(query(self.system.db(s), "SELECT COUNT(*) FROM events")[0][0] for s in STORES)
        self.assertGreaterEqual(len(everything), total)  # the read model's log may add its own
        self.assertEqual(sorted(e["timeMs"] for e in everything), [e["timeMs"] for e in everything])

        _, err = self.replay("events", "--since", "yesterday", expect=64)
        self.assertIn("--since", err)

    def test_at_answers_before_and_after_the_termination(self):
        ordered = query(self.system.db("customer"), "SELECT time_ms, type, data FROM events"
                        " WHERE subject = ? ORDER BY sequence", (self.l1,))
        # Just before the TERMINATE order was accepted (its OrderCreated, not
        # the TerminationRequested that follows it, possibly a few ms later).
        ordered_at = next(t for t, typ, d in ordered if typ == "OrderCreated"
                          and json.loads(d)["type"] == "TERMINATE")
        terminated = next(t for t, typ, d in ordered if typ == "LineStatusChanged"
                          and json.loads(d)["to"] == "TERMINATED")
        before = self.json_lines("at", "--line", self.l1, "--time", iso(ordered_at - 1))[0]
        self.assertEqual(before["status"], "ACTIVE")
        self.assertEqual(before["productCd"], "IOT-BASIC")
        self.assertEqual(before["lastOrder"]["type"], "RESUME")
        self.assertEqual(before["charges"], [])
        # OrderCompleted follows the status change, possibly a few ms later.
        completed = next(t for t, typ, d in ordered if typ == "OrderCompleted"
                         and json.loads(d)["type"] == "TERMINATE")
        after = self.json_lines("at", "--line", self.l1, "--time",
                                iso(max(terminated, completed)))[0]
        self.assertEqual(after["status"], "TERMINATED")
        self.assertEqual(after["statusEffectiveAt"], "2026-10-20T00:00:00.000+09:00")
        self.assertEqual(after["lastOrder"], {"orderId": after["lastOrder"]["orderId"],
                                              "type": "TERMINATE", "status": "COMPLETED"})
        now = self.json_lines("at", "--line", self.l1, "--time", iso(2 ** 41))[0]
        self.assertEqual(now["usage"], [{"period": "2026-10", "bytes": "6000000", "records": 2,
                                         "movedBytes": "6000000"}])
        self.assertEqual(len(now["charges"]), 1)
        self.assertEqual(now["invoices"][0]["lineTotal"], now["charges"][0]["total"])
        text, _ = self.replay("at", "--line", self.l1, "--time", iso(ordered_at - 1))
        self.assertIn("status      ACTIVE", text)
        unknown = self.json_lines("at", "--line", "7999999999", "--time", iso(terminated))[0]
        self.assertEqual((unknown["known"], unknown["status"]), (False, "UNKNOWN"))

    def copy_stores(self, name):
        """A consistent copy of every store (SQLite's backup API: safe while
        the services write)."""
        target = os.path.join(self.dir, name)
        os.makedirs(target)
        for store in STORES:
            src = sqlite3.connect(f"file:{self.system.db(store)}?mode=ro", uri=True)
            dst = sqlite3.connect(os.path.join(target, f"{store}.db"))
            src.backup(dst)
            src.close()
            dst.close()
        return target

    def test_corrupt_and_truncated_rows_are_reported_and_passed_over(self):
        copy = self.copy_stores("corrupt")
        db = sqlite3.connect(os.path.join(copy, "customer.db"))
        seqs = [s for (s,) in db.execute("SELECT sequence FROM events WHERE subject = ?"
                                         " ORDER BY sequence", (self.l1,))]
        garbage, truncated = seqs[4], seqs[7]
        db.execute("UPDATE events SET data = 'garbage' WHERE sequence = ?", (garbage,))
        db.execute("UPDATE events SET data = substr(data, 1, length(data) / 2)"
                   " WHERE sequence = ?", (truncated,))
        db.commit()
        db.close()
        total = sum(query(os.path.join(copy, f"{s}.db"), "SELECT COUNT(*) FROM events")[0][0]
                    for s in STORES)
        out, err = self.replay("events", "--json", data_dir=copy, expect=2)
        self.assertEqual(len(out.splitlines()), total - 2)
        db_path = os.path.join(copy, "customer.db")
        for seq in (garbage, truncated):
            self.assertIn(f"db {db_path}, source customer, sequence {seq}:", err)
        self.assertIn("data is not a JSON object", err)
        self.assertEqual(len(err.strip().splitlines()), 2, err)

        events = self.json_lines("timeline", "--line", self.l1, data_dir=copy, expect=2)
        clean = self.json_lines("timeline", "--line", self.l1)
        self.assertEqual(len(events), len(clean) - 2)
        _, err = self.replay("at", "--line", self.l1, "--time", iso(2 ** 41), data_dir=copy,
                             expect=2)
        self.assertIn(f"sequence {garbage}", err)

    def test_rebuild_and_verify_the_read_model(self):
        if not self.has_mypage:
            self.skipTest("bssiot-mypage is not built: rebuild/verify need the live read model")
        live = self.system.db("mypage")
        heads = {s: query(self.system.db(s), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]
                 for s in ("customer", "rater", "billing")}
        wait_until(lambda: dict(query(live, "SELECT stream, position FROM inbox")) == heads,
                   timeout=30, what="the read model to catch up with every log")
        rebuilt = os.path.join(self.dir, "mypage-rebuilt.db")
        _, err = self.replay("rebuild", "--projection", "mypage", "--out", rebuilt)
        self.assertIn("events/s", err)
        self.assertFalse([f for f in os.listdir(self.dir) if ".tmp-" in f])
        out, _ = self.replay("verify", "--projection", "mypage", "--rebuilt", rebuilt)
        self.assertIn("verify: equal", out)
        out, _ = self.replay("verify", "--projection", "mypage")
        self.assertIn("verify: equal", out)
        self.assertGreater(query(rebuilt, "SELECT COUNT(*) FROM mypage_line")[0][0], 2)

        # An event the projection refuses (well-formed, but not what its type
        # promises) is left out as the live consumer dead-letters it; the
        # rest of the rebuild is whole.
        copy = self.copy_stores("rejected")
        db = sqlite3.connect(os.path.join(copy, "rater.db"))
        (seq,) = db.execute("SELECT MIN(sequence) FROM events WHERE type = 'UsageRated'"
                            " AND subject = ?", (self.l2,)).fetchone()
        db.execute("UPDATE events SET data = '{\"periods\":\"none\"}' WHERE sequence = ?",
                   (seq,))
        db.commit()
        db.close()
        partial = os.path.join(self.dir, "mypage-rejected.db")
        _, err = self.replay("rebuild", "--projection", "mypage", "--out", partial,
                             data_dir=copy, expect=2)
        self.assertIn(f"source rater, sequence {seq} (UsageRated)", err)
        self.assertIn("1 rejected", err)
        self.assertEqual(query(partial, "SELECT COUNT(*) FROM mypage_line"),
                         query(rebuilt, "SELECT COUNT(*) FROM mypage_line"))
        self.assertEqual(query(partial, "SELECT COUNT(*) FROM mypage_usage WHERE svc_cont_no = ?",
                               (self.l2,))[0][0], 0)
        self.assertEqual(query(partial, "SELECT * FROM mypage_usage WHERE svc_cont_no = ?",
                               (self.l1,)),
                         query(rebuilt, "SELECT * FROM mypage_usage WHERE svc_cont_no = ?",
                               (self.l1,)))

        db = sqlite3.connect(rebuilt)
        db.execute("UPDATE mypage_line SET product_cd = 'IOT-FORGED' WHERE svc_cont_no = ?",
                   (self.l2,))
        db.commit()
        db.close()
        out, _ = self.replay("verify", "--projection", "mypage", "--rebuilt", rebuilt, expect=1)
        self.assertIn("only in rebuilt", out)
        self.assertIn("IOT-FORGED", out)
        self.assertIn("only in live", out)


class KafkaReplayTest(unittest.TestCase):
    """The same tool reading the Kafka topics of a system on the Kafka bus
    (librdkafka's mock cluster, 3 partitions per topic, so events of one
    source arrive spread over partitions and must be merged back into
    sequence order): every answer equals the one read from the SQLite logs,
    and a rebuild from the topics verifies equal to the live read model,
    whose inbox holds Kafka offsets."""

    PARTITIONS = 3
    STREAMS = ("customer", "rater", "billing")

    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir(prefix="bss-kreplay-")
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        try:
            cls.system = System(BIN_DIR, cls.dir, cls.procs, {"BSS_RATER_SPOOL_POLL_MS": "50"},
                                bus="kafka", kafka_partitions=cls.PARTITIONS)
            cls.system.start_all(("customer", "rater", "billing", "mypage", "gateway"),
                                 timeout=40)
            cls.workload()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        cls.workdir_ctx.__exit__(None, None, None)

    @classmethod
    def workload(cls):
        call = cls.system.call
        cls.lines = []
        for i, customer in enumerate(("CUST-K1", "CUST-K1", "CUST-K2", "CUST-K3")):
            resp = call("POST", "/customers", {
                "customerId": customer, "productCd": "IOT-BASIC", "apnCd": "iot.fleet",
                "effectiveAt": "2026-10-01T00:00:00+09:00"})
            assert resp.status == 201, resp
            cls.lines.append(resp.json()["svcContNo"])
        for svc, when in ((cls.lines[0], "05"), (cls.lines[2], "06")):
            resp = call("POST", f"/customers/{svc}/orders",
                        {"type": "SUSPEND", "effectiveAt": f"2026-10-{when}T00:00:00+09:00"})
            assert resp.status == 202, resp
        def known(svc):  # the line and its ACTIVE status: two events, two partitions' worth
            resp = call("GET", f"/raters/{svc}")
            return resp.status == 200 and len(resp.json().get("statusHistory", [])) > 0
        wait_until(lambda: all(known(svc) for svc in cls.lines),
                   timeout=30, what="the rater to know every line and its status")
        rows = [f"kp-{i},{svc},iot.fleet,2026-10-0{i + 2}T08:00:00+09:00,{(i + 1) * 1000000}"
                for i, svc in enumerate(cls.lines)]
        body = "recordId,svcContNo,apnCd,usageStart,bytes\n" + "\n".join(rows) + "\n"
        resp = call("POST", "/raters/usage-files?name=kafka-replay.csv", body,
                    {"Content-Type": "text/csv"})
        assert resp.status == 200 and resp.json()["rated"] == 4, resp
        resp = call("POST", f"/customers/{cls.lines[1]}/orders",
                    {"type": "TERMINATE", "effectiveAt": "2026-10-07T00:00:00+09:00"})
        assert resp.status == 202, resp
        order = resp.json()["orderId"]
        wait_until(lambda: call("GET", f"/customers/{cls.lines[1]}/orders/{order}")
                   .json()["status"] == "COMPLETED", timeout=30, what="the termination")
        # Everything published (outboxes empty, each topic holding its whole
        # log) and applied by the live read model (its inbox: next offsets).
        live = cls.system.db("mypage")

        def settled():
            for stream in cls.STREAMS:
                db = cls.system.db(stream)
                if query(db, "SELECT COUNT(*) FROM outbox")[0][0] != 0:
                    return False
                head = query(db, "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]
                count = int(cls.system.kafka.command(f"last bssiot.{stream}.events").split()[1])
                applied = query(live, "SELECT COALESCE(SUM(position), 0) FROM inbox"
                                " WHERE stream = ?", (stream,))[0][0]
                if count != head or applied != head:
                    return False
            return True
        wait_until(settled, timeout=30, interval=0.1,
                   what="every event published and applied by the read model")

    def replay(self, *args, kafka=True, expect=0):
        env = dict(os.environ, BSS_DATA_DIR=self.system.data_dir, BSS_TZ="Asia/Seoul")
        env.pop("BSS_BUS", None)
        flags = ["--kafka-brokers", self.system.kafka.bootstraps] if kafka else []
        proc = subprocess.run([os.path.join(BIN_DIR, "bssiot-replay"), *args, *flags], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, expect,
                         f"bssiot-replay {' '.join(args)}: {proc.stderr}\n{proc.stdout[:2000]}")
        return proc.stdout, proc.stderr

    def test_timeline_from_the_topics_equals_the_one_from_the_logs(self):
        for svc in self.lines:
            for extra in ((), ("--json",)):
                from_kafka, _ = self.replay("timeline", "--line", svc, *extra)
                from_logs, _ = self.replay("timeline", "--line", svc, *extra, kafka=False)
                self.assertTrue(from_logs.strip())
                self.assertEqual(from_kafka, from_logs)
        events = [json.loads(line) for line in
                  self.replay("timeline", "--line", self.lines[1], "--json")[0].splitlines()]
        types = [e["type"] for e in events]
        self.assertLess(types.index("TerminationRequested"), types.index("RaterTerminated"))
        customer, _ = self.replay("timeline", "--customer", "CUST-K1")
        self.assertEqual(customer, self.replay("timeline", "--customer", "CUST-K1",
                                               kafka=False)[0])

    def test_events_and_at_from_the_topics_equal_the_logs(self):
        args = ("events", "--source", "customer,rater,billing", "--json")
        from_kafka = [json.loads(line) for line in self.replay(*args)[0].splitlines()]
        from_logs = [json.loads(line) for line in self.replay(*args, kafka=False)[0].splitlines()]
        self.assertEqual(from_kafka, from_logs)
        for stream in self.STREAMS:
            # Each source in the order of its log, though spread over partitions.
            seqs = [e["sequence"] for e in from_kafka if e["source"] == stream]
            head = query(self.system.db(stream), "SELECT MAX(sequence) FROM events")[0][0]
            self.assertEqual(seqs, list(range(1, head + 1)))
        only, _ = self.replay("events", "--source", "customer", "--type", "OrderCreated",
                              "--subject", self.lines[0], "--json")
        self.assertEqual(len(only.splitlines()), 2)
        at = ("at", "--line", self.lines[0], "--time", "2100-01-01T00:00:00+09:00", "--json")
        self.assertEqual(self.replay(*at)[0], self.replay(*at, kafka=False)[0])

    def test_rebuild_from_the_topics_verifies_equal_to_the_live_read_model(self):
        rebuilt = os.path.join(self.dir, "mypage-from-kafka.db")
        _, err = self.replay("rebuild", "--projection", "mypage", "--out", rebuilt)
        self.assertIn("0 duplicates dropped", err)
        # The rebuild's inbox is in the live one's terms: offsets per partition.
        self.assertEqual(
            query(rebuilt, "SELECT stream, partition, position FROM inbox ORDER BY 1, 2"),
            query(self.system.db("mypage"), "SELECT stream, partition, position FROM inbox"
                  " WHERE position > 0 ORDER BY 1, 2"))
        out, _ = self.replay("verify", "--projection", "mypage", "--rebuilt", rebuilt)
        self.assertIn("verify: equal", out)
        out, _ = self.replay("verify", "--projection", "mypage")
        self.assertIn("verify: equal", out)
        self.assertEqual(query(rebuilt, "SELECT COUNT(*) FROM mypage_line")[0][0], 4)
        # BSS_BUS=kafka with BSS_KAFKA_BROKERS, as the services take it, works too.
        env = dict(os.environ, BSS_DATA_DIR=self.system.data_dir, BSS_BUS="kafka",
                   BSS_KAFKA_BROKERS=self.system.kafka.bootstraps)
        proc = subprocess.run([os.path.join(BIN_DIR, "bssiot-replay"), "verify", "--projection",
                               "mypage"], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("verify: equal", proc.stdout)

    def test_a_topic_prefix_without_topics_reads_nothing(self):
        env = dict(os.environ, BSS_DATA_DIR=self.system.data_dir,
                   BSS_KAFKA_TOPIC_PREFIX="nosuchprefix")
        proc = subprocess.run([os.path.join(BIN_DIR, "bssiot-replay"), "timeline", "--line",
                               self.lines[0], "--kafka-brokers", self.system.kafka.bootstraps],
                              env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual((proc.returncode, proc.stdout), (0, ""), proc.stderr)
        self.assertIn("no events about", proc.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
