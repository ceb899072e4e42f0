import Foundation
import Testing
import TetherCore

/// The control plane and proxies as real processes talking xDS over gRPC.
@Suite("xDS end to end", .serialized)
struct XDSIntegrationTests {
    let example = repositoryRoot.appendingPathComponent("examples/mesh.yaml").path
    let triage = "spiffe://example.org/agent/triage"

    /// A triage proxy, once ready with the whole example applied.
    func readyProxy(_ control: ControlPlaneProcess) async throws -> ProxyProcess {
        let proxy = try await offPool { try ProxyProcess(node: triage, xdsPort: control.xdsPort, root: control.root) }
        try await proxy.waitUntil("the proxy to be ready with the example") {
            let ready = try await proxy.get("/ready").status == 200
            let count = try await proxy.versions().count
            return ready && count == 7
        }
        return proxy
    }

    func exampleText(timeout: String = "30s") throws -> String {
        try String(contentsOfFile: example, encoding: .utf8).replacingOccurrences(of: "timeout: 30s", with: "timeout: \(timeout)")
    }

    @Test func aServingProxyGetsTheRoutesToItsBackendAndIsReady() async throws {
        let control = try await offPool { try ControlPlaneProcess(xds: .insecure) }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let server = try await offPool { try ProxyProcess(node: "spiffe://example.org/mcp/github", xdsPort: control.xdsPort, root: control.root) }
        try await server.waitUntil("the serving proxy to be ready") {
            try await server.get("/ready").status == 200
        }
        // The route (for enforcing its policies) but not what only the calling side uses.
        let versions = try await server.versions()
        #expect(Set(versions.keys) == ["MCPBackend/github", "Route/github", "AuthorizationPolicy/github-read-only", "AuthorizationPolicy/github-no-writes"])
    }

    @Test func configReachesTheProxyAndOnlyChangesTravel() async throws {
        let control = try await offPool { try ControlPlaneProcess(xds: .insecure) }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let proxy = try await readyProxy(control)
        let before = try await proxy.versions()
        #expect(Set(before.keys) == [
            "Route/github", "MCPBackend/github", "IdentityProvider/corp-sso", "TokenExchange/github-pat",
            "Credential/github-pat", "AuthorizationPolicy/github-read-only", "AuthorizationPolicy/github-no-writes",
        ])
        let dump = try await proxy.get("/config_dump").body
        #expect(!dump.contains("github_pat_11AAAAAAA0example0only0replace0me"), "credential values never appear in a config dump")
        #expect(!proxy.log.contains("github_pat_11AAAAAAA0example0only0replace0me"))

        // Change one route: only it travels, and the proxy shows the new version.
        func acceptedLines() -> [Substring] { proxy.log.split(separator: "\n").filter { $0.contains("config accepted") } }
        let accepted = acceptedLines().count
        #expect(try control.cli(["apply", "-f", "-"], stdin: try exampleText(timeout: "45s")).status == 0)
        try await proxy.waitUntil("the route change") { try await proxy.versions()["Route/github"] != before["Route/github"] }
        let after = try await proxy.versions()
        #expect(after.filter { $0.key != "Route/github" } == before.filter { $0.key != "Route/github" })
        try await Task.sleep(for: .milliseconds(300))
        let newLines = acceptedLines().dropFirst(accepted)
        #expect(newLines.count == 1)
        #expect(newLines.first?.contains("tether.config.v1.Route") == true)
        #expect(newLines.first?.contains("tether.xds.updated=1") == true)

        // Delete: removed on the proxy.
        #expect(try control.cli(["delete", "policy", "github-no-writes"]).status == 0)
        try await proxy.waitUntil("the deletion") { try await proxy.versions()["AuthorizationPolicy/github-no-writes"] == nil }

        let proxies = try control.cli(["proxies"])
        #expect(proxies.stdout.contains(triage))
        try await proxy.waitUntil("SYNCED everywhere") {
            let json = try control.cli(["proxies", "-o", "json"]).stdout
            return !json.contains("STALE") && json.contains("SYNCED")
        }
        #expect(proxy.stop() == 0)
        #expect(control.terminate() == 0)
    }

    @Test func aResourceTheProxyCannotUseIsNACKedAndTheLastGoodConfigStays() async throws {
        let control = try await offPool { try ControlPlaneProcess(xds: .insecure) }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let proxy = try await readyProxy(control)
        let good = try await proxy.versions()

        // Valid for the control plane, but the JWKS file is not on the proxy's host.
        let broken = try exampleText().replacingOccurrences(of: "    url: https://login.example.com/.well-known/jwks.json", with: "    file: /nonexistent/tether/jwks.json")
        #expect(try control.cli(["apply", "-f", "-"], stdin: broken).status == 0)
        try await proxy.waitUntil("the NACK to show in tether-control proxies") {
            let table = try control.cli(["proxies"]).stdout
            return table.contains("NACKED") && table.contains("cannot read /nonexistent/tether/jwks.json on this proxy")
        }
        #expect(try await proxy.versions() == good)
        #expect(try await proxy.get("/ready").status == 200)
        #expect(try await proxy.configDump()["lastNACK"] as? String != nil)

        // Fixing it clears the NACK.
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        try await proxy.waitUntil("SYNCED again") {
            let json = try control.cli(["proxies", "-o", "json"]).stdout
            return !json.contains("NACKED") && !json.contains("STALE")
        }
    }

    @Test func aProxyRestartedWhileTheControlPlaneIsDownServesItsCacheAndResyncs() async throws {
        let control = try await offPool { try ControlPlaneProcess(xds: .insecure) }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let proxy = try await readyProxy(control)
        let versions = try await proxy.versions()

        #expect(control.terminate() == 0)
        #expect(proxy.stop() == 0)
        try proxy.start()
        try await proxy.waitUntil("the cached config") { try await proxy.get("/ready").status == 200 }
        #expect(try await proxy.versions() == versions)
        #expect(try await proxy.configDump()["source"] as? String == "cache")

        try control.start()
        try await proxy.waitUntil("the proxy to reconnect", seconds: 30) { try await proxy.configDump()["connected"] as? Bool == true }
        #expect(try control.cli(["apply", "-f", "-"], stdin: try exampleText(timeout: "2m")).status == 0)
        try await proxy.waitUntil("the change after reconnecting") { try await proxy.versions()["Route/github"] != versions["Route/github"] }
        #expect(try await proxy.configDump()["source"] as? String == "xds")
    }

    @Test func anIndependentXDSClientFromEnvoysProtos() throws {
        let control = try ControlPlaneProcess(xds: .insecure)
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repositoryRoot.appendingPathComponent("Tests/IntegrationTests/xds_client.py").path,
            "127.0.0.1:\(control.xdsPort)", triage, tetherControlBinary, control.dataDirectory, example,
        ]
        let output = control.root.appendingPathComponent("python.log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: output)
        try process.run()
        process.waitUntilExit()
        let log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(log.components(separatedBy: "ok: ").count - 1 == 10, "\(log)")
    }
}
