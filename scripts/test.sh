#!/usr/bin/env bash
# The README's test command. On a fresh machine it installs what is missing,
# then builds and runs the whole suite three times:
#   1. build/        the normal build (-Wall -Wextra -Werror), every test
#   2. build-asan/   the suite under AddressSanitizer + UBSan (leaks fail), less
#                    the tests that run no C code of ours again (see below)
#   3. build-fuzz/   every libFuzzer target for BSS_FUZZ_SECONDS (default 20) each
# and a cppcheck pass over the sources. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc)
fuzz_seconds=${BSS_FUZZ_SECONDS:-20}

echo "== cppcheck"
cppcheck --enable=warning,style,performance,portability --std=c11 --inline-suppr \
  --error-exitcode=1 -q -D__GNUC__ --suppress=missingIncludeSystem \
  --suppress=unusedStructMember --suppress=constParameterCallback \
  -I shared shared gateway customer rater billing settlement mypage tests bench tools

echo "== build and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== build and test under ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBSS_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# The deployment checks run no C code of ours, and the Kafka-mode month end
# and usage runs repeat paths kafka_lines_and_orders/kafka_faults already
# cover under the sanitizers: the normal pass runs them, this one skips them.
(cd build-asan && ctest --output-on-failure -j"$jobs" -LE deploy \
  -E '^(kafka_usage|kafka_month_end)$')

echo "== fuzz each parser for ${fuzz_seconds}s"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBSS_SANITIZE=ON \
  -DBSS_FUZZ=ON -DBSS_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build build-fuzz -j"$jobs"
(cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)
