#!/bin/sh
# Builds the event-core benchmarks (Release) and runs them, printing every
# figure. A benchmark, not a test: a missed target is reported, not failed.
#
#   bench/run.sh                 from anywhere; builds in <repo>/build-bench
#   BENCH_PHASE_SECONDS=2        seconds per bench_evstore phase
#   BENCH_RATE=10000 BENCH_SECONDS=5   bench_bus_latency producer rate and length
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_evstore bench_bus_latency >/dev/null
# Binaries land in build-bench/bin when the project sets a runtime output
# directory, else beside their CMakeLists.
bin="$build/bin"
[ -x "$bin/bench_evstore" ] || bin="$build/bench"
echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -sr), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bin/bench_evstore" "${BENCH_PHASE_SECONDS:-2}"
echo
"$bin/bench_bus_latency" "${BENCH_RATE:-10000}" "${BENCH_SECONDS:-5}"
