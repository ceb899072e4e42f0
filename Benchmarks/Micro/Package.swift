// swift-tools-version: 6.2
import Foundation
import PackageDescription

/// Micro-benchmarks of the proxy's per-request hot paths (ordo-one
/// `benchmark`: wall clock, CPU, throughput, mallocs, instructions).
/// A package of its own so that the main package's build and test suite
/// neither build the benchmark framework nor grow with these targets.
///
///     swift package --package-path Benchmarks/Micro benchmark --no-progress
///
/// or `Benchmarks/micro.sh`.

/// SwiftPM names a path dependency by its directory's last component, which
/// is whatever the clone is called (`tether`, `wt-micro`, …), not the name in
/// its manifest: derive it so `.product(…, package:)` resolves in any clone.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()
let tether = root.lastPathComponent.lowercased()

let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
]

/// Every benchmark target: sources in `Benchmarks/<name>/` (where the
/// benchmark plugin looks for them) and the plugin that generates `main`.
func benchmark(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark"), "MicroFixtures"] + dependencies,
        path: "Benchmarks/\(name)",
        swiftSettings: strict,
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "tether-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../.."),
        // Only the malloc interposer (mallocCountTotal without jemalloc); the
        // default traits also ask for a runtime interposer on Linux.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // Inputs shared by the benchmarks: the mesh, MCP messages, a signed user token.
        .target(
            name: "MicroFixtures",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TetherCore", package: tether),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        benchmark("MCPInspection", [
            .product(name: "TetherCore", package: tether),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        benchmark("Authorization", [
            .product(name: "TetherCore", package: tether),
        ]),
        benchmark("TokenCache", [
            .product(name: "TetherProxy", package: tether),
        ]),
        benchmark("UserToken", [
            .product(name: "TetherCore", package: tether),
            .product(name: "TetherIdentity", package: tether),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
