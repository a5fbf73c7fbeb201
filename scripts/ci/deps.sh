#!/usr/bin/env bash
# Pipeline stage "Dependencies": the Debian packages the build, the tests and
# the chart checks need (the same script the README's commands run).
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
run bash scripts/install-deps.sh
