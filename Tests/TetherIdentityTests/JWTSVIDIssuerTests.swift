import Crypto
import Foundation
import JWTKit
import Testing
import TetherCore
@testable import TetherIdentity

@Suite("JWT-SVIDs and the SPIFFE bundle")
struct JWTSVIDIssuerTests {
    let triage = try! SPIFFEID("spiffe://example.org/agent/triage")

    func decode(_ part: Substring) throws -> [String: Any] {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: text))) as? [String: Any] ?? [:]
    }

    @Test func mintedTokensFollowTheJWTSVIDStandard() async throws {
        let key = P256.Signing.PrivateKey()
        let issuer = try await JWTSVIDIssuer(trustDomain: "example.org", key: key)
        let now = Date()
        let token = try await issuer.mint(for: triage, audience: ["spiffe://example.org/mcp/github"], now: now)
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        let header = try decode(parts[0])
        #expect(header["alg"] as? String == "ES256")
        #expect(header["kid"] as? String == issuer.kid)
        #expect(header["typ"] as? String == "JWT")
        let claims = try decode(parts[1])
        #expect(claims["sub"] as? String == triage.description)
        #expect((claims["aud"] as? [String] ?? [claims["aud"] as? String].compactMap { $0 }) == ["spiffe://example.org/mcp/github"])
        let exp = try #require(claims["exp"] as? Double)
        #expect(exp <= now.timeIntervalSince1970 + 300 + 1)

        // Verifies with the public key from the bundle entry alone.
        let jwk = issuer.authority.jwk
        let verifier = JWTKeyCollection()
        await verifier.add(ecdsa: try ES256PublicKey(parameters: (x: jwk["x"]!, y: jwk["y"]!)), kid: JWKIdentifier(string: jwk["kid"]!))
        let verified = try await verifier.verify(token, as: JWTSVIDClaims.self)
        #expect(verified.sub.value == triage.description)
    }

    @Test func issuanceRules() async throws {
        let issuer = try await JWTSVIDIssuer(trustDomain: "example.org", key: P256.Signing.PrivateKey())
        await #expect(throws: IdentityError.self) { try await issuer.mint(for: triage, audience: ["x"], ttl: 301) }
        await #expect(throws: IdentityError.self) { try await issuer.mint(for: triage, audience: []) }
        await #expect(throws: IdentityError.self) { try await issuer.mint(for: try SPIFFEID("spiffe://other.org/agent"), audience: ["x"]) }
    }

    @Test func theBundleListsX509AuthoritiesAndJWTKeys() async throws {
        let ca = try TrustDomainCA.generate(trustDomain: "example.org")
        let issuer = try await JWTSVIDIssuer(trustDomain: "example.org", key: P256.Signing.PrivateKey())
        let json = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [issuer.authority], sequence: 3).spiffeBundleJSON
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(document["spiffe_sequence"] as? Int == 3)
        let keys = try #require(document["keys"] as? [[String: Any]])
        #expect(keys.map { $0["use"] as? String } == ["x509-svid", "jwt-svid"])
        let x5c = try #require((keys[0]["x5c"] as? [String])?.first)
        #expect(Data(base64Encoded: x5c) == Data(try ca.certificate.serializeAsPEM().derBytes))
        #expect(keys[1]["kid"] as? String == issuer.kid)
        #expect(keys.allSatisfy { $0["d"] == nil }, "no private key material")
    }
}
