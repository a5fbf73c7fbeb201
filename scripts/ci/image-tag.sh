#!/usr/bin/env bash
# Prints the image tag of this build: <BUILD_NUMBER>-<short commit>, or
# dev-<short commit> outside Jenkins. Every service image of one build and
# the Helm release that deploys them carry the same tag.
# shellcheck source=scripts/ci/lib.sh
source "$(dirname "$0")/lib.sh"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
printf '%s-%s\n' "${BUILD_NUMBER:-dev}" "$commit"
