import Crypto
import Foundation

/// The data-path benchmark's enterprise identity provider: one ES256 key,
/// its public JWK Set, and one user token signed with it, so the benchmarked
/// agent can send `Authorization: Bearer <user JWT>` as a real agent would.
/// The private key is never written: the token is all the run needs.
///
/// Writes `DIR/jwks.json` and `DIR/user.jwt` (iss `https://login.example.com`,
/// aud `tether-agents`, sub, email, iat/nbf now, exp in one hour).
///
/// Usage: tether-bench-upstream idp DIR
enum BenchmarkIdentityProvider {
    static let issuer = "https://login.example.com"
    static let audience = "tether-agents"
    static let keyID = "bench-es256"

    static func write(to directory: String) throws {
        let key = P256.Signing.PrivateKey()
        let raw = key.publicKey.rawRepresentation  // x || y, 32 bytes each
        let jwk: [String: String] = [
            "kty": "EC", "crv": "P-256", "kid": keyID, "alg": "ES256", "use": "sig",
            "x": base64URL(raw.prefix(32)), "y": base64URL(raw.suffix(32)),
        ]
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["alg": "ES256", "kid": keyID, "typ": "JWT"]
        let claims: [String: Any] = [
            "iss": issuer, "aud": audience, "sub": "u-bench", "email": "ada@example.com",
            "iat": now, "nbf": now, "exp": now + 3600,
        ]
        let input = try base64URL(json(header)) + "." + base64URL(json(claims))
        // JWS ES256 signatures are r || s (raw), not DER.
        let signature = try key.signature(for: Data(input.utf8)).rawRepresentation
        let token = input + "." + base64URL(signature)

        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try json(["keys": [jwk]]).write(to: URL(fileURLWithPath: "\(directory)/jwks.json"))
        try Data(token.utf8).write(to: URL(fileURLWithPath: "\(directory)/user.jwt"))
    }

    static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
