import Crypto
import _CryptoExtras
import Foundation
import Testing
import TetherCore
@testable import TetherIdentity

/// A test identity provider: an ES256 and an RS256 key, its JWK Set, and
/// tokens built byte by byte (so tests can forge them too).
struct TestIdentityProvider {
    let ecKey = P256.Signing.PrivateKey()
    let rsaKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    let issuer = "https://login.example.com"

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    var jwks: String {
        let raw = ecKey.publicKey.rawRepresentation
        let primitives = try! rsaKey.publicKey.getKeyPrimitives()
        let (n, e) = (primitives.modulus, primitives.publicExponent)
        let keys: [[String: Any]] = [
            ["kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig", "x": Self.base64URL(raw.prefix(32)), "y": Self.base64URL(raw.suffix(32))],
            ["kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": Self.base64URL(n), "e": Self.base64URL(e)],
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: ["keys": keys]), as: UTF8.self)
    }

    var spec: IdentityProviderSpec {
        IdentityProviderSpec(
            issuer: try! EndpointURL(issuer, rules: .identifier), audiences: ["tether-agents"], jwks: .inline(jwks),
            allowedAlgorithms: [.rs256, .es256], subjectClaim: "email", clockSkew: .seconds(30)
        )
    }

    func claims(_ changes: [String: Any] = [:], now: Date = Date()) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": ["tether-agents"], "sub": "u-123", "email": "ada@example.com", "groups": ["engineering", "oncall"],
            "iat": Int(now.timeIntervalSince1970), "nbf": Int(now.timeIntervalSince1970), "exp": Int(now.timeIntervalSince1970) + 600,
        ]
        for (key, value) in changes { claims[key] = value }
        return claims
    }

    /// A token signed with the EC key (or `rsa`), with `header` changes.
    func token(_ claims: [String: Any], header changes: [String: Any] = [:], rsa: Bool = false) -> String {
        var header: [String: Any] = rsa ? ["alg": "RS256", "kid": "rsa-1", "typ": "JWT"] : ["alg": "ES256", "kid": "ec-1", "typ": "JWT"]
        for (key, value) in changes { header[key] = value }
        let input = Self.base64URL(try! JSONSerialization.data(withJSONObject: header)) + "." + Self.base64URL(try! JSONSerialization.data(withJSONObject: claims))
        let signature: Data = rsa
            ? try! rsaKey.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5).rawRepresentation
            : try! ecKey.signature(for: Data(input.utf8)).rawRepresentation
        return input + "." + Self.base64URL(signature)
    }
}

@Suite("User tokens from identity providers")
struct UserTokenValidatorTests {
    let idp = TestIdentityProvider()

    func validator() async throws -> UserTokenValidator {
        try await UserTokenValidator(name: "corp-sso", spec: idp.spec, jwks: idp.jwks)
    }

    @Test func aGoodTokenGivesTheUserAndTheirClaims() async throws {
        for rsa in [false, true] {
            let user = try await validator().validate(idp.token(idp.claims(), rsa: rsa)).get()
            #expect(user.subject == "ada@example.com")
            #expect(user.claims["groups"] == ["engineering", "oncall"] && user.claims["sub"] == ["u-123"] && user.issuer == idp.issuer)
        }
    }

    @Test func adversarialTokensAreRejectedWithTheirReason() async throws {
        let validator = try await validator()
        let now = Date()
        let good = idp.token(idp.claims())
        let parts = good.split(separator: ".").map(String.init)
        // alg none: the signature is empty.
        let none = TestIdentityProvider.base64URL(Data(#"{"alg":"none","kid":"ec-1"}"#.utf8)) + "." + parts[1] + "."
        // HS256 keyed with the RSA public key (the classic algorithm confusion).
        let hsInput = TestIdentityProvider.base64URL(Data(#"{"alg":"HS256","kid":"rsa-1"}"#.utf8)) + "." + parts[1]
        let publicPEM = idp.rsaKey.publicKey.pemRepresentation
        let mac = HMAC<SHA256>.authenticationCode(for: Data(hsInput.utf8), using: SymmetricKey(data: Data(publicPEM.utf8)))
        let confused = hsInput + "." + TestIdentityProvider.base64URL(Data(mac))
        // A payload changed after signing.
        let tamperedClaims = TestIdentityProvider.base64URL(try JSONSerialization.data(withJSONObject: idp.claims(["email": "root@example.com"])))
        let tampered = parts[0] + "." + tamperedClaims + "." + parts[2]
        let cases: [(String, String, TokenRejection.Code)] = [
            ("alg none", none, .algorithm),
            ("HS256 with the RSA public key as secret", confused, .algorithm),
            ("expired", idp.token(idp.claims(["exp": Int(now.timeIntervalSince1970) - 60])), .expired),
            ("not yet valid", idp.token(idp.claims(["nbf": Int(now.timeIntervalSince1970) + 600])), .notYetValid),
            ("issued in the future", idp.token(idp.claims(["iat": Int(now.timeIntervalSince1970) + 600])), .issuedInFuture),
            ("wrong issuer", idp.token(idp.claims(["iss": "https://evil.example.com"])), .issuer),
            ("wrong audience", idp.token(idp.claims(["aud": "someone-else"])), .audience),
            ("unknown kid", idp.token(idp.claims(), header: ["kid": "rotated-away"]), .unknownKey),
            ("tampered payload", tampered, .signature),
            ("signed by another key under a known kid", idp.token(idp.claims(), header: ["kid": "rsa-1", "alg": "ES256"]), .signature),
            ("over 16 KiB", idp.token(idp.claims(["padding": String(repeating: "a", count: 17 * 1024)])), .tooLarge),
            ("no subject", idp.token(idp.claims(["email": NSNull()])), .subject),
            ("not a JWS", "not.a.token", .malformed),
        ]
        for (what, token, code) in cases {
            switch await validator.validate(token, now: now) {
            case .success: Issue.record("\(what): accepted")
            case .failure(let rejection):
                #expect(rejection.code == code, "\(what): \(rejection)")
                #expect(!rejection.reason.contains(token), "the reason never quotes the token")
            }
        }
        // Within the clock skew is fine.
        if case .failure(let rejection) = await validator.validate(idp.token(idp.claims(["exp": Int(now.timeIntervalSince1970) - 10])), now: now) {
            Issue.record("expired 10 s ago, within the 30 s skew: \(rejection)")
        }
    }

    @Test func keySetsWithPrivateOrForeignKeysAreRefused() async throws {
        let withPrivate = #"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA","d":"AA"}]}"#
        await #expect(throws: IdentityError.self) { _ = try await UserTokenValidator(name: "x", spec: idp.spec, jwks: withPrivate) }
        await #expect(throws: IdentityError.self) { _ = try await UserTokenValidator(name: "x", spec: idp.spec, jwks: "not json") }
        await #expect(throws: IdentityError.self) { _ = try await UserTokenValidator(name: "x", spec: idp.spec, jwks: #"{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}"#) }
    }
}
