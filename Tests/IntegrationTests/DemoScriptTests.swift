import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `scripts/demo.sh`: one command brings up a whole local mesh, the calls
/// it prints behave as it says, and `down` leaves nothing behind.
extension DataPathTests {
@Suite("The one-command demo")
struct DemoScriptTests {
    /// Whether a process runs: an exited one that nobody reaped yet (a
    /// zombie, the script that started it having ended) does not.
    static func running(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.range(of: ") ", options: .backwards) else { return false }
        return !stat[close.upperBound...].hasPrefix("Z")
    }

    /// A port base whose demo ports are all free now.
    static func freeBase() -> Int {
        let offsets = [12, 13, 14, 80, 100, 106, 200, 201]
        while true {
            let base = Int.random(in: 20_000...50_000)
            if !offsets.contains(where: { isListening(base + $0) }) { return base }
        }
    }

    @Test func upPrintsCallsThatBehaveAsItSaysAndDownLeavesNothing() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tether-demo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("demo").path
        let base = Self.freeBase()
        let script = repositoryRoot.appendingPathComponent("scripts/demo.sh").path
        func demo(_ command: String) async throws -> (status: Int32, output: String) {
            try await runTool(
                ["TETHER_DEMO_DIR=\(directory)", "TETHER_DEMO_PORT_BASE=\(base)", "TETHER_BIN=\(productsDirectory.path)", "bash", script, command],
                log: root.appendingPathComponent("demo-\(command).log").path, seconds: 120
            )
        }
        let started = Date()
        let up = try await demo("up")
        let logs = { (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/logs"))?.joined(separator: ", ") ?? "none" }
        #expect(up.status == 0, "\(up.output)")
        #expect(Date().timeIntervalSince(started) < 60, "the demo took \(Date().timeIntervalSince(started)) s to come up")
        #expect(up.output.contains("http://127.0.0.1:\(base + 201)/demo") && up.output.contains("scripts/demo.sh down"), "\(up.output)")
        #expect(logs().contains("control-plane.log") && logs().contains("agent-proxy.log") && logs().contains("mcp-server.log"), "each process logs to its own file: \(logs())")
        let pids = try String(contentsOfFile: "\(directory)/pids", encoding: .utf8).split(separator: "\n").compactMap { Int32($0.split(separator: " ").first ?? "") }
        #expect(pids.count == 4)

        // The calls it prints: allowed, denied, a filtered listing.
        let url = "http://127.0.0.1:\(base + 201)/demo"
        let user = ["Authorization": "Bearer " + (try String(contentsOfFile: "\(directory)/idp/user.jwt", encoding: .utf8))]
        func call(_ tool: String, _ arguments: [String: Any] = [:]) async throws -> RawResponse {
            try await post(url, body: modernRequest(id: 1, method: "tools/call", params: ["name": tool, "arguments": arguments]), method: "tools/call", name: tool, headers: user)
        }
        let echo = try await call("echo", ["text": "hello"])
        #expect(echo.status == 200 && echo.body.contains("hello"), "\(echo)")
        let whoami = try await call("whoami")
        #expect(whoami.status == 200 && whoami.body.contains("Bearer ") && !whoami.body.contains(user["Authorization"]!.dropFirst(7)), "the server gets a minted token, never the user's: \(whoami)")
        let denied = try await call("delete_repo", ["name": "acme/app"])
        #expect(denied.status == 403 && denied.errorCode == -32003 && denied.body.contains("demo-no-deletes"), "\(denied)")
        let listing = try await post(url, body: modernRequest(id: 2, method: "tools/list"), method: "tools/list", headers: user)
        #expect(listing.status == 200 && listing.body.contains("\"echo\"") && !listing.body.contains("delete_repo"), "\(listing)")

        // The live policy change it prints.
        let mesh = try String(contentsOfFile: "\(directory)/mesh.yaml", encoding: .utf8)
        try mesh.replacingOccurrences(of: "tools: [echo, add, whoami]", with: "tools: [add, whoami]").write(toFile: "\(directory)/mesh-no-echo.yaml", atomically: true, encoding: .utf8)
        let applied = try await runTool(
            ["\(productsDirectory.path)/tether-control", "apply", "-f", "\(directory)/mesh-no-echo.yaml", "--data-dir", "\(directory)/control"],
            log: root.appendingPathComponent("apply.log").path, seconds: 30
        )
        #expect(applied.status == 0, "\(applied.output)")
        var nowDenied = false
        for _ in 0..<100 where !nowDenied {
            nowDenied = try await call("echo", ["text": "hello"]).status == 403
            if !nowDenied { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(nowDenied, "the policy change did not reach the agent's proxy within 10 s")

        let down = try await demo("down")
        #expect(down.status == 0, "\(down.output)")
        for pid in pids { #expect(!Self.running(pid), "process \(pid) is still running") }
        #expect(!FileManager.default.fileExists(atPath: directory))
        // `up` twice does not trip over a leftover: `up` again, then `down`.
        let again = try await demo("up")
        #expect(again.status == 0, "\(again.output)")
        let again2 = try await demo("up")
        #expect(again2.status == 0, "a second up replaces the first: \(again2.output)")
        #expect(try await demo("down").status == 0)
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
}
