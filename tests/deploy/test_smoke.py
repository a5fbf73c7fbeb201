#!/usr/bin/python3
"""scripts/ci/smoke.sh (the pipeline's post-deploy check) against a real
system: every service a process, wired like the chart wires the pods
(services listening on their own ports, the nng bus over tcp:// instead of
ipc://), the gateway in front.

  1. smoke.sh with BSS_SMOKE_WRITE=1 passes: the gateway is healthy, every
     route prefix reaches its service, and a line opened through the
     gateway reaches rater and billing over the TCP bus.
  2. With billing stopped, smoke.sh fails and names the /billings route.
  3. Against a port where nothing listens, it fails within its deadline.

Usage: test_smoke.py --bin-dir BUILD/bin
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from harness import Processes, Workdir, free_port  # noqa: E402
from system import System, free_port_block  # noqa: E402

SMOKE = os.path.join(REPO, "scripts", "ci", "smoke.sh")


def smoke(url, prefixes, timeout_s, write, token=""):
    env = dict(os.environ)
    env.update({"BSS_SMOKE_TOKEN": token, "BSS_SMOKE_URL": url, "BSS_SMOKE_PREFIXES": " ".join(prefixes),
                "BSS_SMOKE_TIMEOUT_S": str(timeout_s), "BSS_SMOKE_WRITE": "1" if write else "0"})
    start = time.monotonic()
    r = subprocess.run(["bash", SMOKE], env=env, capture_output=True, text=True,
                       timeout=timeout_s + 60)
    return r, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    args = ap.parse_args()
    services = ["customer", "rater", "billing", "settlement"]
    prefixes = ["customers", "raters", "billings", "settlements"]
    if os.path.exists(os.path.join(args.bin_dir, "bssiot-mypage")):
        services.append("mypage")
        prefixes.append("mypage")

    failures = []
    with Workdir("bss-smoke-") as work:
        procs = Processes(work)
        bus_base = free_port_block(2 * len(services))
        bus_env = {}
        for i, name in enumerate(services):
            bus_env[f"BSS_BUS_{name.upper()}_PUB"] = f"tcp://127.0.0.1:{bus_base + 2 * i}"
            bus_env[f"BSS_BUS_{name.upper()}_REP"] = f"tcp://127.0.0.1:{bus_base + 2 * i + 1}"
        system = System(args.bin_dir, work, procs, extra_env=bus_env, bus="nng")
        try:
            system.start_all(names=tuple(services) + ("gateway",), timeout=60)
            url = f"http://127.0.0.1:{system.port}"

            token = system.token("operator")
            r, secs = smoke(url, prefixes, 60, write=True, token=token)
            print(r.stderr)
            if r.returncode != 0 or "reached rater and billing" not in r.stderr:
                failures.append(f"smoke.sh against a healthy system failed ({r.returncode})")
            else:
                print(f"smoke.sh passed against a healthy system in {secs:.1f}s")

            system.stop("billing")
            r, secs = smoke(url, prefixes, 3, write=False, token=token)
            if r.returncode == 0 or "route /billings" not in r.stderr:
                failures.append(f"smoke.sh with billing down: {r.returncode}\n{r.stderr}")
            else:
                print(f"smoke.sh failed as it should with billing down ({secs:.1f}s)")
        except Exception as exc:  # report with the services' logs
            failures.append(f"{exc!r}")
            for name in services + ["gateway"]:
                print(f"--- {name} log\n{procs.log_of(name)[-2000:]}")
        finally:
            procs.stop_all()

        r, secs = smoke(f"http://127.0.0.1:{free_port()}", prefixes, 2, write=False)
        if r.returncode == 0 or "gateway health" not in r.stderr or secs > 30:
            failures.append(f"smoke.sh against nothing: {r.returncode} after {secs:.1f}s\n{r.stderr}")
        else:
            print(f"smoke.sh failed as it should against a dead port ({secs:.1f}s)")

    for f in failures:
        print("FAIL:", f)
    print(f"smoke: {'FAILED' if failures else 'passed'} ({len(failures)} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
