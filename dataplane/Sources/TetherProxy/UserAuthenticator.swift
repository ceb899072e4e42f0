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

    static let refreshInterval: Duration = .seconds(300)
    static let minimumRefetchInterval: Duration = .seconds(30)

    private let upstreams: UpstreamPool
    /// The control plane's token service: its JWK Set is fetched over mTLS
    /// (its certificate is the control plane's SVID, not a public CA's).
    private let tokenService: UpstreamTarget?
    private let entries = Mutex<[String: Entry]>([:])
    /// When each provider's keys were last fetched (or a fetch began).
    private let lastFetch = Mutex<[String: ContinuousClock.Instant]>([:])

    init(upstreams: UpstreamPool, tokenService: UpstreamTarget?) {
        self.upstreams = upstreams
        self.tokenService = tokenService
    }

    func authenticate(_ token: String, provider name: String, spec: IdentityProviderSpec) async -> Result<UserToken, Failure> {
        let validator: UserTokenValidator
        do {
            validator = try await self.validator(name, spec: spec, refetch: false)
        } catch {
            return .failure(.unavailable("the keys of IdentityProvider \(name) cannot be loaded: \(error)"))
        }
        let result = await validator.validate(token)
        guard case .failure(let rejection) = result, rejection.code == .unknownKey, case .url = spec.jwks, mayRefetch(name) else {
            return result.mapError { .rejected($0) }
        }
        guard let refreshed = try? await self.validator(name, spec: spec, refetch: true) else {
            return .failure(.rejected(rejection))
        }
        return await refreshed.validate(token).mapError { .rejected($0) }
    }

    private func mayRefetch(_ name: String) -> Bool {
        lastFetch.withLock { last in
            let now = ContinuousClock.now
            guard last[name].map({ now - $0 >= Self.minimumRefetchInterval }) ?? true else { return false }
            last[name] = now
            return true
        }
    }

    private func validator(_ name: String, spec: IdentityProviderSpec, refetch: Bool) async throws -> UserTokenValidator {
        let now = ContinuousClock.now
        if !refetch, let entry = entries.withLock({ $0[name] }), entry.spec == spec {
            let stale = { if case .url = spec.jwks { return now - entry.loadedAt > Self.refreshInterval } else { return false } }()
            if !stale { return entry.validator }
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
        let validator = try await UserTokenValidator(name: name, spec: spec, jwks: jwks)
        entries.withLock { $0[name] = Entry(spec: spec, validator: validator, loadedAt: now) }
        return validator
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
