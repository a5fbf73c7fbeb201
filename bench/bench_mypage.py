#!/usr/bin/env python3
"""Issue 6's read-model benchmark: GET /mypage/{customerId} through the
gateway, driven by wrk over many seeded customers (three lines each, with
rated usage), beside a bare civetweb handler on the same machine in the same
run. Also the mypage service alone (without the gateway) and, for scale,
GET /customers/{svcContNo} through the gateway. Prints req/s, p99 and the
ratios to bare, and the CPU the bare server, the gateway and the mypage
service spent per request (from /proc), which a loaded machine disturbs much
less than throughput.

    python3 bench/bench_mypage.py --bin-dir build-bench/bin [--seconds 10] [--lines 30000]
Target: GET /mypage through the gateway >= 0.4 x bare."""
import argparse
import http.client
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
from bench_http import cpu_ticks, wrk  # noqa: E402
from bench_month_end import wait_quiet  # noqa: E402
from bench_usage import seed  # noqa: E402
from harness import Processes, Workdir, free_port, query, wait_until  # noqa: E402
from system import System, http_request  # noqa: E402

SERVICES = ("customer", "rater", "billing", "mypage", "gateway")

# Every request asks for another customer, at random: the read model's
# pages are not all in the same few B-tree pages.
GET_LUA = """
request = function()
  return wrk.format("GET", string.format("/mypage/BC%d", math.random(0, %d)))
end
"""


def head(system, name):
    return query(system.db(name), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]


def wait_applied(system, stream, timeout=900):
    """Waits until mypage has applied stream up to its producer's head."""
    target = head(system, stream)
    wait_until(lambda: query(system.db("mypage"), "SELECT COALESCE(MAX(position), 0) FROM inbox"
                                                  " WHERE stream = ?", (stream,))[0][0] >= target,
               timeout=timeout, interval=0.5, what=f"mypage to apply the {stream} stream")


def measured(run, pids):
    """run()'s wrk result and the CPU microseconds per request each of pids
    spent meanwhile."""
    before = [cpu_ticks(pid) for pid in pids]
    result = run()
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    per_request = [(cpu_ticks(pid) - b) * tick_us / max(result[3], 1)
                   for pid, b in zip(pids, before)]
    return result, per_request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--lines", type=int, default=30000)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    customers = args.lines // 3
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            script = os.path.join(workdir, "get.lua")
            with open(script, "w") as f:
                f.write(GET_LUA.replace("%d)))", f"{customers - 1})))"))
            port = free_port()
            procs.start("bare", [os.path.join(bin_dir, "bare_http"), str(port)])
            wait_until(lambda: http_request(port, "GET", "/").status == 200, what="bare server")
            bare_pid = procs.procs["bare"].pid
            bare, bare_cpu = measured(lambda: wrk(f"http://127.0.0.1:{port}/mypage/x",
                                                  args.seconds, args.connections), [bare_pid])
            procs.stop("bare")
            procs.procs.pop("bare")  # done with: not one of the services check_alive watches

            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"})
            seed(bin_dir, system.data_dir, args.lines, "2026-09-01T00:00:00+09:00")
            system.start_all(SERVICES, timeout=900)
            wait_applied(system, "customer")
            # One usage record per line, so every line has a currentUsage.
            wait_until(lambda: query(system.db("rater"), "SELECT COUNT(*) FROM rater_info")[0][0]
                       >= args.lines, timeout=900, interval=0.5, what="rater info")
            rows = [f"bm-{i},{svc},iot.bench,2026-10-05T10:00:00+09:00,{1000 + i}"
                    for i, (svc,) in enumerate(query(system.db("customer"),
                                                     "SELECT svc_cont_no FROM lines"))]
            resp = system.call("POST", "/raters/usage-files?name=bench-mypage.csv",
                               "recordId,svcContNo,apnCd,usageStart,bytes\n" +
                               "\n".join(rows) + "\n", {"Content-Type": "text/csv"})
            if resp.status != 200 or resp.json()["rated"] != args.lines:
                raise SystemExit(f"usage upload: {resp}")
            wait_applied(system, "rater")
            # Measured at rest, as the bare server was: what seeding left in
            # flight (billing and mypage catching up, the seeded lines' SMS)
            # would otherwise share the cores with the requests.
            wait_quiet(system, timeout=900, notifying=("customer", "billing"),
                       follows={"customer": ("rater",), "rater": ("customer",),
                                "billing": ("customer", "rater"),
                                "mypage": ("customer", "rater", "billing")})
            sample = system.call("GET", "/mypage/BC0")
            if sample.status != 200 or len(sample.json()["lines"]) != 3:
                raise SystemExit(f"GET /mypage/BC0: {sample}")

            gateway = f"http://127.0.0.1:{system.port}"
            direct = f"http://127.0.0.1:{system.service_port('mypage')}"
            auth = system.auth()
            internal = {"X-Bss-Internal-Token": system.internal_token}
            # Every customer's page once before the measured runs: the
            # read model's page cache (mypage/cache.h) then holds them all
            # for both, as it does for pages read again and again. Without
            # it the first run paid the cache's warm-up (2.25 SQLite page
            # reads per request under strace, none in the second run) and
            # the second did not.
            warm = http.client.HTTPConnection("127.0.0.1", system.port, timeout=30)
            for i in range(customers):
                warm.request("GET", f"/mypage/BC{i}", headers=auth)
                page = warm.getresponse()
                page.read()
                if page.status != 200:
                    raise SystemExit(f"warm-up GET /mypage/BC{i}: {page.status}")
            warm.close()
            pids = [procs.procs[name].pid for name in ("gateway", "mypage")]
            through, through_cpu = measured(lambda: wrk(f"{gateway}/mypage/BC0", args.seconds,
                                                        args.connections, script, auth), pids)
            alone, alone_cpu = measured(lambda: wrk(f"{direct}/mypage/BC0", args.seconds,
                                                    args.connections, script, internal), pids)
            svc = query(system.db("customer"), "SELECT svc_cont_no FROM lines LIMIT 1")[0][0]
            customer = wrk(f"{gateway}/customers/{svc}", args.seconds, args.connections, None,
                           auth)
        finally:
            procs.stop_all()

    print(f"{customers} customers, {args.lines} lines, {len(sample.body)} bytes per page")
    print(f"bare civetweb GET          : {bare[0]:10.0f} req/s  p99 {bare[1]:7.2f} ms")
    print(f"GET /mypage/{{id}} (gateway): {through[0]:10.0f} req/s  p99 {through[1]:7.2f} ms  "
          f"ratio {through[0] / bare[0]:.3f} x bare (target >= 0.4)  non-2xx {through[2]}")
    print(f"GET /mypage/{{id}} (direct) : {alone[0]:10.0f} req/s  p99 {alone[1]:7.2f} ms  "
          f"ratio {alone[0] / bare[0]:.3f} x bare  non-2xx {alone[2]}")
    print(f"GET /customers/N (gateway) : {customer[0]:10.0f} req/s  p99 {customer[1]:7.2f} ms  "
          f"ratio {customer[0] / bare[0]:.3f} x bare  non-2xx {customer[2]}")
    print(f"CPU per request: bare server {bare_cpu[0]:.1f} us; through the gateway: gateway "
          f"{through_cpu[0]:.1f} + mypage {through_cpu[1]:.1f} us; direct: mypage "
          f"{alone_cpu[1]:.1f} us")


if __name__ == "__main__":
    main()
