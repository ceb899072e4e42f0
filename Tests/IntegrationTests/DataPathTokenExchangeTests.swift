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
/// The built-in token service: the server gets a token minted for it, for
/// the user, naming the agent — and one exchange serves many calls.
@Suite("MCP data path: built-in token exchange")
struct DataPathTokenExchangeTests {
    static let audience = "https://github-mcp.example.com"

    func config(_ idp: TestIdentityProvider) -> String {
        """
        \(MCPMesh.corpSSO(idp))
        ---
        apiVersion: tether.dev/v1alpha1
        kind: TokenExchange
        metadata: {name: github-builtin}
        spec: {type: builtin, audience: "\(Self.audience)", scopes: ["repo:read", "issues:read"], ttl: 2m}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: exchanged}
        spec: {agents: ["\(MCPMesh.agent)"], path: /exchanged, backend: github, identityProvider: corp-sso, tokenExchange: github-builtin}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: exchanged-whoami}
        spec:
          targets: {routes: [exchanged]}
          action: allow
          rules: [{claims: {groups: [engineering]}, methods: [tools/call], tools: [whoami, echo]}]
        """
    }

    @Test func theServerGetsATokenForItselfTheUserAndTheAgentAndOneExchangeServesAThousandCalls() async throws {
        let mesh = try await MCPMesh()
        let idp = TestIdentityProvider()
        let file = try mesh.control.file("exchange.yaml", config(idp))
        let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
        #expect(applied.status == 0, "\(applied.stderr)")
        try await mesh.agentProxy.waitUntil("the exchange route") { try await mesh.agentProxy.versions()["AuthorizationPolicy/exchanged-whoami"] != nil }
        let url = "http://127.0.0.1:\(mesh.agentProxy.outboundPort)/exchanged"
        let userToken = idp.token(idp.claims())
        func call(_ tool: String, token: String, id: Int = 1) async throws -> RawResponse {
            let arguments: [String: Any] = tool == "echo" ? ["text": "x"] : [:]
            return try await post(url, body: modernRequest(id: id, method: "tools/call", params: ["name": tool, "arguments": arguments]), method: "tools/call", name: tool, headers: ["Authorization": "Bearer \(token)"])
        }

        let whoami = try await call("whoami", token: userToken)
        #expect(whoami.status == 200, "\(whoami)\n\(mesh.agentProxy.log)")
        let presented = whoami.body.components(separatedBy: "Bearer ").dropFirst().first?.prefix { $0 != "\"" && $0 != "\\" }.description ?? ""
        #expect(!presented.isEmpty && presented != userToken && !whoami.body.contains(userToken), "\(whoami)")

        // It verifies with the token service's published keys, for this server's audience.
        let issuer = "https://127.0.0.1:\(mesh.control.tokenPort)"
        let jwks = try await runTool(["curl", "-sk", "--max-time", "10", issuer + "/.well-known/jwks.json"], log: "\(mesh.control.root.path)/jwks.log", seconds: 20).output
        let tether = IdentityProviderSpec(issuer: try EndpointURL(issuer, rules: .identifier), audiences: [Self.audience], jwks: .inline(jwks), allowedAlgorithms: [.es256])
        let validated = await (try UserTokenValidator(name: "tether", spec: tether, jwks: jwks)).validate(presented)
        let token = try validated.get()
        #expect(token.subject == "ada@example.com")
        #expect(token.claims["client_id"] == [MCPMesh.agent] && token.claims["scope"] == ["repo:read issues:read"], "\(token.claims)")
        let payload = presented.split(separator: ".").dropFirst().first.flatMap { TrustBundle.base64URLDecode(String($0)) }
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        #expect((payload["act"] as? [String: Any])?["sub"] as? String == MCPMesh.agent, "\(payload)")
        let header = presented.split(separator: ".").first.flatMap { TrustBundle.base64URLDecode(String($0)) }
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        #expect(header["typ"] as? String == "at+jwt", "\(header)")
        // No longer than the user's token or the exchange's ttl (2 minutes).
        #expect(token.expiresAt.timeIntervalSinceNow <= 121, "\(token.expiresAt)")

        // A thousand calls by the same user: one exchange.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var failures = 0
                    for index in 0..<250 where try await call("echo", token: userToken, id: worker * 1000 + index).status != 200 { failures += 1 }
                    return failures
                }
            }
            for try await failures in group { #expect(failures == 0) }
        }
        let controlLog = (try? String(contentsOfFile: mesh.control.logPath, encoding: .utf8)) ?? ""
        let issued = controlLog.components(separatedBy: "issued an access token").count - 1
        #expect(issued == 1, "\(issued) exchanges for 1,001 calls of one user")

        // The token service down: a user without a cached token gets a clear error, and nothing is forwarded.
        // (The serving proxy logs a call just after answering it: wait for the last of the 1,001.)
        try await mesh.serverProxy.waitUntil("the serving proxy's log of 1,001 calls") { mesh.serverProxy.accessLog.count >= 1001 }
        let forwarded = mesh.serverProxy.accessLog.count
        #expect(try await offPool { mesh.control.terminate() } == 0)
        let other = try await call("whoami", token: idp.token(idp.claims(["email": "bob@example.com"])))
        #expect(other.status == 503 && other.errorCode == -32004 && other.body.contains("no token"), "\(other)")
        #expect(mesh.serverProxy.accessLog.count == forwarded, "nothing reached the serving proxy")
    }

    @Test func anExternalRFC8693ServiceAuthenticatesTheClientAndLearnsTheActor() async throws {
        let mesh = try await MCPMesh()
        let idp = TestIdentityProvider()
        let service = try await offPool {
            try MCPServerProcess(root: mesh.control.root, role: "token-service", extra: ["--client-id", "tether proxy", "--client-secret", "s3cret+/="])
        }
        func exchange(_ name: String, secret: String) -> String {
            """
            apiVersion: tether.dev/v1alpha1
            kind: Credential
            metadata: {name: \(name)}
            spec: {value: "\(secret)"}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: TokenExchange
            metadata: {name: \(name)}
            spec: {type: rfc8693, endpoint: "http://127.0.0.1:\(service.port)/token", audience: "\(Self.audience)", clientID: tether proxy, clientSecret: \(name), scopes: [repo:read]}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: \(name)}
            spec: {agents: ["\(MCPMesh.agent)"], path: /\(name), backend: github, identityProvider: corp-sso, tokenExchange: \(name)}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: \(name)}
            spec:
              targets: {routes: [\(name)]}
              action: allow
              rules: [{claims: {groups: [engineering]}, methods: [tools/call], tools: [whoami]}]
            """
        }
        let yaml = [MCPMesh.corpSSO(idp), exchange("external", secret: "s3cret+/="), exchange("wrong-secret", secret: "guess")].joined(separator: "\n---\n")
        let file = try mesh.control.file("external-exchange.yaml", yaml)
        let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
        #expect(applied.status == 0, "\(applied.stderr)")
        try await mesh.agentProxy.waitUntil("the external exchange routes") { try await mesh.agentProxy.versions()["AuthorizationPolicy/wrong-secret"] != nil }

        let userToken = idp.token(idp.claims())
        let whoami = modernRequest(id: 1, method: "tools/call", params: ["name": "whoami", "arguments": [String: Any]()])
        let base = "http://127.0.0.1:\(mesh.agentProxy.outboundPort)"
        let good = try await post(base + "/external", body: whoami, method: "tools/call", name: "whoami", headers: ["Authorization": "Bearer \(userToken)"])
        let presented = good.body.components(separatedBy: "Bearer ext.").dropFirst().first?.prefix { $0 != "\"" && $0 != "\\" }.description ?? ""
        let issued = TrustBundle.base64URLDecode(presented).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        #expect(good.status == 200 && issued["sub"] as? String == "ada@example.com" && issued["aud"] as? String == Self.audience, "\(good)\n\(service.log)")
        // The agent is the actor: its JWT-SVID went along as actor_token.
        #expect(issued["act"] as? String == MCPMesh.agent && issued["scope"] as? String == "repo:read", "\(issued)")
        // A wrong client secret: the service refuses, the call fails closed with the reason.
        let bad = try await post(base + "/wrong-secret", body: whoami, method: "tools/call", name: "whoami", headers: ["Authorization": "Bearer \(userToken)"])
        #expect(bad.status == 503 && bad.body.contains("invalid_client"), "\(bad)")
        #expect(service.log.components(separatedBy: "EXCHANGED").count - 1 == 1, "\(service.log)")
    }
}
}
