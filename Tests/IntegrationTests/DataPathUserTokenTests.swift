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
/// Users' tokens on the outbound listener, and what the server gets instead.
@Suite("MCP data path: user tokens and upstream credentials")
struct DataPathUserTokenTests {
    static let pat = "ghp_test0secret0never0shown0anywhere"

    func config(_ mesh: MCPMesh, _ idp: TestIdentityProvider) -> String {
        """
        \(MCPMesh.corpSSO(idp))
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Credential
        metadata: {name: github-pat}
        spec: {value: \(Self.pat)}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: TokenExchange
        metadata: {name: github-pat}
        spec: {type: credential, credential: github-pat}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: TokenExchange
        metadata: {name: github-svid}
        spec: {type: jwt-svid, audience: github-mcp}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: secure}
        spec: {agents: ["\(MCPMesh.agent)"], path: /secure, backend: github, identityProvider: corp-sso, tokenExchange: github-pat}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: svid}
        spec: {agents: ["\(MCPMesh.agent)"], path: /svid, backend: github, tokenExchange: github-svid}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: engineers}
        spec:
          targets: {routes: [secure]}
          action: allow
          rules:
            - claims: {groups: [engineering]}
              methods: [tools/call]
              tools: [whoami]
        ---
        apiVersion: tether.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: svid-whoami}
        spec:
          targets: {routes: [svid]}
          action: allow
          rules: [{methods: [tools/call], tools: [whoami]}]
        """
    }

    @Test func usersAuthenticateAndServersGetTheRoutesCredentialNeverTheUsersToken() async throws {
        let mesh = try await MCPMesh()
        let idp = TestIdentityProvider()
        let file = try mesh.control.file("users.yaml", config(mesh, idp))
        let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
        #expect(applied.status == 0, "\(applied.stderr)")
        try await mesh.agentProxy.waitUntil("the user-token routes") { try await mesh.agentProxy.versions()["AuthorizationPolicy/svid-whoami"] != nil }
        let base = "http://127.0.0.1:\(mesh.agentProxy.outboundPort)"
        let whoami = modernRequest(id: 1, method: "tools/call", params: ["name": "whoami", "arguments": [String: Any]()])
        func call(_ path: String, token: String?) async throws -> RawResponse {
            try await post(base + path, body: whoami, method: "tools/call", name: "whoami", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        }

        // No token: 401 pointing at the protected-resource metadata (RFC 9728), which names the IdP.
        let anonymous = try await call("/secure", token: nil)
        let challenge = anonymous.headers["www-authenticate"] ?? ""
        #expect(anonymous.status == 401 && anonymous.errorCode == -32001, "\(anonymous)")
        #expect(challenge.contains(#"resource_metadata="http://127.0.0.1:\#(mesh.agentProxy.outboundPort)/.well-known/oauth-protected-resource/secure""#), "\(challenge)")
        let (metadata, _) = try await URLSession.shared.data(from: URL(string: base + "/.well-known/oauth-protected-resource/secure")!)
        let document = try JSONSerialization.jsonObject(with: metadata) as? [String: Any]
        #expect(document?["authorization_servers"] as? [String] == [idp.issuer] && document?["resource"] as? String == base + "/secure", "\(String(decoding: metadata, as: UTF8.self))")

        // A bad token: 401 with invalid_token and the reason.
        let expiredToken = idp.token(idp.claims(["exp": Int(Date().timeIntervalSince1970) - 120]))
        let expired = try await call("/secure", token: expiredToken)
        #expect(expired.status == 401 && (expired.headers["www-authenticate"] ?? "").contains(#"error="invalid_token""#) && expired.body.contains("expired"), "\(expired)")

        // An engineer: allowed; the server receives the vaulted PAT, not the user's token.
        let engineerToken = idp.token(idp.claims())
        let engineer = try await call("/secure", token: engineerToken)
        #expect(engineer.status == 200 && engineer.body.contains("Bearer \(Self.pat)"), "\(engineer)")
        #expect(!engineer.body.contains(engineerToken))
        // Someone in sales: the claims condition does not match.
        let sales = try await call("/secure", token: idp.token(idp.claims(["groups": ["sales"], "email": "sam@example.com"])))
        #expect(sales.status == 403 && sales.errorCode == -32003, "\(sales)")
        #expect((sales.headers["www-authenticate"] ?? "").contains(#"error="insufficient_scope""#), "\(sales)")

        // A route whose server trusts the mesh: it gets the agent's JWT-SVID for its audience.
        let svid = try await call("/svid", token: engineerToken)
        let presented = svid.body.components(separatedBy: "Bearer ").dropFirst().first?.prefix { $0 != "\"" && $0 != "\\" }.description ?? ""
        let claims = presented.split(separator: ".").dropFirst().first.flatMap { TrustBundle.base64URLDecode(String($0)) }
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        #expect(claims?["sub"] as? String == MCPMesh.agent, "\(svid)")
        #expect((claims?["aud"] as? [String] ?? [claims?["aud"] as? String].compactMap { $0 }) == ["github-mcp"], "\(svid)")
        #expect(!svid.body.contains(engineerToken), "the user's token never reaches the server")

        // The access log names the user; no log, dump or read-back holds the PAT or a user token.
        let entries = mesh.agentProxy.accessLog
        #expect(entries.contains { $0["user"] as? String == "ada@example.com" && $0["decision"] as? String == "allow" }, "\(entries)")
        #expect(entries.contains { $0["user"] as? String == "sam@example.com" && $0["decision"] as? String == "deny" }, "\(entries)")
        let dump = try await mesh.agentProxy.get("/config_dump").body
        let yaml = try await offPool { try mesh.control.cli(["get", "all", "-o", "yaml"]) }
        let accessLog = (try? String(contentsOfFile: mesh.agentProxy.accessLogPath, encoding: .utf8)) ?? ""
        // The control plane's database (and its WAL) hold it sealed only.
        let database = ["", "-wal"].compactMap { FileManager.default.contents(atPath: mesh.control.dataDirectory + "/tether.db" + $0) }
            .map { String(decoding: $0, as: UTF8.self) }.joined()
        #expect(!database.isEmpty)
        for (place, text) in [
            ("agent proxy log", mesh.agentProxy.log), ("serving proxy log", mesh.serverProxy.log), ("access log", accessLog), ("config dump", dump),
            ("get -o yaml", yaml.stdout), ("database", database),
        ] {
            #expect(!text.contains(Self.pat), "\(place) shows the PAT")
            #expect(!text.contains(engineerToken) && !text.contains(expiredToken), "\(place) shows a user token")
        }
    }
}
}
