import Testing
import TetherCore
@testable import TetherXDS

func sotwRequest(_ kind: ResourceKind, names: [String] = [], version: String = "", nonce: String = "", nack: String? = nil) -> SotWStreamStateMachine.Request {
    var request = SotWStreamStateMachine.Request()
    request.node.id = triage.description
    request.typeURL = TetherTypes.typeURL(kind)
    request.resourceNames = names
    request.versionInfo = version
    request.responseNonce = nonce
    if let nack {
        request.errorDetail.code = 13
        request.errorDetail.message = nack
    }
    return request
}

@Suite("State-of-the-world ADS stream")
struct SotWStreamStateMachineTests {
    func machine(_ snapshot: MeshSnapshot) -> SotWStreamStateMachine {
        SotWStreamStateMachine(node: triage, view: snapshot.view(for: triage))
    }

    @Test func fullStateResponsesVersionedBySet() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(sotwRequest(.authorizationPolicy))
        let first = try #require(firstResult)
        #expect(first.resources.count == 2)
        #expect(first.nonce == "1")
        #expect(!first.versionInfo.isEmpty)
        #expect(machine.receive(sotwRequest(.authorizationPolicy, version: first.versionInfo, nonce: first.nonce)) == nil)
        #expect(machine.status.first { $0.kind == .authorizationPolicy }?.state == .synced)
        #expect(machine.update(view: try exampleSnapshot(revision: 2).view(for: triage)).isEmpty)

        // A change resends the whole set, with a new version.
        let changed = machine.update(view: try exampleSnapshot(revision: 3, drop: [ResourceID(.authorizationPolicy, "github-no-writes")]).view(for: triage))
        #expect(changed.count == 1)
        #expect(changed[0].resources.count == 1)
        #expect(changed[0].versionInfo != first.versionInfo)
    }

    @Test func staleNoncesAreIgnored() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(sotwRequest(.authorizationPolicy))
        let first = try #require(firstResult)
        let updates = machine.update(view: try exampleSnapshot(revision: 2, change: [ResourceID(.authorizationPolicy, "github-read-only")]).view(for: triage))
        let second = try #require(updates.first)
        // An ACK of the first response (its nonce is no longer the latest) is
        // ignored, even with a changed subscription.
        #expect(machine.receive(sotwRequest(.authorizationPolicy, names: ["github-read-only"], version: first.versionInfo, nonce: first.nonce)) == nil)
        #expect(machine.status.first { $0.kind == .authorizationPolicy }?.state == .stale)
        #expect(machine.receive(sotwRequest(.authorizationPolicy, version: second.versionInfo, nonce: second.nonce)) == nil)
        #expect(machine.status.first { $0.kind == .authorizationPolicy }?.state == .synced)
    }

    @Test func aNACKedVersionIsNotResent() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(sotwRequest(.route))
        let first = try #require(firstResult)
        #expect(machine.receive(sotwRequest(.route, nonce: first.nonce, nack: "no")) == nil)
        #expect(machine.status.first { $0.kind == .route }?.state == .nacked)
        #expect(machine.update(view: try exampleSnapshot(revision: 2).view(for: triage)).isEmpty)
        let next = machine.update(view: try exampleSnapshot(revision: 3, change: [ResourceID(.route, "github")]).view(for: triage))
        #expect(next.count == 1)
    }

    @Test func explicitNamesAndSubscriptionChanges() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(sotwRequest(.authorizationPolicy, names: ["github-read-only"]))
        let first = try #require(firstResult)
        #expect(first.resources.count == 1)
        let widenedResult = machine.receive(sotwRequest(.authorizationPolicy, names: ["github-read-only", "github-no-writes"], version: first.versionInfo, nonce: first.nonce))
        let widened = try #require(widenedResult)
        #expect(widened.resources.count == 2)
    }
}

@Suite("Per-proxy views")
struct MeshViewTests {
    @Test func aProxyReceivesOnlyWhatConcernsIt() throws {
        let snapshot = try exampleSnapshot()
        let agent = snapshot.view(for: triage)
        #expect(Set(agent.resources.keys.map(\.description)) == [
            "Route/github", "MCPBackend/github", "IdentityProvider/corp-sso", "TokenExchange/github-pat",
            "Credential/github-pat", "AuthorizationPolicy/github-read-only", "AuthorizationPolicy/github-no-writes",
        ])
        // The MCP server's proxy serves the backend inbound: it gets the
        // backend, the routes leading to it and the policies on both (it
        // enforces them too), and no credential, IdP or token exchange.
        let server = snapshot.view(for: try SPIFFEID("spiffe://example.org/mcp/github"))
        #expect(Set(server.resources.keys.map(\.description)) == [
            "MCPBackend/github", "Route/github", "AuthorizationPolicy/github-read-only", "AuthorizationPolicy/github-no-writes",
        ])
        let stranger = snapshot.view(for: try SPIFFEID("spiffe://example.org/agent/other"))
        #expect(stranger.resources.isEmpty)
    }
}
