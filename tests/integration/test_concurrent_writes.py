"""Concurrent writes through the gateway, every service a real process: the
customer service commits concurrent POST /customers in shared transactions
(group commit, shared/evstore.h). What must hold whatever the grouping:

- every request answered 201 is in the customer store, with its line and its
  three events (OrderCreated, LineStatusChanged, OrderCompleted), even when
  the customer service is killed with SIGKILL in the middle of the traffic;
- a request that fails inside a group (409 LINE_EXISTS on a taken number)
  leaves no trace and does not disturb the requests committed with it;
- the log's sequences stay gapless and no event is stored twice."""
import argparse
import http.client
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import System  # noqa: E402

BIN_DIR = None
WRITERS = 12


class Writer(threading.Thread):
    """POSTs lines over one kept-alive connection until told to stop, and
    remembers what each request was answered."""

    def __init__(self, port, tag, stop, number_of=None, limit=None, auth=None):
        super().__init__(daemon=True)
        self.port = port
        self.auth = dict(auth or {})
        self.tag = tag
        self.stop = stop
        self.number_of = number_of  # i -> client-chosen svcContNo, or None
        self.limit = limit
        self.created = []    # svcContNo of every 201
        self.statuses = []   # every status (or "error")
        self.conn = None

    def post(self, body):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request("POST", "/customers", body=body,
                                  headers={"Content-Type": "application/json", **self.auth})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return "error", b""

    def run(self):
        i = 0
        while not self.stop.is_set() and (self.limit is None or i < self.limit):
            fields = {"customerId": f"GC-{self.tag}-{i}", "productCd": "IOT-BASIC",
                      "apnCd": "iot.meter.kr"}
            if self.number_of is not None:
                fields["svcContNo"] = self.number_of(i)
            status, data = self.post(json.dumps(fields))
            self.statuses.append(status)
            if status == 201:
                self.created.append(json.loads(data)["svcContNo"])
            i += 1
        if self.conn is not None:
            self.conn.close()


class ConcurrentWrites(unittest.TestCase):
    def setUp(self):
        self.workdir_ctx = Workdir()
        self.dir = self.workdir_ctx.__enter__()
        self.procs = Processes(self.dir)
        self.system = System(BIN_DIR, self.dir, self.procs)
        self.system.start_all(("customer", "rater", "gateway"))
        self.stop_writers = threading.Event()
        self.writers = []

    def tearDown(self):
        self.stop_writers.set()
        for w in self.writers:
            w.join(timeout=60)
        self.procs.stop_all()
        self.workdir_ctx.__exit__(None, None, None)

    def start_writers(self, count, limit=None, numbering=None):
        """count writers; numbering(k), when given, is writer k's
        i -> svcContNo function."""
        for k in range(count):
            w = Writer(self.system.port, k, self.stop_writers, auth=self.system.auth(),
                       number_of=numbering(k) if numbering else None, limit=limit)
            w.start()
            self.writers.append(w)

    def acknowledged(self):
        return sum(len(w.created) for w in self.writers)

    def assert_stored(self, numbers):
        db = self.system.db("customer")
        lines = {row[0] for row in query(db, "SELECT svc_cont_no FROM lines")}
        missing = [n for n in numbers if n not in lines]
        self.assertEqual(missing, [], "lines answered 201 but not in the store")
        counts = dict(query(db, "SELECT subject, COUNT(*) FROM events GROUP BY subject"))
        types = {}
        for subject, type_ in query(db, "SELECT subject, type FROM events ORDER BY sequence"):
            types.setdefault(subject, []).append(type_)
        for n in numbers:
            self.assertEqual(counts.get(n), 3, f"events of {n}: {types.get(n)}")
            self.assertEqual(types[n], ["OrderCreated", "LineStatusChanged", "OrderCompleted"])
        (count, top), = query(db, "SELECT COUNT(*), COALESCE(MAX(sequence), 0) FROM events")
        self.assertEqual(count, top, "the log has gaps")
        (dup,), = query(db, "SELECT COUNT(*) FROM (SELECT id FROM events GROUP BY id"
                            " HAVING COUNT(*) > 1)")
        self.assertEqual(dup, 0)

    def test_every_acknowledged_write_survives_kill9(self):
        self.start_writers(WRITERS)
        wait_until(lambda: self.acknowledged() >= 300, timeout=120,
                   what="300 lines to be opened")
        # Killed with requests in flight: some were answered, some not.
        self.system.kill9("customer")
        self.stop_writers.set()
        for w in self.writers:
            w.join(timeout=60)
            self.assertFalse(w.is_alive())
        created = [n for w in self.writers for n in w.created]
        self.assertEqual(len(created), len(set(created)), "a number was given out twice")
        self.system.start("customer")
        self.system.wait_ready("customer")
        self.assert_stored(created)
        # And it goes on numbering after the last stored line.
        resp = self.system.call("POST", "/customers", {"customerId": "GC-after",
                                                       "productCd": "IOT-BASIC",
                                                       "apnCd": "iot.meter.kr"})
        self.assertEqual(resp.status, 201, resp)
        self.assertNotIn(resp.json()["svcContNo"], created)

    def test_failing_requests_do_not_disturb_their_group(self):
        taken = self.system.call("POST", "/customers", {"customerId": "GC-taken",
                                                        "productCd": "IOT-BASIC",
                                                        "apnCd": "iot.meter.kr",
                                                        "svcContNo": "GC-TAKEN"})
        self.assertEqual(taken.status, 201, taken)
        db = self.system.db("customer")
        (events_before,), = query(db, "SELECT COUNT(*) FROM events WHERE subject = 'GC-TAKEN'")
        # Half the writers open new numbers, half keep asking for the taken
        # one (409 inside the shared transaction).
        good = WRITERS // 2
        self.start_writers(good, limit=60, numbering=lambda k: lambda i: f"GC-{k}-{i}")
        for k in range(WRITERS - good):
            w = Writer(self.system.port, f"bad{k}", self.stop_writers, auth=self.system.auth(),
                       number_of=lambda i: "GC-TAKEN", limit=60)
            w.start()
            self.writers.append(w)
        for w in self.writers:
            w.join(timeout=120)
            self.assertFalse(w.is_alive())
        good_writers, bad_writers = self.writers[:good], self.writers[good:]
        for w in good_writers:
            self.assertEqual(w.statuses, [201] * 60)
        for w in bad_writers:
            self.assertEqual(w.statuses, [409] * 60)
        self.assert_stored([n for w in good_writers for n in w.created])
        (events_after,), = query(db, "SELECT COUNT(*) FROM events WHERE subject = 'GC-TAKEN'")
        self.assertEqual(events_after, events_before)
        (lines,), = query(db, "SELECT COUNT(*) FROM lines")
        self.assertEqual(lines, 1 + good * 60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest)
