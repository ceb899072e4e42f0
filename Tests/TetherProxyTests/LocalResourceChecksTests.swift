import Crypto
import Foundation
import Testing
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherAdminHTTP
@testable import TetherProxy
import TetherXDS

@Suite("Trust bundles arriving over xDS")
struct LocalResourceChecksTests {
    let ca = try! TrustDomainCA.generate(trustDomain: "example.org")

    func publisher() throws -> WorkloadIdentityPublisher {
        let key = P256.Signing.PrivateKey()
        let leaf = try ca.issue(publicKey: .init(key.publicKey), for: try SPIFFEID("spiffe://example.org/agent/triage"))
        let bundle = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [])
        return WorkloadIdentityPublisher(WorkloadIdentity(svid: try X509SVID(chain: [leaf], privateKey: key), bundle: bundle))
    }

    func resource(_ bundle: TrustBundle) -> Resource {
        Resource(name: bundle.trustDomain, spec: .trustBundle(TrustBundleSpec(trustDomain: bundle.trustDomain, spiffeBundle: bundle.spiffeBundleJSON)))
    }

    @Test func aBundleThatStillAnchorsTheProxyIsPutInEffect() async throws {
        let identity = try publisher()
        let checks = LocalResourceChecks(identity: identity)
        let jwt = try await JWTSVIDIssuer(trustDomain: "example.org", key: P256.Signing.PrivateKey())
        let other = try TrustDomainCA.generate(trustDomain: "example.org")
        let next = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate, other.certificate], jwtAuthorities: [jwt.authority])
        #expect(checks.check(resource(next)) == nil)
        var config = ProxyConfig(systemVersion: "1")
        config.resources[ResourceID(.trustBundle, "example.org")] = VersionedResource(resource: resource(next), version: "v1")
        checks.apply(config)
        #expect(identity.current.bundle == next)
    }

    @Test func aBundleThatWouldCutTheProxyOffIsRefused() throws {
        let identity = try publisher()
        let checks = LocalResourceChecks(identity: identity)
        let stranger = try TrustDomainCA.generate(trustDomain: "example.org")
        let hostile = TrustBundle(trustDomain: "example.org", x509Authorities: [stranger.certificate], jwtAuthorities: [])
        #expect(checks.check(resource(hostile))?.contains("would cut the proxy off") == true)
        let broken = Resource(name: "example.org", spec: .trustBundle(TrustBundleSpec(trustDomain: "example.org", spiffeBundle: #"{"keys":[{"use":"x509-svid"}]}"#)))
        #expect(checks.check(broken)?.hasPrefix("spec.spiffeBundle:") == true)
    }
}

@Suite("Admin endpoint and the proxy's identity")
struct ProxyAdminIdentityTests {
    @Test func anExpiredSVIDMakesTheProxyNotReady() throws {
        let ca = try TrustDomainCA.generate(trustDomain: "example.org")
        let key = P256.Signing.PrivateKey()
        let id = try SPIFFEID("spiffe://example.org/agent/triage")
        let leaf = try ca.issue(publicKey: .init(key.publicKey), for: id, ttl: 60, now: Date() - 3600)
        let identity = WorkloadIdentityPublisher(WorkloadIdentity(
            svid: try X509SVID(chain: [leaf], privateKey: key), bundle: TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [])
        ))
        let store = ProxyConfigStore(node: id)
        store.markComplete()
        let admin = ProxyAdmin(node: id, store: store, identity: identity)
        let ready = admin.handle(AdminRequest(method: "GET", path: "/ready"))
        #expect(ready.status == 503 && String(decoding: ready.body, as: UTF8.self).contains("the SVID expired"))
        let dump = String(decoding: admin.handle(AdminRequest(method: "GET", path: "/config_dump")).body, as: UTF8.self)
        #expect(dump.contains(id.description) && !dump.contains("PRIVATE"))
    }
}
