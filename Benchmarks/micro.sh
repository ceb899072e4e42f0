#!/usr/bin/env bash
# Micro-benchmarks of the proxy's per-request hot paths — MCP inspection,
# listing filter, authorization, token-cache hit, user-token validation —
# with time, throughput, allocations and instructions per operation.
# A separate package (Benchmarks/Micro) run by ordo-one/benchmark's plugin,
# release build; the malloc interposer counts allocations (no jemalloc).
# Usage: Benchmarks/micro.sh [plugin options]   e.g. --filter 'decide' or --target Authorization
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift package --package-path Benchmarks/Micro benchmark --no-progress --grouping benchmark "$@"
