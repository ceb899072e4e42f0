import Crypto
import Foundation
import Logging
import ServiceLifecycle
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import X509

/// The control plane's own X.509-SVID, `spiffe://<td>/tether/control`,
/// which the xDS and bootstrap listeners present. Issued at startup over a
/// key generated in memory (it is never written anywhere), and reissued over
/// a fresh key at half its lifetime (± 10%); listeners pick the new one up on
/// their next handshake.
public struct OwnSVIDRotator: Service {
    public let publisher: WorkloadIdentityPublisher
    let identity: IdentityService
    let logger: Logger

    public init(identity: IdentityService, logger: Logger) async throws(ControlPlaneError) {
        self.identity = identity
        self.logger = logger
        publisher = WorkloadIdentityPublisher(try await Self.issue(identity))
    }

    /// The chain carries the CA certificate after the leaf so a proxy that
    /// pins the CA by hash (`--ca-hash`) can find it during bootstrap.
    static func issue(_ identity: IdentityService) async throws(ControlPlaneError) -> WorkloadIdentity {
        let key = P256.Signing.PrivateKey()
        let id = ControlPlaneIdentity.id(trustDomain: identity.ca.trustDomain)
        let leaf = try await identity.issueOwn(id: id, publicKey: Certificate.PublicKey(key.publicKey))
        do {
            return WorkloadIdentity(svid: try X509SVID(chain: [leaf, identity.ca.certificate], privateKey: key), bundle: identity.bundle)
        } catch {
            throw ControlPlaneError(.internal, "the control plane's own SVID is unusable: \(error.reason)")
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var next = publisher.current.svid.renewalTime()
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .seconds(max(0, next.timeIntervalSinceNow)))
                } catch {
                    return
                }
                do {
                    let renewed = try await Self.issue(identity)
                    publisher.publish(renewed)
                    next = renewed.svid.renewalTime()
                    logger.info("control plane SVID rotated", metadata: [
                        "tether.svid.serial": "\(renewed.svid.leaf.serialNumber.openSSLText)", "tether.svid.expires": "\(renewed.svid.notAfter.formatted(.iso8601))",
                    ])
                } catch {
                    next = Date() + 1
                    logger.error("cannot rotate the control plane SVID; retrying", metadata: ["error": "\(error)"])
                }
            }
        }
        publisher.close()
    }
}
