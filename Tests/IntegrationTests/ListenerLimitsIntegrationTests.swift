import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
#if canImport(Glibc)
import Glibc
#endif

let abuseClientScript = repositoryRoot.appendingPathComponent("Tests/IntegrationTests/abuse_client.py").path

/// The listeners under attack and careless clients: each test is the
/// regression test of a defect found that way (issue 13), against the real
/// binaries on loopback.
extension DataPathTests {
@Suite("MCP data path: listener limits")
struct ListenerLimitsIntegrationTests {
    func echo(_ text: String, id: Int = 1) -> Data {
        modernRequest(id: id, method: "tools/call", params: ["name": "echo", "arguments": ["text": text]])
    }

    /// Runs `abuse_client.py` and parses its JSON line.
    func abuse(_ mesh: MCPMesh, _ arguments: [String], seconds: Double = 60) async throws -> [String: Any] {
        let result = try await runTool(["python3", abuseClientScript] + arguments, log: mesh.control.root.appendingPathComponent("abuse-\(UUID().uuidString.prefix(8)).log").path, seconds: seconds)
        let line = result.output.split(separator: "\n").last { $0.hasPrefix("{") } ?? ""
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw IntegrationError("abuse_client.py printed no JSON (exit \(result.status)): \(result.output)")
        }
        return object
    }

    @Test func anOversizedHeaderIsRefusedAtTheAgentAndTheMeshConnectionKeepsServing() async throws {
        let mesh = try await MCPMesh()
        #expect(try await post(mesh.url, body: echo("warm-up"), method: "tools/call", name: "echo").status == 200)
        // Over the header-list limit (32 KiB): refused where it enters, with a JSON-RPC error.
        let oversized = try await post(mesh.url, body: echo("big"), method: "tools/call", name: "echo", headers: ["X-Pad": String(repeating: "a", count: 40_000)])
        #expect(oversized.status == 431 && oversized.errorCode == -32600, "\(oversized)")
        // Under it, the mesh hop carries it (the SDK server's own limit is 16 KiB).
        let carried = try await post(mesh.url, body: echo("padded"), method: "tools/call", name: "echo", headers: ["X-Pad": String(repeating: "a", count: 12_000)])
        #expect(carried.status == 200 && carried.body.contains("padded"), "\(carried)")
        // The next 100 calls all succeed promptly: no call lands on a poisoned connection.
        let started = Date()
        var failures: [String] = []
        for index in 0..<100 {
            let callStarted = Date()
            let response = try await post(mesh.url, body: echo("call \(index)", id: index), method: "tools/call", name: "echo")
            let took = Date().timeIntervalSince(callStarted)
            if response.status != 200 || took > 5 { failures.append("call \(index): \(response.status) after \(took) s") }
        }
        #expect(failures.isEmpty, "\(failures)\nagent proxy:\n\(mesh.agentProxy.log)")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    @Test func theServingProxyClosesAConnectionThatSentAHeaderBlockItCannotDecode() async throws {
        let mesh = try await MCPMesh()
        let svid = "\(mesh.agentProxy.dataDirectory)/svid.pem", key = "\(mesh.agentProxy.dataDirectory)/svid.key"
        // 70,000 bytes: over what the inbound listener's HPACK decoder takes (twice the 32 KiB limit).
        let result = try await abuse(mesh, ["h2-oversized", "--port", "\(mesh.serverProxy.inboundPort)", "--cert", svid, "--key", key, "--pad", "70000"])
        #expect(result["first_status"] as? Int == 200, "\(result)\n\(mesh.serverProxy.log)")
        // A GOAWAY that names stream 1 as the last one processed — stream 3 may be retried — and the connection closed.
        #expect((result["goaway_last_stream_ids"] as? [Int])?.contains(1) == true, "\(result)")
        #expect(result["closed"] as? Bool == true && (result["closed_after"] as? Double ?? 99) < 5, "\(result)")
        #expect(mesh.serverProxy.log.contains("closing an HTTP/2 connection after a connection error"), "\(mesh.serverProxy.log)")
        // The agent's own pooled connection to that proxy is unaffected.
        #expect(try await post(mesh.url, body: echo("after"), method: "tools/call", name: "echo").status == 200)
    }

