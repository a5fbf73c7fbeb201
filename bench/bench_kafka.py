"""Events/s from outbox to applied, Kafka bus (librdkafka's mock cluster,
3 brokers, in a process of its own) beside the nng bus, in the same run.

For each backend: a consumer service (tests/bus/bus_consumer: applies each
event in its SQLite transaction with the inbox position) and a producer
service (tests/bus/bus_producer) start together; the producer appends COUNT
events as fast as it can, one transaction each, and its relay publishes
them from the outbox. The figure is the events applied per second from the
consumer's first apply to its last (so the Kafka group join, ~3 s on the
mock, is left out); the producer's own append rate is printed beside it
(the ceiling of the pipeline). A benchmark, not a test.

The mock cluster keeps only 5 MiB per partition and deletes the oldest
messages beyond that. The consumer starts ~3 s behind the producer (the
group join), so on one partition a 20,000-event run once lost its first
~4,000 events before they were read; the consumer jumped to the log's start
(auto.offset.reset was "earliest") and never reached the count: the run
hung. So the topic gets enough partitions for every event to stay, the
events enough subjects to spread over them, and a consumer that reports
lost offsets (the bus now stops at a gap and says so) ends the run at once.

    python3 bench/bench_kafka.py --bin-dir build-bench/bin [--count 20000]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import KafkaMock  # noqa: E402


def applied(db):
    try:
        return query(db, "SELECT COUNT(*) FROM applied")[0][0]
    except Exception:
        return 0


def produced(db):
    try:
        return query(db, "SELECT COUNT(*) FROM events")[0][0]
    except Exception:
        return 0


# Events of this benchmark (~350 bytes with headers) one mock partition holds
# with room to spare, and subjects to spread them evenly over partitions.
EVENTS_PER_PARTITION = 10000
SUBJECTS = 1000


def consumer_lost_offsets(workdir):
    try:
        with open(os.path.join(workdir, "consumer.log"), errors="replace") as log:
            return "deleted before this service applied them" in log.read()
    except OSError:
        return False


def run(bin_dir, backend, count):
    with Workdir(prefix=f"bss-bk{backend}-") as workdir:
        procs = Processes(workdir)
        try:
            env = {"BSS_DATA_DIR": os.path.join(workdir, "data"), "BSS_BUS": backend,
                   "BSS_LOG_LEVEL": "warn"}
            os.makedirs(env["BSS_DATA_DIR"], exist_ok=True)
            if backend == "kafka":
                partitions = max(8, -(-count // EVENTS_PER_PARTITION))
                kafka = KafkaMock(bin_dir, workdir, procs, partitions=partitions,
                                  topics=["bssiot.producer.events"])
                env["BSS_KAFKA_BROKERS"] = kafka.bootstraps
            consumer_db = os.path.join(env["BSS_DATA_DIR"], "consumer.db")
            producer_db = os.path.join(env["BSS_DATA_DIR"], "producer.db")
            procs.start("consumer", [os.path.join(bin_dir, "bus_consumer")],
                        dict(env, BSS_NAME="consumer", BSS_LOG_LEVEL="info"))
            start = time.monotonic()
            procs.start("producer", [os.path.join(bin_dir, "bus_producer")],
                        dict(env, BSS_COUNT=str(count), BSS_RATE="0",
                             BSS_SUBJECTS=str(SUBJECTS)))
            first = wait_until(lambda: (lambda n: (time.monotonic(), n) if n > 0 else None)(
                applied(consumer_db)), timeout=60, interval=0.002, what="the first apply")
            wait_until(lambda: produced(producer_db) >= count, timeout=300, interval=0.005,
                       what="the producer")
            appended = time.monotonic() - start
            def consumer_done():
                if consumer_lost_offsets(workdir):
                    raise SystemExit(f"{backend}: the broker deleted events before the consumer "
                                     "read them (see consumer.log)")
                return applied(consumer_db) >= count
            wait_until(consumer_done, timeout=300, interval=0.005, what="the consumer")
            elapsed = time.monotonic() - first[0]
            return (count - first[1]) / elapsed, count / appended, applied(consumer_db)
        finally:
            procs.stop_all()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    print(f"== bus throughput, outbox to applied, {args.count} events, one transaction "
          "per append")
    results = {}
    for backend in ("nng", "kafka"):
        rate, append_rate, n = run(bin_dir, backend, args.count)
        results[backend] = rate
        print(f"{backend:6s} {rate:10.0f} events/s applied   (producer appended at "
              f"{append_rate:.0f}/s; {n} applied)")
    print(f"kafka/nng {results['kafka'] / results['nng']:.2f}")


if __name__ == "__main__":
    main()
