import Foundation

/// A trust domain's bundle as the control plane publishes it to every proxy
/// over xDS: the SPIFFE bundle document (X.509 authorities and JWT-SVID
/// keys; public keys only). System-managed — built from the control plane's
/// CA and JWT key, never applied by operators — so that a bundle change
/// reaches proxies the same way config does.
public struct TrustBundleSpec: Hashable, Sendable, Codable {
    public var trustDomain: String
    /// The SPIFFE bundle format: a JWK Set with `x509-svid` and `jwt-svid` keys.
    public var spiffeBundle: String

    public init(trustDomain: String, spiffeBundle: String) {
        self.trustDomain = trustDomain
        self.spiffeBundle = spiffeBundle
    }
}

extension TrustBundleSpec {
    init?(reading spec: MappingReader) {
        let trustDomain = spec.required("trustDomain") { node -> String? in
            guard let text = node.string() else { return nil }
            guard let id = try? SPIFFEID("spiffe://\(text)"), id.path.isEmpty else {
                node.report("\"\(text)\" is not a SPIFFE trust domain name")
                return nil
            }
            return id.trustDomain
        }
        let bundle = spec.required("spiffeBundle") { node -> String? in
            guard let text = node.string() else { return nil }
            guard let document = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any], document["keys"] is [Any] else {
                node.report("is not a SPIFFE bundle (a JSON object with a \"keys\" array)")
                return nil
            }
            return text
        }
        guard let trustDomain, let bundle else { return nil }
        self.init(trustDomain: trustDomain, spiffeBundle: bundle)
    }
}
