#!/usr/bin/env python3
"""Issue 9's soak: mixed load through the gateway for a while (default 600 s)
against a whole system, every service a real process, while the memory and
file descriptors of every process are sampled. A benchmark, not a test: it
prints its verdict, it does not fail the build.

Several client threads, each with customers and lines of its own (so no two
threads ever race on one line), pick at random among: open a line, order
(SUSPEND/RESUME, now and then TERMINATE), read a line from the customer,
rater or billing service, upload a small usage file, read the customer's
"my page" (when the mypage binary is there).

The load is a steady state, not a data set that grows without end: each
client keeps at most --lines lines that are not terminated (200; at the
default rate it has them after some 45 s, inside the warm-up) and opens a
line only to replace a terminated one. Without the cap every client opened
4-5 lines a second for the whole run, so a customer's "my page" listed ten
times more lines at the end than after the warm-up and every service's
memory followed the data rather than showing what it keeps (a growing
workload legitimately fills caches up to their bounds; a leak is memory
that grows while the load does not). TERMINATE is rare (1 % of orders on
an ACTIVE line): a terminated line stays on its customer's page, so each
one still adds a line there. Every request goes through the
gateway, on one keep-alive connection per client, with the operator token
of System.token once the test system has one; together the clients send
--rate requests per second (200), paced by absolute deadlines. An error is
any 5xx answer or a failed connection; 4xx answers are counted apart (the
workload is built to get none).

Every --sample seconds (10) it reads VmRSS (/proc/<pid>/status) and the
number of open descriptors (/proc/<pid>/fd) of every process. At the end it
prints a table and one JSON line ({"bench":"soak",...}): requests, errors,
per process the RSS growth in % from the first minute after --warmup (60 s)
to the last minute of the run, the descriptor growth and the CPU time
(utime + stime) spent in between. RSS is the median of the samples of each
minute: the rater's RSS is a sawtooth of several MB (every usage file
allocates its batches and frees them when it is done), so a single sample
says more about where the sawtooth stood than about growth; a leak moves
the median like any other value. Descriptors are counted without the TCP
connections that come and go (established, opening or closing: requests in
flight, keep-alive connections, the gateway's upstream pools, whose number
follows how many requests happened to overlap), read from /proc/net/tcp;
listening sockets, connections in CLOSE_WAIT (the peer has gone and the
process never closed its end: how a leaked connection looks), unix
sockets, files and pipes all count. Their number is the median of each
minute as well, so the rater's spooled upload in flight at one sample is
not taken for a leak, while a descriptor that stays open moves the median.
The first and last single samples and the peak are printed too (fdNew:
what the last sample has that the first had not).

Pass criteria, printed: no errors, RSS growth <= 10 %, no descriptor growth.

    python3 bench/soak.py --bin-dir build-bench/bin                # 10 minutes
    python3 bench/soak.py --bin-dir build-bench/bin --seconds 60 --warmup 20
"""
import argparse
import collections
import datetime
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Processes, Workdir  # noqa: E402
from system import Response, System, encode_body  # noqa: E402

SERVICES = ["customer", "rater", "billing", "settlement"]
PRODUCTS = ("IOT-BASIC", "IOT-PLUS", "IOT-UNLIMITED")
HEADER = "recordId,svcContNo,apnCd,usageStart,bytes"
KST = datetime.timezone(datetime.timedelta(hours=9))
# action -> weight: mostly reads, a steady trickle of writes.
MIX = {"open": 2, "order": 3, "get_line": 5, "get_rater": 3, "get_billing": 3,
       "usage": 1, "mypage": 5}
TERMINATE_SHARE = 0.01  # of orders on an ACTIVE line


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.by_action = {}
        self.first_errors = []

    def record(self, action, outcome, detail=None):
        with self.lock:
            self.requests += 1
            counts = self.by_action.setdefault(action, {"ok": 0, "4xx": 0, "error": 0})
            counts[outcome] += 1
            if outcome == "error":
                self.errors += 1
            elif outcome == "4xx":
                self.client_errors += 1
            if outcome != "ok" and len(self.first_errors) < 10:
                self.first_errors.append(f"{action}: {detail}")


