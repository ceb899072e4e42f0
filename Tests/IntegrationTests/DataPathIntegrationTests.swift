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

/// Every data-path suite, one test at a time: each starts a whole mesh (a
/// control plane, two proxies, the MCP SDK's server), which on a 2-core CI
/// machine is load enough for one.
@Suite("MCP data path", .serialized)
enum DataPathTests {}

/// The data path end to end: the official MCP Python SDK's client talks
/// through the agent's tether-proxy (outbound) → mTLS HTTP/2 → the serving
/// tether-proxy (inbound) → the SDK's server.
extension DataPathTests {
@Suite("MCP data path end to end")
struct DataPathIntegrationTests {
    @Test(arguments: ["2026-07-28", "2025-11-25"])
    func theSDKClientTalksToTheSDKServerThroughTwoProxies(generation: String) async throws {
        let mesh = try await MCPMesh()
        let result = try await mesh.sdkClient(generation: generation, calls: [
            ("echo", #"{"text":"hi"}"#), ("slow_count", #"{"n":3}"#), ("delete_repo", #"{"name":"acme/app"}"#),
        ])
        let context = "\(result)\nagent proxy:\n\(mesh.agentProxy.log)\nserving proxy:\n\(mesh.serverProxy.log)"
        #expect(result["negotiated"] as? String == generation, "\(context)")

        // tools/list shows only what the policies let this agent call.
        #expect((result["tools"] as? [String])?.sorted() == ["add", "echo", "pause", "slow_count"], "\(context)")

        let calls = result["calls"] as? [[String: Any]] ?? []
        #expect(calls.count == 3, "\(context)")
        let echo = calls.first { $0["tool"] as? String == "echo" }
        #expect(echo?["ok"] as? Bool == true && echo?["result"] as? String == "hi", "\(context)")
        // Progress notifications stream through as SSE events before the result.
        let count = calls.first { $0["tool"] as? String == "slow_count" }
        #expect(count?["ok"] as? Bool == true && count?["result"] as? String == "counted 3", "\(context)")
        #expect(result["progress_events"] as? Int == 3, "\(context)")
        // The denied call gets the JSON-RPC error with HTTP 403, naming the policy.
        let denied = calls.first { $0["tool"] as? String == "delete_repo" }
        let error = denied?["error"] as? [String: Any]
        #expect(denied?["ok"] as? Bool == false && error?["code"] as? Int == -32003, "\(context)")
        #expect((error?["message"] as? String)?.contains("github-no-writes") == true, "\(context)")

        if generation == "2025-11-25" {
            // The session: its id, its GET event stream, and its end.
            #expect(result["session_id"] is String, "\(context)")
            #expect(result["get_stream"] as? Int == 200, "\(context)")
            #expect(result["delete"] as? Int == 200, "\(context)")
        }

        // One access-log line per request on each proxy, with the decision.
        try await mesh.agentProxy.waitUntil("the access log of the denial") {
            mesh.agentProxy.accessLog.contains { $0["tool"] as? String == "delete_repo" }
        }
        let outbound = mesh.agentProxy.accessLog
        let deniedEntry = outbound.first { $0["tool"] as? String == "delete_repo" }
        #expect(deniedEntry?["decision"] as? String == "deny" && deniedEntry?["status"] as? Int == 403, "\(outbound)")
        #expect(deniedEntry?["policy"] as? String == "github-no-writes" && deniedEntry?["agent"] as? String == MCPMesh.agent, "\(outbound)")
        let allowedEntry = outbound.first { $0["tool"] as? String == "echo" }
        #expect(allowedEntry?["decision"] as? String == "allow" && allowedEntry?["upstreamStatus"] as? Int == 200 && allowedEntry?["route"] as? String == "github", "\(outbound)")
        // The serving proxy decided too, on the peer's certificate, and saw the same trace.
        let inbound = mesh.serverProxy.accessLog
        let served = inbound.first { $0["tool"] as? String == "echo" }
        #expect(served?["agent"] as? String == MCPMesh.agent && served?["backend"] as? String == "github" && served?["httpVersion"] as? String == "HTTP/2", "\(inbound)")
        #expect(served?["traceID"] as? String == allowedEntry?["traceID"] as? String, "\(inbound)")
        #expect(!inbound.contains { $0["tool"] as? String == "delete_repo" }, "the denial happened on the calling side")

        // Metrics on the admin port.
        let metrics = try await mesh.agentProxy.get("/metrics").body
        #expect(metrics.contains(#"decision="deny""#) && metrics.contains(#"method="tools/call""#), "\(metrics)")
        #expect(metrics.contains("tether_proxy_mcp_request_duration_seconds_bucket"), "\(metrics)")
    }
}
}

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

/// An HTTP/1.1 request for `slow_count` that asks for progress (so the SDK
/// server answers with an SSE stream, one event per step).
func slowCountRequest(n: Int, port: Int) -> [UInt8] {
    var object = try! JSONSerialization.jsonObject(with: modernRequest(id: 5, method: "tools/call", params: ["name": "slow_count", "arguments": ["n": n]])) as! [String: Any]
    var params = object["params"] as! [String: Any], meta = params["_meta"] as! [String: Any]
    meta["progressToken"] = "stream"
    params["_meta"] = meta
    object["params"] = params
    let body = try! JSONSerialization.data(withJSONObject: object)
    let head = "POST /github HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        + "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: slow_count\r\nContent-Length: \(body.count)\r\n\r\n"
    return Array(head.utf8) + Array(body)
}

extension DataPathTests {
@Suite("MCP data path: streaming and shutdown")
struct DataPathStreamingTests {
    @Test func sseEventsStreamThroughOneByOne() async throws {
        let mesh = try await MCPMesh()
        let socket = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        socket.send(slowCountRequest(n: 20, port: mesh.agentProxy.outboundPort))
        // The head and the first event arrive while the server is still counting:
        // a proxy that buffered the stream would deliver all 20 events and the result at once.
        let first = try await offPool { socket.receive(until: { $0.contains("notifications/progress") }, seconds: 20) }
        #expect(first.hasPrefix("HTTP/1.1 200") && first.lowercased().contains("content-type: text/event-stream"), "\(first)")
        #expect(first.contains("notifications/progress") && !first.contains("counted 20"), "\(first)")
        let rest = try await offPool { socket.receive(until: { $0.contains("counted 20") }, seconds: 20) }
        #expect((first + rest).components(separatedBy: "notifications/progress").count - 1 == 20)
    }