    @Test func connectionsThatSendNothingAreClosedAtTheHandshakeTimeout() async throws {
        let mesh = try await MCPMesh(proxyArguments: ["--handshake-timeout", "3"])
        // 2,000 on the inbound listener (reachable before any identity is checked)…
        let inbound = try await abuse(mesh, ["idle", "--port", "\(mesh.serverProxy.inboundPort)", "--count", "2000", "--seconds", "20"])
        #expect(inbound["closed"] as? Int == 2000, "\(inbound)")
        #expect((inbound["last_closed_after"] as? Double ?? 99) < 10, "\(inbound)")
        // …and some on the outbound one, where the first bytes must come within it too.
        let outbound = try await abuse(mesh, ["idle", "--port", "\(mesh.agentProxy.outboundPort)", "--count", "200", "--seconds", "20"])
        #expect(outbound["closed"] as? Int == 200, "\(outbound)")
        #expect(try await post(mesh.url, body: echo("still serving"), method: "tools/call", name: "echo").status == 200)
        let metrics = try await mesh.serverProxy.get("/metrics").body
        #expect(metrics.contains(#"reason="handshake_timeout""#), "\(metrics)")
    }

    @Test func outOfFileDescriptorsTheProxyBacksOffLogsOnceAndKeepsServing() async throws {
        let mesh = try await MCPMesh(proxyArguments: ["--handshake-timeout", "60"])
        let pid = try #require(try await mesh.agentProxy.processID())
        // An established keep-alive connection, and the pooled mesh connection, before the limit bites.
        let client = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        let request = { (text: String) -> [UInt8] in
            let body = String(decoding: self.echo(text), as: UTF8.self)
            return Array("""
                POST /github HTTP/1.1\r
                Host: 127.0.0.1\r
                Content-Type: application/json\r
                Accept: application/json, text/event-stream\r
                MCP-Protocol-Version: 2026-07-28\r
                Mcp-Method: tools/call\r
                Mcp-Name: echo\r
                Content-Length: \(body.utf8.count)\r
                \r
                \(body)
                """.utf8)
        }
        client.send(request("before"))
        #expect(client.receive(until: { $0.contains("before") }, seconds: 10).contains("200 OK"))
        let limited = try await runTool(["prlimit", "--pid", "\(pid)", "--nofile=128:128"], log: mesh.control.root.appendingPathComponent("prlimit.log").path, seconds: 10)
        #expect(limited.status == 0, "\(limited.output)")

        // More connections than descriptors: they wait in the backlog while accept fails.
        async let flood = abuse(mesh, ["idle", "--port", "\(mesh.agentProxy.outboundPort)", "--count", "400", "--seconds", "8"])
        try await Task.sleep(for: .seconds(2))
        let cpuBefore = try cpuSeconds(pid)
        try await Task.sleep(for: .seconds(3))
        let cpu = try cpuSeconds(pid) - cpuBefore
        #expect(cpu / 3 < 0.1, "the proxy used \(Int(cpu / 3 * 100)) % of a CPU while out of descriptors")
        // The established connection is still served.
        client.send(request("during"))
        #expect(client.receive(until: { $0.contains("during") }, seconds: 10).contains("200 OK"), "\(mesh.agentProxy.log)")
        _ = try await flood
        let lines = mesh.agentProxy.log.components(separatedBy: "cannot accept connections").count - 1
        #expect(lines >= 1 && lines <= 2, "logged \(lines) times:\n\(mesh.agentProxy.log)")
    }

    @Test func aRefusedFourMebibyteBatchDoesNotInflateMemory() async throws {
        let mesh = try await MCPMesh()
        let pid = try #require(try await mesh.agentProxy.processID())
        #expect(try await post(mesh.url, body: echo("warm-up"), method: "tools/call", name: "echo").status == 200)
        let one = String(decoding: echo("x"), as: UTF8.self)
        var batch = "["
        while batch.utf8.count + 2 * one.utf8.count + 3 < 4 * 1024 * 1024 { batch += one + "," }
        batch += one + "]"
        let before = try memory(pid)
        // Peak RSS (VmHWM) starts again from the current RSS.
        try "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
        let refused = try await post(mesh.url, body: Data(batch.utf8), method: "tools/call", name: "echo")
        #expect(refused.status == 400 && refused.errorCode == -32600, "\(refused)")
        let peak = try memory(pid).peak
        #expect(peak - before.rss < 40 * 1024 * 1024, "peak RSS rose by \((peak - before.rss) >> 20) MiB")
        try await Task.sleep(for: .seconds(1))
        let after = try memory(pid).rss
        #expect(Double(after) < Double(before.rss) * 1.1, "RSS \(before.rss >> 20) MiB before, \(after >> 20) MiB after")
    }

