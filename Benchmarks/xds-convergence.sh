#!/usr/bin/env bash
# Control-plane convergence benchmark: apply → every simulated proxy has the
# change, for N = 10, 100, 1000 delta ADS streams. Release build; prints one
# line per N. Usage: Benchmarks/xds-convergence.sh [N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product tether-control >/dev/null
swift build -c release --product tether-xds-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
ulimit -n 65536 2>/dev/null || true
for n in "${@:-10 100 1000}"; do
    for clients in $n; do
        "$bin/tether-xds-bench" --control-binary "$bin/tether-control" --clients "$clients" --changes 20
    done
done
