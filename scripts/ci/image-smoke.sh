#!/usr/bin/env bash
# Opt-in check of built service images on a machine with a Docker daemon
# (not part of ctest or the pipeline: the CI machines have no daemon).
# Runs the images the way the Helm chart runs the pods, then checks them:
#
#   - every container is started as in Kubernetes: its own network
#     namespace on a private Docker network, read-only root filesystem, a
#     volume on /var/lib/bssiot, /tmp a tmpfs, every capability dropped, no
#     privilege escalation; services reach each other by name (upstreams,
#     and the nng bus over TCP on 7001/7002 as the chart's headless
#     Services), all sharing one random BSS_INTERNAL_TOKEN;
#   - PID 1 of each container is the service binary itself (the exec-form
#     ENTRYPOINT, so SIGTERM reaches it) running as a non-root user;
#   - Docker's HEALTHCHECK reports every container healthy;
#   - through the gateway (published on a free loopback port): /healthz,
#     then scripts/ci/smoke.sh with an operator token made by
#     `docker exec <gateway> bssiot-admin token create`; with customer,
#     rater and billing running it opens a line and follows it over the bus
#     (BSS_SMOKE_WRITE=1), with customer alone it opens a line (201);
#   - `docker stop` ends every service cleanly (exit status 0, no SIGKILL).
#
#   image-smoke.sh
# Environment:
#   REGISTRY, IMAGE_TAG         the images are $REGISTRY/bssiot-<service>:$IMAGE_TAG,
#                               as image.sh tags them, e.g.
#                               docker build --target gateway -t local/bssiot-gateway:test .
#                               REGISTRY=local IMAGE_TAG=test scripts/ci/image-smoke.sh
#   BSS_IMAGE_SMOKE_SERVICES    default "gateway customer rater billing settlement mypage";
#                               must include gateway
#   BSS_IMAGE_SMOKE_TIMEOUT_S   default 120 (the HEALTHCHECK runs every 10 s)
# Everything it creates (containers, volumes, network) is removed on exit;
# a failure prints the containers' logs first. Exit status 0 when every
# check passed.
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"

require_env REGISTRY IMAGE_TAG
services=${BSS_IMAGE_SMOKE_SERVICES:-${BSS_SERVICES[*]}}
timeout_s=${BSS_IMAGE_SMOKE_TIMEOUT_S:-120}
for service in $services; do
  if [[ " ${BSS_SERVICES[*]} " != *" $service "* ]]; then
    die "image-smoke.sh: unknown service $service (known: ${BSS_SERVICES[*]})"
  fi
done
[[ " $services " == *" gateway "* ]] || die "image-smoke.sh: BSS_IMAGE_SMOKE_SERVICES must include gateway"
docker info >/dev/null 2>&1 || die "image-smoke.sh: no Docker daemon answers (docker info failed)"

# The ports the images and the chart use (k8s/values.yaml).
declare -A http_port=([gateway]=8088 [customer]=8081 [rater]=8082 [billing]=8083
  [settlement]=8084 [mypage]=8085)
declare -A route_prefix=([customer]=customers [rater]=raters [billing]=billings
  [settlement]=settlements [mypage]=mypage)
bus_pub_port=7001
bus_rep_port=7002

run_id="bssiot-smoke-$$"
network=$run_id
started=()
passed=0

image_of() { printf '%s/bssiot-%s:%s' "${REGISTRY%/}" "$1" "$IMAGE_TAG"; }
container_of() { printf '%s-%s' "$run_id" "$1"; }
has() { [[ " $services " == *" $1 "* ]]; }

