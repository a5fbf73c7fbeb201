#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs the
# whole system in the foreground on the embedded defaults (nng + SQLite files
# under one data dir). Ctrl-C or SIGTERM stops every service cleanly.
#   BSS_DATA_DIR  data dir (default ./data)     BSS_PORT  gateway port (8088)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bin/bssiot
