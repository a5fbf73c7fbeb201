#!/bin/sh
# Builds the event-core benchmarks (Release) and runs them, printing every
# figure. A benchmark, not a test: a missed target is reported, not failed.
#
#   bench/run.sh                 from anywhere; builds in <repo>/build-bench
#   BENCH_PHASE_SECONDS=2        seconds per bench_evstore phase
#   BENCH_RATE=10000 BENCH_SECONDS=5   bench_bus_latency producer rate and length
#   BENCH_HTTP_SECONDS=10        wrk run length per case (bench_http.py)
#   BENCH_MONTH_END_LINES=100000 lines for bench_month_end.py (the target is for 1000000)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
# Binaries land in build-bench/bin when the project sets a runtime output
# directory, else beside their CMakeLists.
bin="$build/bin"
[ -x "$bin/bench_evstore" ] || bin="$build/bench"
echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -sr), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bin/bench_evstore" "${BENCH_PHASE_SECONDS:-2}"
echo
"$bin/bench_bus_latency" "${BENCH_RATE:-10000}" "${BENCH_SECONDS:-5}"
echo
python3 "$root/bench/bench_http.py" --bin-dir "$bin" --seconds "${BENCH_HTTP_SECONDS:-10}"
echo
python3 "$root/bench/bench_usage.py" --bin-dir "$bin"
echo
python3 "$root/bench/bench_month_end.py" --bin-dir "$bin" --lines "${BENCH_MONTH_END_LINES:-100000}"
