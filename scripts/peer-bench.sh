#!/usr/bin/env bash
# Side by side, same run, same load tool: go-control-plane (`gcp-bench`, its snapshot cache and server)
# against meshplane serving a mesh of the same shape (50 EDS clusters with one endpoint each, one listener,
# one route table; every sidecar gets the same snapshot), alternating the two servers run by run.
# Each run: N simulated sidecars converge, then EDITS changes that move one endpoint (the peer's SIGUSR1,
# meshplane's move-one-endpoint.sh on disk, its debounce included) are timed to every sidecar's ACK.
#
# Usage: scripts/peer-bench.sh [SIZES] [MODES] [ROUNDS]
#   e.g. scripts/peer-bench.sh "1000 5000 10000" "sotw delta" 2
# Env: PEER_DIR (default ../shared/peers/go-control-plane), EDITS (5), DEBOUNCE (meshplane's, 20ms),
#      LOAD_ARGS (extra `meshplane load` flags), KEEP=1 keeps the JSON reports (printed path).
set -euo pipefail
cd "$(dirname "$0")/.."
peer="${PEER_DIR:-../shared/peers/go-control-plane}"
sizes="${1:-1000 5000 10000}"; modes="${2:-sotw delta}"; rounds="${3:-2}"
edits="${EDITS:-5}"; debounce="${DEBOUNCE:-20ms}"
[ -x "$peer/gcp-bench" ] || { echo "no gcp-bench in $peer (set PEER_DIR)" >&2; exit 2; }
echo "==> building meshplane (release)" >&2
cargo build --release --quiet
bin=target/release/meshplane
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work="$(mktemp -d)"; pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; [ "${KEEP:-}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

wait_port() { # until a one-client load converges against the server on port $1
  for _ in $(seq 100); do
    "$bin" load --xds "127.0.0.1:$1" --clients 1 --edits 0 --timeout 2 --node-id "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server on port $1 did not come up" >&2; return 1
}

run() { # server mode clients round
  # Below the ephemeral range (32768-): a port the load tool's own sockets just used may still be taken.
  local server=$1 mode=$2 n=$3 r=$4 port=$((21000 + RANDOM % 11000)) node edit
  local out="$work/$server-$mode-$n-$r.json"
  if [ "$server" = peer ]; then
    setsid "$peer/gcp-bench" -port "$port" -clusters 50 >"$work/peer.log" 2>&1 &
    pid=$!; node="bench-node"; edit="kill -USR1 $pid"
  else
    rm -rf "$work/mesh"; python3 "$peer/peer-shaped-mesh.py" "$work/mesh" >/dev/null
    setsid "$bin" serve --config "$work/mesh" --xds-listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 \
      --debounce "$debounce" --log-level warn >"$work/meshplane.log" 2>&1 &
    pid=$!; node="mesh/bench/virtualNode/client"; edit="$peer/move-one-endpoint.sh $work/mesh"
  fi
  wait_port "$port" "$node"
  echo "==> $server $mode $n sidecars (round $r)" >&2
  "$bin" load --xds "127.0.0.1:$port" --clients "$n" --node-id "$node" --nodes 1 --mode "$mode" \
    --edit-cmd "$edit" --edits "$edits" --server-pid "$pid" --timeout 120s -o json ${LOAD_ARGS:-} >"$out" \
    || echo "load run failed: $out" >&2
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""
}

for n in $sizes; do
  for mode in $modes; do
    for r in $(seq "$rounds"); do
      # Alternate which server goes first, so neither always runs on a warmer (or busier) machine.
      if [ $((r % 2)) = 1 ]; then run peer "$mode" "$n" "$r"; run meshplane "$mode" "$n" "$r"
      else run meshplane "$mode" "$n" "$r"; run peer "$mode" "$n" "$r"; fi
    done
  done
done

python3 - "$work" "$debounce" <<'EOF'
import json, os, sys, collections
work, debounce = sys.argv[1], sys.argv[2]
runs = collections.defaultdict(list)
for f in sorted(os.listdir(work)):
    if not f.endswith(".json"): continue
    server, mode, n, _ = f[:-5].split("-")
    try: r = json.load(open(os.path.join(work, f)))
    except Exception: continue
    runs[(int(n), mode, server)].append(r)
def rng(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals: return "n/a"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if lo == hi else (fmt.format(lo) + "–" + fmt.format(hi))
def metrics(rs):
    return {
        "conv": [r["all_converged_ms"] / 1e3 for r in rs],
        "p99": [max((e["p99_ms"] for e in r["edits"]), default=None) for r in rs],
        "rss": [r.get("server_rss_per_client_kib") for r in rs],
        "cpu": [r.get("server_cpu_seconds") for r in rs],
        "cpu_conn": [r.get("server_cpu_connect_seconds") for r in rs],
        "tool_conn": [r.get("tool_cpu_connect_seconds") for r in rs],
        "bytes": [sum(t["bytes"] for t in r["per_type"]) / max(r["clients"], 1) / 1e3 for r in rs],
        "ok": all(r["ok"] for r in rs),
    }
def ratio(a, b):
    a = [v for v in a if v is not None]; b = [v for v in b if v is not None]
    if not a or not b: return "n/a"
    return "{:.2f}".format((sum(a) / len(a)) / (sum(b) / len(b)))
print(f"meshplane debounce: {debounce} (counted in its edit latencies); ranges over rounds; ratio = meshplane mean ÷ peer mean")
print("| sidecars | mode | metric | go-control-plane | meshplane | meshplane ÷ peer |")
print("|---|---|---|---|---|---|")
for (n, mode) in sorted({(k[0], k[1]) for k in runs}):
    p, m = runs.get((n, mode, "peer"), []), runs.get((n, mode, "meshplane"), [])
    if not p or not m: continue
    P, M = metrics(p), metrics(m)
    rows = [("all converged (s)", "conv", "{:.2f}"), ("edit → last ACK p99 (s)", "p99", "{:.2f}"),
            ("server RSS per sidecar (KiB)", "rss", "{:.1f}"), ("server CPU, whole run (s)", "cpu", "{:.1f}"),
            ("server CPU, until converged (s)", "cpu_conn", "{:.2f}"),
            ("load tool CPU, until converged (s)", "tool_conn", "{:.2f}"),
            ("bytes received per sidecar (kB, edits incl.)", "bytes", "{:.1f}")]
    for label, k, fmt in rows:
        if k == "p99":
            P[k] = [v / 1e3 if v is not None else None for v in P[k]]
            M[k] = [v / 1e3 if v is not None else None for v in M[k]]
        print(f"| {n:,} | {mode} | {label} | {rng(P[k], fmt)} | {rng(M[k], fmt)} | {ratio(M[k], P[k])} |")
    if not (P["ok"] and M["ok"]):
        print(f"| {n:,} | {mode} | runs not ok | {P['ok']} | {M['ok']} | |")
if os.environ.get("KEEP") == "1": print(f"reports: {work}", file=sys.stderr)
EOF
