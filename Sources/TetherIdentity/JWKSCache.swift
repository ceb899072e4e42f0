import Foundation
import Synchronization
import TetherCore

/// The validators of a mesh's IdentityProviders, each built from the
/// provider's JWK Set — inline, a file, or a URL — and kept until the spec
/// changes or, for a URL, for `refreshInterval`. A token whose `kid` names
/// no key triggers one refetch (the provider rotated its keys), at most once
/// per `minimumRefetchInterval` per provider, so unknown kids cannot be
/// used to hammer the IdP. The proxy (users' tokens on its routes) and the
/// control plane's token service (subject tokens) share it; how a URL is
/// fetched is theirs to say.
///
/// ```swift
/// let keys = JWKSCache { url in try await fetch(url) }
/// switch await keys.validate(token, provider: "corp-sso", spec: spec) { … }
/// ```
public final class JWKSCache: Sendable {
    public enum Failure: Error, Sendable {
        /// The token is bad.
        case rejected(TokenRejection)
        /// The provider's keys cannot be had.
        case unavailable(String)
    }

    /// A provider's validator and when its keys were loaded (a token
    /// validated with older keys is not to be trusted on newer ones).
    public struct Keys: Sendable {
        public var spec: IdentityProviderSpec
        public var validator: UserTokenValidator
        public var loadedAt: ContinuousClock.Instant
    }

    public typealias Fetch = @Sendable (EndpointURL) async throws -> String

    let refreshInterval: Duration
    let minimumRefetchInterval: Duration
    private let fetch: Fetch
    /// The JWK Set of a provider known without asking anyone (the token
    /// service's own, for tokens it issued); nil: from its spec.
    private let known: @Sendable (IdentityProviderSpec) -> String?
    private let entries = Mutex<[String: Keys]>([:])
    /// When each provider's keys were last fetched (or a fetch began).
    private let lastFetch = Mutex<[String: ContinuousClock.Instant]>([:])

    public init(
        refreshInterval: Duration = .seconds(300), minimumRefetchInterval: Duration = .seconds(30),
        known: @escaping @Sendable (IdentityProviderSpec) -> String? = { _ in nil }, fetch: @escaping Fetch
    ) {
        self.refreshInterval = refreshInterval
        self.minimumRefetchInterval = minimumRefetchInterval
        self.known = known
        self.fetch = fetch
    }

    /// Validates `token` with the provider's keys, refetching them once if
    /// the token names a key they lack; with the keys that validated it.
    public func validate(_ token: String, provider name: String, spec: IdentityProviderSpec) async -> Result<(UserToken, Keys), Failure> {
        let keys: Keys
        do {
            keys = try await self.keys(name, spec: spec)
        } catch {
            return .failure(.unavailable("the keys of IdentityProvider \(name) cannot be loaded: \(error)"))
        }
        let result = await keys.validator.validate(token)
        guard case .failure(let rejection) = result, rejection.code == .unknownKey, refetchable(spec), mayRefetch(name) else {
            return result.map { ($0, keys) }.mapError { .rejected($0) }
        }
        guard let refreshed = try? await self.keys(name, spec: spec, refetch: true) else {
            return .failure(.rejected(rejection))
        }
        return await refreshed.validator.validate(token).map { ($0, refreshed) }.mapError { .rejected($0) }
    }

    /// The provider's current keys: cached, or loaded now.
    public func keys(_ name: String, spec: IdentityProviderSpec, refetch: Bool = false) async throws -> Keys {
        let now = ContinuousClock.now
        if !refetch, let keys = entries.withLock({ $0[name] }), keys.spec == spec {
            let stale = { if case .url = spec.jwks { return now - keys.loadedAt > refreshInterval } else { return false } }()
            if !stale { return keys }
        }
        let jwks: String
        switch spec.jwks {
        case _ where known(spec) != nil:
            jwks = known(spec)!
        case .inline(let text):
            jwks = text
        case .file(let path):
            jwks = try String(contentsOfFile: path, encoding: .utf8)
        case .url(let url):
            if !refetch { lastFetch.withLock { $0[name] = now } }
            jwks = try await fetch(url)
        }
        let keys = Keys(spec: spec, validator: try await UserTokenValidator(name: name, spec: spec, jwks: jwks), loadedAt: now)
        entries.withLock { $0[name] = keys }
        return keys
    }

    /// Whether loading the keys again could find new ones.
    private func refetchable(_ spec: IdentityProviderSpec) -> Bool {
        if case .url = spec.jwks { return true }
        return known(spec) != nil
    }

    private func mayRefetch(_ name: String) -> Bool {
        lastFetch.withLock { last in
            let now = ContinuousClock.now
            guard last[name].map({ now - $0 >= minimumRefetchInterval }) ?? true else { return false }
            last[name] = now
            return true
        }
    }
}
