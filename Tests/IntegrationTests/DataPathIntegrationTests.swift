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
