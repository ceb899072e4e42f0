import Crypto
import Foundation
import JWTKit
import Testing
import TetherCore
@testable import TetherIdentity
import X509

@Suite("Trust bundles, X.509-SVID values and JWT-SVID validation")
struct TrustBundleTests {
    let ca = try! TrustDomainCA.generate(trustDomain: "example.org")
    let triage = try! SPIFFEID("spiffe://example.org/agent/triage")

    func issuer() async throws -> JWTSVIDIssuer {
        try await JWTSVIDIssuer(trustDomain: "example.org", key: P256.Signing.PrivateKey())
    }

    @Test func aBundleRoundTripsThroughTheSPIFFEBundleFormat() async throws {
        let jwt = try await issuer()
        let bundle = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [jwt.authority], sequence: 7)
        let parsed = try TrustBundle(trustDomain: "example.org", spiffeBundleJSON: bundle.spiffeBundleJSON)
        #expect(parsed == bundle)
        #expect(parsed.sequence == 7)
        // Keys of a use this version does not know are skipped, as the standard asks.
        let extended = bundle.spiffeBundleJSON.replacingOccurrences(of: #""keys":["#, with: #""keys":[{"use":"wit-svid","kty":"OKP"},"#)
        #expect(try TrustBundle(trustDomain: "example.org", spiffeBundleJSON: extended) == bundle)
        #expect(try TrustBundle(trustDomain: "example.org", pem: ca.certificatePEM).x509Authorities == [ca.certificate])
    }

    @Test(arguments: [
        ("not json", "not a SPIFFE bundle"),
        (#"{"keys":[{"use":"x509-svid","x5c":["AAAA"]}]}"#, "x5c"),
        (#"{"keys":[{"use":"x509-svid"}]}"#, "x5c"),
        (#"{"keys":[{"use":"jwt-svid","kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#, "kid"),
    ])
    func malformedBundlesAreRefusedWithTheKey(json: String, mention: String) {
        #expect {
            _ = try TrustBundle(trustDomain: "example.org", spiffeBundleJSON: json)
        } throws: { error in
            (error as? IdentityError)?.code == .invalidBundle && (error as? IdentityError)?.reason.contains(mention) == true
        }
    }

    @Test func anSVIDValueHoldsOnlyItsOwnKeyAndRenewsAtHalfLife() throws {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let leaf = try ca.issue(publicKey: .init(key.publicKey), for: triage, ttl: 100, now: now)
        let svid = try X509SVID(chain: [leaf], privateKey: key)
        #expect(svid.id == triage)
        #expect(throws: IdentityError.self) { try X509SVID(chain: [leaf], privateKey: P256.Signing.PrivateKey()) }
        #expect(throws: IdentityError.self) { try X509SVID(chain: [], privateKey: key) }
        // Half the lifetime from issuance (not the backdated notBefore), ±10%.
        #expect(abs(svid.renewalTime(jitter: 0).timeIntervalSince(now) - 50) < 1)
        #expect(abs(svid.renewalTime(jitter: 0.1).timeIntervalSince(now) - 60) < 1)
        #expect(abs(svid.renewalTime(jitter: -0.5).timeIntervalSince(now) - 40) < 1, "jitter is clamped to ±10%")
        // PEM and PKCS#8 forms read back.
        #expect(try P256.Signing.PrivateKey(derRepresentation: svid.privateKeyPKCS8DER).publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        #expect(try Certificate(pemEncoded: svid.chainPEM) == leaf)
    }

    @Test func aCSRCarriesTheIdentityAndProvesTheKey() throws {
        let key = P256.Signing.PrivateKey()
        let der = try X509SVID.certificateSigningRequest(for: triage, key: key)
        let csr = try CertificateSigningRequest(derEncoded: der)
        let issued = try ca.issue(csr: csr, for: triage)
        #expect(issued.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(throws: IdentityError.self) { try ca.issue(csr: csr, for: try SPIFFEID("spiffe://example.org/agent/other")) }
        // A join's CSR names no identity: the token does.
        let anonymous = try CertificateSigningRequest(derEncoded: try X509SVID.certificateSigningRequest(for: nil, key: key))
        #expect(try SVIDValidator.spiffeID(of: try ca.issue(csr: anonymous, for: triage)).get() == triage)
    }

    @Test func jwtSVIDsValidateOnlyWithEveryRuleMet() async throws {
        let jwt = try await issuer()
        let bundle = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [jwt.authority])
        let validator = JWTSVIDValidator(bundle: bundle)
        let token = try await jwt.mint(for: triage, audience: ["mcp-github"])

        let valid = try await validator.validate(token, audience: "mcp-github").get()
        #expect(valid.id == triage)
        let claims = try JSONSerialization.jsonObject(with: valid.claimsJSON) as? [String: Any]
        #expect(claims?["sub"] as? String == triage.description)

        func reason(_ token: String, audience: String = "mcp-github", now: Date = Date(), with validator: JWTSVIDValidator? = nil) async -> String {
            guard case .failure(let error) = await (validator ?? JWTSVIDValidator(bundle: bundle)).validate(token, audience: audience, now: now) else { return "accepted" }
            return error.reason
        }
        #expect(await reason(token, audience: "other").contains("not other"))
        #expect(await reason(token, now: Date() + 301).contains("expired"))
        #expect(await reason("a.b").contains("compact serialization"))
        // Another trust domain's key: the kid is unknown here.
        let stranger = try await JWTSVIDIssuer(trustDomain: "example.org", key: P256.Signing.PrivateKey())
        #expect(await reason(try await stranger.mint(for: triage, audience: ["mcp-github"])).contains("names no key"))
        // A payload changed after signing.
        let parts = token.split(separator: ".")
        let forged = JWTSVIDIssuer.base64URL(Data(#"{"sub":"spiffe://example.org/agent/admin","aud":["mcp-github"],"exp":9999999999}"#.utf8))
        #expect(await reason("\(parts[0]).\(forged).\(parts[2])").contains("signature"))
        // alg none is never accepted.
        let none = JWTSVIDIssuer.base64URL(Data(#"{"alg":"none","kid":"\#(jwt.kid)"}"#.utf8))
        #expect(await reason("\(none).\(parts[1]).").contains("alg"))
        // Nor HS256 (keyed with anything public) or RS256: JWT-SVIDs here are ES256.
        for algorithm in ["HS256", "RS256", "PS256"] {
            let header = JWTSVIDIssuer.base64URL(Data(#"{"alg":"\#(algorithm)","kid":"\#(jwt.kid)"}"#.utf8))
            #expect(await reason("\(header).\(parts[1]).\(parts[2])").contains("alg"), "\(algorithm)")
        }
        // The subject must be in the bundle's trust domain.
        let foreignBundle = TrustBundle(trustDomain: "other.org", x509Authorities: [], jwtAuthorities: [jwt.authority])
        #expect(await reason(token, with: JWTSVIDValidator(bundle: foreignBundle)).contains("not in trust domain other.org"))
    }
}
