import SwiftProtobuf
import Testing
import TetherCore
@testable import TetherXDS

/// The proxy side of delta ADS: a new stream subscribes to every type and
/// says what it holds (`initial_resource_versions`); a response is accepted
/// whole (ACK with its nonce, config updated, removals applied) or rejected
/// whole (NACK with its nonce and an `error_detail` naming every problem,
/// config exactly as before).
@Suite("xDS client state machine")
struct XDSClientStateMachineTests {
    typealias Response = XDSClientStateMachine.Response

    static let other = try! SPIFFEID("spiffe://example.org/agent/other")

    /// The example mesh, as a proxy config with every resource at `version`.
    func exampleConfig(version: String = "v1", systemVersion: String = "1") throws -> ProxyConfig {
        let resources = try exampleSnapshot().resources.mapValues { VersionedResource(resource: $0.resource, version: version) }
        return ProxyConfig(resources: resources, systemVersion: systemVersion)
    }

    func resources(_ yaml: String) throws -> [Resource] {
        try ConfigParser.parse([ConfigSource(name: "test.yaml", text: yaml)]).map(\.resource)
    }

    func item(_ resource: Resource, version: String) -> Envoy_Service_Discovery_V3_Resource {
        var item = Envoy_Service_Discovery_V3_Resource()
        item.name = resource.metadata.name
        item.version = version
        item.resource = ResourceCoding.any(resource)
        return item
    }

    func response(_ kind: ResourceKind, _ items: [Envoy_Service_Discovery_V3_Resource], removed: [String] = [], nonce: String, systemVersion: String = "2") -> Response {
        var response = Response()
        response.typeURL = TetherTypes.typeURL(kind)
        response.resources = items
        response.removedResources = removed
        response.nonce = nonce
        response.systemVersionInfo = systemVersion
        return response
    }

    /// A Route the control plane's own validation refuses (path without `/`, upper-case trust domain).
    func invalidRoute(name: String) throws -> Envoy_Service_Discovery_V3_Resource {
        var route = Tether_Config_V1_Route()
        route.metadata.name = name
        route.agents = ["spiffe://Example.org/agent"]
        route.path = "github"
        route.backend = "github"
        var item = Envoy_Service_Discovery_V3_Resource()
        item.name = name
        item.version = "v9"
        item.resource.typeURL = TetherTypes.typeURL(.route)
        item.resource.value = try route.serializedData()
        return item
    }

    static let docsRoute = """
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: docs}
        spec: {agents: ["spiffe://example.org/agent/triage"], path: /docs, backend: github}
        """

    @Test func aNewStreamSubscribesToEveryTypeWithNothingHeld() {
        let machine = XDSClientStateMachine(node: triage.description, config: ProxyConfig())
        let requests = machine.initialRequests()
        #expect(requests.map(\.typeURL) == TetherTypes.pushOrder.map(TetherTypes.typeURL))
        #expect(Set(requests.map(\.typeURL)).count == ResourceKind.allCases.count)
        for request in requests {
            #expect(request.node.id == triage.description && request.node.userAgentName == "tether-proxy")
            #expect(request.resourceNamesSubscribe == ["*"])
            #expect(request.initialResourceVersions.isEmpty)
            #expect(request.responseNonce.isEmpty && !request.hasErrorDetail)
        }
    }

    @Test func aNewStreamSaysWhichVersionsItHoldsPerType() throws {
        var config = try exampleConfig()
        config.resources[ResourceID(.route, "github")]?.version = "v7"
        let machine = XDSClientStateMachine(node: triage.description, config: config)
        let byType = Dictionary(uniqueKeysWithValues: machine.initialRequests().map { ($0.typeURL, $0.initialResourceVersions) })
        #expect(byType[TetherTypes.typeURL(.route)] == ["github": "v7"])
        #expect(byType[TetherTypes.typeURL(.authorizationPolicy)] == ["github-read-only": "v1", "github-no-writes": "v1"])
        #expect(byType[TetherTypes.typeURL(.credential)] == ["github-pat": "v1"])
        #expect(byType[TetherTypes.typeURL(.trustBundle)] == [:])
        let held = byType.values.reduce(0) { $0 + $1.count }
        #expect(held == config.resources.count, "each resource is announced once, under its own type")
    }

