#!/usr/bin/env bash
# A whole Tether mesh on this machine, in one command:
#
#   scripts/demo.sh up      build if needed, start it, print what to try
#   scripts/demo.sh down    stop exactly what `up` started, remove its directory
#
# It starts a control plane (SQLite, its CA, the built-in token service), the
# official MCP Python SDK's server (the peer the tests use: pip install
# mcp==2.3.0), that server's tether-proxy (spiffe://example.org/mcp/demo), and
# an agent's tether-proxy (spiffe://example.org/agent/triage). It applies a
# config with an identity provider (a local ES256 key and a user token it
# mints) and a builtin RFC 8693 token exchange. Each process logs to its own
# file under the demo directory.
#
# Environment: TETHER_DEMO_DIR (default ./tether-demo), TETHER_DEMO_PORT_BASE
# (default 17000: ports BASE+12.. are used), TETHER_BIN (a directory holding
# built binaries; default: swift build, then .build/debug).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${TETHER_DEMO_DIR:-$ROOT/tether-demo}"
BASE="${TETHER_DEMO_PORT_BASE:-17000}"
XDS=$((BASE + 12)) BOOTSTRAP=$((BASE + 13)) TOKEN=$((BASE + 14)) MCP=$((BASE + 80))
SERVING_ADMIN=$((BASE + 100)) INBOUND=$((BASE + 106)) AGENT_ADMIN=$((BASE + 200)) OUTBOUND=$((BASE + 201))

die() { echo "demo: $*" >&2; exit 1; }

# Waits (at most 30 s) until a command succeeds.
wait_for() {
    local what=$1; shift
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up within 30 s; see $DIR/logs/"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a process in the background, logging to logs/NAME.log, and records
# its PID. It keeps none of this script's other file descriptors: a caller
# that waits for the script to end (and for its output to close) is not
# held open by the services it leaves running.
start() {
    local name=$1; shift
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ) >"$DIR/logs/$name.log" 2>&1 </dev/null &
    echo "$! $name" >>"$DIR/pids"
}

# Whether PID runs (an exited process its new parent has not reaped yet is a
# zombie: gone, though `kill -0` still finds it).
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

down() {
    if [ -f "$DIR/pids" ]; then
        while read -r pid name; do
            running "$pid" && kill "$pid" 2>/dev/null && echo "stopped $name ($pid)"
        done <"$DIR/pids"
        for _ in $(seq 1 100); do
            alive=0
            while read -r pid _; do if running "$pid"; then alive=1; fi; done <"$DIR/pids"
            [ $alive = 0 ] && break
            sleep 0.1
        done
        while read -r pid _; do if running "$pid"; then kill -9 "$pid" 2>/dev/null; fi; done <"$DIR/pids"
    fi
    rm -rf "$DIR"
}

binaries() {
    if [ -n "${TETHER_BIN:-}" ]; then
        BIN="$TETHER_BIN"
    else
        echo "building (swift build; the first time takes several minutes)…"
        (cd "$ROOT" && swift build >/dev/null) || die "swift build failed; run it in $ROOT to see why"
        BIN="$ROOT/.build/debug"
    fi
    for binary in tether-control tether-proxy tether-bench-upstream; do
        [ -x "$BIN/$binary" ] || die "$BIN/$binary is missing"
    done
    python3 -c 'import mcp.server.mcpserver' 2>/dev/null \
        || die "the demo's MCP server is the official MCP Python SDK: pip install mcp==2.3.0"
}

config() {
    cat <<EOF
apiVersion: tether.dev/v1alpha1
kind: IdentityProvider
metadata: {name: corp-sso}
spec:
  issuer: https://login.example.com
  audiences: [tether-agents]
  jwks: {inline: '$(cat "$DIR/idp/jwks.json")'}
  allowedAlgorithms: [ES256]
  subjectClaim: email
---
apiVersion: tether.dev/v1alpha1
kind: TokenExchange
metadata: {name: demo-token}
spec: {type: builtin, audience: "https://mcp.demo.example", scopes: ["repo:read"], ttl: 5m}
---
apiVersion: tether.dev/v1alpha1
kind: MCPBackend
metadata: {name: demo}
spec:
  inMesh:
    spiffeID: spiffe://example.org/mcp/demo
    address: 127.0.0.1:$INBOUND
    upstream: http://127.0.0.1:$MCP/mcp
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: {name: demo}
spec:
  agents: ["spiffe://example.org/agent/triage"]
  path: /demo
  backend: demo
  identityProvider: corp-sso
  tokenExchange: demo-token
---
apiVersion: tether.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: demo-tools}
spec:
  targets: {routes: [demo]}
  action: allow
  rules:
    - methods: [initialize, ping, server/discover, "notifications/*", tools/list]
    - methods: [tools/call]
      tools: [echo, add, whoami]
---
apiVersion: tether.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: demo-no-deletes}
spec:
  targets: {backends: [demo]}
  action: deny
  rules:
    - methods: [tools/call]
      tools: ["delete_*"]
