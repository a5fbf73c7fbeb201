#!/usr/bin/env bash
# Shared by the pipeline's scripts (sourced, never run): strict mode, the
# repository root as working directory, and `run`, which prints a command and
# runs it, or only prints it when BSS_CI_DRY_RUN=1 (how the tests check what
# a deploy would do without a registry or a cluster).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# The services that ship as images and are deployed by the chart.
# shellcheck disable=SC2034  # used by the scripts that source this file
BSS_SERVICES=(gateway customer rater billing settlement mypage)

log() { printf 'ci: %s\n' "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

run() {
  printf '+ %s\n' "$*" >&2
  if [ "${BSS_CI_DRY_RUN:-0}" != 1 ]; then
    "$@"
  fi
}

# Fails with a clear message when an environment variable is empty.
require_env() {
  local name
  for name in "$@"; do
    if [ -z "${!name:-}" ]; then
      die "$name is not set (a Jenkins parameter or credential)"
    fi
  done
}
