import Benchmark
import Foundation
import MicroFixtures
import TetherProxy

/// A token-cache hit: what every call on a route with a TokenExchange costs
/// once the exchanged token is minted (`UpstreamCredentials.exchanged`:
/// build the key, which hashes the user's token, then look it up).
let benchmarks: @Sendable () -> Void = {
    let cache = TokenCache()
    let userToken = String(repeating: "eyJhbGciOiJFUzI1NiJ9.", count: 40)  // ≈ 800 bytes, an IdP access token's size
    let audience = "https://github-mcp.example.org"
    let scopes = ["repo:read", "issues:read"]
    let minted = TokenCache.Minted(value: String(repeating: "t", count: 600), expiresAt: Date().addingTimeInterval(24 * 3600))
    let key = TokenCache.Key(exchange: "github-obo", userToken: userToken, audience: audience, scopes: scopes)

    Benchmark.setup = {
        // 1,000 other users' tokens already cached, then the one the benchmarks hit.
        for user in 0..<1_000 {
            let other = TokenCache.Key(exchange: "github-obo", userToken: "\(userToken)\(user)", audience: audience, scopes: scopes)
            _ = try await cache.token(for: other) { minted }
        }
        _ = try await cache.token(for: key) { minted }
    }

    Benchmark("token cache hit (key prebuilt)", configuration: .hotPath()) { benchmark in
        try await benchmark.measure { blackHole(try await cache.token(for: key) { fatalError("a hit must not mint") }) }
    }
    Benchmark("token cache hit (key built per request)", configuration: .hotPath()) { benchmark in
        try await benchmark.measure {
            let key = TokenCache.Key(exchange: "github-obo", userToken: userToken, audience: audience, scopes: scopes)
            blackHole(try await cache.token(for: key) { fatalError("a hit must not mint") })
        }
    }
}
