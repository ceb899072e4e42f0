import Crypto
import _CryptoExtras
import Foundation
import TetherCore

/// A test identity provider: an ES256 and an RS256 key, its JWK Set, and
/// tokens built byte by byte (so tests can forge them too).
public struct TestIdentityProvider: Sendable {
    public let ecKey = P256.Signing.PrivateKey()
    public let rsaKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    public let issuer = "https://login.example.com"

    public init() {}

    public static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public var jwks: String {
        let raw = ecKey.publicKey.rawRepresentation
        let primitives = try! rsaKey.publicKey.getKeyPrimitives()
        let (n, e) = (primitives.modulus, primitives.publicExponent)
        let keys: [[String: Any]] = [
            ["kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig", "x": Self.base64URL(raw.prefix(32)), "y": Self.base64URL(raw.suffix(32))],
            ["kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": Self.base64URL(n), "e": Self.base64URL(e)],
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: ["keys": keys]), as: UTF8.self)
    }

    public var spec: IdentityProviderSpec {
        IdentityProviderSpec(
            issuer: try! EndpointURL(issuer, rules: .identifier), audiences: ["tether-agents"], jwks: .inline(jwks),
            allowedAlgorithms: [.rs256, .es256], subjectClaim: "email", clockSkew: .seconds(30)
        )
    }

    public func claims(_ changes: [String: Any] = [:], now: Date = Date()) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": ["tether-agents"], "sub": "u-123", "email": "ada@example.com", "groups": ["engineering", "oncall"],
            "iat": Int(now.timeIntervalSince1970), "nbf": Int(now.timeIntervalSince1970), "exp": Int(now.timeIntervalSince1970) + 600,
        ]
        for (key, value) in changes { claims[key] = value }
        return claims
    }

    /// A token signed with the EC key (or `rsa`), with `header` changes.
    public func token(_ claims: [String: Any], header changes: [String: Any] = [:], rsa: Bool = false) -> String {
        var header: [String: Any] = rsa ? ["alg": "RS256", "kid": "rsa-1", "typ": "JWT"] : ["alg": "ES256", "kid": "ec-1", "typ": "JWT"]
        for (key, value) in changes { header[key] = value }
        let input = Self.base64URL(try! JSONSerialization.data(withJSONObject: header)) + "." + Self.base64URL(try! JSONSerialization.data(withJSONObject: claims))
        let signature: Data = rsa
            ? try! rsaKey.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5).rawRepresentation
            : try! ecKey.signature(for: Data(input.utf8)).rawRepresentation
        return input + "." + Self.base64URL(signature)
    }
}
