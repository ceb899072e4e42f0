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
