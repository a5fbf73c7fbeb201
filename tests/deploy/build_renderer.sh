#!/usr/bin/env bash
# Builds tests/deploy/helmrender into OUT_DIR/helmrender, offline, from
# Debian's Go packages (golang-go, golang-github-masterminds-sprig-dev,
# golang-k8s-sigs-yaml-dev): GOPATH mode over /usr/share/gocode, no module
# proxy, the build cache under OUT_DIR (not $HOME).
#   build_renderer.sh OUT_DIR
# Debian installs Sprig and SemVer without the /v3 suffix their import paths
# carry, so a private GOPATH entry maps the two /v3 paths onto them.
set -euo pipefail
out=${1:?usage: build_renderer.sh OUT_DIR}
src="$(cd "$(dirname "$0")" && pwd)/helmrender"
mkdir -p "$out"
out=$(cd "$out" && pwd)
gocode=/usr/share/gocode/src
for module in sprig semver; do
  if [ ! -d "$gocode/github.com/Masterminds/$module" ]; then
    echo "build_renderer: $gocode/github.com/Masterminds/$module is missing (scripts/install-deps.sh)" >&2
    exit 1
  fi
  mkdir -p "$out/gopath/src/github.com/Masterminds/$module"
  ln -sfn "$gocode/github.com/Masterminds/$module" "$out/gopath/src/github.com/Masterminds/$module/v3"
done
cd "$src"
GO111MODULE=off GOPATH="$out/gopath:/usr/share/gocode" GOCACHE="$out/gocache" \
  GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local go build -o "$out/helmrender" .
