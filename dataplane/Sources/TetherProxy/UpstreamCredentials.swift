import Foundation
import HTTPTypes
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

    struct Failure: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    let cache: TokenCache
    /// Mints a JWT-SVID of this proxy's identity; nil without an identity.
    let mintJWTSVID: (@Sendable (_ audience: [String]) async throws -> String)?

    func header(exchange name: String, config: DataPlaneConfig, user: UserToken?) async -> Result<Header, Failure> {
        guard let exchange = config.tokenExchanges[name] else {
            return .failure(Failure(reason: "TokenExchange \(name) is not in this proxy's config"))
        }
        switch exchange.type {
        case .credential:
            guard let credential = exchange.credential, let value = config.credential(credential) else {
                return .failure(Failure(reason: "the credential of TokenExchange \(name) has not reached this proxy"))
            }
            guard let field = HTTPField.Name(exchange.header ?? "Authorization") else {
                return .failure(Failure(reason: "TokenExchange \(name) names an invalid header"))
            }
            let scheme = exchange.scheme ?? "Bearer"
            return .success(Header(name: field, value: scheme.isEmpty ? value : "\(scheme) \(value)"))
        case .jwtSVID:
            guard let mintJWTSVID, let audience = exchange.audience else {
                return .failure(Failure(reason: "TokenExchange \(name) needs a JWT-SVID and this proxy has no SPIFFE identity"))
            }
            do {
                let key = TokenCache.Key(exchange: name, userToken: nil, audience: audience, scopes: [])
                let minted = try await cache.token(for: key) {
                    let token = try await mintJWTSVID([audience])
                    return TokenCache.Minted(value: token, expiresAt: Self.expiry(of: token) ?? Date().addingTimeInterval(60))
                }
                return .success(Header(name: .authorization, value: "Bearer \(minted.value)"))
            } catch {
                return .failure(Failure(reason: "no JWT-SVID for \(audience): \(error)"))
            }
        case .builtin, .rfc8693:
            return .failure(Failure(reason: "TokenExchange \(name) is of type \(exchange.type.rawValue), which this proxy cannot perform yet"))
        }
    }

    /// The `exp` of a JWT this proxy was just given (not a validation).
    static func expiry(of token: String) -> Date? {
        let parts = token.split(separator: ".")
        guard parts.count == 3, let payload = TrustBundle.base64URLDecode(String(parts[1])),
            let claims = (try? JSONSerialization.jsonObject(with: payload)) as? [String: Any],
            let exp = (claims["exp"] as? NSNumber)?.doubleValue
        else { return nil }
        return Date(timeIntervalSince1970: exp)
    }
}