EOF
}

# Joins a proxy: a single-use token for its SPIFFE ID, and the CA pin to check the control plane with.
proxy() {
    local name=$1 id=$2; shift 2
    local created token pin
    created=$("$BIN/tether-control" token create --spiffe-id "$id" --data-dir "$DIR/control" 2>"$DIR/logs/$name.token")
    token=$(echo "$created" | tr -d '[:space:]')
    pin=$(grep -o 'sha256:[0-9a-f]*' "$DIR/logs/$name.token" | head -1)
    rm -f "$DIR/logs/$name.token"
    TETHER_JOIN_TOKEN="$token" start "$name" "$BIN/tether-proxy" run \
        --control "127.0.0.1:$XDS" --bootstrap "127.0.0.1:$BOOTSTRAP" --token-service "127.0.0.1:$TOKEN" --ca-hash "$pin" \
        --data-dir "$DIR/$name" --access-log "$DIR/logs/$name.access.log" "$@"
}

up() {
    down >/dev/null
    binaries
    mkdir -p "$DIR/logs"
    start control-plane "$BIN/tether-control" run --data-dir "$DIR/control" --trust-domain example.org \
        --xds-address "127.0.0.1:$XDS" --bootstrap-address "127.0.0.1:$BOOTSTRAP" --token-address "127.0.0.1:$TOKEN"
    wait_for "the control plane" test -S "$DIR/control/admin.sock"
    wait_for "the control plane's xDS port" port_open "$XDS"

    "$BIN/tether-bench-upstream" idp "$DIR/idp"
    start mcp-server python3 "$ROOT/Tests/IntegrationTests/mcp_peer.py" server --port "$MCP"
    wait_for "the MCP server" port_open "$MCP"

    config >"$DIR/mesh.yaml"
    "$BIN/tether-control" apply -f "$DIR/mesh.yaml" --data-dir "$DIR/control" >"$DIR/logs/apply.log" 2>&1 \
        || die "apply failed: $(cat "$DIR/logs/apply.log")"
    proxy serving-proxy spiffe://example.org/mcp/demo \
        --admin-address "127.0.0.1:$SERVING_ADMIN" --outbound-address none --inbound-address "127.0.0.1:$INBOUND"
    proxy agent-proxy spiffe://example.org/agent/triage \
        --admin-address "127.0.0.1:$AGENT_ADMIN" --outbound-address "127.0.0.1:$OUTBOUND" --inbound-address none
    for admin in $SERVING_ADMIN $AGENT_ADMIN; do
        wait_for "a proxy" curl -sf "http://127.0.0.1:$admin/ready"
    done
    wait_for "the route on the agent's proxy" sh -c "curl -sf http://127.0.0.1:$AGENT_ADMIN/config_dump | grep -q demo-no-deletes"
    cat <<EOF

Tether demo is up. Logs: $DIR/logs/   Stop it: scripts/demo.sh down

The agent's MCP endpoint is http://127.0.0.1:$OUTBOUND/demo (its proxy's outbound listener).
Calls carry the user's SSO token; the MCP server gets a token the mesh minted for it instead.

  USER_TOKEN=\$(cat $DIR/idp/user.jwt)
  call() {  # call TOOL 'ARGUMENTS-JSON'
    curl -s http://127.0.0.1:$OUTBOUND/demo -H "Authorization: Bearer \$USER_TOKEN" \\
      -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\
      -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H "Mcp-Name: \$1" \\
      -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'"\$1"'","arguments":'"\$2"',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' \\
      | python3 -m json.tool
  }

  call echo '{"text":"hello"}'          # allowed: "hello"
  call whoami '{}'                      # the Authorization the server received: a token minted for it, not the user's
  call delete_repo '{"name":"acme/app"}'   # denied: 403, -32003, names AuthorizationPolicy demo-no-deletes
  curl -s http://127.0.0.1:$OUTBOUND/demo -H "Authorization: Bearer \$USER_TOKEN" -H 'Content-Type: application/json' \\
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list' \\
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' \\
    | python3 -m json.tool | grep '"name"'   # filtered: delete_repo is not listed

  # A policy change applies to the next call, no restart: stop allowing echo.
  sed 's/tools: \[echo, add, whoami\]/tools: [add, whoami]/' $DIR/mesh.yaml > $DIR/mesh-no-echo.yaml
  $BIN/tether-control apply -f $DIR/mesh-no-echo.yaml --data-dir $DIR/control
  call echo '{"text":"hello"}'          # now denied

  $BIN/tether-control explain --data-dir $DIR/control --agent spiffe://example.org/agent/triage \\
    --route demo --method tools/call --tool delete_repo
  $BIN/tether-control proxies --data-dir $DIR/control
  curl -s http://127.0.0.1:$AGENT_ADMIN/metrics | grep tether_proxy_mcp_requests_total
EOF
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: scripts/demo.sh up|down" >&2; exit 2 ;;
esac
