"""A store that cannot take a write: locked by another process past the busy
timeout, or on a full disk. The client gets 503 with Retry-After, nothing
of the refused request is stored (no line, no event), every write answered
before stays, and the service takes writes again once the cause is gone.

The disk-full case mounts a small tmpfs for the customer store, which needs
root (CAP_SYS_ADMIN); where that is not allowed it is skipped with the
reason."""
import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query  # noqa: E402
from system import System  # noqa: E402

BIN_DIR = None


def line_body(customer):
    return {"customerId": customer, "productCd": "IOT-BASIC", "apnCd": "iot.meter.kr",
            "email": f"{customer.lower()}@example.com", "address": "Seoul " + "x" * 200}


class StoreFaults(unittest.TestCase):
    def setUp(self):
        self.workdir_ctx = Workdir()
        self.dir = self.workdir_ctx.__enter__()
        self.procs = Processes(self.dir)
        self.mount = None

    def tearDown(self):
        self.procs.stop_all()
        if self.mount is not None:
            subprocess.run(["umount", self.mount], check=False)
        self.workdir_ctx.__exit__(None, None, None)

    def assert_unavailable(self, resp):
        self.assertEqual(resp.status, 503, resp)
        self.assertEqual(resp.header("Content-Type"), "application/problem+json")
        self.assertGreaterEqual(int(resp.header("Retry-After")), 1)

    def events_of(self, system, customer):
        return query(system.db("customer"), "SELECT count(*) FROM events WHERE data LIKE ?",
                     (f'%"{customer}"%',))[0][0]

    def test_store_busy_is_503_and_nothing_partial(self):
        system = System(BIN_DIR, self.dir, self.procs)
        system.start_all(("customer", "rater", "billing", "gateway"))
        self.assertEqual(system.call("POST", "/customers", line_body("BUSY-0")).status, 201)
        # Another process takes the write lock and keeps it past the store's
        # busy timeout (5 s).
        holder = sqlite3.connect(system.db("customer"), timeout=10, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            resp = system.call("POST", "/customers", line_body("BUSY-1"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        self.assert_unavailable(resp)
        self.assertEqual(self.events_of(system, "BUSY-1"), 0)
        self.assertEqual(system.call("GET", "/customers?customerId=BUSY-1").json()["total"], 0)
        # The lock is gone: writes work again, and the first line is intact.
        self.assertEqual(system.call("POST", "/customers", line_body("BUSY-2")).status, 201)
        self.assertEqual(system.call("GET", "/customers?customerId=BUSY-0").json()["total"], 1)

    def test_disk_full_is_503_and_nothing_partial(self):
        mount = tempfile.mkdtemp(prefix="bss-full-", dir=self.dir)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount],
                              capture_output=True, text=True)
        if done.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        self.mount = mount
        system = System(BIN_DIR, self.dir, self.procs,
                        {"BSS_CUSTOMER_DB": os.path.join(mount, "customer.db")})
        system.db = lambda name, orig=system.db: (os.path.join(mount, "customer.db")
                                                  if name == "customer" else orig(name))
        system.start_all(("customer", "rater", "billing", "gateway"))
        accepted, refused = [], []
        for i in range(3000):
            customer = f"FULL-{i}"
            resp = system.call("POST", "/customers", line_body(customer))
            if resp.status == 201:
                accepted.append(resp.json()["svcContNo"])
                continue
            self.assert_unavailable(resp)
            refused.append(customer)
            if len(refused) == 3:
                break
        self.assertTrue(refused, "the 1 MiB store never filled up")
        self.assertGreater(len(accepted), 0)
        for customer in refused:
            self.assertEqual(self.events_of(system, customer), 0, customer)
        # Room again: the service takes writes, and every line it answered
        # 201 for is there.
        subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
        resp = system.call("POST", "/customers", line_body("FULL-AFTER"))
        self.assertEqual(resp.status, 201, resp)
        for svc in accepted:
            self.assertEqual(system.call("GET", f"/customers/{svc}").status, 200, svc)
        self.procs.stop_all()


def main():
    global BIN_DIR
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
