import Crypto
import Foundation
import SwiftASN1
import TetherCore
import TetherIdentity
import X509

/// Join tokens and SVID issuance for the trust domain, independent of the
/// transport that carries them (the admin API creates tokens; the bootstrap
/// endpoint redeems them).
///
/// ```swift
/// let (token, _) = try identity.createJoinToken(for: id, ttl: 600, author: "unix:root(uid=0)")
/// let result = try identity.join(token: token, csrDER: csr)   // once
/// ```
public struct IdentityService: Sendable {
    public let ca: TrustDomainCA
    let store: any IdentityStore
    let jwtIssuer: JWTSVIDIssuer
    /// Other X.509 authorities of the trust domain (e.g. a SPIRE server's),
    /// trusted and published beside the CA.
    let additionalAuthorities: [Certificate]
    /// Identities an operator cut off: the one publish point the bootstrap
    /// and identity APIs, the xDS handshake and open xDS streams consult.
    public let revoked: LatestValuePublisher<Set<SPIFFEID>>
    public let svidTTL: TimeInterval
    /// Records of issued SVIDs, and what may be issued while the store is away.
    let ledger: IssuanceLedger

    /// SPIRE's default join-token lifetime.
    public static let defaultTokenTTL: TimeInterval = 600

    public init(
        ca: TrustDomainCA, jwtIssuer: JWTSVIDIssuer, store: any IdentityStore,
        svidTTL: TimeInterval = TrustDomainCA.defaultSVIDTTL, additionalAuthorities: [Certificate] = [],
        revoked: Set<SPIFFEID> = [], offlineRenewal: TimeInterval = IssuanceLedger.defaultOfflineRenewal
    ) {
        self.ledger = IssuanceLedger(offlineRenewal: offlineRenewal)
        self.revoked = LatestValuePublisher(revoked)
        self.ca = ca
        self.jwtIssuer = jwtIssuer
        self.additionalAuthorities = additionalAuthorities.filter { $0 != ca.certificate }
        self.store = store
        self.svidTTL = svidTTL
    }

    /// The trust domain's bundle: what every SVID and JWT-SVID verifies against.
    public var bundle: TrustBundle {
        TrustBundle(trustDomain: ca.trustDomain, x509Authorities: [ca.certificate] + additionalAuthorities, jwtAuthorities: [jwtIssuer.authority])
    }

    /// The bundle as the resource every proxy receives over xDS.
    public var bundleResource: Resource {
        Resource(name: ca.trustDomain, spec: .trustBundle(TrustBundleSpec(trustDomain: ca.trustDomain, spiffeBundle: bundle.spiffeBundleJSON)))
    }

    /// `sha256:<hex>` of the CA's SubjectPublicKeyInfo: what a proxy pins
    /// with `--ca-hash` when it has no bundle file (kubeadm's discovery hash).
    public var caHash: String {
        ca.certificate.publicKeyPin
    }

    /// Cuts `id` off (or lets it back in): no join, renewal, JWT-SVID or new
    /// xDS handshake, and its open xDS streams end. Its current SVID stays
    /// valid cryptographically until it expires, but nothing in the mesh's
    /// control connection accepts it.
    public func setRevoked(_ id: SPIFFEID, revoked isRevoked: Bool, author: String, reason: String?) async throws(ControlPlaneError) {
        try await store.setRevoked(id, revoked: isRevoked, author: author, reason: reason)
        revoked.update { set in
            isRevoked ? set.insert(id).inserted : set.remove(id) != nil
        }
    }

    public func revokedIdentities() async throws(ControlPlaneError) -> [RevokedIdentity] {
        try await store.revokedIdentities()
    }

    /// Replaces the revoked set with the store's (another replica may have
    /// changed it) and notes that this replica's view is current.
    public func refreshRevocations() async throws(ControlPlaneError) {
        let stored = Set(try await store.revokedIdentities().compactMap { try? SPIFFEID($0.spiffeID) })
        revoked.update { set in
            guard set != stored else { return false }
            set = stored
            return true
        }
        ledger.revocationsChecked(at: Date())
    }

    func refuseIfRevoked(_ id: SPIFFEID) throws(ControlPlaneError) {
        if revoked.current.contains(id) {
            throw ControlPlaneError(.permissionDenied, "\(id) is revoked; an operator can undo it with tether-control unrevoke \(id)")
        }
    }

