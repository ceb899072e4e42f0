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
