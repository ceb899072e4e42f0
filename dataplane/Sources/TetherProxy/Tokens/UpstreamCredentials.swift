import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import TetherCore
import TetherIdentity

/// What a route sends upstream in place of the user's token, per its
/// TokenExchange: a vaulted credential (the agent never sees it), or the
/// agent's JWT-SVID for the backend's audience. Minted tokens are cached
/// (`TokenCache`). Fail closed: without the token there is no call.
struct UpstreamCredentials: Sendable {
    struct Header: Sendable {
        var name: HTTPField.Name
        var value: String
    }

    /// Why no credential could be made; every one means the call is not
    /// forwarded (503 for the client, the reason in the log).
    struct Failure: Error, CustomStringConvertible {
        enum Code: String, Sendable {
            /// The TokenExchange, or something it names, is not usable in this proxy's config.
            case notConfigured
            /// The exchange needs this proxy's identity or its mTLS connection to the control plane.
            case noIdentity
            /// The exchange trades the user's token and the route authenticates no user.
            case noUser
            /// Minting a JWT-SVID failed.
            case minting
            /// The token service refused the exchange or could not be reached.
            case tokenService
        }

        var code: Code
        var reason: String

        init(_ code: Code, _ reason: String) {
            self.code = code
            self.reason = reason
        }

        var description: String { reason }
    }

    let cache: TokenCache
    /// Mints a JWT-SVID of this proxy's identity; nil without an identity.
    let mintJWTSVID: (@Sendable (_ audience: [String]) async throws -> String)?
    /// The built-in token service (mTLS to the control plane); nil without one.
    let tokenService: UpstreamTarget?
    let upstreams: UpstreamPool

    func header(exchange name: String, config: DataPlaneConfig, user: UserToken?) async -> Result<Header, Failure> {
        guard let exchange = config.tokenExchanges[name] else {
            return .failure(Failure(.notConfigured, "TokenExchange \(name) is not in this proxy's config"))
        }
        switch exchange.type {
        case .credential:
            guard let credential = exchange.credential, let value = config.credential(credential) else {
                return .failure(Failure(.notConfigured, "the credential of TokenExchange \(name) has not reached this proxy"))
            }
            guard let field = HTTPField.Name(exchange.header ?? "Authorization") else {
                return .failure(Failure(.notConfigured, "TokenExchange \(name) names an invalid header"))
            }
            let scheme = exchange.scheme ?? "Bearer"
            return .success(Header(name: field, value: scheme.isEmpty ? value : "\(scheme) \(value)"))
        case .jwtSVID:
            guard let mintJWTSVID, let audience = exchange.audience else {
                return .failure(Failure(.noIdentity, "TokenExchange \(name) needs a JWT-SVID and this proxy has no SPIFFE identity"))
            }
            do {
                let key = TokenCache.Key(exchange: name, userToken: nil, audience: audience, scopes: [])
                let minted = try await cache.token(for: key) {
                    let token = try await mintJWTSVID([audience])
                    return TokenCache.Minted(value: token, expiresAt: Self.expiry(of: token) ?? Date().addingTimeInterval(60))
                }
                return .success(Header(name: .authorization, value: "Bearer \(minted.value)"))
            } catch {
                return .failure(Failure(.minting, "no JWT-SVID for \(audience): \(error)"))
            }
        case .builtin:
            guard let tokenService, let audience = exchange.audience else {
                return .failure(Failure(.noIdentity, "TokenExchange \(name) needs the control plane's token service, which this proxy has no mTLS connection to"))
            }
            return await exchanged(name, exchange, user: user, audience: audience, service: "the token service") { user, scopes in
                try await exchangeWithBuiltin(tokenService, subjectToken: user.raw, audience: audience, scopes: scopes)
            }
        case .rfc8693:
            guard let endpoint = exchange.endpoint, let audience = exchange.audience, let clientID = exchange.clientID,
                let secretName = exchange.clientSecret, let secret = config.credential(secretName)
            else {
                return .failure(Failure(.notConfigured, "TokenExchange \(name) lacks its endpoint, audience, client ID or client secret (Credential \(exchange.clientSecret ?? "?"))"))
            }
            return await exchanged(name, exchange, user: user, audience: audience, service: "the token service at \(endpoint)") { user, scopes in
                // The agent as actor (RFC 8693 §2.1): its JWT-SVID for the token service, when it has one.
                let actor = try? await mintJWTSVID?([endpoint.description])
                return try await exchangeWithExternal(endpoint, clientID: clientID, secret: secret, subjectToken: user.raw, actorToken: actor, audience: audience, scopes: scopes)
            }
        }
    }

