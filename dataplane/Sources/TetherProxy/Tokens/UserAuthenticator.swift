import Crypto
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import TetherCore
import TetherIdentity

/// Validates users' bearer tokens for the routes that name an
/// IdentityProvider. It keeps one `UserTokenValidator` per provider, built
/// from the provider's JWK Set — inline, a file, or an https URL fetched
/// and cached for 5 minutes. A token whose `kid` is unknown triggers one
/// refetch (a provider rotating its keys), at most every 30 s per provider,
/// so unknown kids cannot be used to hammer the IdP.
///
/// A token that validated is remembered until it expires (as Envoy's
/// `jwt_cache` does): an agent sends its user's token on every call, and
/// checking the signature each time was the largest cost of a call. A
/// remembered token is only accepted while the keys that validated it are
/// the provider's current ones and it is unexpired (with the provider's
/// clock skew); new keys, a changed provider or a refetch forget it.
final class UserAuthenticator: Sendable {
    enum Failure: Error, Sendable {
        /// The token is bad: 401 for the client.
        case rejected(TokenRejection)
        /// The provider's keys cannot be had: 503, nothing is forwarded.
        case unavailable(String)
    }

    struct Entry: Sendable {
        var spec: IdentityProviderSpec
        var validator: UserTokenValidator
        var loadedAt: ContinuousClock.Instant
    }

    /// A validated token, and the keys (by their load time) that validated it.
    struct Validated: Sendable {
        var provider: String
        var keysLoadedAt: ContinuousClock.Instant
        var token: UserToken
    }

    /// Bounds the memory of validated tokens; a proxy serves one agent, whose users are few.
    static let maximumValidated = 4096
    static let refreshInterval: Duration = .seconds(300)
    static let minimumRefetchInterval: Duration = .seconds(30)

    private let upstreams: UpstreamPool
    /// The control plane's token service: its JWK Set is fetched over mTLS
    /// (its certificate is the control plane's SVID, not a public CA's).
    private let tokenService: UpstreamTarget?
    private let entries = Mutex<[String: Entry]>([:])
    /// By a SHA-256 of the token as presented, as `TokenCache` keys: the
    /// key is not the token.
    private let validated = Mutex<[Data: Validated]>([:])
    /// When each provider's keys were last fetched (or a fetch began).
    private let lastFetch = Mutex<[String: ContinuousClock.Instant]>([:])

    init(upstreams: UpstreamPool, tokenService: UpstreamTarget?) {
        self.upstreams = upstreams
        self.tokenService = tokenService
    }

    func authenticate(_ token: String, provider name: String, spec: IdentityProviderSpec) async -> Result<UserToken, Failure> {
        let entry: Entry
        do {
            entry = try await self.entry(name, spec: spec, refetch: false)
        } catch {
            return .failure(.unavailable("the keys of IdentityProvider \(name) cannot be loaded: \(error)"))
        }
        let key = Data(SHA256.hash(data: Data(token.utf8)))
        if let known = remembered(key, provider: name, entry: entry) { return .success(known) }
        let result = await entry.validator.validate(token)
        guard case .failure(let rejection) = result, rejection.code == .unknownKey, case .url = spec.jwks, mayRefetch(name) else {
            return remember(result, key: key, provider: name, entry: entry).mapError { .rejected($0) }
        }
        guard let refreshed = try? await self.entry(name, spec: spec, refetch: true) else {
            return .failure(.rejected(rejection))
        }
        return remember(await refreshed.validator.validate(token), key: key, provider: name, entry: refreshed).mapError { .rejected($0) }
    }

    private func remembered(_ key: Data, provider: String, entry: Entry) -> UserToken? {
        guard let known = validated.withLock({ $0[key] }), known.provider == provider, known.keysLoadedAt == entry.loadedAt else { return nil }
        let skew = TimeInterval((entry.spec.clockSkew ?? .seconds(30)).milliseconds) / 1000
        guard known.token.expiresAt.addingTimeInterval(skew) > Date() else {
            _ = validated.withLock { $0.removeValue(forKey: key) }
            return nil
        }
        return known.token
    }

    private func remember(_ result: Result<UserToken, TokenRejection>, key: Data, provider: String, entry: Entry) -> Result<UserToken, TokenRejection> {
        guard case .success(let token) = result else { return result }
        validated.withLock { validated in
            if validated.count >= Self.maximumValidated {
                let now = Date()
                validated = validated.filter { $0.value.token.expiresAt > now }
                if validated.count >= Self.maximumValidated { validated.removeAll() }
            }
            validated[key] = Validated(provider: provider, keysLoadedAt: entry.loadedAt, token: token)
        }
        return result
    }

    private func mayRefetch(_ name: String) -> Bool {
        lastFetch.withLock { last in
            let now = ContinuousClock.now
            guard last[name].map({ now - $0 >= Self.minimumRefetchInterval }) ?? true else { return false }
            last[name] = now
            return true
        }
    }

    private func entry(_ name: String, spec: IdentityProviderSpec, refetch: Bool) async throws -> Entry {
        let now = ContinuousClock.now
        if !refetch, let entry = entries.withLock({ $0[name] }), entry.spec == spec {
            let stale = { if case .url = spec.jwks { return now - entry.loadedAt > Self.refreshInterval } else { return false } }()
            if !stale { return entry }
        }
        let jwks: String
        switch spec.jwks {
        case .inline(let text):
            jwks = text
        case .file(let path):
            jwks = try String(contentsOfFile: path, encoding: .utf8)
        case .url(let url):
            if !refetch { lastFetch.withLock { $0[name] = now } }
            jwks = try await fetch(url)
        }
        let entry = Entry(spec: spec, validator: try await UserTokenValidator(name: name, spec: spec, jwks: jwks), loadedAt: now)
        entries.withLock { $0[name] = entry }
        return entry
    }

    /// GETs a JWK Set over the pooled upstream connections (TLS with the
    /// system roots; cleartext only to loopback, as validation enforces).
    private func fetch(_ url: EndpointURL) async throws -> String {
        var target = UpstreamTarget(host: url.host, port: url.port, security: url.scheme == "https" ? .tls(serverName: url.host, caPEM: nil, caFile: nil) : .cleartext)
        if let tokenService, tokenService.host == url.host, tokenService.port == url.port { target = tokenService }
        var head = HTTPRequest(method: .get, scheme: url.scheme, authority: UpstreamTarget.authority(of: url), path: url.path.isEmpty ? "/" : url.path)
        head.headerFields[.accept] = "application/json"
        let (status, bytes) = try await upstreams.fetch(head, body: ByteBuffer(), to: target)
        guard status == 200 else { throw ProxyError("GET \(url) answered \(status)") }
        return String(buffer: bytes)
    }
}
