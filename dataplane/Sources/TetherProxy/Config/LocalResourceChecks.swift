import Foundation
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherXDS

/// What only the proxy can judge about a resource: files it names must be
/// there and readable on this host, and a trust bundle must parse and still
/// vouch for this proxy's own SVID (a bundle that would cut the proxy off
/// is refused rather than obeyed). A failure NACKs the update, and the proxy
/// keeps its previous config.
public struct LocalResourceChecks: Sendable {
    /// The proxy's identity; nil with an insecure control connection.
    let identity: WorkloadIdentityPublisher?

    public init(identity: WorkloadIdentityPublisher?) {
        self.identity = identity
    }

    public func check(_ resource: Resource) -> String? {
        switch resource.spec {
        case .identityProvider(let idp):
            guard case .file(let path) = idp.jwks else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                return "spec.jwks.file: cannot read \(path) on this proxy"
            }
            guard (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["keys"] is [Any] else {
                return "spec.jwks.file: \(path) is not a JWK Set"
            }
            return nil
        case .mcpBackend(.external(let backend)):
            guard let path = backend.tls?.caFile else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                return "spec.external.tls.caFile: cannot read \(path) on this proxy"
            }
            guard String(decoding: data, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
                return "spec.external.tls.caFile: \(path) holds no PEM certificate"
            }
            return nil
        case .trustBundle(let spec):
            let bundle: TrustBundle
            do {
                bundle = try TrustBundle(trustDomain: spec.trustDomain, spiffeBundleJSON: spec.spiffeBundle)
            } catch {
                return "spec.spiffeBundle: \(error.reason)"
            }
            guard let svid = identity?.current.svid, svid.id.trustDomain == spec.trustDomain else { return nil }
            let issuer = svid.chain.last!
            let anchored = bundle.x509Authorities.contains { authority in
                authority.subject == issuer.issuer && authority.publicKey.isValidSignature(issuer.signature, for: issuer)
            }
            return anchored ? nil : "spec.spiffeBundle: no X.509 authority in it signed this proxy's SVID; refusing a bundle that would cut the proxy off"
        default:
            return nil
        }
    }

    /// The bundle of this proxy's trust domain in an accepted config, put in
    /// effect: new handshakes verify against it, Workload API streams send it.
    func apply(_ config: ProxyConfig) {
        guard let identity else { return }
        let trustDomain = identity.current.id.trustDomain
        guard case .trustBundle(let spec)? = config.resources[ResourceID(.trustBundle, trustDomain)]?.resource.spec,
            let bundle = try? TrustBundle(trustDomain: trustDomain, spiffeBundleJSON: spec.spiffeBundle)
        else { return }
        identity.update { current in
            guard current.bundle != bundle else { return false }
            current.bundle = bundle
            return true
        }
    }
}