    /// A single-use token for `id`. Only its SHA-256 is stored.
    public func createJoinToken(for id: SPIFFEID, ttl: TimeInterval = defaultTokenTTL, author: String, now: Date = Date()) async throws(ControlPlaneError) -> (token: String, expiresAt: Date) {
        try refuseIfRevoked(id)
        guard id.trustDomain == ca.trustDomain else {
            throw ControlPlaneError(.badRequest, "\(id) is not in trust domain \(ca.trustDomain)")
        }
        guard !id.path.isEmpty else {
            throw ControlPlaneError(.badRequest, "\(id) names the trust domain, not a workload; add a path such as /agent/triage")
        }
        guard ttl > 0, ttl <= 7 * 24 * 3600 else {
            throw ControlPlaneError(.badRequest, "a join token lives between 1 second and 7 days")
        }
        let random = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let token = "tjt." + Data(random).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let expiresAt = now + ttl
        try await store.createJoinToken(hash: Self.hash(token), spiffeID: id, expiresAt: expiresAt, author: author)
        return (token, expiresAt)
    }

    public struct JoinResult: Sendable {
        public var svid: Certificate
        public var bundle: TrustBundle
    }

    /// Redeems a join token for an SVID. The token is consumed by this call
    /// whatever its outcome — expired, mismatched CSR or success — so it can
    /// never be tried twice.
    public func join(token: String, csrDER: [UInt8], now: Date = Date()) async throws(ControlPlaneError) -> JoinResult {
        guard let record = try await store.consumeJoinToken(hash: Self.hash(token), at: now) else {
            throw ControlPlaneError(.permissionDenied, "the join token is unknown or was already used; create a new one with tether-control token create")
        }
        try refuseIfRevoked(record.spiffeID)
        guard now < record.expiresAt else {
            throw ControlPlaneError(.permissionDenied, "the join token for \(record.spiffeID) expired at \(record.expiresAt.formatted(.iso8601)); create a new one")
        }
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: csrDER)
        } catch {
            throw ControlPlaneError(.badRequest, "the certificate signing request is not valid DER PKCS#10: \(error)")
        }
        let result = try issue(csr: csr, for: record.spiffeID, now: now)
        // A join must be on record before the SVID is handed out.
        try await ledger.record(result.svid, for: record.spiffeID, at: now, in: store, offline: false)
        return result
    }

    /// A new SVID for a workload that already holds one: `id` is the SPIFFE
    /// ID its (verified) client certificate carries, and the CSR may ask for
    /// that identity only.
    public func renew(csrDER: [UInt8], for id: SPIFFEID, now: Date = Date()) async throws(ControlPlaneError) -> JoinResult {
        try refuseIfRevoked(id)
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: csrDER)
        } catch {
            throw ControlPlaneError(.badRequest, "the certificate signing request is not valid DER PKCS#10: \(error)")
        }
        let result = try issue(csr: csr, for: id, now: now)
        try await ledger.record(result.svid, for: id, at: now, in: store, offline: true)
        return result
    }

    /// Writes the records of SVIDs issued while the store was unreachable.
    public func flushIssuanceRecords() async throws(ControlPlaneError) {
        try await ledger.flush(to: store)
    }

    /// An SVID for the control plane itself, over a key it just generated.
    public func issueOwn(id: SPIFFEID, publicKey: Certificate.PublicKey, now: Date = Date()) async throws(ControlPlaneError) -> Certificate {
        let svid: Certificate
        do {
            svid = try ca.issue(publicKey: publicKey, for: id, ttl: svidTTL, now: now)
        } catch {
            throw ControlPlaneError(.secrets, "cannot issue the control plane's own SVID: \(error.reason)")
        }
        try await ledger.record(svid, for: id, at: now, in: store, offline: true)
        return svid
    }

    /// A JWT-SVID for `id` — always the caller's own, authenticated identity.
    public func mintJWTSVID(for id: SPIFFEID, audience: [String]) async throws(ControlPlaneError) -> String {
        try refuseIfRevoked(id)
        do {
            return try await jwtIssuer.mint(for: id, audience: audience)
        } catch {
            throw ControlPlaneError(.badRequest, error.reason)
        }
    }

    private func issue(csr: CertificateSigningRequest, for id: SPIFFEID, now: Date) throws(ControlPlaneError) -> JoinResult {
        let svid: Certificate
        do {
            svid = try ca.issue(csr: csr, for: id, ttl: svidTTL, now: now)
        } catch {
            throw ControlPlaneError(.permissionDenied, error.reason)
        }
        return JoinResult(svid: svid, bundle: bundle)
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
