import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Synchronization
import TetherAdminHTTP
import TetherCore
import TetherIdentity
import TetherXDS
import X509

/// The built-in token service: OAuth 2.0 Token Exchange (RFC 8693) at
/// `POST /oauth2/token`, its JWK Set at `/.well-known/jwks.json` and
/// authorization-server metadata (RFC 8414) at
/// `/.well-known/oauth-authorization-server`.
///
/// The actor is the proxy that asks, authenticated by its X.509-SVID (mTLS,
/// `tls_client_auth`) or by a JWT-SVID for this service as `actor_token`. It trades its user's token (`subject_token`, checked
/// against the route's IdentityProvider) for an RFC 9068 access token for
/// one MCP server (`audience`) — only if one of its routes uses a `builtin`
/// TokenExchange with that audience. The scope is what was asked for within
/// what the TokenExchange allows; the lifetime at most the TokenExchange's
/// `ttl` and never past the user's token.
public final class TokenService: Sendable {
    static let subjectTokenTypes: Set<String> = [TokenExchangeForm.jwtTokenType, TokenExchangeForm.accessTokenType, TokenExchangeForm.idTokenType]

    /// Replaced at each key rotation; a request uses the one it read.
    private let currentIssuer: CurrentIssuer
    var issuer: AccessTokenIssuer { currentIssuer.value }
    let snapshot: SnapshotPublisher
    /// The trust domain's bundle, for actors that authenticate with a JWT-SVID.
    let bundle: @Sendable () -> TrustBundle
    let logger: Logger
    /// The IdentityProviders' keys; tokens it issued itself (presented
    /// again by an agent another agent called) are checked with its own.
    private let keys: JWKSCache

    public init(issuer: AccessTokenIssuer, snapshot: SnapshotPublisher, bundle: @escaping @Sendable () -> TrustBundle, logger: Logger) {
        let currentIssuer = CurrentIssuer(issuer)
        self.currentIssuer = currentIssuer
        keys = JWKSCache(known: { spec in spec.issuer.description == currentIssuer.value.issuer ? currentIssuer.value.jwks : nil }) { url in
            let (data, response) = try await URLSession.shared.data(from: URL(string: url.description)!)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else { throw ControlPlaneError(.internal, "GET \(url) did not answer 200") }
            return String(decoding: data, as: UTF8.self)
        }
        self.snapshot = snapshot
        self.bundle = bundle
        self.logger = logger
    }

    /// Signs with a rotated key from now on.
    func use(_ issuer: AccessTokenIssuer) {
        currentIssuer.value = issuer
    }

    public func handle(_ request: AdminRequest) async -> AdminResponse {
        switch (request.method, request.path) {
        case ("GET", "/.well-known/jwks.json"):
            return AdminResponse(status: 200, contentType: "application/jwk-set+json", body: Data(issuer.jwks.utf8))
        case ("GET", "/.well-known/oauth-authorization-server"):
            return json(200, [
                "issuer": issuer.issuer, "token_endpoint": issuer.issuer + "/oauth2/token", "jwks_uri": issuer.issuer + "/.well-known/jwks.json",
                "grant_types_supported": [TokenExchangeForm.grantType], "token_endpoint_auth_methods_supported": ["tls_client_auth"], "actor_token_types_supported": [TokenExchangeForm.jwtTokenType],
                "tls_client_certificate_bound_access_tokens": false,
            ])
        case ("POST", "/oauth2/token"):
            return await exchange(TokenExchangeForm(body: request.body), peer: request.peerCertificate)
        default:
            return error(404, "invalid_request", "no such endpoint; POST /oauth2/token, GET /.well-known/jwks.json or /.well-known/oauth-authorization-server")
        }
    }

