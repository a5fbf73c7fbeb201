#!/usr/bin/env python3
"""Issue 4's benchmark: a usage file of 1,000,000 records over 100,000 lines
(1% duplicates, 1% other APN, 0.5% malformed) POSTed through the gateway;
records/s from request start to the report, beside the raw SQLite
batched-insert rate of the same rows measured in the same run, and the
rater's peak RSS.

    python3 bench/bench_usage.py --bin-dir build-bench/bin [--lines 100000] [--records 1000000]
Targets: >= 500,000 records/s end to end, >= 0.5 x raw batched inserts,
rater RSS < 256 MB."""
import argparse
import os
import random
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


def wait_caught_up(system, names, timeout=600):
    head = query(system.db("customer"), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]
    for name in names:
        wait_until(lambda n=name: query(system.db(n), "SELECT COALESCE(MAX(position), 0) FROM inbox"
                                        " WHERE stream = 'customer'")[0][0] >= head,
                   timeout=timeout, interval=0.5, what=f"{name} to apply every line")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--records", type=int, default=1000000)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            raw = float(subprocess.run([os.path.join(bin_dir, "raw_rows"), workdir,
                                        str(args.records)], capture_output=True, text=True,
                                       check=True).stdout)
            usage_file = os.path.join(workdir, "usage.csv")
            make_file(usage_file, args.lines, args.records)
            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"})
            seed(bin_dir, system.data_dir, args.lines, "2026-09-01T00:00:00+09:00")
            system.start_all(("customer", "rater", "billing", "gateway"), timeout=3600)
            wait_caught_up(system, ("rater",))
            with open(usage_file, "rb") as f:
                body = f.read()
            start = time.monotonic()
            resp = http_request(system.port, "POST", "/raters/usage-files?name=bench.csv", body,
                                {"Content-Type": "text/csv"}, timeout=600)
            elapsed = time.monotonic() - start
            report = resp.json()
            rss = peak_rss_mb(procs.procs["rater"])
        finally:
            procs.stop_all()
    rate = args.records / elapsed
    print(f"file: {args.records} records over {args.lines} lines, {len(body) / 1e6:.1f} MB")
    print(f"report: rated {report['rated']}, duplicates {report['duplicates']}, "
          f"rejected {report['rejected']}")
    print(f"end to end (request start to report, durable): {rate:,.0f} records/s "
          f"in {elapsed:.2f} s (target >= 500,000)")
    print(f"raw SQLite batched inserts of the same rows: {raw:,.0f} rows/s")
    print(f"ratio: {rate / raw:.3f} x raw (target >= 0.5)")
    print(f"rater peak RSS: {rss:.0f} MB (target < 256)")


if __name__ == "__main__":
    main()
