import Testing
import TetherCore
@testable import TetherProxy
import TetherXDS

@Suite("Data-plane config: routes and served backends")
struct DataPlaneConfigTests {
    static let agent = try! SPIFFEID("spiffe://example.org/agent/triage")
    static let server = try! SPIFFEID("spiffe://example.org/mcp/github")

    static func config() throws -> ProxyConfig {
        let yaml = """
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: github}
            spec:
              inMesh: {spiffeID: "spiffe://example.org/mcp/github", address: "10.0.0.7:15006", upstream: "http://127.0.0.1:8080/mcp"}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: docs}
            spec:
              external: {url: "https://docs.example.com/mcp"}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: github}
            spec: {agents: ["spiffe://example.org/agent/*"], path: /github, backend: github}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: github-admin}
            spec: {agents: ["spiffe://example.org/agent/triage"], path: /github/admin, backend: github}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: docs}
            spec: {agents: ["spiffe://example.org/agent/other"], path: /docs, backend: docs}
            """
        let resources = try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: yaml)]).map(\.resource)
        return ProxyConfig(resources: Dictionary(uniqueKeysWithValues: resources.map { ($0.id, VersionedResource(resource: $0, version: "1")) }), systemVersion: "7")
    }

    @Test func theLongestRoutePathWinsAndOnlyOnSegmentBoundaries() throws {
        let plane = DataPlaneConfig(config: try Self.config(), node: Self.agent)
        #expect(plane.version == "7")
        #expect(plane.route(for: "/github")?.route.name == "github")
        #expect(plane.route(for: "/github")?.rest == "")
        #expect(plane.route(for: "/github?x=1")?.rest == "?x=1")
        #expect(plane.route(for: "/github/admin/x")?.route.name == "github-admin")
        #expect(plane.route(for: "/github/admin/x")?.rest == "/x")
        #expect(plane.route(for: "/githubx") == nil, "a mere prefix is not a match")
        // Another agent's route is not this proxy's.
        #expect(plane.route(for: "/docs") == nil)
        #expect(plane.routePaths == ["/github", "/github/admin"])
        #expect(plane.servedBackendNames.isEmpty)
    }

    @Test func theServingProxyServesItsInMeshBackends() throws {
        let plane = DataPlaneConfig(config: try Self.config(), node: Self.server)
        #expect(plane.servedBackendNames == ["github"])
        #expect(plane.route(for: "/github") == nil)
    }

    @Test(arguments: [
        ("/mcp", "", "/mcp"), ("/mcp", "?a=b", "/mcp?a=b"), ("/mcp", "/sub", "/mcp/sub"),
        ("/mcp/", "/sub", "/mcp/sub"), ("", "", "/"), ("/", "/sub", "/sub"),
    ])
    func upstreamPathsJoinTheBackendPathAndTheRest(base: String, rest: String, expected: String) {
        #expect(Destination.join(base, rest[...]) == expected)
    }
}
