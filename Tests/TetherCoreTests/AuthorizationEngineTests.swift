import Foundation
import Testing
@testable import TetherCore

@Suite("Authorization decisions")
struct AuthorizationEngineTests {
    static let engine: AuthorizationEngine = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples/mesh.yaml").path
        let text = try! String(contentsOfFile: path, encoding: .utf8)
        return AuthorizationEngine(resources: try! ConfigParser.parse([ConfigSource(name: path, text: text)]).map(\.resource))
    }()

    static let triage = try! SPIFFEID("spiffe://example.org/agent/triage")
    static let engineer: [String: [String]] = ["groups": ["engineering", "oncall"], "email": ["ada@example.com"]]

    static func call(_ method: String, _ target: MCPCall.Target? = nil, agent: SPIFFEID = triage, claims: [String: [String]]? = engineer, actors: [String] = []) -> MCPCall {
        MCPCall(agent: agent, claims: claims, actors: actors.map { try! SPIFFEID($0) }, method: method, target: target)
    }

    /// (call, allowed, policy and rule that decided, words in the reason)
    static let table: [(MCPCall, Bool, String?, Int?, String)] = [
        (call("tools/list"), true, "github-read-only", 1, "allowed"),
        (call("initialize"), true, "github-read-only", 1, "allowed"),
        (call("tools/call", .tool("get_issue")), true, "github-read-only", 2, "allowed"),
        (call("tools/call", .tool("search_code")), true, "github-read-only", 2, "allowed"),
        // Deny wins, even where an allow rule would match too.
        (call("tools/call", .tool("delete_repo")), false, "github-no-writes", 1, "denied by AuthorizationPolicy github-no-writes"),
        // Nothing allows it: the default deny names the scope.
        (call("tools/call", .tool("run_workflow")), false, nil, nil, "no AuthorizationPolicy on route github or backend github allows tools/call tool run_workflow"),
        (call("resources/read", .resource("repo://acme/app")), false, nil, nil, "allows resources/read"),
        // User claims: wrong group, or no user token at all.
        (call("tools/call", .tool("get_issue"), claims: ["groups": ["sales"]]), false, nil, nil, "no AuthorizationPolicy"),
        (call("tools/call", .tool("get_issue"), claims: nil), false, nil, nil, "no AuthorizationPolicy"),
        // Delegation: one supervisor is fine (maxDepth 2), two are not.
        (call("tools/call", .tool("get_issue"), actors: ["spiffe://example.org/agent/supervisor"]), true, "github-read-only", 2, "allowed"),
        (call("tools/call", .tool("get_issue"), actors: ["spiffe://example.org/agent/a", "spiffe://example.org/agent/b"]), false, "github-read-only", 2, "3 agents deep"),
    ]

    @Test(arguments: table.indices)
    func decisionsOnTheExampleMesh(index: Int) {
        let (call, allowed, policy, rule, reason) = Self.table[index]
        let decision = Self.engine.decide(call, in: .route("github"))
        #expect(decision.allowed == allowed, "\(decision)")
        #expect(decision.policy == policy && decision.rule == rule, "\(decision)")
        #expect(decision.reason.contains(reason), "\(decision.reason)")
        // The serving side reaches the same verdict without knowing the route.
        #expect(Self.engine.decide(call, in: .backend("github")).allowed == allowed)
    }

    @Test func listingsShowOnlyWhatTheCallerMayUse() {
        let listing = Self.call("tools/list")
        let tools = ["get_issue", "list_pulls", "delete_repo", "run_workflow", "search_code"]
        let shown = tools.filter { Self.engine.permits(.tool($0), listing: listing, in: .route("github")) }
        #expect(shown == ["get_issue", "list_pulls", "search_code"])
        let inbound = tools.filter { Self.engine.permits(.tool($0), listing: listing, in: .backend("github")) }
        #expect(inbound == shown)
    }

    @Test func unknownRoutesAgentsAndBackendsAreDenied() {
        #expect(Self.engine.decide(Self.call("tools/list"), in: .route("gitlab")).reason == "there is no route gitlab")
        let stranger = try! SPIFFEID("spiffe://example.org/agent/intruder")
        #expect(Self.engine.decide(Self.call("tools/list", agent: stranger), in: .route("github")).reason.contains("not for agent"))
        #expect(Self.engine.decide(Self.call("tools/list", agent: stranger), in: .backend("github")).reason.contains("no route brings agent"))
    }

    @Test func theServingSideLeavesClaimsToTheCallingProxy() {
        var call = Self.call("tools/call", .tool("get_issue"), claims: nil)
        #expect(!Self.engine.decide(call, in: .backend("github")).allowed, "without the caller's word, a claims condition is unmet")
        call.claimsCheckedByCaller = true
        let allowed = Self.engine.decide(call, in: .backend("github"))
        #expect(allowed.allowed && allowed.policy == "github-read-only", "\(allowed)")
        // Everything else still holds on the serving side: deny rules, tools, agents.
        var delete = Self.call("tools/call", .tool("delete_repo"), claims: nil)
        delete.claimsCheckedByCaller = true
        #expect(Self.engine.decide(delete, in: .backend("github")).policy == "github-no-writes")
        var stranger = Self.call("tools/call", .tool("get_issue"), agent: try! SPIFFEID("spiffe://example.org/agent/other"), claims: nil)
        stranger.claimsCheckedByCaller = true
        #expect(!Self.engine.decide(stranger, in: .backend("github")).allowed)
    }

    @Test func aRouteWithoutPoliciesDeniesEverything() throws {
        let yaml = """
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: docs}
            spec: {external: {url: "https://docs.example.com/mcp"}}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: docs}
            spec: {agents: ["spiffe://example.org/agent/*"], path: /docs, backend: docs}
            """
        let engine = AuthorizationEngine(resources: try ConfigParser.parse([ConfigSource(name: "t", text: yaml)]).map(\.resource))
        let decision = engine.decide(Self.call("tools/list"), in: .route("docs"))
        #expect(!decision.allowed && decision.policy == nil && decision.reason.contains("no AuthorizationPolicy on route docs"))
    }
}
