#!/usr/bin/env python3
"""Issue 3's benchmark: POST /customers and GET /customers/{svcContNo}
through the gateway, driven by wrk, beside a bare civetweb handler on the
same machine in the same run. Prints req/s, p99 and the ratios.

    python3 bench/bench_http.py --bin-dir build-bench/bin [--seconds 10] [--runs 3]
Targets: writes >= 0.25 x bare with p99 <= 10 ms; reads >= 0.4 x bare.
wrk uses the same thread and connection counts (-t2 -c16 by default) against
the bare server and against the gateway, and bare_http runs as many civetweb
threads (32) as each service. Besides req/s it prints the CPU each process
spent per request (from /proc), which a busy shared machine disturbs much
less than throughput."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Processes, Workdir, free_port, wait_until  # noqa: E402
from system import System, http_request  # noqa: E402

POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"customerId":"BENCH-%d-%d","productCd":"IOT-BASIC",' ..
    '"apnCd":"iot.bench","email":"b@example.com"}', math.random(1, 1000000000), counter)
  return wrk.format(nil, nil, nil, body)
end
"""


def wrk(url, seconds, connections, script=None, headers=None):
    """wrk against url; headers (a dict) go on every request, e.g. the API
    token: benchmarks measure the real path, access checks included."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in (headers or {}).items():
        cmd[1:1] = ["-H", f"{name}: {value}"]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return rps, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0, requests


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measured(run, pids):
    """Runs run() (a wrk call) and adds, per process, the CPU microseconds it
    spent per request meanwhile: on a shared machine this moves far less
    than req/s does."""
    before = {name: cpu_ticks(pid) for name, pid in pids.items()}
    rps, p99, errors, requests = run()
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {name: (cpu_ticks(pid) - before[name]) * 1e6 / hz / max(requests, 1)
           for name, pid in pids.items()}
    return rps, p99, errors, cpu


def cpu_text(cpu):
    return ", ".join(f"{name} {us:.0f}" for name, us in cpu.items())


def one_run(args, bin_dir):
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            script = os.path.join(workdir, "post.lua")
            with open(script, "w") as f:
                f.write(POST_LUA)
            port = free_port()
            bare = procs.start("bare", [os.path.join(bin_dir, "bare_http"), str(port)])
            wait_until(lambda: http_request(port, "GET", "/").status == 200, what="bare server")
            bare_pids = {"bare": bare.pid}
            bare_get = measured(lambda: wrk(f"http://127.0.0.1:{port}/customers/x", args.seconds,
                                            args.connections), bare_pids)
            bare_post = measured(lambda: wrk(f"http://127.0.0.1:{port}/customers", args.seconds,
                                             args.connections, script), bare_pids)
            procs.stop("bare")

            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"})
            names = ("customer", "rater", "billing", "gateway")
            system.start_all(names)
            pids = {name: procs.procs[name].pid for name in names}
            base = f"http://127.0.0.1:{system.port}"
            auth = system.auth()
            write = measured(lambda: wrk(f"{base}/customers", args.seconds, args.connections,
                                         script, auth), pids)
            line = system.call("POST", "/customers", {"customerId": "READER", "productCd":
                                                      "IOT-BASIC", "apnCd": "iot.bench"}).json()
            read = measured(lambda: wrk(f"{base}/customers/{line['svcContNo']}", args.seconds,
                                        args.connections, None, auth), pids)
        finally:
            procs.stop_all()

    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s against both; bare_http and every "
          f"service run 32 civetweb threads; load {open('/proc/loadavg').read().split()[0]}")
    print(f"bare civetweb GET : {bare_get[0]:10.0f} req/s  p99 {bare_get[1]:7.2f} ms"
          f"  CPU us/req: {cpu_text(bare_get[3])}")
    print(f"bare civetweb POST: {bare_post[0]:10.0f} req/s  p99 {bare_post[1]:7.2f} ms"
          f"  CPU us/req: {cpu_text(bare_post[3])}")
    print(f"POST /customers   : {write[0]:10.0f} req/s  p99 {write[1]:7.2f} ms  "
          f"ratio {write[0] / bare_post[0]:.3f} x bare (target >= 0.25, p99 <= 10 ms)"
          f"  non-2xx {write[2]}")
    print(f"                    CPU us/req: {cpu_text(write[3])}")
    print(f"GET /customers/N  : {read[0]:10.0f} req/s  p99 {read[1]:7.2f} ms  "
          f"ratio {read[0] / bare_get[0]:.3f} x bare (target >= 0.4)  non-2xx {read[2]}")
    print(f"                    CPU us/req: {cpu_text(read[3])}")
    print(json.dumps({"bench": "http", "connections": args.connections,
                      "bare_get_rps": round(bare_get[0]), "bare_post_rps": round(bare_post[0]),
                      "post_rps": round(write[0]), "post_p99_ms": write[1],
                      "post_ratio": round(write[0] / bare_post[0], 3),
                      "get_rps": round(read[0]), "get_p99_ms": read[1],
                      "get_ratio": round(read[0] / bare_get[0], 3),
                      "post_cpu_us": {k: round(v) for k, v in write[3].items()},
                      "get_cpu_us": {k: round(v) for k, v in read[3].items()}}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the whole comparison (the machine is shared and noisy)")
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    for run in range(args.runs):
        if args.runs > 1:
            print(f"-- run {run + 1} of {args.runs}")
        one_run(args, bin_dir)


if __name__ == "__main__":
    main()
