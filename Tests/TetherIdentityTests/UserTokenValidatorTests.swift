import Crypto
import _CryptoExtras
import Foundation
import Testing
import TetherCore
import TetherTestSupport
@testable import TetherIdentity

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

    @Test func anActChainIsReadNearestFirst() async throws {
        let act: [String: Any] = ["sub": "spiffe://example.org/agent/specialist", "act": ["sub": "spiffe://example.org/agent/supervisor"]]
        let user = try await validator().validate(idp.token(idp.claims(["act": act]))).get()
        #expect(user.actors == ["spiffe://example.org/agent/specialist", "spiffe://example.org/agent/supervisor"])
        #expect(user.claims["act"] == nil, "objects are not claims conditions can match")
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
