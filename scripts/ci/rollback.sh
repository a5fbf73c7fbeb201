#!/usr/bin/env bash
# Runs when "Deploy" or "Smoke" failed: back to the revision deploy.sh
# recorded, or, when this build installed the release for the first time,
# uninstall it (the volumes stay: StatefulSet claims outlive the release).
# Environment: NAMESPACE; RELEASE (default bssiot); KUBECONFIG.
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"

require_env NAMESPACE
release=${RELEASE:-bssiot}
previous=$(cat .deploy-previous-revision 2>/dev/null || true)
case "$previous" in
  '') die "no .deploy-previous-revision: deploy.sh did not run, nothing to roll back" ;;
  *[!0-9]*) die "bad .deploy-previous-revision '$previous'" ;;
esac
if [ "$previous" -eq 0 ]; then
  log "first install failed: uninstalling $release"
  run helm uninstall "$release" --namespace "$NAMESPACE" --wait
else
  log "rolling $release back to revision $previous"
  run helm rollback "$release" "$previous" --namespace "$NAMESPACE" --wait
fi
