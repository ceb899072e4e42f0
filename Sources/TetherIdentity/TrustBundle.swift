import Crypto
import Foundation
import SwiftASN1
import TetherCore
import X509

/// A trust domain's bundle: the X.509 authorities SVIDs chain to and the
/// keys JWT-SVIDs are signed with. Travels in the SPIFFE bundle format — a
/// JWK Set whose keys are the CA certificates (`use: x509-svid`, `x5c`) and
/// the JWT-SVID keys (`use: jwt-svid`, `kid`) — and nothing in it is secret.
///
/// ```swift
/// let bundle = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [issuer.authority])
/// let parsed = try TrustBundle(trustDomain: "example.org", spiffeBundleJSON: bundle.spiffeBundleJSON)
/// ```
public struct TrustBundle: Hashable, Sendable {
    public struct JWTAuthority: Hashable, Sendable {
        public var kid: String
        public var key: P256.Signing.PublicKey

        public init(kid: String, key: P256.Signing.PublicKey) {
            self.kid = kid
            self.key = key
        }

        public static func == (a: Self, b: Self) -> Bool { a.kid == b.kid && a.key.rawRepresentation == b.key.rawRepresentation }
        public func hash(into hasher: inout Hasher) { hasher.combine(kid) }
    }

    public var trustDomain: String
    public var x509Authorities: [Certificate]
    public var jwtAuthorities: [JWTAuthority]
    public var sequence: Int
    /// Seconds; how often a consumer should look for a new bundle.
    public var refreshHint: Int

    public init(trustDomain: String, x509Authorities: [Certificate], jwtAuthorities: [JWTAuthority], sequence: Int = 1, refreshHint: Int = 300) {
        self.trustDomain = trustDomain
        self.x509Authorities = x509Authorities
        self.jwtAuthorities = jwtAuthorities
        self.sequence = sequence
        self.refreshHint = refreshHint
    }

    /// The bundle in the SPIFFE bundle format, keys in a stable order.
    public var spiffeBundleJSON: String {
        var keys: [[String: Any]] = []
        for certificate in x509Authorities {
            var key: [String: Any] = ["use": "x509-svid", "x5c": [Data(certificate.derBytes).base64EncodedString()]]
            if let ec = P256.Signing.PublicKey(certificate.publicKey) {
                let (x, y) = JWTSVIDIssuer.coordinates(ec)
                key.merge(["kty": "EC", "crv": "P-256", "x": x, "y": y]) { a, _ in a }
            }
            keys.append(key)
        }
        for authority in jwtAuthorities {
            keys.append(authority.jwk)
        }
        let document: [String: Any] = ["keys": keys, "spiffe_sequence": sequence, "spiffe_refresh_hint": refreshHint]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Just the JWT-SVID keys as a JWK Set: what the Workload API's
    /// FetchJWTBundles returns per trust domain.
    public var jwtJWKS: String {
        let document: [String: Any] = ["keys": jwtAuthorities.map(\.jwk)]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The X.509 authorities' DER, concatenated: the Workload API's `bundle`.
    public var x509AuthoritiesDER: [UInt8] {
        x509Authorities.flatMap(\.derBytes)
    }

    /// Parses a SPIFFE bundle document. Keys with an unknown `use` are
    /// skipped, as the bundle standard asks; malformed known keys are errors.
    public init(trustDomain: String, spiffeBundleJSON json: String) throws(IdentityError) {
        guard let document = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any],
            let keys = document["keys"] as? [[String: Any]]
        else {
            throw IdentityError(.invalidBundle, "the trust bundle is not a SPIFFE bundle (a JSON object with a \"keys\" array)")
        }
        var x509: [Certificate] = [], jwt: [JWTAuthority] = []
        for (index, key) in keys.enumerated() {
            switch key["use"] as? String {
            case "x509-svid":
                guard let chain = key["x5c"] as? [String], chain.count == 1, let der = Data(base64Encoded: chain[0]),
                    let certificate = try? Certificate(derEncoded: Array(der))
                else {
                    throw IdentityError(.invalidBundle, "trust bundle key \(index): an x509-svid key needs exactly one base64 DER certificate in x5c")
                }
                x509.append(certificate)
            case "jwt-svid":
                guard let kid = key["kid"] as? String, !kid.isEmpty, key["kty"] as? String == "EC", key["crv"] as? String == "P-256",
                    let x = (key["x"] as? String).flatMap(Self.base64URLDecode), let y = (key["y"] as? String).flatMap(Self.base64URLDecode),
                    let ec = try? P256.Signing.PublicKey(rawRepresentation: x + y)
                else {
                    throw IdentityError(.invalidBundle, "trust bundle key \(index): a jwt-svid key needs a kid and an EC P-256 x/y")
                }
                jwt.append(JWTAuthority(kid: kid, key: ec))
            default:
                continue
            }
        }
        self.init(
            trustDomain: trustDomain, x509Authorities: x509, jwtAuthorities: jwt,
            sequence: document["spiffe_sequence"] as? Int ?? 0, refreshHint: document["spiffe_refresh_hint"] as? Int ?? 300
        )
    }

    /// A bundle from PEM CA certificates (`--trust-bundle` given as PEM).
    public init(trustDomain: String, pem: String) throws(IdentityError) {
        let certificates: [Certificate]
        do {
            certificates = try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
        } catch {
            throw IdentityError(.invalidBundle, "the trust bundle is neither a SPIFFE bundle nor PEM CA certificates: \(error)")
        }
        guard !certificates.isEmpty else {
            throw IdentityError(.invalidBundle, "the trust bundle holds no certificate")
        }
        self.init(trustDomain: trustDomain, x509Authorities: certificates, jwtAuthorities: [])
    }

    public static func base64URLDecode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

extension TrustBundle.JWTAuthority {
    /// The key as a SPIFFE bundle entry (`use: jwt-svid`).
    public var jwk: [String: String] {
        let (x, y) = JWTSVIDIssuer.coordinates(key)
        return ["kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "jwt-svid"]
    }
}

extension Certificate {
    /// `sha256:<hex>` of the SubjectPublicKeyInfo: how a proxy pins the CA
    /// with `--ca-hash` when it has no bundle file (kubeadm's discovery hash).
    public var publicKeyPin: String {
        var serializer = DER.Serializer()
        try? serializer.serialize(publicKey)
        return "sha256:" + SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02x", $0) }.joined()
    }

    /// DER bytes of a certificate we hold; serializing one cannot fail.
    public var derBytes: [UInt8] {
        (try? serializeAsPEM().derBytes) ?? []
    }
}