    /// A client that goes away mid-stream ends the whole chain: its task on
    /// the agent's proxy, the mesh stream (reset), and the serving proxy's
    /// request and its upstream connection — nothing keeps streaming to no one.
    @Test func aClientLeavingMidStreamEndsTheStreamOnBothProxies() async throws {
        let mesh = try await MCPMesh()
        func inboundStreams() async throws -> Double? {
            let metrics = try await mesh.serverProxy.get("/metrics").body
            let line = metrics.split(separator: "\n").first { $0.hasPrefix(#"tether_proxy_downstream_active_streams{listener="inbound"}"#) }
            return line?.split(separator: " ").last.flatMap { Double($0) }
        }
        let socket = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        // 600 steps of 50 ms: the server would go on for 30 s.
        socket.send(slowCountRequest(n: 600, port: mesh.agentProxy.outboundPort))
        let first = try await offPool { socket.receive(until: { $0.contains("notifications/progress") }, seconds: 20) }
        #expect(first.contains("notifications/progress"), "\(first)")
        #expect(try await inboundStreams() == 1, "the stream is open on the serving proxy")
        socket.shutdown()
        try await mesh.serverProxy.waitUntil("the serving proxy's stream to end after the client left", seconds: 10) {
            try await inboundStreams() == 0
        }
    }

    @Test func sigtermLetsAStreamInFlightFinishThenExits() async throws {
        let mesh = try await MCPMesh()
        let socket = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        socket.send(slowCountRequest(n: 30, port: mesh.agentProxy.outboundPort))
        let first = try await offPool { socket.receive(until: { $0.contains("notifications/progress") }, seconds: 20) }
        #expect(first.contains("notifications/progress"), "\(first)")
        let proxy = mesh.agentProxy
        let exit = Task { try await offPool { proxy.stop() } }
        let rest = try await offPool { socket.receive(until: { $0.contains("counted 30") }, seconds: 20) }
        #expect(rest.contains("counted 30"), "the stream in flight finished: \(rest)\n\(proxy.log)")
        #expect(try await exit.value == 0, "\(proxy.log)")
        #expect(!isListening(proxy.outboundPort))
    }
}
}

/// A raw TCP client, for what HTTP clients will not do (trickle headers).
final class LoopbackSocket: @unchecked Sendable {
    // @unchecked: used by one task at a time; `fd` never changes.
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw IntegrationError("cannot connect to 127.0.0.1:\(port)") }
    }

    deinit { close(fd) }

    /// Both directions closed, as a client that goes away.
    func shutdown() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// What arrives within `seconds` (empty at end-of-file or on timeout).
    func receive(seconds: Double) -> [UInt8] {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[..<count]) : []
    }

