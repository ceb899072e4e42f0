import Testing
import TetherCore
@testable import TetherXDS

typealias DeltaRequest = DeltaStreamStateMachine.Request

func deltaRequest(_ kind: ResourceKind, subscribe: [String] = [], unsubscribe: [String] = [], nonce: String = "", nack: String? = nil, initial: [String: String] = [:]) -> DeltaRequest {
    var request = DeltaRequest()
    request.node.id = triage.description
    request.typeURL = TetherTypes.typeURL(kind)
    request.resourceNamesSubscribe = subscribe
    request.resourceNamesUnsubscribe = unsubscribe
    request.responseNonce = nonce
    request.initialResourceVersions = initial
    if let nack {
        request.errorDetail.code = 3
        request.errorDetail.message = nack
    }
    return request
}

@Suite("Delta ADS stream")
struct DeltaStreamStateMachineTests {
    func machine(_ snapshot: MeshSnapshot) -> DeltaStreamStateMachine {
        DeltaStreamStateMachine(node: triage, view: snapshot.view(for: triage))
    }

    @Test func wildcardSubscriptionSendsTheViewThenOnlyChanges() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(deltaRequest(.authorizationPolicy, subscribe: ["*"]))
        let first = try #require(firstResult)
        #expect(first.resources.map(\.name) == ["github-no-writes", "github-read-only"])
        #expect(first.resources.allSatisfy { $0.version == "v1" && $0.resource.typeURL == first.typeURL })
        #expect(first.systemVersionInfo == "1")
        #expect(machine.status.first { $0.kind == .authorizationPolicy }?.state == .stale)
        #expect(machine.receive(deltaRequest(.authorizationPolicy, nonce: first.nonce)) == nil)
        #expect(machine.status.first { $0.kind == .authorizationPolicy }?.state == .synced)

        // Unchanged snapshot: nothing to send.
        #expect(machine.update(view: try exampleSnapshot(revision: 2).view(for: triage)).isEmpty)
        // One policy changes: only it travels.
        let changed = ResourceID(.authorizationPolicy, "github-read-only")
        let responses = machine.update(view: try exampleSnapshot(revision: 3, change: [changed]).view(for: triage))
        #expect(responses.count == 1)
        #expect(responses[0].resources.map(\.name) == ["github-read-only"])
        #expect(responses[0].resources[0].version == "v2")
        #expect(responses[0].nonce != first.nonce)
    }

    @Test func deletionsTravelAsRemovedResources() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(deltaRequest(.authorizationPolicy, subscribe: ["*"]))
        let first = try #require(firstResult)
        _ = machine.receive(deltaRequest(.authorizationPolicy, nonce: first.nonce))
        let responses = machine.update(view: try exampleSnapshot(revision: 2, drop: [ResourceID(.authorizationPolicy, "github-no-writes")]).view(for: triage))
        #expect(responses.count == 1)
        #expect(responses[0].resources.isEmpty)
        #expect(responses[0].removedResources == ["github-no-writes"])
    }

    @Test func aNACKedStateIsNotResentUntilTheDesiredStateChanges() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(deltaRequest(.route, subscribe: ["*"]))
        let first = try #require(firstResult)
        #expect(machine.receive(deltaRequest(.route, nonce: first.nonce, nack: "bad route")) == nil)
        let status = try #require(machine.status.first { $0.kind == .route })
        #expect(status.state == .nacked)
        #expect(status.message == "bad route")
        // Same desired state (a new revision that did not touch routes): silence.
        #expect(machine.update(view: try exampleSnapshot(revision: 2).view(for: triage)).isEmpty)
        // The route changes: it is sent again.
        let again = machine.update(view: try exampleSnapshot(revision: 3, change: [ResourceID(.route, "github")]).view(for: triage))
        #expect(again.map { $0.resources.map(\.version) } == [["v2"]])
        _ = machine.receive(deltaRequest(.route, nonce: again[0].nonce))
        #expect(machine.status.first { $0.kind == .route }?.state == .synced)
    }

    @Test func oneResponsePerTypeIsOutstanding() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(deltaRequest(.route, subscribe: ["*"]))
        let first = try #require(firstResult)
        #expect(machine.update(view: try exampleSnapshot(revision: 2, change: [ResourceID(.route, "github")]).view(for: triage)).isEmpty)
        // A stale nonce neither ACKs nor triggers anything.
        #expect(machine.receive(deltaRequest(.route, nonce: "999")) == nil)
        let nextResult = machine.receive(deltaRequest(.route, nonce: first.nonce))
        let next = try #require(nextResult)
        #expect(next.resources.map(\.version) == ["v2"])
    }

    @Test func reconnectingWithInitialVersionsSendsOnlyDifferences() throws {
        var machine = machine(try exampleSnapshot())
        // Nothing to send, but the first request is answered (empty), so the
        // client knows it is up to date.
        let emptyResult = machine.receive(deltaRequest(.route, subscribe: ["*"], initial: ["github": "v1"]))
        let empty = try #require(emptyResult)
        #expect(empty.resources.isEmpty && empty.removedResources.isEmpty)
        _ = machine.receive(deltaRequest(.route, nonce: empty.nonce))
        #expect(machine.status.first { $0.kind == .route }?.state == .synced)

        var stale = self.machine(try exampleSnapshot())
        let responseResult = stale.receive(deltaRequest(.authorizationPolicy, subscribe: ["*"], initial: ["github-read-only": "v0", "github-no-writes": "v1", "gone": "v1"]))
        let response = try #require(responseResult)
        #expect(response.resources.map(\.name) == ["github-read-only"])
        #expect(response.removedResources == ["gone"])
    }

    @Test func explicitSubscriptionsAndUnsubscribe() throws {
        var machine = machine(try exampleSnapshot())
        let firstResult = machine.receive(deltaRequest(.authorizationPolicy, subscribe: ["github-read-only"]))
        let first = try #require(firstResult)
        #expect(first.resources.map(\.name) == ["github-read-only"])
        _ = machine.receive(deltaRequest(.authorizationPolicy, nonce: first.nonce))
        // Re-subscribing to a name the client holds still sends it.
        let againResult = machine.receive(deltaRequest(.authorizationPolicy, subscribe: ["github-read-only"]))
        let again = try #require(againResult)
        #expect(again.resources.map(\.name) == ["github-read-only"])
        _ = machine.receive(deltaRequest(.authorizationPolicy, nonce: again.nonce))
        // After unsubscribing, changes to it are not sent.
        #expect(machine.receive(deltaRequest(.authorizationPolicy, unsubscribe: ["github-read-only"])) == nil)
        let updates = machine.update(view: try exampleSnapshot(revision: 2, change: [ResourceID(.authorizationPolicy, "github-read-only")]).view(for: triage))
        #expect(updates.isEmpty)
    }

    @Test func typesNotSubscribedAreNotSent() throws {
        var machine = machine(try exampleSnapshot())
        #expect(machine.update(view: try exampleSnapshot(revision: 2, change: [ResourceID(.route, "github")]).view(for: triage)).isEmpty)
        #expect(machine.status.allSatisfy { $0.state == .notSent })
    }
}