    func exchange(_ form: TokenExchangeForm, peer: [UInt8]?) async -> AdminResponse {
        guard form.grantType == TokenExchangeForm.grantType else {
            return error(400, "unsupported_grant_type", "only \(TokenExchangeForm.grantType) is supported")
        }
        let actor: SPIFFEID
        if let peer, let certificate = try? Certificate(derEncoded: peer), case .success(let id) = SVIDValidator.spiffeID(of: certificate) {
            actor = id
        } else if let actorToken = form.actorToken, form.actorTokenType == TokenExchangeForm.jwtTokenType {
            // A JWT-SVID for this token service (RFC 8693 §2.1 actor_token).
            switch await JWTSVIDValidator(bundle: bundle()).validate(actorToken, audience: issuer.issuer) {
            case .success(let validated): actor = validated.id
            case .failure(let rejection): return error(401, "invalid_client", "the actor_token is not a valid JWT-SVID for \(issuer.issuer): \(rejection.reason)")
            }
        } else {
            return error(401, "invalid_client", "authenticate the actor with an X.509-SVID (mTLS) or a JWT-SVID as actor_token")
        }
        guard let subjectToken = form.subjectToken, !subjectToken.isEmpty else {
            return error(400, "invalid_request", "subject_token is required")
        }
        guard let type = form.subjectTokenType, Self.subjectTokenTypes.contains(type) else {
            return error(400, "invalid_request", "subject_token_type must be one of \(Self.subjectTokenTypes.sorted().joined(separator: ", "))")
        }
        guard let audience = form.audience, !audience.isEmpty else {
            return error(400, "invalid_request", "audience (or resource) is required: the MCP server the token is for")
        }
        let index = ResourceIndex(snapshot.current.resources.values.map(\.resource))
        let exchanges = index.tokenExchanges.filter { $0.value.type == .builtin && $0.value.audience == audience }
        guard !exchanges.isEmpty else {
            return error(400, "invalid_target", "no builtin TokenExchange mints tokens for audience \(audience)")
        }
        let usable = index.sortedRoutes.first { _, route in
            route.serves(actor) && route.tokenExchange.map { exchanges[$0] != nil } == true && route.identityProvider != nil
        }
        guard let (routeName, route) = usable, let exchangeName = route.tokenExchange, let exchange = exchanges[exchangeName],
            let providerName = route.identityProvider, let provider = index.identityProviders[providerName]
        else {
            return error(400, "unauthorized_client", "no route lets \(actor) exchange user tokens for audience \(audience)")
        }
        let user: UserToken
        switch await keys.validate(subjectToken, provider: providerName, spec: provider) {
        case .success(let (token, _)):
            user = token
        case .failure(.rejected(let rejection)):
            return error(400, "invalid_grant", "the subject token is not valid: \(rejection.reason)")
        case .failure(.unavailable(let reason)):
            return error(503, "temporarily_unavailable", reason)
        }
        let allowed = exchange.scopes ?? []
        let requested = form.scopes
        let granted = requested.isEmpty ? allowed : requested.filter(allowed.contains)
        guard requested.isEmpty || !granted.isEmpty else {
            return error(400, "invalid_scope", "none of the requested scopes is allowed for audience \(audience) (allowed: \(allowed.joined(separator: " ")))")
        }
        let now = Date()
        let ttl = TimeInterval((exchange.ttl ?? .seconds(300)).milliseconds) / 1000
        let expiresAt = min(user.expiresAt, now.addingTimeInterval(ttl))
        guard expiresAt > now else {
            return error(400, "invalid_grant", "the subject token expires now")
        }
        let token: String
        do {
            token = try await issuer.mint(
                .init(subject: user.subject, audience: audience, actor: actor, delegatedBy: user.actors, scopes: granted, expiresAt: expiresAt), now: now
            )
        } catch {
            return self.error(500, "server_error", "cannot sign the token")
        }
        logger.info("issued an access token", metadata: [
            "tether.agent": "\(actor)", "tether.actors": "\(user.actors.joined(separator: ","))", "tether.user": "\(user.subject)", "tether.route": "\(routeName)", "tether.audience": "\(audience)",
            "tether.scope": "\(granted.joined(separator: " "))",
        ])
        var answer: [String: Any] = [
            "access_token": token, "issued_token_type": TokenExchangeForm.accessTokenType, "token_type": "Bearer",
            "expires_in": Int(expiresAt.timeIntervalSince(now)),
        ]
        if !granted.isEmpty { answer["scope"] = granted.joined(separator: " ") }
        return json(200, answer)
    }

    func json(_ status: Int, _ object: [String: Any]) -> AdminResponse {
        AdminResponse(status: status, body: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }

    /// An RFC 6749 §5.2 error.
    func error(_ status: Int, _ code: String, _ description: String) -> AdminResponse {
        json(status, ["error": code, "error_description": description])
    }
}

/// The token service's signing issuer, replaced at each key rotation; a
/// request uses the one it read.
final class CurrentIssuer: Sendable {
    private let issuer: Mutex<AccessTokenIssuer>

    init(_ issuer: AccessTokenIssuer) {
        self.issuer = Mutex(issuer)
    }

    var value: AccessTokenIssuer {
        get { issuer.withLock { $0 } }
        set { issuer.withLock { $0 = newValue } }
    }
}
