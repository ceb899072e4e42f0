import Crypto
import Foundation
import JWTKit
import TetherCore

/// Mints the access tokens of the built-in token service: RFC 9068 JWTs
/// (`typ: at+jwt`, ES256) for one MCP server (`aud`), for one user (`sub`),
/// naming the agent that asked (`client_id`, and `act` per RFC 8693 §4.1),
/// with the scope the policy allows and a lifetime no longer than the
/// user's own token.
public struct AccessTokenIssuer: Sendable {
    /// The token service's URL: the tokens' `iss`.
    public let issuer: String
    public let kid: String
    public let publicKey: P256.Signing.PublicKey
    /// Keys published beside the signing one: the next (before it signs)
    /// and the previous (while tokens it signed may still be in use).
    public let alsoPublished: [P256.Signing.PublicKey]
    private let keys: JWTKeyCollection

    public init(issuer: String, key: P256.Signing.PrivateKey, alsoPublished: [P256.Signing.PublicKey] = []) async throws(IdentityError) {
        self.issuer = issuer
        publicKey = key.publicKey
        self.alsoPublished = alsoPublished
        kid = JWTSVIDIssuer.thumbprint(key.publicKey)
        keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: JWKIdentifier(string: kid))
        } catch {
            throw IdentityError(.invalidCA, "cannot use the token signing key: \(error)")
        }
    }

    public struct Grant: Sendable {
        public var subject: String
        public var audience: String
        public var actor: SPIFFEID
        /// Who acted before `actor`, nearest first (the subject token's own
        /// `act` chain); they nest below it in the issued token's `act`.
        public var delegatedBy: [String]
        public var scopes: [String]
        public var expiresAt: Date

        public init(subject: String, audience: String, actor: SPIFFEID, delegatedBy: [String] = [], scopes: [String], expiresAt: Date) {
            self.subject = subject
            self.audience = audience
            self.actor = actor
            self.delegatedBy = delegatedBy
            self.scopes = scopes
            self.expiresAt = expiresAt
        }
    }

    public func mint(_ grant: Grant, now: Date = Date()) async throws(IdentityError) -> String {
        let claims = AccessTokenClaims(
            iss: IssuerClaim(value: issuer), sub: SubjectClaim(value: grant.subject), aud: AudienceClaim(value: [grant.audience]),
            client_id: grant.actor.description, scope: grant.scopes.isEmpty ? nil : grant.scopes.joined(separator: " "),
            act: ([grant.actor.description] + grant.delegatedBy).reversed().reduce(nil) { inner, sub in Actor(sub: sub, act: inner) }!, exp: ExpirationClaim(value: grant.expiresAt), iat: IssuedAtClaim(value: now),
            jti: IDClaim(value: UUID().uuidString.lowercased())
        )
        do {
            return try await keys.sign(claims, kid: JWKIdentifier(string: kid), header: ["typ": "at+jwt"])
        } catch {
            throw IdentityError(.invalidRequest, "cannot sign an access token: \(error)")
        }
    }

    /// The public key as a JWK Set, for servers that validate the tokens.
    public var jwks: String {
        let keys = ([publicKey] + alsoPublished).map { key in
            let (x, y) = JWTSVIDIssuer.coordinates(key)
            return #"{"alg":"ES256","crv":"P-256","kid":"\#(JWTSVIDIssuer.thumbprint(key))","kty":"EC","use":"sig","x":"\#(x)","y":"\#(y)"}"#
        }
        return #"{"keys":["# + keys.joined(separator: ",") + "]}"
    }

    /// RFC 8693 §4.1 `act`: the current actor, with the prior ones nested.
    final class Actor: Codable, Sendable {
        let sub: String
        let act: Actor?

        init(sub: String, act: Actor?) {
            self.sub = sub
            self.act = act
        }
    }

    struct AccessTokenClaims: JWTPayload {
        var iss: IssuerClaim
        var sub: SubjectClaim
        var aud: AudienceClaim
        var client_id: String
        var scope: String?
        var act: Actor
        var exp: ExpirationClaim
        var iat: IssuedAtClaim
        var jti: IDClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }
}
