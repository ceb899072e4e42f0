#!/usr/bin/env bash
# Regenerates the Swift code for proto/ into Sources/TetherXDS/Generated.
#
# Tools (versions pinned here; the output is committed, so builds never run protoc):
#   protoc 3.21 (Debian: apt-get install protobuf-compiler libprotobuf-dev)
#   protoc-gen-swift        from apple/swift-protobuf 1.39.0
#   protoc-gen-grpc-swift-2 from grpc/grpc-swift-protobuf 2.4.1
# The two plugins are built (release, a few minutes the first time) in .build-protoc/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scratch=$root/.build-protoc

command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler libprotobuf-dev" >&2; exit 1; }

mkdir -p "$scratch/plugins"
cat > "$scratch/plugins/Package.swift" <<'MANIFEST'
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ]
)
MANIFEST
(cd "$scratch/plugins" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2)
bin=$(cd "$scratch/plugins" && swift build -c release --show-bin-path)

include=/usr/include

# generate OUT_DIR "MESSAGE_PROTOS" "SERVICE_PROTOS" (paths under proto/)
generate() {
    local out=$root/$1
    rm -rf "$out"
    mkdir -p "$out"
    (cd proto && protoc -I . -I "$include" \
        --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
        --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
        $2)
    (cd proto && protoc -I . -I "$include" \
        --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
        --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public,Client=true,Server=true,FileNaming=PathToUnderscores \
        $3)
    echo "generated: $(ls "$out" | wc -l) files in $1"
}

# xDS: Envoy's discovery protocol and Tether's config resources.
generate Sources/TetherXDS/Generated \
    "$(cd proto && find envoy google tether/config -name '*.proto' | sort)" \
    envoy/service/discovery/v3/ads.proto
# Workload identity: Tether's bootstrap/renewal service and the SPIFFE Workload API.
generate Sources/TetherMeshIdentity/Generated \
    "tether/identity/v1/identity.proto spiffe/workload.proto" \
    "tether/identity/v1/identity.proto spiffe/workload.proto"
