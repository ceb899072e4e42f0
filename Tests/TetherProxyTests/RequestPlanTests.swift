import Foundation
import HTTPTypes
import NIOCore
import Testing
import TetherCore
@testable import TetherProxy
import TetherXDS

/// The request path's decisions, without I/O: where a request goes and who
/// asks (`Destination`), and what to do with it (`RequestPlan`).
@Suite("Request plan")
struct RequestPlanTests {
    static let agent = try! SPIFFEID("spiffe://example.org/agent/triage")
    static let server = try! SPIFFEID("spiffe://example.org/mcp/github")
    static let stranger = try! SPIFFEID("spiffe://example.org/agent/stranger")

    static func config(node: SPIFFEID) throws -> DataPlaneConfig {
        let yaml = """
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: github}
            spec:
              inMesh: {spiffeID: "spiffe://example.org/mcp/github", address: "10.0.0.7:15006", upstream: "http://127.0.0.1:8080/mcp"}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: github}
            spec: {agents: ["spiffe://example.org/agent/triage"], path: /github, backend: github}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: github-tools}
            spec:
              targets: {routes: [github]}
              action: allow
              rules:
                - methods: [tools/list]
                - methods: [tools/call]
                  tools: [echo]
            """
        let resources = try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: yaml)]).map(\.resource)
        let config = ProxyConfig(resources: Dictionary(uniqueKeysWithValues: resources.map { ($0.id, VersionedResource(resource: $0, version: "1")) }), systemVersion: "1")
        return DataPlaneConfig(config: config, node: node)
    }

    static func post(_ path: String, authority: String = "127.0.0.1:15001", method: String, tool: String? = nil, id: Int = 1) -> (HTTPRequest, ByteBuffer) {
        var head = HTTPRequest(method: .post, scheme: "http", authority: authority, path: path)
        head.headerFields[.authorization] = "Bearer user-token"
        head.headerFields[.connection] = "keep-alive"
        head.headerFields[.expect] = "100-continue"
        var params: [String: Any] = [:]
        if let tool { params["name"] = tool }
        let body = try! JSONSerialization.data(withJSONObject: ["jsonrpc": "2.0", "id": id, "method": method, "params": params])
        return (head, ByteBuffer(bytes: body))
    }

    func outbound(_ head: HTTPRequest) throws -> Destination {
        struct NotForwarded: Error {}
        guard case .forward(let destination) = try Destination.resolve(head, peer: nil, role: .outbound, node: Self.agent, config: try Self.config(node: Self.agent)).get() else {
            throw NotForwarded()
        }
        return destination
    }

    func plan(_ head: HTTPRequest, _ body: ByteBuffer, to destination: Destination, node: SPIFFEID = agent) throws -> Result<RequestPlan, Refusal> {
        RequestPlan.make(head, body: body, to: destination, user: nil, config: try Self.config(node: node), requestID: "r1", trace: TraceContext.start())
    }

    @Test func outboundTheRouteIsChosenByPathAndTheCallerIsThisProxy() throws {
        let (head, _) = Self.post("/github/sub?x=1", method: "tools/list")
        let destination = try outbound(head)
        #expect(destination.caller == Self.agent && destination.scope == .route("github") && destination.backend == "github")
        #expect(destination.target.security == .mesh(Self.server) && destination.authority == "github" && destination.path == "/sub?x=1")
        #expect(destination.replacesAuthorization && !destination.claimsCheckedByCaller)
    }

    @Test func inboundTheBackendIsNamedByAuthorityAndTheCallerIsThePeer() throws {
        let config = try Self.config(node: Self.server)
        var head = HTTPRequest(method: .post, scheme: "https", authority: "github", path: "/")
        guard case .forward(let destination) = try Destination.resolve(head, peer: Self.agent, role: .inbound, node: Self.server, config: config).get() else {
            Issue.record("not forwarded")
            return
        }
        #expect(destination.caller == Self.agent && destination.scope == .backend("github"))
        #expect(destination.target.security == .cleartext && destination.path == "/mcp" && destination.authority == "127.0.0.1:8080")
        #expect(!destination.replacesAuthorization && destination.claimsCheckedByCaller)
        // No peer certificate, or a backend it does not serve: refused before anything else.
        guard case .failure(let anonymous) = Destination.resolve(head, peer: nil, role: .inbound, node: Self.server, config: config) else {
            Issue.record("served without a peer")
            return
        }
        #expect(anonymous.error.status == 401)
        head.authority = "gitlab"
        guard case .failure(let unknown) = Destination.resolve(head, peer: Self.agent, role: .inbound, node: Self.server, config: config) else {
            Issue.record("served an unknown backend")
            return
        }
        #expect(unknown.error.status == 404 && unknown.error.message.contains("serves github"))
    }

    @Test func anAllowedCallIsForwardedWithoutTheAgentsTokenOrHopByHopFields() throws {
        let (head, body) = Self.post("/github", method: "tools/call", tool: "echo", id: 9)
        let plan = try plan(head, body, to: try outbound(head)).get()
        #expect(plan.decision?.allowed == true && plan.message?.id == .number(9) && plan.metricMethod == "tools/call")
        #expect(plan.upstream.authority == "github" && plan.upstream.path == "/" && plan.upstream.scheme == "https")
        #expect(plan.upstream.headerFields[.authorization] == nil && plan.upstream.headerFields[.connection] == nil && plan.upstream.headerFields[.expect] == nil)
        #expect(plan.upstream.headerFields[.requestID] == "r1" && plan.upstream.headerFields[HTTPField.Name("traceparent")!] != nil)
        #expect(plan.upstream.headerFields[.contentLength] == "\(body.readableBytes)")
        #expect(plan.listing == nil)
    }

    @Test func aDeniedCallIsRefusedWithTheDecisionAndTheId() throws {
        let (head, body) = Self.post("/github", method: "tools/call", tool: "delete_repo", id: 4)
        guard case .failure(let refusal) = try plan(head, body, to: try outbound(head)) else {
            Issue.record("allowed")
            return
        }
        #expect(refusal.error.status == 403 && refusal.error.jsonRPCCode == -32003 && refusal.error.id == .number(4))
        #expect(refusal.verdict == "deny" && refusal.decision?.allowed == false && refusal.message?.target == .tool("delete_repo"))
    }

    @Test func aListingGetsAFilterThatKeepsWhatTheCallerMayUseAndAsksForAReadableAnswer() throws {
        var (head, body) = Self.post("/github", method: "tools/list")
        head.headerFields[.acceptEncoding] = "gzip"
        let plan = try plan(head, body, to: try outbound(head)).get()
        let filter = try #require(plan.listing)
        #expect(filter.keep(.tool("echo")) && !filter.keep(.tool("delete_repo")))
        #expect(plan.upstream.headerFields[.acceptEncoding] == nil, "a compressed listing could not be filtered")
    }

    @Test func requestsThatAreNoCallAndOtherMethods() throws {
        var (head, _) = Self.post("/github", method: "tools/list")
        let destination = try outbound(head)
        head.method = .get
        let session = try plan(head, ByteBuffer(), to: destination).get()
        #expect(session.decision == nil && session.message == nil && session.metricMethod == "GET")
        let answer = ByteBuffer(string: #"{"jsonrpc":"2.0","id":3,"result":{}}"#)
        head.method = .post
        #expect(try plan(head, answer, to: destination).get().metricMethod == "response")
        head.method = .put
        guard case .failure(let refusal) = try plan(head, ByteBuffer(), to: destination) else {
            Issue.record("PUT planned")
            return
        }
        #expect(refusal.error.status == 405 && refusal.headers[.allow] == "GET, POST, DELETE")
        // A stranger's session at the serving proxy: no route brings it there.
        let inbound = try Destination.inbound(HTTPRequest(method: .get, scheme: "https", authority: "github", path: "/"), caller: Self.stranger, config: try Self.config(node: Self.server)).get()
        guard case .failure(let stranger) = try plan(HTTPRequest(method: .get, scheme: "https", authority: "github", path: "/"), ByteBuffer(), to: inbound, node: Self.server) else {
            Issue.record("a stranger's session planned")
            return
        }
        #expect(stranger.error.status == 403)
    }

    @Test func theCredentialIsAddedAndAMeshHopOverTheHeaderLimitIsRefused() throws {
        let (head, body) = Self.post("/github", method: "tools/call", tool: "echo")
        let destination = try outbound(head)
        let plan = try plan(head, body, to: destination).get()
        let credential = HTTPField(name: .authorization, value: "Bearer minted")
        #expect(try plan.upstream(with: credential, to: destination, maxHeaderListSize: 4096).get().headerFields[.authorization] == "Bearer minted")
        guard case .failure(let refusal) = plan.upstream(with: credential, to: destination, maxHeaderListSize: 200) else {
            Issue.record("forwarded over the limit")
            return
        }
        #expect(refusal.error.status == 431 && refusal.upstreamError == "header_list_size")
    }
}
