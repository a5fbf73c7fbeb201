#!/usr/bin/env bash
# Installs what bssiot needs to build, run, test and benchmark, from Debian's
# packages. Idempotent: installs only what is missing, and does nothing (no
# apt-get update either) when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git python3
  libnng-dev librdkafka-dev libsqlite3-dev libcjson-dev libcivetweb-dev
  libcurl4-openssl-dev libssl-dev
  clang libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes
  cppcheck wrk tzdata
  # deployment checks (tests/deploy): the Helm renderer is Go + Sprig, the
  # rendered objects are validated against python3-kubernetes' API schema
  golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
  python3-yaml python3-kubernetes yamllint shellcheck binutils
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
