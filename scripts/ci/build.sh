#!/usr/bin/env bash
# Pipeline stages "Build" and "Sanitizer build": compiles the tree into the
# build directories scripts/test.sh uses, so the test stage that follows only
# runs the suites.
#   build.sh release   build/       RelWithDebInfo, -Wall -Wextra -Werror
#   build.sh asan      build-asan/  Debug with AddressSanitizer + UBSan
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"

flavor=${1:-release}
case "$flavor" in
  release) dir=build; options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; options=(-DCMAKE_BUILD_TYPE=Debug -DBSS_SANITIZE=ON) ;;
  *) die "build.sh: unknown flavor '$flavor' (release or asan)" ;;
esac
run cmake -S . -B "$dir" "${options[@]}"
run cmake --build "$dir" -j"$(nproc)"