class Client(threading.Thread):
    """One client: its own customers and lines, random actions until stop."""

    def __init__(self, number, system, stats, stop, seed, with_mypage, interval, max_lines):
        super().__init__(daemon=True)
        self.conn = None
        token = getattr(system, "token", None)
        self.token = token("operator") if callable(token) else None
        self.interval = interval  # seconds between this client's requests
        self.next_at = time.monotonic()
        self.number = number
        self.system = system
        self.stats = stats
        self.stop_flag = stop
        self.rng = random.Random(seed)
        self.actions = [a for a in MIX if with_mypage or a != "mypage"]
        self.weights = [MIX[a] for a in self.actions]
        self.lines = {}  # svcContNo -> status as this client made it
        self.max_lines = max_lines  # lines not terminated, at most
        self.opened = 0
        self.records = 0

    def customer(self):
        return f"SOAK-{self.number}-{self.rng.randrange(8)}"

    def send(self, method, path, body, headers):
        """One request on this client's keep-alive connection to the
        gateway (a connection per request would leave tens of thousands of
        sockets in TIME_WAIT on a shared machine). Carries the operator token
        when the test system hands one out (System.token)."""
        body, headers = encode_body(body, headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.system.port, timeout=30)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            raw = self.conn.getresponse()
            resp = Response(raw.status, raw.getheaders(), raw.read())
        except BaseException:
            self.conn.close()
            self.conn = None
            raise
        if (resp.header("Connection") or "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp

    def request(self, action, method, path, body=None, headers=None, expect=(200,)):
        self.pace()
        try:
            resp = self.send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.stats.record(action, "error", repr(exc))
            return None
        if resp.status >= 500:
            self.stats.record(action, "error", f"{method} {path}: {resp}")
            return None
        if resp.status not in expect:
            self.stats.record(action, "4xx", f"{method} {path}: {resp}")
            return None
        self.stats.record(action, "ok")
        return resp

    def pace(self):
        """Holds the client to its share of --rate, by absolute deadlines
        (a late request is sent at once, the schedule does not drift)."""
        self.next_at += self.interval
        delay = self.next_at - time.monotonic()
        if delay > 0:
            self.stop_flag.wait(delay)
        elif delay < -1.0:
            self.next_at = time.monotonic()  # far behind: do not burst to catch up

    def run(self):
        while not self.stop_flag.is_set():
            action = self.rng.choices(self.actions, self.weights)[0]
            if action != "open" and not self.lines:
                action = "open"
            while action == "open" and self.live_lines() >= self.max_lines:
                action = self.rng.choices(self.actions, self.weights)[0]
            getattr(self, "do_" + action)()
        if self.conn is not None:
            self.conn.close()

    def live_lines(self):
        return sum(1 for st in self.lines.values()
                   if st not in ("TERMINATED", "PENDING-TERMINATION"))

    def pick_line(self, status=None):
        choices = [s for s, st in self.lines.items() if status is None or st == status]
        return self.rng.choice(choices) if choices else None

    def do_open(self):
        self.opened += 1
        svc = f"S{self.number}-{self.opened}"
        customer = self.customer()
        resp = self.request("open", "POST", "/customers", {
            "customerId": customer, "svcContNo": svc, "productCd": self.rng.choice(PRODUCTS),
            "apnCd": "iot.soak", "email": f"{customer.lower()}@example.com"}, expect=(201,))
        if resp is not None:
            self.lines[svc] = "ACTIVE"

    def do_order(self):
        svc = self.pick_line("ACTIVE") if self.rng.random() < 0.5 else None
        svc = svc or self.pick_line("SUSPENDED") or self.pick_line("ACTIVE")
        if svc is None:
            return
        status = self.lines[svc]
        if status == "ACTIVE" and self.rng.random() < TERMINATE_SHARE:
            kind, after = "TERMINATE", "TERMINATED"   # a saga step through the rater
        else:
            kind, after = ("SUSPEND", "SUSPENDED") if status == "ACTIVE" else ("RESUME", "ACTIVE")
        if self.request("order", "POST", f"/customers/{svc}/orders", {"type": kind},
                        expect=(202,)) is not None:
            self.lines[svc] = after if kind != "TERMINATE" else "PENDING-TERMINATION"

    def do_get_line(self):
        self.request("get_line", "GET", f"/customers/{self.pick_line()}")

    def do_get_rater(self):
        # The rater learns of a line through events: a line opened a moment
        # ago may not be there yet, which is not an error.
        self.request("get_rater", "GET", f"/raters/{self.pick_line()}", expect=(200, 404))

    def do_get_billing(self):
        self.request("get_billing", "GET", f"/billings/{self.pick_line()}", expect=(200, 404))

    def do_usage(self):
        now = datetime.datetime.now(KST).replace(microsecond=0)
        rows = []
        for _ in range(50):
            self.records += 1
            svc = self.pick_line()
            at = (now - datetime.timedelta(seconds=self.rng.randrange(1, 600))).isoformat()
            rows.append(f"soak-{self.number}-{self.records},{svc},iot.soak,{at},"
                        f"{self.rng.randrange(1, 5 * 1048576)}")
        name = f"soak-{self.number}-{self.records}.csv"
        self.request("usage", "POST", f"/raters/usage-files?name={name}",
                     HEADER + "\n" + "\n".join(rows) + "\n", {"Content-Type": "text/csv"})

    def do_mypage(self):
        self.request("mypage", "GET", f"/mypage/{self.customer()}", expect=(200, 404))


# TCP states of a connection that comes and goes with the requests in flight
# and the connection pools (/proc/net/tcp "st" column): established, being
# set up, being closed or closed. LISTEN stays, and so does CLOSE_WAIT: the
# peer has closed and this process has not, the way a leaked connection
# looks, so it is counted with the descriptors that must not grow.
PASSING_TCP_STATES = {"01", "02", "03", "04", "05", "06", "07", "09", "0B"}


def tcp_states():
    """Socket inode -> TCP state (hex, as /proc/net/tcp{,6} gives it)."""
    states = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    states[fields[9]] = fields[3]
        except OSError:
            pass
    return states


def fd_kind(pid, fd, states):
    """What a descriptor points at, without per-instance numbers: 'socket',
    'tcp connection' (a connection in one of PASSING_TCP_STATES), 'pipe',
    'anon_inode:[eventfd]' or the file's path."""
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return "gone"
    if target.startswith("socket:"):
        return ("tcp connection" if states.get(target[len("socket:["):-1]) in PASSING_TCP_STATES
                else "socket")
    return target.split(":[")[0] if target.startswith("pipe:") else target


def read_sample(pid, states):
    """(VmRSS in kB, open descriptors less passing TCP connections and
    vanished ones, their kinds, CPU seconds so far) of a live process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    kinds = collections.Counter(fd_kind(pid, fd, states) for fd in os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    kept = sum(kinds.values()) - kinds["tcp connection"] - kinds["gone"]
    return rss, kept, kinds, cpu


def sampler(procs, names, samples, stop, interval, started):
    while True:
        t = time.monotonic() - started
        row = {}
        states = tcp_states()
        for name in names:
            proc = procs.procs.get(name)
            try:
                row[name] = read_sample(proc.pid, states) if proc and proc.poll() is None else None
            except OSError:
                row[name] = None
        samples.append((t, row))
        if stop.wait(interval):
            return


def summarise(names, samples, warmup, interval):
    """Per process: RSS and descriptors of the first and of the last minute
    after warm-up (medians), growth, CPU seconds
    spent between the first and the last sample after warm-up."""
    after = [(t, row) for t, row in samples if t >= warmup] or samples[-1:]
    # A minute of samples at each end (at least three, at most a third of
    # the run each, so the two never overlap).
    window = max(3, min(round(60.0 / interval), len(after) // 3)) if after else 1
    out = {}
    for name in names:
        series = [row[name] for _, row in after if row.get(name)]
        if not series:
            out[name] = {"alive": False}
            continue
        rss0 = statistics.median(s[0] for s in series[:window])
        rss1 = statistics.median(s[0] for s in series[-window:])
        fd0 = statistics.median(s[1] for s in series[:window])
        fd1 = statistics.median(s[1] for s in series[-window:])
        first, last = series[0], series[-1]
        out[name] = {"alive": samples[-1][1].get(name) is not None,
                     "rssKbFirstSample": series[0][0], "rssKbLastSample": series[-1][0],
                     "rssKbFirst": round(rss0), "rssKbLast": round(rss1),
                     "rssKbPeak": max(s[0] for s in series), "windowSamples": window,
                     "rssGrowthPct": round(100.0 * (rss1 - rss0) / rss0, 1) if rss0 else None,
                     "fdFirst": fd0, "fdLast": fd1, "fdGrowth": fd1 - fd0,
                     "fdNew": dict(last[2] - first[2]),
                     "cpuSeconds": round(series[-1][3] - series[0][3], 2),
                     "rssKbSeries": [s[0] for s in series], "fdSeries": [s[1] for s in series]}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--sample", type=float, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rate", type=float, default=200,
                        help="requests per second, all clients together")
    parser.add_argument("--lines", type=int, default=200,
                        help="lines not terminated per client, at most (the steady state)")
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    services = SERVICES + (["mypage"] if os.path.exists(os.path.join(bin_dir, "bssiot-mypage"))
                           else [])
    names = services + ["gateway"]
    stats = Stats()
    samples = []
    with Workdir(prefix="bss-soak-") as workdir:
        procs = Processes(workdir)
        try:
            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"}, bus="nng")
            system.start_all(names, timeout=60)
            stop = threading.Event()
            started = time.monotonic()
            watcher = threading.Thread(target=sampler, daemon=True,
                                       args=(procs, names, samples, stop, args.sample, started))
            watcher.start()
            clients = [Client(i, system, stats, stop, seed * 100 + i, "mypage" in services,
                              args.threads / args.rate, args.lines) for i in range(args.threads)]
            for c in clients:
                c.start()
            print(f"soak: {args.seconds:.0f} s, {args.threads} clients, {args.rate:.0f} req/s,"
                  f" at most {args.lines} lines per client, seed {seed},"
                  f" warm-up {args.warmup:.0f} s, a sample every {args.sample:.0f} s", flush=True)
            next_report = started + 60
            while time.monotonic() - started < args.seconds:
                stop.wait(min(1.0, max(0.0, args.seconds - (time.monotonic() - started))))
                if time.monotonic() >= next_report:
                    next_report += 60
                    print(f"  {time.monotonic() - started:5.0f} s: {stats.requests} requests,"
                          f" {stats.errors} errors", flush=True)
            stop.set()
            for c in clients:
                c.join(timeout=60)
            watcher.join(timeout=30)
            elapsed = time.monotonic() - started
            dead = [n for n in names if procs.procs[n].poll() is not None]
        finally:
            procs.stop_all()

    result = summarise(names, samples, args.warmup, args.sample)
    print(f"\n{stats.requests} requests in {elapsed:.0f} s ({stats.requests / elapsed:.0f}/s),"
          f" {stats.errors} errors (5xx or connection), {stats.client_errors} unexpected 4xx;"
          f" {len(samples)} samples")
    for action, counts in sorted(stats.by_action.items()):
        print(f"  {action:12s} ok {counts['ok']:7d}  4xx {counts['4xx']:5d}"
              f"  errors {counts['error']:5d}")
    for detail in stats.first_errors:
        print(f"  first failures: {detail[:300]}")
    print("\nRSS first/last: medians of the first and of the last minute after warm-up;"
          " fd first/last: the same for descriptors")
    print(f"{'process':12s} {'RSS first kB':>13s} {'RSS last kB':>12s} {'peak kB':>9s}"
          f" {'growth %':>9s} {'fd first':>9s} {'fd last':>8s} {'CPU s':>7s}")
    for name in names:
        r = result[name]
        if not r.get("rssKbFirst"):
            print(f"{name:12s} (not running)")
            continue
        print(f"{name:12s} {r['rssKbFirst']:13d} {r['rssKbLast']:12d} {r['rssKbPeak']:9d}"
              f" {r['rssGrowthPct']:9.1f} {r['fdFirst']:9.1f} {r['fdLast']:8.1f}"
              f" {r['cpuSeconds']:7.1f}"
              + (f"  new: {r['fdNew']}" if r["fdNew"] else ""))
    print("\nafter warm-up, one value per sample (RSS in MB / open descriptors):")
    for name in names:
        r = result[name]
        if r.get("rssKbSeries"):
            print(f"  {name:12s} " + " ".join(f"{kb / 1024:.1f}" for kb in r["rssKbSeries"]))
            print(f"  {'':12s} " + " ".join(str(n) for n in r["fdSeries"]))
    rss_ok = all(r.get("rssGrowthPct") is not None and r["rssGrowthPct"] <= 10.0
                 for r in result.values())
    fd_ok = all(r.get("fdGrowth", 1) <= 0 for r in result.values())
    errors_ok = stats.errors == 0 and not dead
    print(f"\npass criteria: no errors {'PASS' if errors_ok else 'FAIL'}"
          f" ({stats.errors} errors{', died: ' + ', '.join(dead) if dead else ''});"
          f" RSS growth <= 10 % {'PASS' if rss_ok else 'FAIL'};"
          f" no fd growth {'PASS' if fd_ok else 'FAIL'}")
    if elapsed < args.warmup + 2 * args.sample:
        print("note: the run is too short for the growth figures to mean much")
    print(json.dumps({"bench": "soak", "seconds": round(elapsed, 1), "threads": args.threads,
                      "rate": args.rate, "linesPerClient": args.lines,
                      "seed": seed, "warmupSeconds": args.warmup, "requests": stats.requests,
                      "errors": stats.errors, "unexpected4xx": stats.client_errors,
                      "died": dead, "processes": result,
                      "pass": {"errors": errors_ok, "rss": rss_ok, "fd": fd_ok}},
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
