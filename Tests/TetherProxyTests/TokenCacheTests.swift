import Foundation
import Synchronization
import Testing
@testable import TetherProxy

/// The token cache hands out a minted token while it has more than
/// `renewalMargin` (30 s) left, keyed by exchange, user-token hash, audience
/// and scopes; concurrent misses for one key share one mint; a failed mint
/// is not remembered; when full it drops expired entries first, then the
/// soonest to expire.
@Suite("Token cache")
struct TokenCacheTests {
    /// Counts mints and hands out `token-N`, expiring `lifetime` after `now`.
    final class Minter: Sendable {
        let calls = Atomic<Int>(0)
        let now: Date
        let lifetime: TimeInterval

        init(now: Date, lifetime: TimeInterval = 300) {
            self.now = now
            self.lifetime = lifetime
        }

        var count: Int { calls.load(ordering: .sequentiallyConsistent) }

        /// A token minted at `time` (by default the minter's `now`).
        func mint(at time: Date? = nil) -> TokenCache.Minted {
            let n = calls.add(1, ordering: .sequentiallyConsistent).newValue
            return TokenCache.Minted(value: "token-\(n)", expiresAt: (time ?? now).addingTimeInterval(lifetime))
        }
    }

    struct MintFailed: Error {}

    static let key = TokenCache.Key(exchange: "github", userToken: "user-token", audience: "https://github-mcp.example.com", scopes: ["repo:read"])
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aHitReturnsTheCachedTokenWithoutMinting() async throws {
        let cache = TokenCache()
        let minter = Minter(now: now)
        let first = try await cache.token(for: Self.key, now: now) { minter.mint() }
        let second = try await cache.token(for: Self.key, now: now.addingTimeInterval(60)) { minter.mint() }
        #expect(first.value == "token-1" && second.value == "token-1")
        #expect(second.expiresAt == first.expiresAt)
        #expect(minter.count == 1)
    }

    @Test func everyPartOfTheKeyMatters() async throws {
        let cache = TokenCache()
        let minter = Minter(now: now)
        let keys = [
            Self.key,
            TokenCache.Key(exchange: "github-2", userToken: "user-token", audience: "https://github-mcp.example.com", scopes: ["repo:read"]),
            TokenCache.Key(exchange: "github", userToken: "another-user", audience: "https://github-mcp.example.com", scopes: ["repo:read"]),
            TokenCache.Key(exchange: "github", userToken: nil, audience: "https://github-mcp.example.com", scopes: ["repo:read"]),
            TokenCache.Key(exchange: "github", userToken: "user-token", audience: "https://other.example.com", scopes: ["repo:read"]),
            TokenCache.Key(exchange: "github", userToken: "user-token", audience: "https://github-mcp.example.com", scopes: []),
        ]
        var values: [String] = []
        for key in keys { values.append(try await cache.token(for: key, now: now) { minter.mint() }.value) }
        #expect(Set(values).count == keys.count && minter.count == keys.count)
        // And each is then a hit.
        for (key, value) in zip(keys, values) {
            #expect(try await cache.token(for: key, now: now) { minter.mint() }.value == value)
        }
        #expect(minter.count == keys.count)
    }

    @Test func theKeyHoldsAHashOfTheUserTokenNotTheToken() {
        let key = TokenCache.Key(exchange: "x", userToken: "eyJ.secret.token", audience: "a", scopes: [])
        #expect(key.subject?.count == 32)
        #expect(!String(describing: key).contains("eyJ.secret.token"))
        #expect(key == TokenCache.Key(exchange: "x", userToken: "eyJ.secret.token", audience: "a", scopes: []))
    }

    @Test func aTokenIsRenewedOnceItHasThirtySecondsOrLessLeft() async throws {
        let cache = TokenCache()
        let minter = Minter(now: now, lifetime: 300)
        _ = try await cache.token(for: Self.key, now: now) { minter.mint() }
        // 31 s left: still handed out.
        let late = try await cache.token(for: Self.key, now: now.addingTimeInterval(269)) { minter.mint() }
        #expect(late.value == "token-1" && minter.count == 1)
        // 30 s left: a new one.
        let renewal = now.addingTimeInterval(270)
        let renewed = try await cache.token(for: Self.key, now: renewal) { minter.mint(at: renewal) }
        #expect(renewed.value == "token-2" && minter.count == 2)
        // Which is then what the cache holds.
        #expect(try await cache.token(for: Self.key, now: renewal.addingTimeInterval(60)) { minter.mint(at: renewal) }.value == "token-2")
    }

