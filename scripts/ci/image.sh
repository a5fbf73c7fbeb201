#!/usr/bin/env bash
# Pipeline stage "Images" (one parallel branch per service): builds the
# service's image from the Dockerfile's target of the same name and pushes it
# as $REGISTRY/bssiot-<service>:$IMAGE_TAG.
#   image.sh SERVICE
# Environment: REGISTRY (e.g. registry.example.com/bss), IMAGE_TAG;
# REGISTRY_USER / REGISTRY_PASSWORD from Jenkins credentials (optional: no
# login without them). The login goes to a private DOCKER_CONFIG removed on
# exit, so no credential stays on the agent.
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"

service=${1:-}
known=" ${BSS_SERVICES[*]} "
if [ -z "$service" ] || [[ "$known" != *" $service "* ]]; then
  die "image.sh: service must be one of:${known}"
fi
require_env REGISTRY IMAGE_TAG
image="${REGISTRY%/}/bssiot-$service:$IMAGE_TAG"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
if [ -n "${REGISTRY_USER:-}" ]; then
  registry_host=${REGISTRY%%/*}
  log "logging in to $registry_host as $REGISTRY_USER"
  if [ "${BSS_CI_DRY_RUN:-0}" != 1 ]; then
    printf '%s' "${REGISTRY_PASSWORD:-}" |
      docker login --username "$REGISTRY_USER" --password-stdin "$registry_host"
  fi
fi
run docker build --target "$service" --build-arg "VERSION=$IMAGE_TAG" \
  --build-arg "REVISION=$revision" --tag "$image" .
run docker push "$image"
