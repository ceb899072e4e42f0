#!/usr/bin/env bash
# The data path's cost: MCP tools/call requests straight to a fast upstream
# against the same requests through Tether — the agent's tether-proxy
# (outbound) → mTLS HTTP/2 → the serving tether-proxy (inbound) → upstream,
# with an authorization policy and a vaulted-credential token exchange in
# force — measured in the same run with wrk (installed if missing).
#
# Per path: requests/s and latency p50 / p99 at 1 and 16 connections; per
# proxy: CPU seconds per 1,000 requests and peak RSS; and the ratios.
# Usage: Benchmarks/data-path.sh [SECONDS per run]   (default 10)
#        PROFILE=/tmp/proxy.perf Benchmarks/data-path.sh   (also profiles the agent's proxy)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
command -v wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
for product in tether-control tether-proxy tether-bench-upstream; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/tether-bench-XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 400); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "timed out waiting for $1" >&2; exit 1; }

upstream=$(free_port); xds=$(free_port); boot=$(free_port); tokens=$(free_port)
"$bin/tether-bench-upstream" "$upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
"$bin/tether-control" run --data-dir "$work/cp" --trust-domain example.org --xds-address "127.0.0.1:$xds" \
    --bootstrap-address "127.0.0.1:$boot" --token-address "127.0.0.1:$tokens" >"$work/cp.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do "$bin/tether-control" history --data-dir "$work/cp" >/dev/null 2>&1 && break; sleep 0.05; done

start_proxy() { # name spiffe-id -> sets out, in, admin, pid
    out=$(free_port); in=$(free_port); admin=$(free_port)
    local token pin
    token=$("$bin/tether-control" token create --data-dir "$work/cp" --spiffe-id "$2" 2>"$work/$1.token")
    pin=$(grep -o 'sha256:[0-9a-f]*' "$work/$1.token")
    TETHER_JOIN_TOKEN=$token "$bin/tether-proxy" run --control "127.0.0.1:$xds" --bootstrap "127.0.0.1:$boot" --ca-hash "$pin" \
        --token-service "127.0.0.1:$tokens" --data-dir "$work/$1" --admin-address "127.0.0.1:$admin" \
        --outbound-address "127.0.0.1:$out" --inbound-address "127.0.0.1:$in" --access-log none >"$work/$1.log" 2>&1 &
    pid=$!; pids+=($pid)
}
start_proxy server spiffe://example.org/mcp/bench; server_in=$in; server_admin=$admin; server_pid=$pid
start_proxy agent spiffe://example.org/agent/bench; agent_out=$out; agent_admin=$admin; agent_pid=$pid

cat >"$work/mesh.yaml" <<EOF
apiVersion: tether.dev/v1alpha1
kind: MCPBackend
metadata: {name: bench}
spec: {inMesh: {spiffeID: "spiffe://example.org/mcp/bench", address: "127.0.0.1:$server_in", upstream: "http://127.0.0.1:$upstream/mcp"}}
---
apiVersion: tether.dev/v1alpha1
kind: Credential
metadata: {name: bench-pat}
spec: {value: bench-secret-value}
---
apiVersion: tether.dev/v1alpha1
kind: TokenExchange
metadata: {name: bench-pat}
spec: {type: credential, credential: bench-pat}
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: {name: bench}
spec: {agents: ["spiffe://example.org/agent/bench"], path: /bench, backend: bench, tokenExchange: bench-pat}
---
apiVersion: tether.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: bench}
spec:
  targets: {routes: [bench]}
  action: allow
  rules: [{agents: ["spiffe://example.org/agent/*"], methods: [tools/call], tools: [echo, "get_*"]}]
EOF
"$bin/tether-control" apply --data-dir "$work/cp" -f "$work/mesh.yaml" >/dev/null
wait_for "127.0.0.1:$agent_admin/ready"; wait_for "127.0.0.1:$server_admin/ready"

