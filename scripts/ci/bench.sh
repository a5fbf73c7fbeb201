#!/usr/bin/env bash
# Pipeline stage "Benchmarks" (optional): bench/run.sh, its figures kept in
# bench-results.txt for the build's artifacts.
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
run bash bench/run.sh 2>&1 | tee bench-results.txt
