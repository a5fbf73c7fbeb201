#!/usr/bin/env bash
# Pipeline stage "Deploy": helm upgrade --install of k8s/ with this build's
# images, waiting until every StatefulSet is ready. Before upgrading it
# records the release's current revision in .deploy-previous-revision (0 when
# the release does not exist yet) for rollback.sh.
# Environment: NAMESPACE, IMAGE_TAG, REGISTRY; RELEASE (default bssiot);
# KUBECONFIG from Jenkins credentials; HELM_VALUES: optional values file
# (site settings, from Jenkins credentials); HELM_TIMEOUT (default 10m).
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"

require_env NAMESPACE IMAGE_TAG REGISTRY
release=${RELEASE:-bssiot}
timeout=${HELM_TIMEOUT:-10m}

previous=0
if [ "${BSS_CI_DRY_RUN:-0}" != 1 ]; then
  if history=$(helm history "$release" --namespace "$NAMESPACE" --max 1 -o json 2>/dev/null); then
    previous=$(printf '%s' "$history" | python3 -c \
      'import json, sys; h = json.load(sys.stdin); print(h[-1]["revision"] if h else 0)')
  fi
fi
printf '%s\n' "$previous" >.deploy-previous-revision
log "release $release in $NAMESPACE: previous revision $previous"

values=()
if [ -n "${HELM_VALUES:-}" ]; then
  values=(--values "$HELM_VALUES")
fi
run helm upgrade --install "$release" k8s \
  --namespace "$NAMESPACE" --create-namespace \
  "${values[@]}" \
  --set-string "image.registry=$REGISTRY" \
  --set-string "image.tag=$IMAGE_TAG" \
  --wait --timeout "$timeout"