    @Test func anAcceptableResponseIsAcknowledgedWithItsNonceAndApplied() throws {
        var machine = XDSClientStateMachine(node: triage.description, config: try exampleConfig())
        let docs = try #require(try resources(Self.docsRoute).first)
        let outcome = machine.handle(response(.route, [item(docs, version: "d1")], nonce: "n-1", systemVersion: "2")) { _ in nil }
        guard case .accepted(let config, let ack) = outcome else {
            Issue.record("rejected: \(outcome)")
            return
        }
        #expect(ack.typeURL == TetherTypes.typeURL(.route))
        #expect(ack.responseNonce == "n-1")
        #expect(!ack.hasErrorDetail)
        #expect(config.resources[ResourceID(.route, "docs")] == VersionedResource(resource: docs, version: "d1"))
        #expect(config.resources[ResourceID(.route, "github")]?.version == "v1", "what the response does not name is kept")
        #expect(config.systemVersion == "2")
        #expect(machine.config == config)
        // The next stream announces it.
        let routes = machine.initialRequests().first { $0.typeURL == TetherTypes.typeURL(.route) }
        #expect(routes?.initialResourceVersions == ["github": "v1", "docs": "d1"])
    }

    @Test func anInvalidResourceRejectsTheWholeResponseAndKeepsTheConfig() throws {
        let before = try exampleConfig()
        var machine = XDSClientStateMachine(node: triage.description, config: before)
        let docs = try #require(try resources(Self.docsRoute).first)
        let outcome = machine.handle(response(.route, [item(docs, version: "d1"), try invalidRoute(name: "broken")], nonce: "n-2")) { _ in nil }
        guard case .rejected(let reason, let nack) = outcome else {
            Issue.record("accepted an invalid route")
            return
        }
        #expect(nack.typeURL == TetherTypes.typeURL(.route) && nack.responseNonce == "n-2")
        #expect(nack.hasErrorDetail && nack.errorDetail.code == 3)
        #expect(nack.errorDetail.message == reason)
        #expect(reason.contains("Route/broken") && reason.contains("spec.path"), "\(reason)")
        // Not even the valid route of the same response is taken.
        #expect(machine.config == before)
        #expect(machine.config.resources[ResourceID(.route, "docs")] == nil && machine.config.systemVersion == "1")
    }

    @Test func everyProblemIsNamedInTheNACK() throws {
        var machine = XDSClientStateMachine(node: triage.description, config: ProxyConfig())
        var empty = Envoy_Service_Discovery_V3_Resource()
        empty.name = "hollow"
        let backend = try #require(try exampleSnapshot().resources[ResourceID(.mcpBackend, "github")]?.resource)
        var misfiled = item(backend, version: "v1")
        misfiled.name = "github"
        let outcome = machine.handle(response(.route, [empty, misfiled, try invalidRoute(name: "broken")], nonce: "n-3")) { _ in nil }
        guard case .rejected(let reason, _) = outcome else {
            Issue.record("accepted")
            return
        }
        #expect(reason.contains("Route/hollow: the response carries no resource body"), "\(reason)")
        #expect(reason.contains("Route/github: resource of type \(TetherTypes.typeURL(.mcpBackend))"), "\(reason)")
        #expect(reason.contains("Route/broken"), "\(reason)")
        #expect(machine.config == ProxyConfig())
    }

    @Test func whatOnlyThisHostCanJudgeRejectsTooAndNamesTheResource() throws {
        var machine = XDSClientStateMachine(node: triage.description, config: ProxyConfig())
        let docs = try #require(try resources(Self.docsRoute).first)
        var checked: [ResourceID] = []
        let outcome = machine.handle(response(.route, [item(docs, version: "d1")], nonce: "n-4")) { resource in
            checked.append(resource.id)
            return "file /nowhere does not exist"
        }
        #expect(checked == [ResourceID(.route, "docs")])
        guard case .rejected(let reason, let nack) = outcome else {
            Issue.record("accepted")
            return
        }
        #expect(reason == "Route/docs: file /nowhere does not exist")
        #expect(nack.responseNonce == "n-4")
        #expect(machine.config.resources.isEmpty)
    }

