import Crypto
import Foundation
import SwiftASN1
import TetherCore
import X509

/// The certificate authority of one SPIFFE trust domain: a P-256 root (or an
/// operator-provided CA) that signs X.509-SVIDs exactly as the X509-SVID
/// standard requires.
///
/// ```swift
/// let ca = try TrustDomainCA.generate(trustDomain: "example.org")
/// let svid = try ca.issue(publicKey: key.publicKey, for: try SPIFFEID("spiffe://example.org/agent/triage"))
/// ```
public struct TrustDomainCA: Sendable {
    public let trustDomain: String
    public let certificate: Certificate
    let privateKey: Certificate.PrivateKey

    /// SPIRE's default: SVIDs are backdated so a peer whose clock is a little
    /// behind still accepts them.
    public static let backdate: TimeInterval = 10
    public static let defaultSVIDTTL: TimeInterval = 3600

    public init(trustDomain: String, certificate: Certificate, privateKey: Certificate.PrivateKey) throws(IdentityError) {
        guard certificate.publicKey == privateKey.publicKey else {
            throw IdentityError(.invalidCA, "the CA private key does not belong to the CA certificate")
        }
        guard case .isCertificateAuthority? = try? certificate.extensions.basicConstraints else {
            throw IdentityError(.invalidCA, "the CA certificate is not a CA (basicConstraints cA=true is missing)")
        }
        guard let usage = try? certificate.extensions.keyUsage, usage.keyCertSign else {
            throw IdentityError(.invalidCA, "the CA certificate may not sign certificates (keyUsage keyCertSign is missing)")
        }
        self.trustDomain = trustDomain
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// A new self-signed P-256 root for `trustDomain`. Per the X509-SVID
    /// standard a signing certificate carries the trust domain's SPIFFE ID
    /// (no path) as its URI SAN, is a CA, and may sign certificates.
    public static func generate(trustDomain: String, validity: TimeInterval = 5 * 365 * 24 * 3600, now: Date = Date()) throws(IdentityError) -> TrustDomainCA {
        let key = P256.Signing.PrivateKey()
        let privateKey = Certificate.PrivateKey(key)
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let id = try SPIFFEID("spiffe://\(trustDomain)")
            let name = try DistinguishedName {
                OrganizationName("Tether")
                CommonName("Tether CA \(trustDomain)")
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
                SubjectAlternativeNames([.uniformResourceIdentifier(id.description)])
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: randomSerial(),
                publicKey: publicKey,
                notValidBefore: now - backdate,
                notValidAfter: now + validity,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: privateKey
            )
            return try TrustDomainCA(trustDomain: trustDomain, certificate: certificate, privateKey: privateKey)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError(.invalidCA, "cannot create a CA for trust domain \(trustDomain): \(error)")
        }
    }

    /// An X.509-SVID for `id`: one URI SAN, cA=false, critical keyUsage
    /// digitalSignature, EKU serverAuth + clientAuth, a random 128-bit serial,
    /// backdated by `backdate`, never outliving the CA.
    public func issue(publicKey: Certificate.PublicKey, for id: SPIFFEID, ttl: TimeInterval = defaultSVIDTTL, now: Date = Date()) throws(IdentityError) -> Certificate {
        guard id.trustDomain == trustDomain else {
            throw IdentityError(.wrongTrustDomain, "\(id) is not in trust domain \(trustDomain)")
        }
        guard !id.path.isEmpty else {
            throw IdentityError(.invalidRequest, "\(id) has no path; an X.509-SVID names a workload, not the trust domain")
        }
        do {
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                SubjectAlternativeNames([.uniformResourceIdentifier(id.description)])
            }
            return try Certificate(
                version: .v3,
                serialNumber: Self.randomSerial(),
                publicKey: publicKey,
                notValidBefore: now - Self.backdate,
                notValidAfter: min(now + ttl, certificate.notValidAfter),
                issuer: certificate.subject,
                subject: try DistinguishedName { OrganizationName("Tether") },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: privateKey
            )
        } catch {
            throw IdentityError(.invalidRequest, "cannot issue an SVID for \(id): \(error)")
        }
    }

    /// Issues from a PKCS#10 request, after checking its signature (proof the
    /// requester holds the key) and that any SPIFFE ID it asks for is `id`.
    public func issue(csr: CertificateSigningRequest, for id: SPIFFEID, ttl: TimeInterval = defaultSVIDTTL, now: Date = Date()) throws(IdentityError) -> Certificate {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw IdentityError(.invalidRequest, "the CSR's signature does not verify; sign it with the key it carries")
        }
        let requested = ((try? csr.attributes.extensionRequest?.extensions.subjectAlternativeNames) ?? nil).map(Array.init) ?? []
        for name in requested {
            guard case .uniformResourceIdentifier(let uri) = name, uri == id.description else {
                throw IdentityError(.wrongIdentity, "the CSR asks for \(name), but the join token is for \(id)")
            }
        }
        return try issue(publicKey: csr.publicKey, for: id, ttl: ttl, now: now)
    }

    static func randomSerial() -> Certificate.SerialNumber {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[0] &= 0x7f  // positive
        bytes[0] |= 0x40  // and a full 16 bytes long
        return Certificate.SerialNumber(bytes: bytes)
    }
}