    /// The user's token exchanged (once per user, audience and scopes, while it lasts) for a bearer token.
    func exchanged(
        _ name: String, _ exchange: TokenExchangeSpec, user: UserToken?, audience: String, service: String,
        perform: @escaping @Sendable (UserToken, [String]) async throws -> TokenCache.Minted
    ) async -> Result<Header, Failure> {
        guard let user else {
            return .failure(Failure(.noUser, "TokenExchange \(name) exchanges the user's token and the route authenticates no user (set its identityProvider)"))
        }
        let scopes = exchange.scopes ?? []
        do {
            let key = TokenCache.Key(exchange: name, userToken: user.raw, audience: audience, scopes: scopes)
            let minted = try await cache.token(for: key) { try await perform(user, scopes) }
            return .success(Header(name: .authorization, value: "Bearer \(minted.value)"))
        } catch {
            return .failure(Failure(.tokenService, "\(service) refused or failed: \(error)"))
        }
    }

    /// One RFC 8693 exchange at an external token service, authenticating
    /// as its OAuth client with HTTP Basic (RFC 6749 §2.3.1).
    func exchangeWithExternal(
        _ endpoint: EndpointURL, clientID: String, secret: String, subjectToken: String, actorToken: String?, audience: String, scopes: [String]
    ) async throws -> TokenCache.Minted {
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
        }
        let basic = Data("\(encoded(clientID)):\(encoded(secret))".utf8).base64EncodedString()
        let form = TokenExchangeForm(subjectToken: subjectToken, audience: audience, scopes: scopes, actorToken: actorToken)
        let security: UpstreamTarget.Security = endpoint.scheme == "https" ? .tls(serverName: endpoint.host, caPEM: nil, caFile: nil) : .cleartext
        return try await post(
            form, to: UpstreamTarget(host: endpoint.host, port: endpoint.port, security: security), scheme: endpoint.scheme,
            authority: UpstreamTarget.authority(of: endpoint), path: endpoint.path.isEmpty ? "/" : endpoint.path, authorization: "Basic \(basic)"
        )
    }

    /// One RFC 8693 exchange at the control plane's token service, which
    /// knows this proxy by its client certificate.
    func exchangeWithBuiltin(_ service: UpstreamTarget, subjectToken: String, audience: String, scopes: [String]) async throws -> TokenCache.Minted {
        try await post(
            TokenExchangeForm(subjectToken: subjectToken, audience: audience, scopes: scopes), to: service,
            scheme: "https", authority: "\(service.host):\(service.port)", path: "/oauth2/token", authorization: nil
        )
    }

    /// POSTs a token request form and reads the token response (RFC 6749 §5).
    func post(_ form: TokenExchangeForm, to target: UpstreamTarget, scheme: String, authority: String, path: String, authorization: String?) async throws -> TokenCache.Minted {
        let body = form.body
        var head = HTTPRequest(method: .post, scheme: scheme, authority: authority, path: path)
        head.headerFields[.contentType] = "application/x-www-form-urlencoded"
        head.headerFields[.accept] = "application/json"
        head.headerFields[.contentLength] = "\(body.utf8.count)"
        if let authorization { head.headerFields[.authorization] = authorization }
        let (status, bytes) = try await upstreams.fetch(head, body: ByteBuffer(string: body), to: target)
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        guard status == 200, let token = object["access_token"] as? String else {
            let reason = [object["error"], object["error_description"]].compactMap { $0 as? String }.joined(separator: ": ")
            throw Failure(.tokenService, "HTTP \(status)\(reason.isEmpty ? "" : " \(reason)")")
        }
        // Without expires_in, reuse it for a minute at most.
        let lifetime = (object["expires_in"] as? NSNumber)?.doubleValue ?? 60
        return TokenCache.Minted(value: token, expiresAt: Date().addingTimeInterval(lifetime))
    }

    /// The `exp` of a JWT this proxy was just given (not a validation).
    static func expiry(of token: String) -> Date? {
        guard let exp = (CompactJWS(token)?.payload["exp"] as? NSNumber)?.doubleValue else { return nil }
        return Date(timeIntervalSince1970: exp)
    }
}