    @Test func anExpiredTokenIsAMiss() async throws {
        let cache = TokenCache()
        let minter = Minter(now: now, lifetime: 300)
        _ = try await cache.token(for: Self.key, now: now) { minter.mint() }
        let after = try await cache.token(for: Self.key, now: now.addingTimeInterval(3600)) { minter.mint() }
        #expect(after.value == "token-2" && minter.count == 2)
    }

    @Test func aTokenMintedWithTooLittleLifeIsNeverReused() async throws {
        let cache = TokenCache()
        let minter = Minter(now: now, lifetime: 20)
        for expected in 1...3 {
            let token = try await cache.token(for: Self.key, now: now) { minter.mint() }
            #expect(token.value == "token-\(expected)", "a token with 20 s left is handed to its caller but not kept for the next")
        }
    }

    @Test func aFailedMintIsNotRemembered() async throws {
        let cache = TokenCache()
        await #expect(throws: MintFailed.self) {
            try await cache.token(for: Self.key, now: now) { throw MintFailed() }
        }
        #expect(cache.count == 0)
        let minter = Minter(now: now)
        let token = try await cache.token(for: Self.key, now: now) { minter.mint() }
        #expect(token.value == "token-1" && minter.count == 1)
    }

    @Test func concurrentMissesShareOneMint() async throws {
        let cache = TokenCache()
        let minter = Minter(now: now)
        let gate = Gate()
        let callers = 20
        let entered = Counter()
        let now = now
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    entered.increment()
                    return try await cache.token(for: Self.key, now: now) {
                        await gate.wait()
                        return minter.mint()
                    }.value
                }
            }
            // Hold the mint until every caller has asked (and a little longer).
            while entered.value < callers { await Task.yield() }
            try await Task.sleep(for: .milliseconds(50))
            #expect(minter.count == 0, "nothing is minted while the gate is shut")
            await gate.open()
            var values: [String] = []
            for try await value in group { values.append(value) }
            #expect(values == Array(repeating: "token-1", count: callers))
        }
        #expect(minter.count == 1)
    }

    @Test func concurrentWaitersOfAFailedMintAllFailAndTheNextCallMintsAgain() async throws {
        let cache = TokenCache()
        let gate = Gate()
        let attempts = Counter()
        let now = now
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await cache.token(for: Self.key, now: now) {
                            attempts.increment()
                            await gate.wait()
                            throw MintFailed()
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            while attempts.value < 1 { await Task.yield() }
            try? await Task.sleep(for: .milliseconds(50))
            await gate.open()
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { !$0 })
        let minter = Minter(now: now)
        #expect(try await cache.token(for: Self.key, now: now) { minter.mint() }.value == "token-1")
    }

    @Test func whenFullExpiredEntriesGoFirstThenTheSoonestToExpire() async throws {
        let cache = TokenCache(capacity: 2)
        let key = { (name: String) in TokenCache.Key(exchange: name, userToken: nil, audience: "a", scopes: []) }
        func mint(_ value: String, expiresIn seconds: TimeInterval) -> @Sendable () async throws -> TokenCache.Minted {
            let expiresAt = now.addingTimeInterval(seconds)
            return { TokenCache.Minted(value: value, expiresAt: expiresAt) }
        }
        let refuse: @Sendable () async throws -> TokenCache.Minted = { throw MintFailed() }
        _ = try await cache.token(for: key("soon"), now: now, mint: mint("soon", expiresIn: 100))
        _ = try await cache.token(for: key("late"), now: now, mint: mint("late", expiresIn: 1000))
        #expect(cache.count == 2)
        // Full: the soonest to expire makes room.
        _ = try await cache.token(for: key("new"), now: now, mint: mint("new", expiresIn: 500))
        #expect(cache.count == 2)
        #expect(try await cache.token(for: key("late"), now: now, mint: refuse).value == "late")
        #expect(try await cache.token(for: key("new"), now: now, mint: refuse).value == "new")
        await #expect(throws: MintFailed.self) { try await cache.token(for: key("soon"), now: now, mint: refuse) }

        // Later, "new" has expired: it goes, though "late" would expire sooner than the newcomer.
        _ = try await cache.token(for: key("newest"), now: now.addingTimeInterval(600), mint: mint("newest", expiresIn: 5000))
        #expect(cache.count == 2)
        #expect(try await cache.token(for: key("late"), now: now.addingTimeInterval(600), mint: refuse).value == "late")
        #expect(try await cache.token(for: key("newest"), now: now.addingTimeInterval(600), mint: refuse).value == "newest")
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { count.load(ordering: .sequentiallyConsistent) }

    func increment() { count.add(1, ordering: .sequentiallyConsistent) }
}

/// Suspends callers of `wait()` until `open()`.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}
