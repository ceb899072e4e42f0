import Crypto
import Foundation

/// An identity provider's ES256 key, its JWK Set, and a user token it
/// signed, with the claims a corporate IdP puts in an access token.
public struct UserTokens: Sendable {
    public let jwks: String
    public let token: String
    public let issuer = "https://login.example.com"
    public let audience = "tether-agents"

    public init(now: Date = Date()) {
        let key = P256.Signing.PrivateKey()
        let raw = key.publicKey.rawRepresentation  // x ‖ y, 32 bytes each
        let x = Self.base64URL(raw.prefix(32)), y = Self.base64URL(raw.suffix(32))
        jwks = #"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256","x":"\#(x)","y":"\#(y)"}]}"#
        let header = #"{"alg":"ES256","kid":"k1","typ":"JWT"}"#
        let issuedAt = Int(now.timeIntervalSince1970)
        let payload = """
            {"iss":"\(issuer)","aud":["\(audience)","account"],"sub":"00u1a2b3c4d5e6f7g8h9","email":"ada@example.com",\
            "name":"Ada Lovelace","preferred_username":"ada","groups":["engineering","oncall","platform"],"department":"R&D",\
            "amr":["pwd","mfa"],"scope":"openid profile email","azp":"triage-agent","jti":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",\
            "iat":\(issuedAt),"nbf":\(issuedAt),"exp":\(issuedAt + 3600)}
            """
        let input = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(Data(payload.utf8))
        let signature = try! key.signature(for: Data(input.utf8)).rawRepresentation
        token = input + "." + Self.base64URL(signature)
    }

    /// The IdentityProvider resource, its JWK Set inline.
    public var yaml: String {
        """
        apiVersion: tether.dev/v1alpha1
        kind: IdentityProvider
        metadata:
          name: corp-sso
        spec:
          issuer: \(issuer)
          audiences: [\(audience)]
          jwks:
            inline: '\(jwks)'
          allowedAlgorithms: [ES256, RS256]
          subjectClaim: email
          clockSkew: 30s
        """
    }

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
