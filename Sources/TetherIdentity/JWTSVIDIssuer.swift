import Crypto
import Foundation
import JWTKit
import TetherCore

/// Mints JWT-SVIDs per the JWT-SVID standard: ES256, a `kid` naming the
/// signing key in the trust bundle, `sub` the workload's SPIFFE ID, `aud` as
/// requested, `exp` at most five minutes out (SPIRE's default lifetime).
///
/// ```swift
/// let issuer = await JWTSVIDIssuer(trustDomain: "example.org", key: P256.Signing.PrivateKey())
/// let token = try await issuer.mint(for: id, audience: ["spiffe://example.org/mcp/github"])
/// ```
public struct JWTSVIDIssuer: Sendable {
    public let trustDomain: String
    public let key: P256.Signing.PublicKey
    /// RFC 7638 thumbprint of the public key: stable, and unique per key.
    public let kid: String
    private let keys: JWTKeyCollection

    public static let maximumTTL: TimeInterval = 300

    public init(trustDomain: String, key: P256.Signing.PrivateKey) async throws(IdentityError) {
        self.trustDomain = trustDomain
        self.key = key.publicKey
        kid = Self.thumbprint(key.publicKey)
        keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: JWKIdentifier(string: kid))
        } catch {
            throw IdentityError(.invalidCA, "cannot use the JWT signing key: \(error)")
        }
    }

    public func mint(for id: SPIFFEID, audience: [String], ttl: TimeInterval = maximumTTL, now: Date = Date()) async throws(IdentityError) -> String {
        guard id.trustDomain == trustDomain, !id.path.isEmpty else {
            throw IdentityError(.wrongTrustDomain, "\(id) is not a workload of trust domain \(trustDomain)")
        }
        guard !audience.isEmpty, audience.allSatisfy({ !$0.isEmpty }) else {
            throw IdentityError(.invalidRequest, "a JWT-SVID needs at least one non-empty audience")
        }
        guard ttl > 0, ttl <= Self.maximumTTL else {
            throw IdentityError(.invalidRequest, "a JWT-SVID lives at most \(Int(Self.maximumTTL)) seconds")
        }
        let payload = JWTSVIDClaims(
            sub: SubjectClaim(value: id.description),
            aud: AudienceClaim(value: audience),
            exp: ExpirationClaim(value: now + ttl),
            iat: IssuedAtClaim(value: now)
        )
        do {
            return try await keys.sign(payload, kid: JWKIdentifier(string: kid), header: ["typ": "JWT"])
        } catch {
            throw IdentityError(.invalidRequest, "cannot sign a JWT-SVID for \(id): \(error)")
        }
    }

    /// This issuer's key as the trust bundle lists it.
    public var authority: TrustBundle.JWTAuthority {
        TrustBundle.JWTAuthority(kid: kid, key: key)
    }

    public static func coordinates(_ key: P256.Signing.PublicKey) -> (x: String, y: String) {
        let raw = key.rawRepresentation
        return (base64URL(raw.prefix(32)), base64URL(raw.suffix(32)))
    }

    /// RFC 7638 thumbprint: the `kid` Tether gives a P-256 key.
    public static func thumbprint(_ key: P256.Signing.PublicKey) -> String {
        let (x, y) = coordinates(key)
        // RFC 7638: the required members, lexicographic order, no whitespace.
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
        return base64URL(Data(SHA256.hash(data: Data(canonical.utf8))))
    }

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// The registered claims of a JWT-SVID.
struct JWTSVIDClaims: JWTPayload {
    var sub: SubjectClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}