# One stateless (2026-07-28) tools/call, as an agent sends it.
cat >"$work/call.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "echo"
EOF
curl -sf -X POST "127.0.0.1:$agent_out/bench" -H 'Content-Type: application/json' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: echo' \
    -H 'MCP-Protocol-Version: 2026-07-28' --data '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}' >/dev/null \
    || { echo "the mesh does not answer; proxy logs in $work" >&2; cat "$work/agent.log" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
ticks=$(getconf CLK_TCK)

run() { # url connections -> "rps p50_ms p99_ms requests"
    local threads=$(( $2 < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$2" -d"${seconds}s" --latency -s "$work/call.lua" "$1" >"$work/wrk.out"
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /requests in/ { n = $1 } /^Requests\/sec/ { rps = $2 }
        /Non-2xx/ { bad = $NF }
        END { if (bad > 0) { print "non-2xx responses: " bad > "/dev/stderr"; exit 1 } printf "%.0f %.3f %.3f %d\n", rps, p50, p99, n }
    ' "$work/wrk.out"
}

run "http://127.0.0.1:$upstream/mcp" 16 >/dev/null   # warm-up
run "http://127.0.0.1:$agent_out/bench" 16 >/dev/null
read -r d1_rps d1_p50 d1_p99 _ <<<"$(run "http://127.0.0.1:$upstream/mcp" 1)"
read -r d16_rps d16_p50 d16_p99 _ <<<"$(run "http://127.0.0.1:$upstream/mcp" 16)"
read -r t1_rps t1_p50 t1_p99 _ <<<"$(run "http://127.0.0.1:$agent_out/bench" 1)"
a0=$(cpu_ticks "$agent_pid"); s0=$(cpu_ticks "$server_pid")
# PROFILE=FILE: record the agent proxy under this load (perf record -g; read with perf report -i FILE).
if [ -n "${PROFILE:-}" ]; then perf record -q -F 499 -g -p "$agent_pid" -o "$PROFILE" -- sleep "$((seconds - 1))" 2>/dev/null & fi
read -r t16_rps t16_p50 t16_p99 t16_n <<<"$(run "http://127.0.0.1:$agent_out/bench" 16)"
a1=$(cpu_ticks "$agent_pid"); s1=$(cpu_ticks "$server_pid")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cpu_per_k() { awk -v t="$1" -v hz="$ticks" -v n="$t16_n" 'BEGIN { printf "%.3f", t / hz / n * 1000 }'; }
echo "Data path: tools/call, ${seconds}s per run, $(nproc) cores, $(uname -m)"
printf '%-34s %12s %12s %12s %12s %12s %12s\n' path "rps c=1" "p50 c=1" "p99 c=1" "rps c=16" "p50 c=16" "p99 c=16"
printf '%-34s %12s %10sms %10sms %12s %10sms %10sms\n' "direct" "$d1_rps" "$d1_p50" "$d1_p99" "$d16_rps" "$d16_p50" "$d16_p99"
printf '%-34s %12s %10sms %10sms %12s %10sms %10sms\n' "Tether (2 proxies, mTLS HTTP/2)" "$t1_rps" "$t1_p50" "$t1_p99" "$t16_rps" "$t16_p50" "$t16_p99"
printf '%-34s %12s %12s %12s %12s %12s %12s\n' "Tether / direct" "$(ratio "$t1_rps" "$d1_rps")" "$(ratio "$t1_p50" "$d1_p50")" \
    "$(ratio "$t1_p99" "$d1_p99")" "$(ratio "$t16_rps" "$d16_rps")" "$(ratio "$t16_p50" "$d16_p50")" "$(ratio "$t16_p99" "$d16_p99")"
echo "CPU per 1,000 requests at c=16: agent proxy $(cpu_per_k $((a1 - a0))) s, serving proxy $(cpu_per_k $((s1 - s0))) s"
echo "Peak RSS: agent proxy $(hwm_mb "$agent_pid") MB, serving proxy $(hwm_mb "$server_pid") MB"
