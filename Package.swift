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
        .library(name: "TetherCore", targets: ["TetherCore"]),
        .library(name: "TetherControlPlane", targets: ["TetherControlPlane"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Pure values and logic: SPIFFE IDs, the config model, parsing with
        // source positions, validation, canonical encodings, diffs.
        .target(
            name: "TetherCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // The control plane's durable core: store, apply engine, admin API.
        .target(
            name: "TetherControlPlane",
            dependencies: [
                "TetherCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "controlplane/Sources/TetherControlPlane",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tether-control",
            dependencies: [
                "TetherCore",
                "TetherControlPlane",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "controlplane/Sources/tether-control",
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherCoreTests",
            dependencies: ["TetherCore"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TetherControlPlaneTests",
            dependencies: [
                "TetherControlPlane",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TetherCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
