#!/usr/bin/env bash
# Reproduces PERFORMANCE.md's load figures: a synthetic 1,000-service mesh (10,000 virtual nodes),
# meshplane serving it, and `meshplane load` simulating N sidecars (one HTTP/2 connection each) that
# converge, then take EDITS route edits. Usage: scripts/loadtest.sh CLIENTS [sotw|delta] [EDITS]
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-1000}"; mode="${2:-sotw}"; edits="${3:-5}"
services="${SERVICES:-1000}"; mesh_clients="${MESH_CLIENTS:-8000}"
cargo build --release --quiet
bin=target/release/meshplane
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" generate "$dir" --services "$services" --clients "$mesh_clients" >/dev/null
port=$((20000 + RANDOM % 20000))
setsid "$bin" serve --config "$dir" --xds-listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --log-level warn &
pid=$!
until "$bin" load --xds "127.0.0.1:$port" --clients 1 --edits 0 --timeout 2 >/dev/null 2>&1; do sleep 0.2; done
"$bin" load --xds "127.0.0.1:$port" --clients "$clients" --nodes "$mesh_clients" --mode "$mode" \
  --edit-dir "$dir" --edits "$edits" --server-pid "$pid" ${LOAD_ARGS:-}