    /// Reads until `done` holds for everything read, at most `seconds`.
    func receive(until done: (String) -> Bool, seconds: Double) -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(seconds)
        while !done(text), Date() < deadline {
            let chunk = receive(seconds: max(0.01, deadline.timeIntervalSinceNow))
            if chunk.isEmpty, !isOpen { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return text
    }

    /// False once the peer closed (a read gives end-of-file or an error).
    var isOpen: Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        if count == 0 { return false }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK }
        return true
    }
}

/// Hot reload under load: policy changes apply to new calls at once, and
/// nothing else notices — no failed call, no restart, no cut stream.
extension DataPathTests {
@Suite("MCP data path: hot reload")
struct DataPathHotReloadTests {
    /// Failures a worker saw; a call denied by the policy in force is not one.
    actor Tally {
        var calls = 0, allowedAdds = 0, deniedAdds = 0
        var failures: [String] = []

        func record(tool: String, _ response: RawResponse) {
            calls += 1
            switch (tool, response.status) {
            case ("echo", 200) where response.body.contains("still here"): break
            case ("add", 200) where response.body.contains("5"): allowedAdds += 1
            case ("add", 403) where response.errorCode == -32003: deniedAdds += 1
            default: failures.append("\(tool): \(response.status) \(response.body.prefix(300))")
            }
        }

        func fail(_ message: String) { failures.append(message) }
    }

    @Test func policyChangesAHundredTimesUnderLoadWithoutAFailedCall() async throws {
        let mesh = try await MCPMesh()
        let pid = try #require(try await mesh.agentProxy.processID())
        let tally = Tally()
        let applying = ManagedFlag()

        // A long SSE response: 80 progress events, 50 ms apart, across the reloads.
        var streamBody = try JSONSerialization.jsonObject(with: modernRequest(id: 99, method: "tools/call", params: ["name": "slow_count", "arguments": ["n": 80]])) as! [String: Any]
        var params = streamBody["params"] as! [String: Any], meta = params["_meta"] as! [String: Any]
        meta["progressToken"] = "reload-stream"
        params["_meta"] = meta
        streamBody["params"] = params
        let stream = Task {
            try await post(mesh.url, body: try JSONSerialization.data(withJSONObject: streamBody), method: "tools/call", name: "slow_count")
        }

        let workers = (0..<4).map { worker in
            Task {
                var id = worker * 100_000
                while applying.isSet || id == worker * 100_000 {
                    id += 1
                    let tool = id % 2 == 0 ? "echo" : "add"
                    let arguments: [String: Any] = tool == "echo" ? ["text": "still here"] : ["a": 2, "b": 3]
                    do {
                        let response = try await post(mesh.url, body: modernRequest(id: id, method: "tools/call", params: ["name": tool, "arguments": arguments]), method: "tools/call", name: tool)
                        await tally.record(tool: tool, response)
                    } catch {
                        await tally.fail("\(tool): \(error)")
                    }
                }
            }
        }
        applying.set(true)
        for change in 0..<100 {
            let file = try mesh.control.file("mesh-\(change).yaml", mesh.config(allowAdd: change % 2 == 1))
            let applied = try await offPool { try mesh.control.cli(["apply", "-f", file]) }
            #expect(applied.status == 0, "\(applied.stderr)")
        }
        applying.set(false)
        for worker in workers { await worker.value }

        let streamed = try await stream.value
        #expect(streamed.status == 200 && streamed.headers["content-type"]?.hasPrefix("text/event-stream") == true, "\(streamed)")
        #expect(streamed.body.components(separatedBy: "notifications/progress").count - 1 == 80, "\(streamed.body)")
        #expect(streamed.body.contains("counted 80"), "\(streamed.body)")

        let failures = await tally.failures
        let (calls, allowed, denied) = await (tally.calls, tally.allowedAdds, tally.deniedAdds)
        #expect(failures.isEmpty, "\(failures.count) of \(calls) calls failed: \(failures.prefix(5))")
        #expect(allowed > 0 && denied > 0, "the policy changes showed: \(allowed) adds allowed, \(denied) denied")
        // The last change (allowAdd: true) comes into force on both proxies.
        try await mesh.agentProxy.waitUntil("the last policy to allow add again") {
            try await post(mesh.url, body: modernRequest(id: 1, method: "tools/call", params: ["name": "add", "arguments": ["a": 2, "b": 3]]), method: "tools/call", name: "add").status == 200
        }
        // Never restarted.
        #expect(try await mesh.agentProxy.processID() == pid)
        #expect(mesh.agentProxy.log.components(separatedBy: "proxy starting").count == 2)
    }
}
}

/// A flag shared between a test and its workers.
final class ManagedFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set(_ new: Bool) { value.withLock { $0 = new } }
}

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
