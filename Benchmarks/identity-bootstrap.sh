#!/usr/bin/env bash
# Proxy start-to-ready: from `tether-proxy run` to /ready, with workload
# identity (join token -> CSR over TLS -> SVID, then xDS over mTLS) against
# the baseline in the same run (plaintext --insecure-xds, no identity).
# Release build; each proxy is started, timed and stopped in turn.
# Usage: Benchmarks/identity-bootstrap.sh [ROUNDS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
swift build -c release --product tether-control >/dev/null
swift build -c release --product tether-proxy >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/tether-bench-XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

start_control() { # mode dir -> sets xds, boot
    xds=$(free_port); boot=$(free_port)
    local extra=()
    [ "$1" = insecure ] && extra=(--insecure-xds)
    "$bin/tether-control" run --data-dir "$2" --trust-domain example.org --xds-address "127.0.0.1:$xds" \
        --bootstrap-address "127.0.0.1:$boot" "${extra[@]}" >"$2.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do "$bin/tether-control" history --data-dir "$2" >/dev/null 2>&1 && break; sleep 0.05; done
    "$bin/tether-control" apply --data-dir "$2" -f examples/mesh.yaml >/dev/null
}

time_proxy() { # args... -> prints ms to /ready
    local admin dir start pid
    admin=$(free_port); dir="$work/p-$RANDOM$RANDOM"
    start=$(now_ms)
    "$bin/tether-proxy" run --data-dir "$dir" --admin-address "127.0.0.1:$admin" "$@" >"$dir.log" 2>&1 &
    pid=$!
    until curl -sf "127.0.0.1:$admin/ready" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { cat "$dir.log" >&2; exit 1; }
        sleep 0.005
    done
    echo $(( $(now_ms) - start ))
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

stats() { sort -n | awk '{a[NR]=$1} END {printf "p50 %d ms  p90 %d ms  (n=%d)", a[int((NR+1)/2)], a[int(NR*0.9+0.5)], NR}'; }

start_control insecure "$work/cp-insecure"
insecure_xds=$xds
start_control mtls "$work/cp-mtls"
id=spiffe://example.org/agent/triage
baseline=() identity=()
for _ in $(seq "$rounds"); do
    baseline+=("$(time_proxy --control "127.0.0.1:$insecure_xds" --insecure-xds --node-id "$id")")
    token=$("$bin/tether-control" token create --data-dir "$work/cp-mtls" --spiffe-id "$id" 2>"$work/token.err")
    pin=$(grep -o 'sha256:[0-9a-f]*' "$work/token.err")
    identity+=("$(time_proxy --control "127.0.0.1:$xds" --bootstrap "127.0.0.1:$boot" --join-token "$token" --ca-hash "$pin")")
done
b=$(printf '%s\n' "${baseline[@]}" | stats); i=$(printf '%s\n' "${identity[@]}" | stats)
bp=$(printf '%s\n' "${baseline[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
ip=$(printf '%s\n' "${identity[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "start to ready, plaintext baseline:        $b"
echo "start to ready, join + SVID + xDS on mTLS: $i"
echo "ratio (p50): $(awk -v a="$ip" -v b="$bp" 'BEGIN {printf "%.2f", a/b}')x"