cleanup() {
  local service
  if [ "$passed" != 1 ]; then
    for service in "${started[@]}"; do
      log "--- logs of $service (last 40 lines)"
      docker logs --tail 40 "$(container_of "$service")" >&2 2>&1 || true
    done
  fi
  for service in "${started[@]}"; do
    docker rm --force --volumes "$(container_of "$service")" >/dev/null 2>&1 || true
    docker volume rm "$(container_of "$service")-data" >/dev/null 2>&1 || true
  done
  docker network rm "$network" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for service in $services; do
  docker image inspect "$(image_of "$service")" >/dev/null 2>&1 ||
    die "image-smoke.sh: no image $(image_of "$service") (build it with docker build --target $service)"
done

internal_token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
log "network $network"
docker network create "$network" >/dev/null

# start SERVICE: runs the service's container as the chart runs its pod.
start() {
  local service=$1 name env=() other
  name=$(container_of "$service")
  env+=(--env "BSS_INTERNAL_TOKEN=$internal_token")
  if [ "$service" = gateway ]; then
    for other in $services; do
      [ "$other" = gateway ] && continue
      env+=(--env "BSS_UPSTREAM_${other^^}=http://$other:${http_port[$other]}")
    done
  else
    # Its own stream listens on all interfaces; the others' are dialled by
    # name, as through the chart's headless Services.
    for other in $services; do
      [ "$other" = gateway ] && continue
      local host=$other
      [ "$other" = "$service" ] && host=0.0.0.0
      env+=(--env "BSS_BUS_${other^^}_PUB=tcp://$host:$bus_pub_port"
        --env "BSS_BUS_${other^^}_REP=tcp://$host:$bus_rep_port")
    done
  fi
  local publish=()
  if [ "$service" = gateway ]; then
    publish=(--publish "127.0.0.1::${http_port[gateway]}")
  fi
  docker volume create "$name-data" >/dev/null
  started+=("$service")
  docker run --detach --name "$name" --network "$network" --network-alias "$service" \
    --read-only --tmpfs /tmp --volume "$name-data:/var/lib/bssiot" \
    --cap-drop ALL --security-opt no-new-privileges \
    "${publish[@]}" "${env[@]}" "$(image_of "$service")" >/dev/null
  log "started $service ($(image_of "$service"))"
}

for service in $services; do
  start "$service"
done

# PID 1 is the binary (exec form) and not root.
for service in $services; do
  name=$(container_of "$service")
  exe=$(docker exec "$name" readlink /proc/1/exe) ||
    die "$service: cannot inspect PID 1 (did it exit?)"
  [ "$exe" = "/usr/local/bin/bssiot-$service" ] ||
    die "$service: PID 1 is $exe, not /usr/local/bin/bssiot-$service"
  uid=$(docker exec "$name" awk '/^Uid:/ { print $2 }' /proc/1/status)
  if [ -z "$uid" ] || [ "$uid" = 0 ]; then
    die "$service: PID 1 runs as uid '$uid'"
  fi
  log "$service: PID 1 is $exe, uid $uid"
done

# Docker's HEALTHCHECK (curl on /healthz inside the container).
deadline=$((SECONDS + timeout_s))
for service in $services; do
  name=$(container_of "$service")
  while :; do
    state=$(docker inspect --format '{{.State.Status}} {{.State.Health.Status}}' "$name")
    case $state in
      "running healthy") break ;;
      "running unhealthy") die "$service: HEALTHCHECK reports unhealthy" ;;
      running\ *) ;;
      *) die "$service: container is $state" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || die "$service: not healthy after ${timeout_s}s ($state)"
    sleep 1
  done
  log "$service: healthy"
done

gateway_address=$(docker port "$(container_of gateway)" "${http_port[gateway]}/tcp" | head -n 1)
[ -n "$gateway_address" ] || die "the gateway's port is not published"
base="http://$gateway_address"
curl --silent --show-error --fail --max-time 10 --output /dev/null "$base/healthz" ||
  die "GET $base/healthz failed"
log "gateway answers /healthz at $base"

token=$(docker exec "$(container_of gateway)" bssiot-admin token create --role operator \
  --label image-smoke --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') ||
  die "bssiot-admin token create failed in the gateway container"

prefixes=
for service in $services; do
  [ "$service" = gateway ] || prefixes+="${route_prefix[$service]} "
done
write=0
if has customer && has rater && has billing; then
  write=1
fi
if [ -n "$prefixes" ]; then
  BSS_SMOKE_URL=$base BSS_SMOKE_TOKEN=$token BSS_SMOKE_PREFIXES=$prefixes \
    BSS_SMOKE_WRITE=$write BSS_SMOKE_TIMEOUT_S=$timeout_s bash scripts/ci/smoke.sh
fi
if [ "$write" = 0 ] && has customer; then
  status=$(curl --silent --show-error --max-time 10 --output /dev/null --write-out '%{http_code}' \
    --header "Authorization: Bearer $token" --header 'Content-Type: application/json' \
    --data "{\"customerId\":\"SMOKE-$$\",\"productCd\":\"IOT-BASIC\",\"apnCd\":\"smoke.test\",\"phone\":\"010-0000-0000\"}" \
    "$base/customers") || status=000
  [ "$status" = 201 ] || die "POST /customers through the gateway answered $status"
  log "POST /customers through the gateway: 201"
fi

# SIGTERM reaches each service and it stops cleanly within 30 s (the chart's
# default grace period: BSS_HTTP_DRAIN_MS 10 s + 15 s margin + 5 s preStop);
# a SIGKILL after the timeout would show as exit status 137.
for service in $services; do
  name=$(container_of "$service")
  docker stop --time 30 "$name" >/dev/null
  code=$(docker inspect --format '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || die "$service: exit status $code after docker stop"
done
log "every service stopped cleanly on SIGTERM"
passed=1
log "image smoke test passed ($services)"
