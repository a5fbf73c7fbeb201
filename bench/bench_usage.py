#!/usr/bin/env python3
"""Issue 4's benchmark: a usage file of 1,000,000 records over 100,000 lines
(1% duplicates, 1% other APN, 0.5% malformed) POSTed through the gateway;
records/s from request start to the report, beside the raw SQLite
batched-insert rate of the file's recordIds (one row each) measured in the
same run (bench/raw_rows.c), and the rater's peak RSS.

    python3 bench/bench_usage.py --bin-dir build-bench/bin [--lines 100000] [--records 1000000]
        [--seed-cache DIR] [--perf-out FILE]

--seed-cache DIR keeps the stores as they are after seeding and catch-up in
DIR and starts from a copy of them on later runs (seeding 100,000 lines takes
minutes); delete DIR after changing the schema or the seeding.
--perf-out FILE records the rater with `perf record -g` during the upload.
Targets: >= 500,000 records/s end to end, >= 0.5 x raw batched inserts,
rater RSS < 256 MB."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import REPO, System, http_request  # noqa: E402


def peak_rss_mb(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_file(path, lines, records):
    rnd = random.Random(7)
    with open(path, "w") as out:
        out.write("recordId,svcContNo,apnCd,usageStart,bytes\n")
        for i in range(records):
            r = rnd.random()
            rid = f"R{i:09d}" if not (r < 0.01 and i) else f"R{rnd.randrange(i):09d}"
            svc = 7000000001 + i % lines
            apn = "iot.bench" if rnd.random() >= 0.01 else "iot.elsewhere"
            day = 1 + i % 28
            if rnd.random() < 0.005:
                out.write(f"{rid},{svc},{apn},2026-10-{day:02d}T10:00:00,12\n")
            else:
                out.write(f"{rid},{svc},{apn},2026-10-{day:02d}T10:{i % 60:02d}:00+09:00,"
                          f"{rnd.randrange(1, 5000000)}\n")


def seed(bin_dir, data_dir, lines, opened):
    subprocess.run([os.path.join(bin_dir, "seed_lines"), data_dir, str(lines), opened,
                    os.path.join(REPO, "config", "products.json")], check=True)


def check_alive(system):
    """A service that exited (e.g. its port was taken between the free-port
    check and its bind, and another system answered /readyz) fails the run
    at once instead of leaving it waiting for a catch-up that never comes."""
    for name, proc in system.procs.procs.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see its log")


def wait_caught_up(system, names, timeout=600):
    head = query(system.db("customer"), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]
    check_alive(system)

    def applied(name):
        check_alive(system)
        return query(system.db(name), "SELECT COALESCE(MAX(position), 0) FROM inbox"
                                      " WHERE stream = 'customer'")[0][0] >= head
    for name in names:
        wait_until(lambda n=name: applied(n), timeout=timeout, interval=0.5,
                   what=f"{name} to apply every line")


def copy_stores(src, dst):
    """Copies the SQLite files (not the bus sockets) of a stopped system."""
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        if name.endswith((".db", ".db-wal", ".db-shm")):
            shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


def prepare_stores(system, procs, bin_dir, lines, cache):
    """Leaves the data dir with `lines` seeded lines that rater and billing
    have applied, from the cache when there is one."""
    if cache and os.path.exists(os.path.join(cache, "customer.db")):
        copy_stores(cache, system.data_dir)
        return
    seed(bin_dir, system.data_dir, lines, "2026-09-01T00:00:00+09:00")
    system.start_all(("customer", "rater", "billing"), timeout=3600)
    wait_caught_up(system, ("rater", "billing"))
    if cache:
        for name in ("customer", "rater", "billing"):
            system.stop(name)
        copy_stores(system.data_dir, cache)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--records", type=int, default=1000000)
    parser.add_argument("--seed-cache")
    parser.add_argument("--perf-out")
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            usage_file = os.path.join(workdir, "usage.csv")
            make_file(usage_file, args.lines, args.records)
            raw, raw_blocks = (float(x) for x in subprocess.run(
                [os.path.join(bin_dir, "raw_rows"), workdir, usage_file], capture_output=True,
                text=True, check=True).stdout.split())
            # info: the rater logs how long the upload and the rating took.
            # The gateway's 30 s upstream timeout would cut a slow run short.
            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "info",
                                                      "BSS_GATEWAY_UPSTREAM_TIMEOUT_MS": "600000"})
            prepare_stores(system, procs, bin_dir, args.lines, args.seed_cache)
            system.start_all(("customer", "rater", "billing", "gateway"), timeout=3600)
            wait_caught_up(system, ("rater",))
            check_alive(system)
            with open(usage_file, "rb") as f:
                body = f.read()
            perf = None
            if args.perf_out:
                perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-g", "-o",
                                         args.perf_out, "-p", str(procs.procs["rater"].pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)  # not synchronisation: lets perf attach before the upload
            start = time.monotonic()
            resp = http_request(system.port, "POST", "/raters/usage-files?name=bench.csv", body,
                                {"Content-Type": "text/csv", **system.auth()}, timeout=600)
            elapsed = time.monotonic() - start
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=60)
            if resp.status != 200:
                raise RuntimeError(f"the upload failed: {resp}")
            report = resp.json()
            rss = peak_rss_mb(procs.procs["rater"])
            split = [line.split('"msg":"', 1)[-1].rstrip('"}\n')
                     for line in procs.log_of("rater").splitlines() if "rated bench.csv" in line]
        finally:
            procs.stop_all()
    rate = args.records / elapsed
    print(f"file: {args.records} records over {args.lines} lines, {len(body) / 1e6:.1f} MB")
    print(f"report: rated {report['rated']}, duplicates {report['duplicates']}, "
          f"rejected {report['rejected']}")
    print(f"end to end (request start to report, durable): {rate:,.0f} records/s "
          f"in {elapsed:.2f} s (target >= 500,000)")
    print(f"raw SQLite batched inserts of the file's recordIds, a row each: {raw:,.0f} rows/s")
    print(f"ratio: {rate / raw:.3f} x raw (target >= 0.5)")
    print(f"raw SQLite batched writes of the rater's id blocks for the file: "
          f"{raw_blocks:,.0f} records/s (ratio {rate / raw_blocks:.3f}; the floor of the "
          f"rater's own dedup schema)")
    print(f"rater peak RSS: {rss:.0f} MB (target < 256)")
    print(f"rater's log: {split[-1] if split else '(no timing logged)'}")
    print(json.dumps({"bench": "usage", "records": args.records, "lines": args.lines,
                      "seconds": round(elapsed, 3), "records_per_s": round(rate),
                      "raw_rows_per_s": round(raw), "ratio": round(rate / raw, 3),
                      "raw_blocks_records_per_s": round(raw_blocks),
                      "rater_peak_rss_mb": round(rss)}))


if __name__ == "__main__":
    main()
