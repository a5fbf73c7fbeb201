#!/usr/bin/env python3
"""Issue 5's benchmark: the month end for N lines (one customer per 3
lines), from AU close to settlement COMPLETED, and each service's peak RSS.

    python3 bench/bench_month_end.py --bin-dir build-bench/bin --lines 100000
Target: 1,000,000 lines in <= 60 s."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from bench_usage import peak_rss_mb, seed, wait_caught_up  # noqa: E402
from harness import Processes, Workdir, wait_until  # noqa: E402
from system import System  # noqa: E402

SERVICES = ("customer", "rater", "billing", "settlement", "gateway")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--lines", type=int, default=100000)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"})
            t0 = time.monotonic()
            seed(bin_dir, system.data_dir, args.lines, "2026-09-01T00:00:00+09:00")
            system.start_all(SERVICES, timeout=3600)
            wait_caught_up(system, ("rater", "billing"), timeout=3600)
            setup = time.monotonic() - t0
            start = time.monotonic()
            resp = system.call("POST", "/raters/au-close", {"period": "2026-10"})
            assert resp.status == 202, resp
            done = wait_until(lambda: (lambda r: r.json() if r.status == 200 and
                                       r.json()["status"] == "COMPLETED" else None)(
                system.call("GET", "/settlements/2026-10")), timeout=3600, interval=0.2,
                what="settlement COMPLETED")
            elapsed = time.monotonic() - start
            rss = {name: peak_rss_mb(procs.procs[name]) for name in SERVICES}
        finally:
            procs.stop_all()
    print(f"{args.lines} lines ({args.lines // 3 + (args.lines % 3 > 0)} customers); "
          f"setup (seed + catch-up) {setup:.1f} s")
    print(f"AU close -> settlement COMPLETED: {elapsed:.1f} s "
          f"({args.lines / elapsed:,.0f} lines/s; target 1,000,000 lines in <= 60 s)")
    print(f"settlement: {done['invoiceCount']} invoices, {done['lineCount']} charged lines, "
          f"total {done['totalAmount']:,} KRW")
    print("peak RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))


if __name__ == "__main__":
    main()
