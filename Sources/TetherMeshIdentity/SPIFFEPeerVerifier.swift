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

    let bundle: @Sendable () -> TrustBundle
    let authorize: Authorizer
    let role: String
    let logger: Logger

    /// - Parameters:
    ///   - bundle: read on every handshake, so bundle changes apply to the next one.
    ///   - role: names this endpoint in rejection logs ("xds-server", "xds-client", …).
    public init(role: String, logger: Logger, bundle: @escaping @Sendable () -> TrustBundle, authorize: @escaping Authorizer = { _ in nil }) {
        self.role = role
        self.logger = logger
        self.bundle = bundle
        self.authorize = authorize
    }

    /// Accepts exactly `expected`.
    public static func only(_ expected: SPIFFEID) -> Authorizer {
        { id in id == expected ? nil : "expected \(expected), the peer is \(id)" }
    }

    /// The verdict on a presented chain (leaf first).
    public func verify(_ presented: [Certificate], now: Date = Date()) async -> Result<SVIDValidator.Peer, SVIDRejection> {
        let current = bundle()
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
                logger.warning("peer certificate rejected", metadata: [
                    "tether.tls.role": "\(role)", "tether.tls.rejection": "\(rejection.code.rawValue)", "reason": "\(rejection.reason)",
                ])
                return .failed
            }
        }
    }
}
