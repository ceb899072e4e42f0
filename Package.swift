// swift-tools-version: 6.2
import PackageDescription

/// Our own targets build in Swift 6 mode with complete strict concurrency and
/// treat every warning as an error, locally and in CI alike.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "tether",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tether-control", targets: ["tether-control"]),
        .executable(name: "tether-proxy", targets: ["tether-proxy"]),
        .library(name: "TetherCore", targets: ["TetherCore"]),
        .library(name: "TetherXDS", targets: ["TetherXDS"]),
        .library(name: "TetherControlPlane", targets: ["TetherControlPlane"]),
        .library(name: "TetherProxy", targets: ["TetherProxy"]),
        // For Benchmarks/Micro (user-token validation on the request path).
        .library(name: "TetherIdentity", targets: ["TetherIdentity"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Without its default traits: with them SwiftPM passes the trait
        // defines in an unstable order and rebuilds SwiftProtobuf needlessly.
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0", traits: []),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Pure values and logic: SPIFFE IDs, the config model, parsing with
        // source positions, validation, canonical encodings, the mesh
        // snapshot and per-proxy views, diffs.
        .target(
            name: "TetherCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // Generated xDS and Tether protobuf/gRPC code (scripts/generate-protos.sh)
        // plus the ADS server and client protocol logic.
        .target(
            name: "TetherXDS",
            dependencies: [
                "TetherCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Workload identity: the trust domain's CA, X.509-SVID issuance and
        // validation per the SPIFFE standards.
        .target(
            name: "TetherIdentity",
            dependencies: [
                "TetherCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // Workload identity on the wire: the generated tether.identity.v1 and
        // SPIFFE Workload API gRPC code, the one SPIFFE peer verifier every
        // mTLS listener and client uses, and certificate reloading.
        .target(
            name: "TetherMeshIdentity",
            dependencies: [
                "TetherCore",
                "TetherIdentity",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Small HTTP/1.1 admin endpoints (control-plane Unix socket, proxy admin port).
        .target(
            name: "TetherAdminHTTP",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The control plane's durable core and services: store, apply engine,
        // admin API, snapshot updates, ADS server.
        .target(
            name: "TetherControlPlane",
            dependencies: [
                "TetherCore",
                "TetherXDS",
                "TetherIdentity",
                "TetherMeshIdentity",
                "TetherAdminHTTP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "controlplane/Sources/TetherControlPlane",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tether-control",
            dependencies: [
                "TetherCore",
                "TetherIdentity",
                "TetherXDS",
                "TetherControlPlane",
                "TetherMeshIdentity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "controlplane/Sources/tether-control",
            swiftSettings: strict
        ),
        // The data plane: xDS subscription, last good config, admin endpoint.
        .target(
            name: "TetherProxy",
            dependencies: [
                "TetherCore",
                "TetherXDS",
                "TetherIdentity",
                "TetherMeshIdentity",
                "TetherAdminHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP2", package: "swift-nio-extras"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
            ],
            path: "dataplane/Sources/TetherProxy",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tether-proxy",
            dependencies: [
                "TetherProxy",
                "TetherCore",
                "TetherIdentity",
                "TetherMeshIdentity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "dataplane/Sources/tether-proxy",
            swiftSettings: strict
        ),
        // Benchmarks (run by Benchmarks/*.sh, never by the test suite).
        .executableTarget(
            name: "tether-xds-bench",
            dependencies: [
                "TetherXDS",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            path: "Benchmarks/XDSConvergence",
            swiftSettings: strict
        ),
        // Test helpers shared by test targets: a test identity provider.
        .target(
            name: "TetherTestSupport",
            dependencies: [
                "TetherCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/TetherTestSupport",
            swiftSettings: strict
        ),
        // The data-path benchmark's upstream (Benchmarks/data-path.sh).
        .executableTarget(
            name: "tether-bench-upstream",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // `idp`: the benchmark's identity provider key and user token.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/MCPUpstream",
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherCoreTests",
            dependencies: ["TetherCore"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherIdentityTests",
            dependencies: [
                "TetherIdentity",
                "TetherTestSupport",
                .product(name: "JWTKit", package: "jwt-kit"),
                "TetherCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherMeshIdentityTests",
            dependencies: [
                "TetherMeshIdentity",
                "TetherIdentity",
                "TetherCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherAdminHTTPTests",
            dependencies: [
                "TetherAdminHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherXDSTests",
            dependencies: ["TetherXDS", "TetherCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherControlPlaneTests",
            dependencies: [
                "TetherControlPlane",
                "TetherTestSupport",
                "TetherXDS",
                "TetherAdminHTTP",
                "TetherIdentity",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherProxyTests",
            dependencies: [
                "TetherProxy",
                "TetherIdentity",
                "TetherMeshIdentity",
                "TetherAdminHTTP",
                "TetherXDS",
                "TetherCore",
                "TetherTestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            exclude: ["workload_api_client.py"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TetherCore",
                "TetherTestSupport",
                "TetherIdentity",
                "TetherMeshIdentity",
                "TetherProxy",
                "TetherXDS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["xds_client.py", "mcp_peer.py", "abuse_client.py"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
