"""Usage rating end to end: usage files through the gateway and the spool
directory, every record in exactly one bucket, nothing counted twice, also
across a crash of the rater in the middle of a file."""
import argparse
import json
import os
import sqlite3
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import System  # noqa: E402

BIN_DIR = None
HEADER = "recordId,svcContNo,apnCd,usageStart,bytes"


def csv(rows, header=HEADER, newline="\n"):
    return newline.join([header] + [",".join(str(f) for f in r) for r in rows]) + newline


class Usage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir()
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        cls.system = System(BIN_DIR, cls.dir, cls.procs, {"BSS_RATER_SPOOL_POLL_MS": "50"})
        cls.system.start_all()
        cls.serial = 0

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        cls.workdir_ctx.__exit__(None, None, None)

    def new_line(self, apn="iot.meter", opened="2026-09-01T00:00:00+09:00"):
        Usage.serial += 1
        resp = self.system.call("POST", "/customers", {
            "customerId": f"U{self.serial}", "productCd": "IOT-BASIC", "apnCd": apn,
            "effectiveAt": opened})
        self.assertEqual(resp.status, 201, resp)
        svc = resp.json()["svcContNo"]
        # The rater learns of the line (RaterCreated) and of its ACTIVE status
        # (LineStatusChanged) from two events: usage is rated only after both.
        def active_in_rater():
            resp = self.system.call("GET", f"/raters/{svc}")
            return resp.status == 200 and len(resp.json().get("statusHistory", [])) > 0
        wait_until(active_in_rater, what="rater info with the line's status")
        return svc

    def upload(self, name, body, content_type="text/csv"):
        return self.system.call("POST", f"/raters/usage-files?name={name}", body,
                                {"Content-Type": content_type})

    def usage(self, svc, period):
        resp = self.system.call("GET", f"/raters/{svc}/usage?period={period}")
        self.assertEqual(resp.status, 200, resp)
        return resp.json()

    def rid(self, tag):
        Usage.serial += 1
        return f"{tag}-{self.serial}"

    def test_every_bucket_and_the_stored_report(self):
        svc = self.new_line()
        sus = self.new_line()
        self.assertEqual(self.system.call("POST", f"/customers/{sus}/orders", {
            "type": "SUSPEND", "effectiveAt": "2026-10-10T00:00:00+09:00"}).status, 202)
        wait_until(lambda: len(self.system.call("GET", f"/raters/{sus}").json()["statusHistory"])
                   == 2, what="the rater to know of the suspension")
        dup = self.rid("dup")
        rows = [
            (self.rid("ok"), svc, "iot.meter", "2026-10-05T10:15:00+09:00", 1000),   # rated
            (dup, svc, "iot.meter", "2026-10-06T10:15:00+09:00", 2000),              # rated
            (dup, svc, "iot.meter", "2026-10-06T10:15:00+09:00", 2000),              # DUPLICATE
            (self.rid("apn"), svc, "iot.other", "2026-10-05T10:15:00+09:00", 7),     # APN_MISMATCH
            (self.rid("unk"), "NO-SUCH-LINE", "iot.meter", "2026-10-05T10:15:00+09:00", 7),
            (self.rid("early"), svc, "iot.meter", "2026-08-31T23:59:59+09:00", 7),   # before open
            (self.rid("susp"), sus, "iot.meter", "2026-10-11T00:00:00+09:00", 7),    # suspended
            (self.rid("before"), sus, "iot.meter", "2026-10-09T23:59:59+09:00", 5),  # rated
            (self.rid("bad"), svc, "iot.meter", "2026-10-05T10:15:00", 7),           # no offset
            (self.rid("neg"), svc, "iot.meter", "2026-10-05T10:15:00+09:00", -1),
            (self.rid("big"), svc, "iot.meter", "2026-10-05T10:15:00+09:00", 2**63),
            (self.rid("few"), svc, "iot.meter"),
        ]
        name = self.rid("buckets") + ".csv"
        resp = self.upload(name, csv(rows))
        self.assertEqual(resp.status, 200, resp)
        report = resp.json()
        self.assertEqual((report["records"], report["rated"], report["duplicates"],
                          report["rejected"]), (12, 3, 1, 8))
        reasons = [(r["line"], r["reason"]) for r in report["rejections"]]
        self.assertEqual(reasons, [(4, "DUPLICATE"), (5, "APN_MISMATCH"), (6, "UNKNOWN_LINE"),
                                   (7, "LINE_NOT_ACTIVE"), (8, "LINE_NOT_ACTIVE"),
                                   (10, "MALFORMED"), (11, "MALFORMED"), (12, "MALFORMED"),
                                   (13, "MALFORMED")])
        for r in report["rejections"]:
            if r["reason"] == "MALFORMED":
                self.assertTrue(r["detail"], r)
        self.assertEqual(self.usage(svc, "2026-10")["bytes"], 3000)
        self.assertEqual(self.usage(svc, "2026-10")["records"], 2)
        self.assertEqual(self.usage(sus, "2026-10")["bytes"], 5)
        stored = self.system.call("GET", f"/raters/usage-files/{name}").json()
        self.assertEqual(stored["rejections"], report["rejections"])
        self.assertEqual(stored["rated"], 3)
        # One UsageRated per line per file.
        events = self.system.events("rater", "type = 'UsageRated'")
        mine = [(s, d) for t, s, d in events if d["fileName"] == name]
        self.assertEqual(sorted(s for s, _ in mine), sorted([svc, sus]))
        by_line = {s: d for s, d in mine}
        self.assertEqual(by_line[svc]["periods"], [{"period": "2026-10", "bytes": "3000",
                                                    "records": 2}])
        self.assertEqual(self.system.call("GET", "/raters/usage-files/never.csv").status, 404)

    def test_month_boundaries_in_the_billing_time_zone(self):
        svc = self.new_line()
        rows = [
            (self.rid("b"), svc, "iot.meter", "2026-10-01T00:00:00+09:00", 1),   # first second
            (self.rid("b"), svc, "iot.meter", "2026-10-31T23:59:59+09:00", 2),   # last second
            (self.rid("b"), svc, "iot.meter", "2026-10-31T15:00:00Z", 4),        # Nov 1 00:00 KST
            (self.rid("b"), svc, "iot.meter", "2026-09-30T14:59:59Z", 8),        # Sep 30 23:59:59
            (self.rid("b"), svc, "iot.meter", "2026-10-31T09:59:59-05:00", 16),  # Oct 31 23:59:59
            (self.rid("b"), svc, "iot.meter", "2026-10-31T10:00:00-05:00", 32),  # Nov 1 00:00:00
        ]
        self.assertEqual(self.upload(self.rid("edges") + ".csv", csv(rows)).json()["rated"], 6)
        self.assertEqual(self.usage(svc, "2026-09")["bytes"], 8)
        self.assertEqual(self.usage(svc, "2026-10")["bytes"], 1 + 2 + 16)
        self.assertEqual(self.usage(svc, "2026-11")["bytes"], 4 + 32)
        periods = self.system.call("GET", f"/raters/{svc}").json()["usage"]
        self.assertEqual([p["period"] for p in periods], ["2026-11", "2026-10", "2026-09"])

    def test_64_bit_counts_stay_exact(self):
        svc = self.new_line()
        big = 2**63 - 1 - 12345
        rows = [(self.rid("huge"), svc, "iot.meter", "2026-10-02T00:00:00+09:00", big)]
        self.assertEqual(self.upload(self.rid("huge") + ".csv", csv(rows)).json()["rated"], 1)
        resp = self.system.call("GET", f"/raters/{svc}/usage?period=2026-10")
        self.assertIn(f'"bytes":{big}'.encode(), resp.body)
        event = [d for t, s, d in self.system.events("rater", "type = 'UsageRated' AND subject = ?",
                                                      (svc,))]
        self.assertEqual(event[0]["periods"][0]["bytes"], str(big))

    def test_header_empty_crlf_and_huge_lines(self):
        svc = self.new_line()
        files_before = query(self.system.db("rater"), "SELECT COUNT(*) FROM usage_file")[0][0]
        bad = self.upload(self.rid("hdr") + ".csv", csv([], header="id,line,apn,start,bytes"))
        self.assertEqual(bad.status, 422, bad)
        self.assertEqual(bad.json()["code"], "INVALID_HEADER")
        self.assertEqual(query(self.system.db("rater"), "SELECT COUNT(*) FROM usage_file")[0][0],
                         files_before)
        self.assertEqual(self.upload("x.csv", csv([]), "application/json").status, 415)
        self.assertEqual(self.upload("..%2Fetc", csv([])).status, 422)
        empty = self.upload(self.rid("empty") + ".csv", "")
        self.assertEqual((empty.status, empty.json()["records"]), (200, 0), empty)
        only_header = self.upload(self.rid("hdronly") + ".csv", HEADER + "\n")
        self.assertEqual(only_header.json()["records"], 0)
        rows = [(self.rid("crlf"), svc, "iot.meter", "2026-10-03T00:00:00+09:00", 10),
                (self.rid("crlf"), svc, "iot.meter", "2026-10-03T00:00:01+09:00", 20)]
        crlf = self.upload(self.rid("crlf") + ".csv", csv(rows, newline="\r\n"))
        self.assertEqual(crlf.json()["rated"], 2, crlf)
        huge = csv([(self.rid("long"), svc, "iot.meter", "2026-10-03T00:00:00+09:00", 1)])
        huge += "x" * 100000 + "\n" + f"{self.rid('after')},{svc},iot.meter,2026-10-03T00:00:00+09:00,5\n"
        report = self.upload(self.rid("huge") + ".csv", huge).json()
        self.assertEqual((report["records"], report["rated"], report["rejected"]), (3, 2, 1))
        self.assertEqual(report["rejections"][0]["line"], 3)
        self.assertEqual(report["rejections"][0]["reason"], "MALFORMED")
        self.assertEqual(self.usage(svc, "2026-10")["bytes"], 10 + 20 + 1 + 5)

    def test_resending_a_file_rates_nothing_twice(self):
        svc = self.new_line()
        rows = [(self.rid("again"), svc, "iot.meter", "2026-10-04T00:00:00+09:00", 100 + i)
                for i in range(250)]
        body = csv(rows)
        first = self.upload(self.rid("again") + ".csv", body).json()
        self.assertEqual(first["rated"], 250)
        second = self.upload(self.rid("renamed") + ".csv", body).json()
        self.assertEqual((second["rated"], second["duplicates"]), (0, 250))
        self.assertEqual(len(second["rejections"]), 100)   # capped in the body
        self.assertTrue(second["rejectionsTruncated"])
        stored = self.system.call("GET", f"/raters/usage-files/{second['fileName']}").json()
        self.assertEqual(len(stored["rejections"]), 250)  # complete in the store
        self.assertEqual(self.usage(svc, "2026-10")["bytes"], sum(100 + i for i in range(250)))

    def test_spool_directory(self):
        svc = self.new_line()
        spool = os.path.join(self.system.data_dir, "spool")
        wait_until(lambda: os.path.isdir(os.path.join(spool, "processed")), what="the spool")
        name = self.rid("spooled") + ".csv"
        rows = [(self.rid("sp"), svc, "iot.meter", "2026-10-07T00:00:00+09:00", 77)]
        with open(os.path.join(spool, "." + name), "w") as f:
            f.write(csv(rows))
        os.rename(os.path.join(spool, "." + name), os.path.join(spool, name))
        report_path = os.path.join(spool, "processed", name + ".report.json")
        wait_until(lambda: os.path.exists(report_path), what="the spooled file's report")
        self.assertTrue(os.path.exists(os.path.join(spool, "processed", name)))
        self.assertFalse(os.path.exists(os.path.join(spool, name)))
        with open(report_path) as f:
            self.assertEqual(json.load(f)["rated"], 1)
        self.assertEqual(self.usage(svc, "2026-10")["bytes"], 77)
        bad = self.rid("badspool") + ".csv"
        with open(os.path.join(spool, "." + bad), "w") as f:
            f.write("not,a,usage,file\n")
        os.rename(os.path.join(spool, "." + bad), os.path.join(spool, bad))
        wait_until(lambda: os.path.exists(os.path.join(spool, "failed", bad)),
                   what="the bad file to move to failed/")
        with open(os.path.join(spool, "failed", bad + ".report.json")) as f:
            self.assertEqual(json.load(f)["error"], "INVALID_HEADER")

    def test_crash_in_the_middle_of_a_file_then_resend(self):
        lines = [self.new_line() for _ in range(5)]
        count = 300000
        rows = [(f"crash-{i}", lines[i % 5], "iot.meter", "2026-10-08T00:00:00+09:00", i % 1000)
                for i in range(count)]
        body = csv(rows).encode()
        expected = {svc: 0 for svc in lines}
        for i in range(count):
            expected[lines[i % 5]] += i % 1000
        # The rater spools the upload, then rates it in one transaction whose
        # pages stay in its page cache until the COMMIT writes them to the
        # WAL. So "holds the write lock and the WAL has not grown" is the
        # rating phase, before the commit: the kill lands there. (The rater
        # has nothing else to write meanwhile: the lines' events are applied.)
        wal = self.system.db("rater") + "-wal"
        wal_before = os.path.getsize(wal) if os.path.exists(wal) else 0
        outcome = {}

        def send():
            try:
                outcome["resp"] = self.upload("crash.csv", body)
            except Exception as exc:  # the connection dies with the rater
                outcome["error"] = exc
        thread = threading.Thread(target=send)
        self.addCleanup(self.restart_rater_if_down)
        thread.start()

        def rating():
            wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
            return wal_size <= wal_before and rater_writing(self.system.db("rater"))
        wait_until(rating, timeout=60, interval=0.005,
                   what="the rater to be rating the file, before its commit")
        self.system.kill9("rater")
        thread.join(timeout=60)
        if "resp" in outcome:
            self.assertNotEqual(outcome["resp"].status, 200, "the file finished before the kill")
        self.assertEqual(query(self.system.db("rater"),
                               "SELECT COUNT(*) FROM usage_file WHERE name = 'crash.csv'"), [(0,)])
        self.system.start("rater")
        self.system.wait_ready("rater")
        report = self.upload("crash.csv", body).json()
        self.assertEqual((report["rated"], report["duplicates"]), (count, 0))
        for svc in lines:
            self.assertEqual(self.usage(svc, "2026-10")["bytes"], expected[svc])
        again = self.upload("crash-again.csv", body).json()
        self.assertEqual((again["rated"], again["duplicates"]), (0, count))

    def restart_rater_if_down(self):
        """Later tests share the system: a failed crash test must not leave
        them without a rater."""
        if not self.system._answers("rater", "/readyz"):
            self.system.start("rater")
            self.system.wait_ready("rater")


def rater_writing(db_path):
    """Whether another connection holds the store's write lock: a writer
    that cannot take it at once means the rater is inside a transaction."""
    con = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise
    finally:
        con.close()

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
