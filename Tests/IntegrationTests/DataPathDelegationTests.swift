import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing
import TetherCore
import TetherIdentity
import TetherTestSupport
#if canImport(Glibc)
import Glibc
#endif


extension DataPathTests {
/// A supervisor agent delegates to a specialist agent (an MCP server behind
/// its own proxy), which calls the next MCP server: the token that server
/// gets names the whole chain, and policy bounds its depth.
@Suite("MCP data path: delegation chains")
struct DataPathDelegationTests {
    static let specialist = "spiffe://example.org/agent/specialist"

    func config(_ mesh: MCPMesh, _ idp: TestIdentityProvider, specialistProxy: ProxyProcess, specialistServer: MCPServerProcess, maxDepth: Int) -> String {
        let tokens = "https://127.0.0.1:\(mesh.control.tokenPort)"
        return """
            \(MCPMesh.corpSSO(idp))
            ---
            apiVersion: tether.dev/v1alpha1
            kind: IdentityProvider
            metadata: {name: tether}
            spec: {issuer: "\(tokens)", audiences: [specialist], jwks: {url: "\(tokens)/.well-known/jwks.json"}, allowedAlgorithms: [ES256]}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: specialist}
            spec:
              inMesh: {spiffeID: "\(Self.specialist)", address: "127.0.0.1:\(specialistProxy.inboundPort)", upstream: "http://127.0.0.1:\(specialistServer.port)/mcp"}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: TokenExchange
            metadata: {name: to-specialist}
            spec: {type: builtin, audience: specialist}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: TokenExchange
            metadata: {name: to-github}
            spec: {type: builtin, audience: github}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: ask-specialist}
            spec: {agents: ["\(MCPMesh.agent)"], path: /specialist, backend: specialist, identityProvider: corp-sso, tokenExchange: to-specialist}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: specialist-github}
            spec: {agents: ["\(Self.specialist)"], path: /github, backend: github, identityProvider: tether, tokenExchange: to-github}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: ask-specialist}
            spec:
              targets: {routes: [ask-specialist]}
              action: allow
              rules: [{claims: {groups: [engineering]}, methods: [tools/call], tools: [delegate]}]
            ---
            apiVersion: tether.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: specialist-github}
            spec:
              targets: {routes: [specialist-github]}
              action: allow
              rules: [{methods: [tools/call], tools: [whoami]}]
              delegation: {maxDepth: \(maxDepth)}
            """
    }

    @Test func theNextServerSeesTheWholeChainAndPolicyBoundsItsDepth() async throws {
        let mesh = try await MCPMesh()
        let idp = TestIdentityProvider()
        let specialistProxy = try await offPool { try MCPMesh.join(mesh.control, Self.specialist, arguments: []) }
        let specialistServer = try await offPool {
            try MCPServerProcess(root: mesh.control.root, extra: ["--delegate-url", "http://127.0.0.1:\(specialistProxy.outboundPort)/github"])
        }
        func apply(maxDepth: Int) async throws {
            let file = try mesh.control.file("delegation-\(maxDepth).yaml", config(mesh, idp, specialistProxy: specialistProxy, specialistServer: specialistServer, maxDepth: maxDepth))
            let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
            #expect(applied.status == 0, "\(applied.stderr)")
        }
        try await apply(maxDepth: 2)
        // Each proxy gets its own part: the supervisor its route, the specialist its route and backend, the server's proxy the policies on its backend.
        for (proxy, policy) in [(mesh.agentProxy, "ask-specialist"), (specialistProxy, "specialist-github"), (mesh.serverProxy, "specialist-github")] {
            try await proxy.waitUntil("the delegation config") { try await proxy.versions()["AuthorizationPolicy/\(policy)"] != nil }
        }
        let userToken = idp.token(idp.claims())
        let delegate = modernRequest(id: 1, method: "tools/call", params: ["name": "delegate", "arguments": [String: Any]()])
        let url = "http://127.0.0.1:\(mesh.agentProxy.outboundPort)/specialist"
        let response = try await post(url, body: delegate, method: "tools/call", name: "delegate", headers: ["Authorization": "Bearer \(userToken)"])
        let context = "\(response)\nsupervisor:\n\(mesh.agentProxy.log)\nspecialist:\n\(specialistProxy.log)"
        #expect(response.status == 200 && response.body.contains("HTTP 200"), "\(context)")

        // The token the GitHub server got: for it, for the user, acted on by the specialist for the supervisor.
        let token = response.body.components(separatedBy: "Bearer ").dropFirst().first?.prefix { $0.isLetter || $0.isNumber || "-_.".contains($0) }.description ?? ""
        let claims = token.split(separator: ".").dropFirst().first.flatMap { TrustBundle.base64URLDecode(String($0)) }
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        let audience = claims["aud"] as? [String] ?? [claims["aud"] as? String].compactMap { $0 }
        #expect(claims["sub"] as? String == "ada@example.com" && audience == ["github"], "\(claims)\n\(context)")
        let act = claims["act"] as? [String: Any]
        #expect(act?["sub"] as? String == Self.specialist && (act?["act"] as? [String: Any])?["sub"] as? String == MCPMesh.agent, "\(claims)")
        #expect(!response.body.contains(userToken), "the user's token reached neither agent nor server")
        // The specialist's proxy logged the chain.
        #expect(specialistProxy.accessLog.contains { ($0["actors"] as? [String]) == [MCPMesh.agent] && $0["user"] as? String == "ada@example.com" }, "\(specialistProxy.accessLog)")

        // At most one agent between user and server: the second hop is denied.
        try await apply(maxDepth: 1)
        try await specialistProxy.waitUntil("maxDepth 1 in force", seconds: 20) {
            let again = try await post(url, body: delegate, method: "tools/call", name: "delegate", headers: ["Authorization": "Bearer \(userToken)"])
            return again.body.contains("HTTP 403") && again.body.contains("2 agents deep")
        }
    }
}
}
