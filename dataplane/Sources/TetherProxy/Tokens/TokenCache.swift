import Crypto
import Foundation
import Synchronization

/// Minted upstream tokens, reused until shortly before they expire. Keyed
/// by what makes a token: the exchange, a hash of the user's token (never
/// the token itself), the audience and the scopes. Concurrent misses for
/// one key share one mint; a failed mint is not remembered. Bounded: when
/// full, expired entries go first, then the soonest to expire.
///
/// Public (with its key, entry value and lookup) only so the micro-benchmarks
/// in `Benchmarks/Micro` can time a cache hit; the proxy is its one user.
public final class TokenCache: Sendable {
    public struct Key: Hashable, Sendable {
        var exchange: String
        var subject: Data?
        var audience: String
        var scopes: [String]

        /// Hashes `userToken` (SHA-256) on every call: the proxy builds a key per request.
        public init(exchange: String, userToken: String?, audience: String, scopes: [String]) {
            self.exchange = exchange
            subject = userToken.map { Data(SHA256.hash(data: Data($0.utf8))) }
            self.audience = audience
            self.scopes = scopes
        }
    }

    public struct Minted: Sendable {
        public var value: String
        public var expiresAt: Date

        public init(value: String, expiresAt: Date) {
            self.value = value
            self.expiresAt = expiresAt
        }
    }

    enum Entry {
        case pending(Task<Minted, any Error>)
        case ready(Minted)
    }

    /// A token is not handed out with less than this left.
    static let renewalMargin: TimeInterval = 30
    let capacity: Int
    private let entries = Mutex<[Key: Entry]>([:])

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The cached token for `key` while it has more than `renewalMargin`
    /// left; otherwise the result of one `mint` shared by concurrent callers.
    public func token(for key: Key, now: Date = Date(), mint: @escaping @Sendable () async throws -> Minted) async throws -> Minted {
        enum Lookup { case hit(Minted), wait(Task<Minted, any Error>) }
        let lookup: Lookup = entries.withLock { entries in
            switch entries[key] {
            case .ready(let minted)? where minted.expiresAt.timeIntervalSince(now) > Self.renewalMargin:
                return .hit(minted)
            case .pending(let task)?:
                return .wait(task)
            default:
                if entries.count >= capacity { evict(&entries, now: now) }
                let task = Task { try await mint() }
                entries[key] = .pending(task)
                return .wait(task)
            }
        }
        let task: Task<Minted, any Error>
        switch lookup {
        case .hit(let minted):
            // Every call but the first: no task, no suspension.
            return minted
        case .wait(let pending):
            task = pending
        }
        do {
            let minted = try await task.value
            entries.withLock { entries in
                if case .pending = entries[key] { entries[key] = .ready(minted) }
            }
            return minted
        } catch {
            entries.withLock { entries in
                if case .pending = entries[key] { entries[key] = nil }
            }
            throw error
        }
    }

    var count: Int { entries.withLock { $0.count } }

    private func evict(_ entries: inout [Key: Entry], now: Date) {
        entries = entries.filter { _, entry in
            if case .ready(let minted) = entry { return minted.expiresAt > now }
            return true
        }
        guard entries.count >= capacity else { return }
        let soonest = entries.compactMap { key, entry -> (key: Key, expiresAt: Date)? in
            if case .ready(let minted) = entry { return (key, minted.expiresAt) }
            return nil
        }.min { $0.expiresAt < $1.expiresAt }
        if let soonest { entries[soonest.key] = nil }
    }
}
