import Crypto
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import TetherCore
import TetherIdentity

/// Validates users' bearer tokens for the routes that name an
/// IdentityProvider, with the providers' keys from a `JWKSCache` (URLs
/// fetched over the proxy's pooled connections).
///
/// A token that validated is remembered until it expires (as Envoy's
/// `jwt_cache` does): an agent sends its user's token on every call, and
/// checking the signature each time was the largest cost of a call. A
/// remembered token is only accepted while the keys that validated it are
/// the provider's current ones and it is unexpired (with the provider's
/// clock skew); new keys, a changed provider or a refetch forget it.
final class UserAuthenticator: Sendable {
    typealias Failure = JWKSCache.Failure

    /// A validated token, and the keys (by their load time) that validated it.
    struct Validated: Sendable {
        var provider: String
        var keysLoadedAt: ContinuousClock.Instant
        var token: UserToken
    }

    /// Bounds the memory of validated tokens; a proxy serves one agent, whose users are few.
    static let maximumValidated = 4096

    private let keys: JWKSCache
    /// By a SHA-256 of the token as presented, as `TokenCache` keys: the
    /// key is not the token.
    private let validated = Mutex<[Data: Validated]>([:])

    init(upstreams: UpstreamPool, tokenService: UpstreamTarget?) {
        keys = JWKSCache { url in try await Self.fetch(url, upstreams: upstreams, tokenService: tokenService) }
    }

    func authenticate(_ token: String, provider name: String, spec: IdentityProviderSpec) async -> Result<UserToken, Failure> {
        let current: JWKSCache.Keys
        do {
            current = try await keys.keys(name, spec: spec)
        } catch {
            return .failure(.unavailable("the keys of IdentityProvider \(name) cannot be loaded: \(error)"))
        }
        let key = Data(SHA256.hash(data: Data(token.utf8)))
        if let known = remembered(key, provider: name, keys: current) { return .success(known) }
        return await keys.validate(token, provider: name, spec: spec).map { token, keys in
            remember(token, key: key, provider: name, keys: keys)
        }
    }

    private func remembered(_ key: Data, provider: String, keys: JWKSCache.Keys) -> UserToken? {
        guard let known = validated.withLock({ $0[key] }), known.provider == provider, known.keysLoadedAt == keys.loadedAt else { return nil }
        let skew = TimeInterval((keys.spec.clockSkew ?? .seconds(30)).milliseconds) / 1000
        guard known.token.expiresAt.addingTimeInterval(skew) > Date() else {
            _ = validated.withLock { $0.removeValue(forKey: key) }
            return nil
        }
        return known.token
    }

    private func remember(_ token: UserToken, key: Data, provider: String, keys: JWKSCache.Keys) -> UserToken {
        validated.withLock { validated in
            if validated.count >= Self.maximumValidated {
                let now = Date()
                validated = validated.filter { $0.value.token.expiresAt > now }
                if validated.count >= Self.maximumValidated { validated.removeAll() }
            }
            validated[key] = Validated(provider: provider, keysLoadedAt: keys.loadedAt, token: token)
        }
        return token
    }

    /// GETs a JWK Set over the pooled upstream connections (TLS with the
    /// system roots; cleartext only to loopback, as validation enforces).
    /// The control plane's token service is reached over mTLS: its
    /// certificate is the control plane's SVID, not a public CA's.
    private static func fetch(_ url: EndpointURL, upstreams: UpstreamPool, tokenService: UpstreamTarget?) async throws -> String {
        var target = UpstreamTarget(host: url.host, port: url.port, security: url.scheme == "https" ? .tls(serverName: url.host, caPEM: nil, caFile: nil) : .cleartext)
        if let tokenService, tokenService.host == url.host, tokenService.port == url.port { target = tokenService }
        var head = HTTPRequest(method: .get, scheme: url.scheme, authority: UpstreamTarget.authority(of: url), path: url.path.isEmpty ? "/" : url.path)
        head.headerFields[.accept] = "application/json"
        let (status, bytes) = try await upstreams.fetch(head, body: ByteBuffer(), to: target)
        guard status == 200 else { throw ProxyError(.upstream, "GET \(url) answered \(status)") }
        return String(buffer: bytes)
    }
}
