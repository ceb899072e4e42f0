import Foundation
import TetherCore
@_spi(FixedExpiryValidationTime) import X509

/// Why a peer's certificate is not a valid X.509-SVID of the trust domain.
public struct SVIDRejection: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, Codable {
        case noCertificate, noURISAN, multipleURISANs, notSPIFFE, wrongTrustDomain
        case leafIsCA, missingKeyUsage, badKeyUsage, expired, notYetValid, untrusted, notAuthorized
    }

    public var code: Code
    public var reason: String

    public init(code: Code, reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}

/// Validates a peer's certificate chain as an X.509-SVID of one trust domain:
/// the SPIFFE rules on the leaf (exactly one URI SAN, a SPIFFE ID of this
/// trust domain, not a CA, keyUsage with digitalSignature and without
/// keyCertSign/cRLSign), its validity period, and a chain to the bundle
/// verified with swift-certificates' RFC 5280 policy.
///
/// With a custom NIOSSL verification callback this replaces BoringSSL's own
/// chain check, so it must — and does — check everything.
public struct SVIDValidator: Sendable {
    public let trustDomain: String
    public let bundle: [Certificate]

    public init(trustDomain: String, bundle: [Certificate]) {
        self.trustDomain = trustDomain
        self.bundle = bundle
    }

    /// A peer that passed: its SPIFFE ID and the verified chain, leaf to root.
    public struct Peer: Sendable {
        public var id: SPIFFEID
        public var chain: [Certificate]
    }

    /// The peer's SPIFFE ID, or why it is rejected. `chain` is leaf first.
    public func validate(chain: [Certificate], at now: Date = Date()) async -> Result<SPIFFEID, SVIDRejection> {
        await validatePeer(chain: chain, at: now).map(\.id)
    }

    /// The peer and its verified chain, or why it is rejected.
    public func validatePeer(chain: [Certificate], at now: Date = Date()) async -> Result<Peer, SVIDRejection> {
        guard let leaf = chain.first else {
            return .failure(SVIDRejection(code: .noCertificate, reason: "the peer presented no certificate"))
        }
        let id: SPIFFEID
        switch Self.spiffeID(of: leaf) {
        case .success(let found): id = found
        case .failure(let rejection): return .failure(rejection)
        }
        guard id.trustDomain == trustDomain else {
            return .failure(SVIDRejection(code: .wrongTrustDomain, reason: "\(id) is not in trust domain \(trustDomain)"))
        }
        if case .isCertificateAuthority? = try? leaf.extensions.basicConstraints {
            return .failure(SVIDRejection(code: .leafIsCA, reason: "the leaf certificate of \(id) is a CA (cA=true); an X.509-SVID leaf must not be"))
        }
        guard let usage = try? leaf.extensions.keyUsage else {
            return .failure(SVIDRejection(code: .missingKeyUsage, reason: "the certificate of \(id) has no keyUsage extension"))
        }
        guard usage.digitalSignature, !usage.keyCertSign, !usage.cRLSign else {
            return .failure(SVIDRejection(code: .badKeyUsage, reason: "the certificate of \(id) must have keyUsage digitalSignature and neither keyCertSign nor cRLSign"))
        }
        if now > leaf.notValidAfter {
            return .failure(SVIDRejection(code: .expired, reason: "the certificate of \(id) expired at \(leaf.notValidAfter.formatted(.iso8601))"))
        }
        if now < leaf.notValidBefore {
            return .failure(SVIDRejection(code: .notYetValid, reason: "the certificate of \(id) is not valid before \(leaf.notValidBefore.formatted(.iso8601))"))
        }
        var verifier = Verifier(rootCertificates: CertificateStore(bundle)) {
            RFC5280Policy(fixedExpiryValidationTime: now)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
        guard case .validCertificate(let verified) = result else {
            return .failure(SVIDRejection(code: .untrusted, reason: "the certificate of \(id) does not chain to a CA of trust domain \(trustDomain)"))
        }
        return .success(Peer(id: id, chain: Array(verified)))
    }

    /// The one SPIFFE ID a certificate's URI SANs name.
    public static func spiffeID(of certificate: Certificate) -> Result<SPIFFEID, SVIDRejection> {
        let names = ((try? certificate.extensions.subjectAlternativeNames) ?? nil).map(Array.init) ?? []
        let uris = names.compactMap { name -> String? in
            if case .uniformResourceIdentifier(let uri) = name { return uri }
            return nil
        }
        guard !uris.isEmpty else {
            return .failure(SVIDRejection(code: .noURISAN, reason: "the certificate has no URI SAN, so it names no SPIFFE ID"))
        }
        guard uris.count == 1 else {
            return .failure(SVIDRejection(code: .multipleURISANs, reason: "the certificate has \(uris.count) URI SANs; an X.509-SVID has exactly one"))
        }
        do {
            return .success(try SPIFFEID(uris[0]))
        } catch {
            return .failure(SVIDRejection(code: .notSPIFFE, reason: "the certificate's URI SAN \(uris[0]) is not a SPIFFE ID: it \(error.reason)"))
        }
    }
}