    @Test func bodiesThatStopShortAndIdleConnectionsTimeOut() async throws {
        let mesh = try await MCPMesh(proxyArguments: ["--request-body-timeout", "2", "--idle-timeout", "3"])
        // A body that stops short: 408 with a JSON-RPC error, then the connection closes.
        let short = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        short.send(Array("POST /github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"".utf8))
        let started = Date()
        let answer = short.receive(until: { $0.contains("}}") }, seconds: 10)
        #expect(answer.hasPrefix("HTTP/1.1 408") && answer.contains("-32600"), "\(answer)")
        #expect(Date().timeIntervalSince(started) < 6)
        try await mesh.agentProxy.waitUntil("the connection to close", seconds: 5) { !short.isOpen }

        // An idle HTTP/1.1 keep-alive connection closes at the idle timeout.
        let idle = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        let body = String(decoding: echo("keep-alive"), as: UTF8.self)
        idle.send(Array("POST /github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        #expect(idle.receive(until: { $0.contains("keep-alive\"") || $0.contains("keep-alive\\\"") }, seconds: 10).contains("200 OK"))
        let idleSince = Date()
        try await mesh.agentProxy.waitUntil("the idle connection to close", seconds: 10) { !idle.isOpen }
        let idleFor = Date().timeIntervalSince(idleSince)
        #expect(idleFor > 2 && idleFor < 8, "closed after \(idleFor) s")

        // The agent's pooled mesh connection went idle too, and the serving proxy closed it
        // with GOAWAY: the next call goes on a new connection without a failure.
        #expect(try await post(mesh.url, body: echo("after idle"), method: "tools/call", name: "echo").status == 200)

        // An idle h2c connection: GOAWAY, then closed.
        let h2c = try await abuse(mesh, ["h2c-idle", "--port", "\(mesh.agentProxy.outboundPort)", "--seconds", "15"])
        #expect(h2c["goaway"] as? Bool == true && h2c["closed"] as? Bool == true && (h2c["closed_after"] as? Double ?? 99) < 8, "\(h2c)")
    }

    @Test func upstreamErrorsEchoTheRequestIDAndNameTheCauseWithoutInternals() async throws {
        let mesh = try await MCPMesh()
        mesh.server.stop()
        let failed = try await post(mesh.url, body: echo("nobody home", id: 42), method: "tools/call", name: "echo")
        let object = try JSONSerialization.jsonObject(with: Data(failed.body.utf8)) as? [String: Any] ?? [:]
        let message = (object["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(failed.status == 502 && failed.errorCode == -32004, "\(failed)")
        #expect(object["id"] as? Int == 42, "JSON-RPC 2.0 §5: the error answers request 42: \(failed.body)")
        #expect(message.contains("github") && message.contains("connection refused"), "\(message)")
        for internalName in ["SingleConnectionFailure", "IOError", "NIO", "Optional("] {
            #expect(!message.contains(internalName), "\(message)")
        }
    }

    @Test func connectGets405AWellFormedResponseAndTheConnectionCloses() async throws {
        let mesh = try await MCPMesh()
        let socket = try LoopbackSocket(port: mesh.agentProxy.outboundPort)
        socket.send(Array("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n".utf8))
        let answer = socket.receive(until: { $0.contains("}}") }, seconds: 10)
        #expect(answer.hasPrefix("HTTP/1.1 405"), "\(answer)")
        #expect(answer.lowercased().contains("content-length:") && answer.contains("-32600"), "\(answer)")
        try await mesh.agentProxy.waitUntil("the connection to close", seconds: 5) { !socket.isOpen }
    }

    @Test func tls12OffersOnlyAEADSuites() async throws {
        let mesh = try await MCPMesh()
        let svid = "\(mesh.agentProxy.dataDirectory)/svid.pem", key = "\(mesh.agentProxy.dataDirectory)/svid.key"
        func handshake(_ cipher: String) async throws -> String {
            try await runTool(
                ["sh", "-c", "openssl s_client -connect 127.0.0.1:\(mesh.serverProxy.inboundPort) -tls1_2 -cipher \(cipher) -cert \(svid) -key \(key) </dev/null 2>&1"],
                log: mesh.control.root.appendingPathComponent("s_client-\(cipher).log").path, seconds: 20
            ).output
        }
        let aead = try await handshake("ECDHE-ECDSA-AES128-GCM-SHA256")
        #expect(aead.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "\(aead)")
        for weak in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"] {
            let output = try await handshake(weak)
            #expect(!output.contains("Cipher is \(weak)") && output.contains("Cipher is (NONE)"), "\(weak): \(output)")
        }
    }

    /// User plus system CPU time of a process so far.
    func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the command name (which may contain spaces): utime is the 12th, stime the 13th.
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Current and peak resident memory of a process, in bytes.
    func memory(_ pid: Int32) throws -> (rss: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }
}
}
