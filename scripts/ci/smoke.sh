#!/usr/bin/env bash
# Pipeline stage "Smoke": checks a deployed system through its gateway.
#
#   1. the gateway answers /healthz (waiting up to BSS_SMOKE_TIMEOUT_S);
#   2. every route prefix reaches its service: a GET there is answered by
#      the service itself, not by the gateway's 502/503/504 for an upstream
#      it cannot reach;
#   3. with BSS_SMOKE_WRITE=1 (staging, never production data): a line is
#      opened through the gateway and must show up in the rater and billing
#      services, which proves the event bus works between the pods.
#
# Environment:
#   BSS_SMOKE_URL        the gateway's base URL; when empty, the script
#                        port-forwards svc/<RELEASE>-bssiot-gateway in
#                        NAMESPACE with kubectl for the duration of the test
#   BSS_SMOKE_TOKEN      optional API token (Authorization: Bearer)
#   BSS_SMOKE_PREFIXES   default "customers raters billings settlements mypage"
#   BSS_SMOKE_TIMEOUT_S  default 120
#   BSS_SMOKE_WRITE      1 to open a test line (default 0)
# Exit status 0 when every check passed.
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"

timeout_s=${BSS_SMOKE_TIMEOUT_S:-120}
prefixes=${BSS_SMOKE_PREFIXES:-customers raters billings settlements mypage}
deadline=$((SECONDS + timeout_s))
workdir=$(mktemp -d)
forward_pid=

cleanup() {
  if [ -n "$forward_pid" ]; then
    kill "$forward_pid" 2>/dev/null || true
    wait "$forward_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

curl_args=(--silent --show-error --max-time 10)
if [ -n "${BSS_SMOKE_TOKEN:-}" ]; then
  curl_args+=(--header "Authorization: Bearer $BSS_SMOKE_TOKEN")
fi

# request METHOD PATH [BODY]: prints the HTTP status; the body goes to
# $workdir/body. A connection failure prints 000.
request() {
  local method=$1 path=$2 body=${3:-}
  local extra=()
  if [ -n "$body" ]; then
    extra=(--header 'Content-Type: application/json' --data "$body")
  fi
  curl "${curl_args[@]}" "${extra[@]}" --request "$method" --output "$workdir/body" \
    --write-out '%{http_code}' "$base$path" 2>/dev/null || echo 000
}

# Polls until `request GET PATH` answers WANT (a regular expression).
wait_for() {
  local path=$1 want=$2 what=$3 status
  while :; do
    status=$(request GET "$path")
    if [[ "$status" =~ ^($want)$ ]]; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "smoke: $what: GET $path answered $status after ${timeout_s}s: $(head -c 300 "$workdir/body" 2>/dev/null)"
    fi
    sleep 1
  done
}

base=${BSS_SMOKE_URL:-}
if [ -z "$base" ]; then
  require_env NAMESPACE
  release=${RELEASE:-bssiot}
  gateway="$release-bssiot-gateway"
  if [[ "$release" == *bssiot* ]]; then
    gateway="$release-gateway"
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log "port-forwarding svc/$gateway in $NAMESPACE to 127.0.0.1:$port"
  kubectl --namespace "$NAMESPACE" port-forward "svc/$gateway" "$port:http" \
    >"$workdir/port-forward.log" 2>&1 &
  forward_pid=$!
  base="http://127.0.0.1:$port"
fi
base=${base%/}

wait_for /healthz 200 "gateway health"
log "gateway healthy at $base"

for prefix in $prefixes; do
  # 2xx or 4xx from the service itself; 5xx means the gateway could not
  # reach it (or it failed).
  wait_for "/$prefix/smoke-check" '[24][0-9][0-9]' "route /$prefix"
  log "/$prefix reaches its service"
done

if [ "${BSS_SMOKE_WRITE:-0}" = 1 ]; then
  customer="SMOKE-$(date +%s)-$$"
  status=$(request POST /customers \
    "{\"customerId\":\"$customer\",\"productCd\":\"IOT-BASIC\",\"apnCd\":\"smoke.test\",\"phone\":\"010-0000-0000\"}")
  [ "$status" = 201 ] || die "smoke: opening a line answered $status: $(head -c 300 "$workdir/body")"
  line=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["svcContNo"])' "$workdir/body")
  log "opened line $line for $customer"
  wait_for "/customers/$line" 200 "the new line"
  wait_for "/raters/$line" 200 "rater info of the new line (customer -> rater over the bus)"
  wait_for "/billings/$line" 200 "charge info of the new line (customer -> billing over the bus)"
  log "line $line reached rater and billing"
fi
log "smoke test passed"
