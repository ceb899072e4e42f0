import Foundation
import X509

extension TrustDomainCA {
    /// A CA from PEM: an operator-provided root or intermediate, or one this
    /// control plane generated earlier. Its trust domain is the one given;
    /// a CA certificate naming another SPIFFE trust domain is refused.
    public init(trustDomain: String, certificatePEM: String, privateKeyPEM: String) throws(IdentityError) {
        let certificate: Certificate
        let key: Certificate.PrivateKey
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw IdentityError(.invalidCA, "the CA certificate is not a PEM certificate: \(error)")
        }
        do {
            key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw IdentityError(.invalidCA, "the CA key is not a PEM private key (PKCS#8 or SEC1): \(error)")
        }
        if case .success(let id) = SVIDValidator.spiffeID(of: certificate), id.trustDomain != trustDomain {
            throw IdentityError(.wrongTrustDomain, "the CA certificate belongs to trust domain \(id.trustDomain), not \(trustDomain); pass --trust-domain \(id.trustDomain) or another CA")
        }
        try self.init(trustDomain: trustDomain, certificate: certificate, privateKey: key)
    }

    public var certificatePEM: String {
        // Serializing a certificate we hold cannot fail.
        (try? certificate.serializeAsPEM().pemString) ?? ""
    }

    /// The private key as PKCS#8 PEM. Only for writing the CA's own 0600 key
    /// file; never logged or returned by an API.
    public var privateKeyPEM: String {
        (try? privateKey.serializeAsPEM().pemString) ?? ""
    }
}
