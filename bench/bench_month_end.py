#!/usr/bin/env python3
"""Issue 5's benchmark: the month end for N lines (one customer per 3
lines), from AU close to settlement COMPLETED, when each step ended (from the
events' own times), the CPU seconds each service spent meanwhile, and each
service's peak RSS.

    python3 bench/bench_month_end.py --bin-dir build-bench/bin --lines 100000
Target: 1,000,000 lines in <= 60 s.

Seeding 1,000,000 lines and letting rater and billing catch up takes far
longer than the month end itself. With --seed-cache DIR the seeded, caught-up
stores (services stopped cleanly, so nothing is in flight) are kept in
DIR/<lines>/ and copied into each later run's fresh data dir; the measured
part is the same either way. The cache is only valid for binaries with the
same store schema: delete it after a schema change.

--perf-out FILE records rater, billing and settlement with `perf record
--call-graph dwarf` from the AU close to settlement COMPLETED (perf report
--sort comm,sym)."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from bench_usage import check_alive, peak_rss_mb, seed, wait_caught_up  # noqa: E402
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import System  # noqa: E402

SERVICES = ("customer", "rater", "billing", "settlement", "gateway")
STORES = ("customer", "rater", "billing", "settlement")


def phases(system):
    """When each step of the month end happened, from the events' own times
    (ms), relative to AuCloseStarted."""
    def at(name, sql):
        return query(system.db(name), sql)[0][0]
    t0 = at("rater", "SELECT MIN(time_ms) FROM events WHERE type = 'AuCloseStarted'")
    marks = {
        "rater moved every line": at(
            "rater", "SELECT MAX(time_ms) FROM events WHERE type = 'AuCloseCompleted'"),
        "billing charged every line": at(
            "billing", "SELECT MAX(time_ms) FROM events WHERE type = 'ChargeCalculated'"),
        "billing invoiced the period": at(
            "billing", "SELECT MAX(time_ms) FROM events WHERE type = 'PeriodInvoiced'"),
        "settlement completed": at(
            "settlement", "SELECT MAX(time_ms) FROM events WHERE type = 'SettlementCompleted'"),
    }
    return {k: (v - t0) / 1000 for k, v in marks.items() if v is not None}


# Who follows whom among the services this benchmark runs (ARCHITECTURE.md).
FOLLOWS = {"customer": ("rater",), "rater": ("customer",), "billing": ("customer", "rater"),
           "settlement": ("billing",)}
NOTIFYING = ("customer", "billing", "settlement")  # the stores with a notifications queue


def wait_quiet(system, timeout=7200, follows=None, notifying=NOTIFYING):
    """Waits until the system is at rest, as it is when a month closes: every
    service has applied every event of every stream it follows, and no SMS or
    mail is waiting to go out. Otherwise what seeding left in flight (a
    million SMS, settlement passing two million billing events it ignores)
    would run during the measured month end and be counted in it."""
    def head(name):
        return query(system.db(name), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]

    def applied(follower, stream):
        rows = query(system.db(follower), "SELECT position FROM inbox WHERE stream = ?",
                     (stream,))
        return rows[0][0] if rows else 0

    def pending(name):
        return query(system.db(name), "SELECT COUNT(*) FROM notifications"
                                      " WHERE status = 'PENDING'")[0][0]

    def quiet():
        check_alive(system)
        return all(applied(f, s) >= head(s) for f, streams in (follows or FOLLOWS).items()
                   for s in streams) and all(pending(n) == 0 for n in notifying)
    wait_until(quiet, timeout=timeout, interval=0.5, what="the system at rest",
               fatal=(RuntimeError,))  # check_alive: a service died


def cpu_seconds(proc):
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def copy_stores(src, dst):
    """Copies the stores (with their WAL, if any) from src to dst."""
    os.makedirs(dst, exist_ok=True)
    for name in STORES:
        for suffix in ("", "-wal"):
            path = os.path.join(src, f"{name}.db{suffix}")
            if os.path.exists(path):
                shutil.copyfile(path, os.path.join(dst, f"{name}.db{suffix}"))


def seed_and_catch_up(bin_dir, system, lines, cache):
    """Seeds `lines` lines and waits for rater and billing to apply them,
    or copies that state from the cache; fills the cache when it is empty."""
    cached = os.path.join(cache, str(lines)) if cache else None
    if cached and os.path.exists(os.path.join(cached, "complete")):
        copy_stores(cached, system.data_dir)
        return
    seed(bin_dir, system.data_dir, lines, "2026-09-01T00:00:00+09:00")
    if not cached:
        return
    system.start_all(SERVICES, timeout=3600)
    wait_caught_up(system, ("rater", "billing"), timeout=7200)
    wait_quiet(system)
    for name in SERVICES:
        system.stop(name)
    shutil.rmtree(cached, ignore_errors=True)
    copy_stores(system.data_dir, cached)
    with open(os.path.join(cached, "complete"), "w") as f:
        f.write("seeded and caught up\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--seed-cache", default=None,
                        help="keep/reuse the seeded, caught-up stores in this directory")
    parser.add_argument("--perf-out", default=None,
                        help="perf record rater, billing and settlement into this file")
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"})
            t0 = time.monotonic()
            seed_and_catch_up(bin_dir, system, args.lines, args.seed_cache)
            system.start_all(SERVICES, timeout=3600)
            wait_caught_up(system, ("rater", "billing"), timeout=7200)
            wait_quiet(system)
            setup = time.monotonic() - t0
            perf = None
            if args.perf_out:
                pids = ",".join(str(procs.procs[n].pid) for n in ("rater", "billing", "settlement"))
                perf = subprocess.Popen(["perf", "record", "-q", "-F", "199", "--call-graph",
                                         "dwarf,8192", "-o", args.perf_out, "-p", pids],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)  # not synchronisation: lets perf attach before the close
            cpu0 = {name: cpu_seconds(procs.procs[name]) for name in SERVICES}
            start = time.monotonic()
            resp = system.call("POST", "/raters/au-close", {"period": "2026-10"})
            assert resp.status == 202, resp
            done = wait_until(lambda: (lambda r: r.json() if r.status == 200 and
                                       r.json()["status"] == "COMPLETED" else None)(
                system.call("GET", "/settlements/2026-10")), timeout=3600, interval=0.2,
                what="settlement COMPLETED")
            elapsed = time.monotonic() - start
            cpu = {name: cpu_seconds(procs.procs[name]) - cpu0[name] for name in SERVICES}
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=120)
            steps = phases(system)
            rss = {name: peak_rss_mb(procs.procs[name]) for name in SERVICES}
        finally:
            procs.stop_all()
    print(f"{args.lines} lines ({args.lines // 3 + (args.lines % 3 > 0)} customers); "
          f"setup (seed + catch-up) {setup:.1f} s")
    print(f"AU close -> settlement COMPLETED: {elapsed:.1f} s "
          f"({args.lines / elapsed:,.0f} lines/s; target 1,000,000 lines in <= 60 s)")
    print(f"settlement: {done['invoiceCount']} invoices, {done['lineCount']} charged lines, "
          f"total {done['totalAmount']:,} KRW")
    print("event times after AuCloseStarted (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    print(f"CPU seconds during it (load average {os.getloadavg()[0]:.1f}): "
          + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    print("peak RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))


if __name__ == "__main__":
    main()
