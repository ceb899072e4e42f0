import Crypto
import Foundation
import JWTKit
import TetherCore

/// Validates JWT-SVIDs per the JWT-SVID standard against a trust bundle's
/// JWT authorities: a supported algorithm, a `kid` naming a bundle key, a
/// valid signature, `sub` a SPIFFE ID of the trust domain, `aud` containing
/// the expected audience, and an `exp` in the future.
public struct JWTSVIDValidator: Sendable {
    public struct Validated: Sendable {
        public var id: SPIFFEID
        /// Every claim of the payload, as JSON.
        public var claimsJSON: Data
    }

    public let bundle: TrustBundle

    public init(bundle: TrustBundle) {
        self.bundle = bundle
    }

    public func validate(_ token: String, audience: String, now: Date = Date()) async -> Result<Validated, IdentityError> {
        func reject(_ reason: String) -> Result<Validated, IdentityError> { .failure(IdentityError(.invalidSVID, reason)) }
        guard let jws = CompactJWS(token) else {
            return reject("the JWT-SVID is not a JWS in compact serialization")
        }
        let (header, claims, payloadData) = (jws.header, jws.payload, jws.payloadData)
        guard let algorithm = header["alg"] as? String, algorithm == "ES256" else {
            return reject("the JWT-SVID's alg \(header["alg"] ?? "(none)") is not one this trust domain signs with (ES256)")
        }
        guard let kid = header["kid"] as? String, let authority = bundle.jwtAuthorities.first(where: { $0.kid == kid }) else {
            return reject("the JWT-SVID's kid \(header["kid"] ?? "(none)") names no key in the bundle of \(bundle.trustDomain)")
        }
        let keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PublicKey(backing: authority.key), kid: JWKIdentifier(string: kid))
            _ = try await keys.verify(token, as: SignatureOnly.self)
        } catch {
            return reject("the JWT-SVID's signature does not verify with key \(kid)")
        }
        guard let subject = claims["sub"] as? String, let id = try? SPIFFEID(subject) else {
            return reject("the JWT-SVID's sub is not a SPIFFE ID")
        }
        guard id.trustDomain == bundle.trustDomain else {
            return reject("the JWT-SVID's subject \(id) is not in trust domain \(bundle.trustDomain)")
        }
        let audiences = (claims["aud"] as? [String]) ?? [(claims["aud"] as? String)].compactMap { $0 }
        guard audiences.contains(audience) else {
            return reject("the JWT-SVID is for audience \(audiences.joined(separator: ", ")), not \(audience)")
        }
        guard let exp = claims["exp"] as? Double else {
            return reject("the JWT-SVID has no exp")
        }
        guard Date(timeIntervalSince1970: exp) > now else {
            return reject("the JWT-SVID expired at \(Date(timeIntervalSince1970: exp).formatted(.iso8601))")
        }
        return .success(Validated(id: id, claimsJSON: payloadData))
    }

    /// The claims are checked by hand above; jwt-kit checks the signature.
    private struct SignatureOnly: JWTPayload {
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}