    @Test func aResponseOfAnUnknownTypeIsRejected() throws {
        let before = try exampleConfig()
        var machine = XDSClientStateMachine(node: triage.description, config: before)
        var response = Response()
        response.typeURL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
        response.nonce = "n-5"
        let outcome = machine.handle(response) { _ in nil }
        guard case .rejected(let reason, let nack) = outcome else {
            Issue.record("accepted")
            return
        }
        #expect(reason.contains("envoy.config.cluster.v3.Cluster"))
        #expect(nack.typeURL == response.typeURL && nack.responseNonce == "n-5" && nack.errorDetail.code == 3)
        #expect(machine.config == before)
    }

    @Test func removalsDeleteOnlyThatTypesResource() throws {
        let before = try exampleConfig()
        var machine = XDSClientStateMachine(node: triage.description, config: before)
        // MCPBackend/github and Route/github share a name: only the backend goes.
        let outcome = machine.handle(response(.mcpBackend, [], removed: ["github", "never-held"], nonce: "n-6", systemVersion: "3")) { _ in nil }
        guard case .accepted(let config, let ack) = outcome else {
            Issue.record("rejected: \(outcome)")
            return
        }
        #expect(ack.responseNonce == "n-6")
        #expect(config.resources[ResourceID(.mcpBackend, "github")] == nil)
        #expect(config.resources[ResourceID(.route, "github")] != nil)
        #expect(config.resources.count == before.resources.count - 1)
        #expect(config.systemVersion == "3")
        // The route and the backend's policy now name a backend the proxy does not hold.
        #expect(config.unresolvedReferences(for: triage) == ["AuthorizationPolicy/github-no-writes → MCPBackend/github", "Route/github → MCPBackend/github"])
    }

    @Test func aRouteOfAnotherAgentNeverReachesThisProxy() throws {
        // The control plane serves each proxy its own view: another agent's route is not in it.
        var text = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/mesh.yaml"), encoding: .utf8)
        text += "\n---\n" + Self.docsRoute.replacingOccurrences(of: "agent/triage", with: "agent/other")
        var all: [ResourceID: VersionedResource] = [:]
        for resource in try resources(text) { all[resource.id] = VersionedResource(resource: resource, version: "v1") }
        let snapshot = MeshSnapshot(revision: 4, resources: all)
        var server = DeltaStreamStateMachine(node: triage, view: snapshot.view(for: triage))
        var client = XDSClientStateMachine(node: triage.description, config: ProxyConfig())
        let request = try #require(client.initialRequests().first { $0.typeURL == TetherTypes.typeURL(.route) })
        let answer = server.receive(request)
        let served = try #require(answer)
        guard case .accepted(let config, _) = client.handle(served, localCheck: { _ in nil }) else {
            Issue.record("rejected")
            return
        }
        #expect(config.resources[ResourceID(.route, "github")] != nil)
        #expect(config.resources[ResourceID(.route, "docs")] == nil)
    }

    @Test func anotherAgentsRouteHeldByAServingProxyIsNotFollowed() throws {
        var config = try exampleConfig()
        // A serving proxy holds the routes that lead to its backends, for their policies;
        // what they name beyond that is not its business.
        let foreign = try #require(try resources("""
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: foreign}
            spec: {agents: ["spiffe://example.org/agent/other"], path: /foreign, backend: github, tokenExchange: not-here}
            """).first)
        config.resources[foreign.id] = VersionedResource(resource: foreign, version: "v1")
        #expect(config.unresolvedReferences(for: triage).isEmpty)
        #expect(config.unresolvedReferences(for: Self.other) == ["Route/foreign → TokenExchange/not-here"])
    }
}
