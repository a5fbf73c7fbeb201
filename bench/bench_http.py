#!/usr/bin/env python3
"""Issue 3's benchmark: POST /customers and GET /customers/{svcContNo}
through the gateway, driven by wrk, beside a bare civetweb handler on the
same machine in the same run. Prints req/s, p99 and the ratios.

    python3 bench/bench_http.py --bin-dir build-bench/bin [--seconds 10]
Targets: writes >= 0.25 x bare with p99 <= 10 ms; reads >= 0.4 x bare."""
import argparse
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


def wrk(url, seconds, connections, script=None):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    with Workdir() as workdir:
        procs = Processes(workdir)
        try:
            script = os.path.join(workdir, "post.lua")
            with open(script, "w") as f:
                f.write(POST_LUA)
            port = free_port()
            procs.start("bare", [os.path.join(bin_dir, "bare_http"), str(port)])
            wait_until(lambda: http_request(port, "GET", "/").status == 200, what="bare server")
            bare_get = wrk(f"http://127.0.0.1:{port}/customers/x", args.seconds, args.connections)
            bare_post = wrk(f"http://127.0.0.1:{port}/customers", args.seconds, args.connections,
                            script)
            procs.stop("bare")

            system = System(bin_dir, workdir, procs, {"BSS_LOG_LEVEL": "warn"})
            system.start_all(("customer", "rater", "billing", "gateway"))
            base = f"http://127.0.0.1:{system.port}"
            write = wrk(f"{base}/customers", args.seconds, args.connections, script)
            line = system.call("POST", "/customers", {"customerId": "READER", "productCd":
                                                      "IOT-BASIC", "apnCd": "iot.bench"}).json()
            read = wrk(f"{base}/customers/{line['svcContNo']}", args.seconds, args.connections)
        finally:
            procs.stop_all()

    print(f"bare civetweb GET : {bare_get[0]:10.0f} req/s  p99 {bare_get[1]:7.2f} ms")
    print(f"bare civetweb POST: {bare_post[0]:10.0f} req/s  p99 {bare_post[1]:7.2f} ms")
    print(f"POST /customers   : {write[0]:10.0f} req/s  p99 {write[1]:7.2f} ms  "
          f"ratio {write[0] / bare_post[0]:.3f} x bare (target >= 0.25, p99 <= 10 ms)"
          f"  non-2xx {write[2]}")
    print(f"GET /customers/N  : {read[0]:10.0f} req/s  p99 {read[1]:7.2f} ms  "
          f"ratio {read[0] / bare_get[0]:.3f} x bare (target >= 0.4)  non-2xx {read[2]}")


if __name__ == "__main__":
    main()
