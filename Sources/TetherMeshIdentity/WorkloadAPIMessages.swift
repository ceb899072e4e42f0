import Crypto
import Foundation
import TetherCore
import TetherIdentity
import X509

/// The Workload API's X.509 fields and Tether's identity values, both ways.
public enum WorkloadAPIMessages {
    /// The message FetchX509SVID streams for `identity`: one SVID (the
    /// default identity), its chain and key as DER, the bundle's CAs as
    /// concatenated DER.
    public static func x509SVIDResponse(_ identity: WorkloadIdentity) -> Workload_X509SVIDResponse {
        .with {
            $0.svids = [
                .with { svid in
                    svid.spiffeID = identity.id.description
                    svid.x509Svid = Data(identity.svid.chainDER)
                    svid.x509SvidKey = Data(identity.svid.privateKeyPKCS8DER)
                    svid.bundle = Data(identity.bundle.x509AuthoritiesDER)
                }
            ]
        }
    }

    /// The default (first) SVID of a FetchX509SVID message, with its bundle.
    public static func identity(from response: Workload_X509SVIDResponse, jwtAuthorities: [TrustBundle.JWTAuthority] = []) throws(IdentityError) -> WorkloadIdentity {
        guard let first = response.svids.first else {
            throw IdentityError(.invalidSVID, "the Workload API sent no SVID; is this workload registered?")
        }
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(derRepresentation: first.x509SvidKey)
        } catch {
            throw IdentityError(.invalidSVID, "the SVID's private key is not an EC P-256 PKCS#8 key, which is what Tether uses: \(error)")
        }
        let chain = try certificates(Array(first.x509Svid), field: "x509_svid")
        let svid = try X509SVID(chain: chain, privateKey: key)
        guard svid.id.description == first.spiffeID else {
            throw IdentityError(.invalidSVID, "the Workload API says \(first.spiffeID) but the certificate names \(svid.id)")
        }
        let authorities = try certificates(Array(first.bundle), field: "bundle")
        return WorkloadIdentity(svid: svid, bundle: TrustBundle(trustDomain: svid.id.trustDomain, x509Authorities: authorities, jwtAuthorities: jwtAuthorities))
    }

    /// Splits concatenated DER certificates — the Workload API's encoding of
    /// chains and bundles — by each certificate's outer length.
    public static func certificates(_ bytes: [UInt8], field: String) throws(IdentityError) -> [Certificate] {
        var result: [Certificate] = []
        var rest = bytes[...]
        while !rest.isEmpty {
            guard let length = derElementLength(rest), length <= rest.count,
                let certificate = try? Certificate(derEncoded: Array(rest.prefix(length)))
            else {
                throw IdentityError(.invalidSVID, "\(field) is not a sequence of DER certificates")
            }
            result.append(certificate)
            rest = rest.dropFirst(length)
        }
        guard !result.isEmpty else { throw IdentityError(.invalidSVID, "\(field) is empty") }
        return result
    }

    /// The full length (header + content) of the DER SEQUENCE at the start
    /// of `bytes`; certificates are always a definite-length SEQUENCE.
    static func derElementLength(_ bytes: ArraySlice<UInt8>) -> Int? {
        var index = bytes.startIndex
        guard bytes.count >= 2, bytes[index] == 0x30 else { return nil }
        index += 1
        let first = Int(bytes[index])
        index += 1
        if first < 0x80 { return 2 + first }
        let count = first & 0x7f
        guard count >= 1, count <= 4, bytes.endIndex - index >= count else { return nil }
        var length = 0
        for byte in bytes[index..<index + count] { length = length << 8 | Int(byte) }
        return 2 + count + length
    }

    /// A JWKS document of JWT-SVID keys as FetchJWTBundles carries it.
    public static func jwtAuthorities(jwks: Data, trustDomain: String) throws(IdentityError) -> [TrustBundle.JWTAuthority] {
        // A JWKS is a SPIFFE bundle without `use` on its keys; mark them as JWT keys.
        guard var document = (try? JSONSerialization.jsonObject(with: jwks)) as? [String: Any], let keys = document["keys"] as? [[String: Any]] else {
            throw IdentityError(.invalidBundle, "the JWT bundle of \(trustDomain) is not a JWK Set")
        }
        document["keys"] = keys.map { key in key.merging(["use": "jwt-svid"]) { _, new in new } }
        let data = (try? JSONSerialization.data(withJSONObject: document)) ?? Data()
        return try TrustBundle(trustDomain: trustDomain, spiffeBundleJSON: String(decoding: data, as: UTF8.self)).jwtAuthorities
    }
}
