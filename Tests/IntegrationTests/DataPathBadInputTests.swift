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


/// Bad input on both listeners: each gets its HTTP status and JSON-RPC
/// code, or — on the inbound listener — no TLS session at all.
extension DataPathTests {
@Suite("MCP data path: bad input")
struct DataPathBadInputTests {
    struct Case: CustomStringConvertible {
        var description: String
        var path = "/github"
        var body: Data
        var method = "tools/call"
        var name: String? = "echo"
        var status: Int
        var code: Int
    }

    @Test func badRequestsGetTheirStatusAndJSONRPCError() async throws {
        let mesh = try await MCPMesh()
        let echo = modernRequest(id: 7, method: "tools/call", params: ["name": "echo", "arguments": ["text": "hi"]])
        let oversized = Data(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":""#.utf8)
            + Data(repeating: UInt8(ascii: "a"), count: 4 * 1024 * 1024) + Data(#""}}}"#.utf8)
        let cases = [
            Case(description: "a body over the 4 MiB limit", body: oversized, status: 413, code: -32600),
            Case(description: "invalid JSON", body: Data(#"{"jsonrpc":"2.0","id":1,"method":"#.utf8), status: 400, code: -32700),
            Case(description: "a batch", body: Data("[\(String(decoding: echo, as: UTF8.self))]".utf8), status: 400, code: -32600),
            Case(description: "tools/call without a name", body: modernRequest(id: 2, method: "tools/call"), name: nil, status: 400, code: -32602),
            Case(description: "Mcp-Method disagreeing with the body", body: echo, method: "tools/list", status: 400, code: -32020),
            Case(description: "Mcp-Name disagreeing with the body", body: echo, name: "delete_repo", status: 400, code: -32020),
            Case(description: "a 2026-07-28 call without Mcp-Name", body: echo, name: nil, status: 400, code: -32020),
            Case(description: "an unknown route", path: "/gitlab", body: echo, status: 404, code: -32600),
            Case(description: "a denied tool", body: modernRequest(id: 3, method: "tools/call", params: ["name": "delete_repo", "arguments": ["name": "x"]]), name: "delete_repo", status: 403, code: -32003),
        ]
        for item in cases {
            let response = try await post("http://127.0.0.1:\(mesh.agentProxy.outboundPort)\(item.path)", body: item.body, method: item.method, name: item.name)
            #expect(response.status == item.status, "\(item): \(response)")
            #expect(response.errorCode == item.code, "\(item): \(response)")
        }
        // The same proxy still serves good calls.
        let good = try await post(mesh.url, body: echo, method: "tools/call", name: "echo")
        #expect(good.status == 200 && good.body.contains("hi"), "\(good)")

        // An upstream silent past the route's timeout: 504.
        let file = try mesh.control.file("timeout.yaml", mesh.config(allowAdd: true, routeTimeout: "1s"))
        let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
        #expect(applied.status == 0, "\(applied.stderr)")
        try await mesh.agentProxy.waitUntil("the route timeout") {
            (try await mesh.agentProxy.configDump()["resources"] as? [[String: Any]] ?? []).contains { "\($0)".contains("timeout") }
        }
        let pause = modernRequest(id: 9, method: "tools/call", params: ["name": "pause", "arguments": ["seconds": 3]])
        let slow = try await post(mesh.url, body: pause, method: "tools/call", name: "pause")
        #expect(slow.status == 504 && slow.errorCode == -32004 && slow.body.contains("1s"), "\(slow)")
        #expect(mesh.agentProxy.log.contains("proxy starting"))
    }

    @Test func theInboundListenerWantsAnSVIDOfTheTrustDomain() async throws {
        let mesh = try await MCPMesh()
        let inbound = "https://127.0.0.1:\(mesh.serverProxy.inboundPort)/"
        let scratch = mesh.control.root.path
        func curl(_ arguments: [String], host: String = "github") async throws -> (status: Int32, output: String) {
            try await runTool(["curl", "-sk", "--max-time", "10", "-o", "-", "-w", "\nHTTP %{http_code}", "-H", "Host: \(host)"] + arguments,
                              log: "\(scratch)/curl-\(UUID().uuidString.prefix(8)).log", seconds: 20)
        }
        // No client certificate: no TLS session, no HTTP.
        let anonymous = try await curl([inbound])
        #expect(anonymous.status != 0 && anonymous.output.contains("HTTP 000"), "\(anonymous)")

        // An SVID from another trust domain: refused too.
        let otherCA = try TrustDomainCA.generate(trustDomain: "evil.example")
        let key = P256.Signing.PrivateKey()
        let leaf = try otherCA.issue(publicKey: .init(key.publicKey), for: try SPIFFEID("spiffe://evil.example/agent/triage"))
        let other = try X509SVID(chain: [leaf], privateKey: key)
        let certFile = try mesh.control.file("other.pem", other.chainPEM), keyFile = try mesh.control.file("other.key", other.privateKeyPEM)
        let foreign = try await curl(["--cert", certFile, "--key", keyFile, inbound])
        #expect(foreign.status != 0 && foreign.output.contains("HTTP 000"), "\(foreign)")
        #expect(mesh.serverProxy.log.contains("peer certificate rejected"), "\(mesh.serverProxy.log)")

        // The agent's own SVID is accepted (over HTTP/2, as curl negotiates it)…
        let svid = "\(mesh.agentProxy.dataDirectory)/svid.pem", svidKey = "\(mesh.agentProxy.dataDirectory)/svid.key"
        let headers = ["-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream", "-H", "MCP-Protocol-Version: 2026-07-28"]
        let echo = String(decoding: modernRequest(id: 1, method: "tools/call", params: ["name": "echo", "arguments": ["text": "direct"]]), as: UTF8.self)
        let allowed = try await curl(["--cert", svid, "--key", svidKey] + headers + ["-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: echo", "--data", echo, inbound])
        #expect(allowed.output.contains("HTTP 200") && allowed.output.contains("direct"), "\(allowed)")
        // …and the serving proxy decides on its own: the deny on the backend holds there too.
        let delete = String(decoding: modernRequest(id: 2, method: "tools/call", params: ["name": "delete_repo", "arguments": ["name": "x"]]), as: UTF8.self)
        let denied = try await curl(["--cert", svid, "--key", svidKey] + headers + ["-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: delete_repo", "--data", delete, inbound])
        #expect(denied.output.contains("HTTP 403") && denied.output.contains("-32003") && denied.output.contains("github-no-writes"), "\(denied)")
        // A backend it does not serve.
        let unknown = try await curl(["--cert", svid, "--key", svidKey] + headers + ["--data", echo, inbound], host: "gitlab")
        #expect(unknown.output.contains("HTTP 404") && unknown.output.contains("serves no backend"), "\(unknown)")
    }

    @Test func aClientTricklingItsHeadersIsClosedByTheHeaderTimeout() async throws {
        let mesh = try await MCPMesh()
        let socket = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        let started = Date()
        let head = Array("POST /github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: ".utf8)
        var sent = 0
        var closedAfter: TimeInterval?
        // One byte a second, for at most 45 s: the proxy must close it at about 30.
        while Date().timeIntervalSince(started) < 45 {
            if !socket.isOpen {
                closedAfter = Date().timeIntervalSince(started)
                break
            }
            socket.send([sent < head.count ? head[sent] : UInt8(ascii: "a")])
            sent += 1
            try await Task.sleep(for: .seconds(1))
        }
        let elapsed = try #require(closedAfter, "the connection was still open after 45 s of trickled headers")
        #expect(elapsed >= 29 && elapsed < 40, "closed after \(elapsed) s")
        // Meanwhile and after, well-behaved clients are served.
        let good = try await post(mesh.url, body: modernRequest(id: 1, method: "tools/call", params: ["name": "echo", "arguments": ["text": "ok"]]), method: "tools/call", name: "echo")
        #expect(good.status == 200, "\(good)")
    }
}
}
