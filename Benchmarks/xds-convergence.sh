#!/usr/bin/env bash
# Control-plane convergence benchmark: apply → every simulated proxy has the
# change, for N = 10, 100, 1000 delta ADS streams. Release build; prints one
# line per N.
#
#   Benchmarks/xds-convergence.sh [N ...]              one control plane on SQLite
#   REPLICAS=3 Benchmarks/xds-convergence.sh [N ...]   replicas on a throwaway PostgreSQL
#                                                       cluster (postgresql-15), streams
#                                                       spread over them
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product tether-control >/dev/null
swift build -c release --product tether-xds-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
ulimit -n 65536 2>/dev/null || true
replicas=${REPLICAS:-1}
store=()
if [ "$replicas" -gt 1 ]; then
    pg=/usr/lib/postgresql/15/bin
    [ -x "$pg/initdb" ] || { echo "REPLICAS needs PostgreSQL 15: apt-get install postgresql-15" >&2; exit 2; }
    dir=$(mktemp -d /tmp/tether-bench-pg.XXXXXX); chmod 755 "$dir"
    as=(); [ "$(id -u)" = 0 ] && { chown postgres "$dir"; as=(runuser -u postgres --); }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$pg/initdb" -D "$dir/data" -A trust -U tether --no-sync >/dev/null
    "${as[@]}" "$pg/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    trap '"${as[@]}" "$pg/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null; rm -rf "$dir"' EXIT
    head -c 32 /dev/urandom | base64 > "$dir/kek"; chmod 600 "$dir/kek"
fi
for n in "${@:-10 100 1000}"; do
    if [ "$replicas" -gt 1 ]; then
        # A fresh database per run.
        "$pg/psql" -h 127.0.0.1 -p "$port" -U tether -d postgres -q -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
        store=(--replicas "$replicas" --store "postgres://tether@127.0.0.1:$port/bench?sslmode=disable" --kek "$dir/kek")
    fi
    "$bin/tether-xds-bench" --control-binary "$bin/tether-control" --clients "$n" --changes 20 "${store[@]}"
done
