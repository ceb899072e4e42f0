import Foundation
import TetherCore
import TetherIdentity

/// What a workload holds at one moment: its X.509-SVID and its trust
/// domain's bundle. A proxy has exactly one publish point for it
/// (`WorkloadIdentityPublisher`): the rotator writes, TLS listeners, the xDS
/// client and the Workload API read.
public struct WorkloadIdentity: Sendable {
    public var svid: X509SVID
    public var bundle: TrustBundle

    public init(svid: X509SVID, bundle: TrustBundle) {
        self.svid = svid
        self.bundle = bundle
    }

    public var id: SPIFFEID { svid.id }
}

/// The proxy's one publish point for its identity.
public typealias WorkloadIdentityPublisher = LatestValuePublisher<WorkloadIdentity>

/// The control plane's own SPIFFE ID in a trust domain: what proxies expect
/// the xDS and bootstrap servers to present.
public enum ControlPlaneIdentity {
    public static let path = "/tether/control"

    public static func id(trustDomain: String) -> SPIFFEID {
        // A trust domain that parsed once parses again with this fixed path.
        try! SPIFFEID("spiffe://\(trustDomain)\(path)")
    }
}
