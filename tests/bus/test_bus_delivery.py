"""Multi-process bus tests: one producer and two consumers over ipc://, real
processes and real SQLite files. Whatever is killed, every consumer ends with
every event exactly once, in the producer's order."""
import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402

BIN_DIR = None


class BusDelivery(unittest.TestCase):
    def setUp(self):
        self.workdir_ctx = Workdir()
        self.dir = self.workdir_ctx.__enter__()
        self.procs = Processes(self.dir)

    def tearDown(self):
        self.procs.stop_all()
        self.workdir_ctx.__exit__(None, None, None)

    # -- helpers -----------------------------------------------------------
    def start_producer(self, count, rate, extra_env=None):
        env = {"BSS_DATA_DIR": self.dir, "BSS_COUNT": str(count), "BSS_RATE": str(rate)}
        env.update(extra_env or {})
        return self.procs.start("producer", [os.path.join(BIN_DIR, "bus_producer")], env)

    def start_consumer(self, name):
        env = {"BSS_DATA_DIR": self.dir, "BSS_NAME": name}
        return self.procs.start(name, [os.path.join(BIN_DIR, "bus_consumer")], env)

    def db(self, name):
        return os.path.join(self.dir, f"{name}.db")

    def applied_count(self, name):
        return query(self.db(name), "SELECT COUNT(*) FROM applied")[0][0]

    def producer_head(self):
        return query(self.db("producer"), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]

    def assert_exactly_once_in_order(self, name, count):
        rows = query(self.db(name), "SELECT position, event_id FROM applied ORDER BY rowid")
        produced = query(self.db("producer"), "SELECT sequence, id FROM events ORDER BY sequence")
        self.assertEqual(len(produced), count)
        positions = [r[0] for r in rows]
        duplicates = len(positions) - len(set(positions))
        self.assertEqual(duplicates, 0, f"{name} applied {duplicates} events twice")
        missing = sorted(set(range(1, count + 1)) - set(positions))
        self.assertEqual(missing[:10], [], f"{name} is missing {len(missing)} events")
        self.assertEqual(positions, list(range(1, count + 1)), f"{name} applied out of order")
        self.assertEqual([r[1] for r in rows], [p[1] for p in produced],
                         f"{name} applied other events than the producer logged")
        inbox = query(self.db(name),
                      "SELECT position FROM inbox WHERE stream = 'producer' AND partition = 0")
        self.assertEqual(inbox, [(count,)])

    def wait_all_applied(self, names, count, timeout=60):
        for name in names:
            wait_until(lambda n=name: self.applied_count(n) >= count, timeout=timeout,
                       what=f"{name} to apply {count} events")

    # -- tests -------------------------------------------------------------
    def test_consumer_killed_mid_stream_catches_up_exactly_once(self):
        count = 4000
        self.start_consumer("alpha")
        self.start_consumer("beta")
        self.start_producer(count, rate=2000)
        wait_until(lambda: self.applied_count("alpha") >= 600, what="alpha to be mid-stream")
        self.procs.kill9("alpha")
        at_kill = self.applied_count("alpha")
        self.assertLess(at_kill, count, "the stream ended before the kill")
        wait_until(lambda: self.producer_head() >= at_kill + 1000,
                   what="the producer to go on while alpha is down")
        self.start_consumer("alpha")
        self.wait_all_applied(["alpha", "beta"], count)
        self.assert_exactly_once_in_order("alpha", count)
        self.assert_exactly_once_in_order("beta", count)
        self.assertEqual(self.procs.stop("alpha"), 0)
        self.assertEqual(self.procs.stop("beta"), 0)
        self.assertEqual(self.procs.stop("producer"), 0)

    def test_producer_killed_between_commit_and_publish(self):
        count, kill_at = 3000, 1500
        self.start_consumer("alpha")
        self.start_consumer("beta")
        producer = self.start_producer(
            count, rate=3000, extra_env={"BSS_FAILPOINT_RELAY_KILL_BEFORE_SEQ": str(kill_at)})
        wait_until(lambda: producer.poll() is not None, what="the producer to hit its failpoint")
        self.assertEqual(producer.returncode, -9, self.procs.log_of("producer"))
        # Committed, not published: the event is in the log and still in the outbox.
        self.assertGreaterEqual(self.producer_head(), kill_at)
        unsent = query(self.db("producer"), "SELECT MIN(sequence) FROM outbox")[0][0]
        self.assertIsNotNone(unsent)
        self.assertLessEqual(unsent, kill_at)
        self.start_producer(count, rate=3000)
        self.wait_all_applied(["alpha", "beta"], count)
        self.assert_exactly_once_in_order("alpha", count)
        self.assert_exactly_once_in_order("beta", count)
        wait_until(lambda: query(self.db("producer"), "SELECT COUNT(*) FROM outbox")[0][0] == 0,
                   what="the restarted relay to drain the outbox")

    def test_producer_killed_at_random_and_late_consumer(self):
        count = 3000
        self.start_consumer("alpha")
        self.start_producer(count, rate=3000)
        wait_until(lambda: self.producer_head() >= 900, what="the producer to be mid-stream")
        self.procs.kill9("producer")
        self.start_producer(count, rate=0)
        # beta starts only now: everything before comes from the log alone.
        wait_until(lambda: self.producer_head() >= count, what="the producer to finish")
        self.start_consumer("beta")
        self.wait_all_applied(["alpha", "beta"], count)
        self.assert_exactly_once_in_order("alpha", count)
        self.assert_exactly_once_in_order("beta", count)

    def test_graceful_stop_flushes_outbox_and_exits_zero(self):
        self.start_producer(50, rate=0)
        self.start_consumer("alpha")
        self.wait_all_applied(["alpha"], 50)
        self.assertEqual(self.procs.stop("alpha"), 0)
        self.assertEqual(self.procs.stop("producer"), 0)
        self.assertEqual(query(self.db("producer"), "SELECT COUNT(*) FROM outbox")[0][0], 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
