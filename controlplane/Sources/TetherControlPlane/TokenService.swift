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
    static let tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
    static let accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
    static let subjectTokenTypes: Set<String> = ["urn:ietf:params:oauth:token-type:jwt", accessTokenType, "urn:ietf:params:oauth:token-type:id_token"]

    /// Replaced at each key rotation; a request uses the one it read.
    private let currentIssuer: Mutex<AccessTokenIssuer>
    var issuer: AccessTokenIssuer { currentIssuer.withLock { $0 } }
    let snapshot: SnapshotPublisher
    /// The trust domain's bundle, for actors that authenticate with a JWT-SVID.
    let bundle: @Sendable () -> TrustBundle
    let logger: Logger
    private let validators = Mutex<[String: (spec: IdentityProviderSpec, validator: UserTokenValidator, loaded: Date)]>([:])

    public init(issuer: AccessTokenIssuer, snapshot: SnapshotPublisher, bundle: @escaping @Sendable () -> TrustBundle, logger: Logger) {
        currentIssuer = Mutex(issuer)
        self.snapshot = snapshot
        self.bundle = bundle
        self.logger = logger
    }

    /// Signs with a rotated key from now on.
    func use(_ issuer: AccessTokenIssuer) {
        currentIssuer.withLock { $0 = issuer }
    }

    public func handle(_ request: AdminRequest) async -> AdminResponse {
        switch (request.method, request.path) {
        case ("GET", "/.well-known/jwks.json"):
            return AdminResponse(status: 200, contentType: "application/jwk-set+json", body: Data(issuer.jwks.utf8))
        case ("GET", "/.well-known/oauth-authorization-server"):
            return json(200, [
                "issuer": issuer.issuer, "token_endpoint": issuer.issuer + "/oauth2/token", "jwks_uri": issuer.issuer + "/.well-known/jwks.json",
                "grant_types_supported": [Self.tokenExchangeGrant], "token_endpoint_auth_methods_supported": ["tls_client_auth"], "actor_token_types_supported": ["urn:ietf:params:oauth:token-type:jwt"],
                "tls_client_certificate_bound_access_tokens": false,
            ])
        case ("POST", "/oauth2/token"):
            return await exchange(Self.form(request.body), peer: request.peerCertificate)
        default:
            return error(404, "invalid_request", "no such endpoint; POST /oauth2/token, GET /.well-known/jwks.json or /.well-known/oauth-authorization-server")
        }
    }

    func exchange(_ form: [String: String], peer: [UInt8]?) async -> AdminResponse {
        guard form["grant_type"] == Self.tokenExchangeGrant else {
            return error(400, "unsupported_grant_type", "only \(Self.tokenExchangeGrant) is supported")
        }
        let actor: SPIFFEID
        if let peer, let certificate = try? Certificate(derEncoded: peer), case .success(let id) = SVIDValidator.spiffeID(of: certificate) {
            actor = id
        } else if let actorToken = form["actor_token"], form["actor_token_type"] == "urn:ietf:params:oauth:token-type:jwt" {
            // A JWT-SVID for this token service (RFC 8693 §2.1 actor_token).
            switch await JWTSVIDValidator(bundle: bundle()).validate(actorToken, audience: issuer.issuer) {
            case .success(let validated): actor = validated.id
            case .failure(let rejection): return error(401, "invalid_client", "the actor_token is not a valid JWT-SVID for \(issuer.issuer): \(rejection.reason)")
            }
        } else {
            return error(401, "invalid_client", "authenticate the actor with an X.509-SVID (mTLS) or a JWT-SVID as actor_token")
        }
        guard let subjectToken = form["subject_token"], !subjectToken.isEmpty else {
            return error(400, "invalid_request", "subject_token is required")
        }
        guard let type = form["subject_token_type"], Self.subjectTokenTypes.contains(type) else {
            return error(400, "invalid_request", "subject_token_type must be one of \(Self.subjectTokenTypes.sorted().joined(separator: ", "))")
        }
        guard let audience = form["audience"] ?? form["resource"], !audience.isEmpty else {
            return error(400, "invalid_request", "audience (or resource) is required: the MCP server the token is for")
        }
        let resources = snapshot.current.resources.values.map(\.resource)
        var exchanges: [String: TokenExchangeSpec] = [:], providers: [String: IdentityProviderSpec] = [:], routes: [(String, RouteSpec)] = []
        for resource in resources {
            switch resource.spec {
            case .tokenExchange(let spec) where spec.type == .builtin && spec.audience == audience: exchanges[resource.metadata.name] = spec
            case .identityProvider(let spec): providers[resource.metadata.name] = spec
            case .route(let spec): routes.append((resource.metadata.name, spec))
            default: break
            }
        }
        guard !exchanges.isEmpty else {
            return error(400, "invalid_target", "no builtin TokenExchange mints tokens for audience \(audience)")
        }
        let usable = routes.filter { _, route in
            route.serves(actor) && route.tokenExchange.map { exchanges[$0] != nil } == true && route.identityProvider != nil
        }.sorted { $0.0 < $1.0 }
        guard let (routeName, route) = usable.first, let exchangeName = route.tokenExchange, let exchange = exchanges[exchangeName],
            let providerName = route.identityProvider, let provider = providers[providerName]
        else {
            return error(400, "unauthorized_client", "no route lets \(actor) exchange user tokens for audience \(audience)")
        }
        let user: UserToken
        do {
            user = try await validator(providerName, provider).validate(subjectToken).get()
        } catch let rejection as TokenRejection {
            return error(400, "invalid_grant", "the subject token is not valid: \(rejection.reason)")
        } catch let failure {
            return error(503, "temporarily_unavailable", "the keys of IdentityProvider \(providerName) cannot be loaded: \(failure)")
        }
        let allowed = exchange.scopes ?? []
        let requested = (form["scope"] ?? "").split(separator: " ").map(String.init)
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
            "access_token": token, "issued_token_type": Self.accessTokenType, "token_type": "Bearer",
            "expires_in": Int(expiresAt.timeIntervalSince(now)),
        ]
        if !granted.isEmpty { answer["scope"] = granted.joined(separator: " ") }
        return json(200, answer)
    }

    /// One validator per IdentityProvider, rebuilt when its spec changes
    /// (JWKS URLs refetched after 5 minutes).
    func validator(_ name: String, _ spec: IdentityProviderSpec) async throws -> UserTokenValidator {
        if let cached = validators.withLock({ $0[name] }), cached.spec == spec {
            if case .url = spec.jwks, Date().timeIntervalSince(cached.loaded) > 300 {} else { return cached.validator }
        }
        let jwks: String
        switch spec.jwks {
        case _ where spec.issuer.description == issuer.issuer:
            // Its own tokens, presented again by an agent another agent called (delegation).
            jwks = issuer.jwks
        case .inline(let text): jwks = text
        case .file(let path): jwks = try String(contentsOfFile: path, encoding: .utf8)
        case .url(let url):
            let (data, response) = try await URLSession.shared.data(from: URL(string: url.description)!)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else { throw ControlPlaneError(.internal, "GET \(url) did not answer 200") }
            jwks = String(decoding: data, as: UTF8.self)
        }
        let validator = try await UserTokenValidator(name: name, spec: spec, jwks: jwks)
        validators.withLock { $0[name] = (spec, validator, Date()) }
        return validator
    }

    /// An `application/x-www-form-urlencoded` body.
    static func form(_ body: Data) -> [String: String] {
        var components = URLComponents()
        components.percentEncodedQuery = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "+", with: "%20")
        var form: [String: String] = [:]
        for item in components.queryItems ?? [] where form[item.name] == nil {
            form[item.name] = item.value ?? ""
        }
        return form
    }

    func json(_ status: Int, _ object: [String: Any]) -> AdminResponse {
        AdminResponse(status: status, body: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }

    /// An RFC 6749 §5.2 error.
    func error(_ status: Int, _ code: String, _ description: String) -> AdminResponse {
        json(status, ["error": code, "error_description": description])
    }
}
