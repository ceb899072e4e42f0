import Foundation
import Logging
import NIOCore
import NIOSSL
import TetherCore
import TetherIdentity
import X509

/// The one peer verifier every Tether mTLS listener and client uses. As a
/// NIOSSL custom verification callback it replaces BoringSSL's chain check,
/// so it checks everything itself: the chain to the *current* bundle, the
/// validity period, exactly one SPIFFE URI SAN in the trust domain, the
/// X509-SVID leaf rules — and then the caller's authorization rule (e.g.
/// "the peer must be the control plane"). Each rejection is logged with its
/// precise reason; the verified chain is handed to the layers above (the
/// gRPC server context's `peerCertificate`).
public struct SPIFFEPeerVerifier: Sendable {
    /// Why a verified peer may not connect here, or nil to accept it.
    public typealias Authorizer = @Sendable (SPIFFEID) -> String?

    /// The bundle to verify a presented chain against, or nil when nothing
    /// in it can be trusted.
    public typealias Anchors = @Sendable (_ presented: [Certificate]) -> TrustBundle?

    let anchors: Anchors
    let authorize: Authorizer
    let role: String
    let logger: Logger
    /// Also told of each rejection, e.g. to explain a failed bootstrap.
    public var onReject: (@Sendable (SVIDRejection) -> Void)?

    /// - Parameters:
    ///   - role: names this endpoint in rejection logs ("xds-server", "xds-client", …).
    ///   - bundle: read on every handshake, so bundle changes apply to the next one.
    public init(role: String, logger: Logger, bundle: @escaping @Sendable () -> TrustBundle, authorize: @escaping Authorizer = { _ in nil }) {
        self.init(role: role, logger: logger, anchors: { _ in bundle() }, authorize: authorize)
    }

    /// For bootstrap, where the trust anchor is chosen from what the server
    /// presents (a CA pinned by hash) and the trust domain is learnt from it.
    public init(role: String, logger: Logger, anchors: @escaping Anchors, authorize: @escaping Authorizer) {
        self.role = role
        self.logger = logger
        self.anchors = anchors
        self.authorize = authorize
    }

    /// Accepts exactly `expected`.
    public static func only(_ expected: SPIFFEID) -> Authorizer {
        { id in id == expected ? nil : "expected \(expected), the peer is \(id)" }
    }

    /// The verdict on a presented chain (leaf first).
    public func verify(_ presented: [Certificate], now: Date = Date()) async -> Result<SVIDValidator.Peer, SVIDRejection> {
        guard let current = anchors(presented) else {
            return .failure(SVIDRejection(code: .untrusted, reason: "no certificate the peer presented is a trusted CA"))
        }
        let validator = SVIDValidator(trustDomain: current.trustDomain, bundle: current.x509Authorities)
        switch await validator.validatePeer(chain: presented, at: now) {
        case .success(let peer):
            if let reason = authorize(peer.id) {
                return .failure(SVIDRejection(code: .notAuthorized, reason: reason))
            }
            return .success(peer)
        case .failure(let rejection):
            return .failure(rejection)
        }
    }

    /// The NIOSSL callback (`customVerificationCallback`).
    public func callback(_ certificates: [NIOSSLCertificate], _ promise: EventLoopPromise<NIOSSLVerificationResultWithMetadata>) {
        let presented: [Certificate]
        do {
            presented = try certificates.map { try Certificate(derEncoded: try $0.toDERBytes()) }
        } catch {
            logger.warning("peer certificate rejected", metadata: ["tether.tls.role": "\(role)", "tether.tls.rejection": "unparsable", "reason": "\(error)"])
            promise.succeed(.failed)
            return
        }
        promise.completeWithTask {
            switch await verify(presented) {
            case .success(let peer):
                let chain = try peer.chain.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) }
                return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(chain)))
            case .failure(let rejection):
                onReject?(rejection)
                logger.warning("peer certificate rejected", metadata: [
                    "tether.tls.role": "\(role)", "tether.tls.rejection": "\(rejection.code.rawValue)", "reason": "\(rejection.reason)",
                ])
                return .failed
            }
        }
    }
}
