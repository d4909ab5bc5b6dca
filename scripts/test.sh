#!/usr/bin/env bash
# Runs every test of drainit: unit tests, the real binary as PID 1 of fresh PID namespaces, the
# HAProxy rolling restart, and the Docker test (which skips, saying why, when no engine runs).
# Run as root (the tests create PID namespaces). Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --quiet --all-targets
cargo test --all-targets "$@"
