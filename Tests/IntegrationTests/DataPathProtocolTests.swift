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


/// The other transports: h2c from the agent, HTTP/1.1 into the mesh, and
/// MCP servers outside the mesh over TLS verified with their own CA.
extension DataPathTests {
@Suite("MCP data path: protocols")
struct DataPathProtocolTests {
    func curl(_ mesh: MCPMesh, _ arguments: [String]) async throws -> String {
        let headers = ["-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream", "-H", "MCP-Protocol-Version: 2026-07-28"]
        return try await runTool(["curl", "-s", "--max-time", "10", "-o", "-", "-w", "\nHTTP %{http_code} %{http_version}"] + headers + arguments,
                                 log: "\(mesh.control.root.path)/curl-\(UUID().uuidString.prefix(8)).log", seconds: 20).output
    }

    @Test func h2cOutboundAndHTTP1Inbound() async throws {
        let mesh = try await MCPMesh()
        let echo = String(decoding: modernRequest(id: 1, method: "tools/call", params: ["name": "echo", "arguments": ["text": "over h2c"]]), as: UTF8.self)
        let h2c = try await curl(mesh, ["--http2-prior-knowledge", "-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: echo", "--data", echo, mesh.url])
        #expect(h2c.contains("HTTP 200 2") && h2c.contains("over h2c"), "\(h2c)")
        let dir = mesh.agentProxy.dataDirectory
        let http1 = try await curl(mesh, [
            "-k", "--http1.1", "--cert", "\(dir)/svid.pem", "--key", "\(dir)/svid.key", "-H", "Host: github",
            "-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: echo", "--data", echo, "https://127.0.0.1:\(mesh.serverProxy.inboundPort)/",
        ])
        #expect(http1.contains("HTTP 200 1.1") && http1.contains("over h2c"), "\(http1)")
        #expect(mesh.agentProxy.accessLog.contains { $0["httpVersion"] as? String == "HTTP/2" && $0["listener"] as? String == "outbound" })
    }

    @Test func externalBackendsAreVerifiedWithTheirCA() async throws {
        let mesh = try await MCPMesh()
        let dir = mesh.control.root.path
        let san = try mesh.control.file("san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for step in [
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem", "-days", "1", "-subj", "/CN=External Test CA"],
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(dir)/other-ca.key", "-out", "\(dir)/other-ca.pem", "-days", "1", "-subj", "/CN=Other CA"],
            ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr", "-subj", "/CN=localhost"],
            ["openssl", "x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key", "-CAcreateserial", "-out", "\(dir)/server.pem", "-days", "1", "-extfile", san],
        ] {
            let result = try await runTool(step, log: "\(dir)/openssl.log", seconds: 20)
            #expect(result.status == 0, "\(result.output)")
        }
        let server = try await offPool { try MCPServerProcess(root: mesh.control.root, tls: ("\(dir)/server.pem", "\(dir)/server.key")) }
        func external(_ name: String, ca: String) -> String {
            """
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: \(name)}
            spec:
              external: {url: "https://127.0.0.1:\(server.port)/mcp", tls: {caFile: "\(ca)"}}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: \(name)}
            spec: {agents: ["\(MCPMesh.agent)"], path: /\(name), backend: \(name)}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: \(name)}
            spec:
              targets: {routes: [\(name)]}
              action: allow
              rules: [{methods: [tools/call], tools: [echo]}]
            """
        }
        let config = external("outside", ca: "\(dir)/ca.pem") + "\n---\n" + external("impostor", ca: "\(dir)/other-ca.pem")
        let file = try mesh.control.file("external.yaml", config)
        let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
        #expect(applied.status == 0, "\(applied.stderr)")
        try await mesh.agentProxy.waitUntil("the external routes") { try await mesh.agentProxy.versions()["Route/impostor"] != nil }

        let echo = modernRequest(id: 1, method: "tools/call", params: ["name": "echo", "arguments": ["text": "outside"]])
        let good = try await post("http://127.0.0.1:\(mesh.agentProxy.outboundPort)/outside", body: echo, method: "tools/call", name: "echo")
        #expect(good.status == 200 && good.body.contains("outside"), "\(good)\n\(mesh.agentProxy.log)")
        // A server whose certificate does not chain to the configured CA is never sent the call.
        let bad = try await post("http://127.0.0.1:\(mesh.agentProxy.outboundPort)/impostor", body: echo, method: "tools/call", name: "echo")
        #expect(bad.status == 502 && bad.errorCode == -32004, "\(bad)")
    }
}
}
