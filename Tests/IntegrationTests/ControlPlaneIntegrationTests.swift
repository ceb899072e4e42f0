import Foundation
import GRDB
import Testing
import TetherCore

/// These tests start the real `tether-control run` binary and drive it with
/// the real CLI, as an operator would.
@Suite("tether-control end to end", .serialized)
struct ControlPlaneIntegrationTests {
    let example = repositoryRoot.appendingPathComponent("examples/mesh.yaml").path
    let pat = "github_pat_11AAAAAAA0example0only0replace0me"

    @Test func applyGetDiffHistoryRollback() throws {
        let server = try ControlPlaneProcess()

        let apply = try server.cli(["apply", "-f", example])
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("Route/github created"))
        #expect(apply.stdout.contains("revision 1"))

        // Read back: the stored config is the example, minus the secret.
        let yaml = try server.cli(["get", "all", "-o", "yaml"])
        #expect(yaml.status == 0)
        let stored = try ConfigParser.parse([ConfigSource(name: "get", text: yaml.stdout)]).map(\.resource)
        let expected = try ConfigParser.parse([ConfigSource(name: "example", text: String(contentsOfFile: example, encoding: .utf8))])
            .map { $0.resource.redactingSecrets() }
        #expect(Set(stored) == Set(expected))
        for format in ["yaml", "json", "table"] {
            let output = try server.cli(["get", "credentials", "-o", format])
            #expect(output.status == 0)
            #expect(output.stdout.contains("github-pat"))
            #expect(!output.stdout.contains(pat))
        }
        let table = try server.cli(["get", "routes"])
        #expect(table.stdout.contains("/github"))
        #expect(try server.cli(["get", "route", "nope"]).status == 1)

        // Re-applying is a no-op; diff agrees.
        #expect(try server.cli(["apply", "-f", example]).stdout.contains("Route/github unchanged"))
        #expect(try server.cli(["diff", "-f", example]).status == 0)

        // A change shows as a unified diff (exit 1), then applies as revision 2.
        let changed = try server.file("changed.yaml", try String(contentsOfFile: example, encoding: .utf8).replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s"))
        let diff = try server.cli(["diff", "-f", changed])
        #expect(diff.status == 1)
        #expect(diff.stdout.contains("-  timeout: 30s\n+  timeout: 45s"))
        #expect(diff.stdout.contains("--- stored/Route/github (revision 1)"))
        let applied = try server.cli(["apply", "-f", changed]).stdout
        #expect(applied.contains("Route/github configured\n"))
        #expect(applied.hasSuffix("revision 2\n"))

        let history = try server.cli(["history"])
        #expect(history.stdout.contains("Route/github configured"))
        #expect(history.stdout.contains("unix:"))

        let rollback = try server.cli(["rollback", "1"])
        #expect(rollback.status == 0)
        #expect(rollback.stdout.contains("Route/github configured"))
        #expect(rollback.stdout.contains("revision 3"))
        #expect(try server.cli(["diff", "-f", example]).status == 0)
        #expect(try server.cli(["history"]).stdout.contains("rollback to 1"))

        // Delete by name is refused while referenced; works once unreferenced.
        let refused = try server.cli(["delete", "backend", "github"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("still referenced by"))
        #expect(try server.cli(["delete", "policy", "github-no-writes"]).status == 0)
        #expect(try server.cli(["delete", "-f", example]).status == 1, "already deleted policy: not found")

        #expect(server.terminate() == 0)
    }

    @Test func badInputIsReportedWithFileLineAndFieldAndChangesNothing() throws {
        let server = try ControlPlaneProcess()
        #expect(try server.cli(["apply", "-f", example]).status == 0)
        let bad = try server.file("bad.yaml", """
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata:
              name: github
            spec:
              agents: ["spiffe://example.org/agent/triage"]
              path: /github
              backend: gitlab
              timeout: 1 minute
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Credential
            metadata:
              name: other
            spec:
              value: fine
            """)
        let result = try server.cli(["apply", "-f", bad])
        #expect(result.status == 1)
        #expect(result.stderr.contains("error: the config has 1 error; nothing was changed"))
        #expect(result.stderr.contains("bad.yaml:9:12: Route/github: spec.timeout: \"1 minute\" contains spaces"))
        // With the syntax fixed, the dangling reference is reported.
        let dangling = try server.file("dangling.yaml", try String(contentsOfFile: bad, encoding: .utf8).replacingOccurrences(of: "1 minute", with: "1m"))
        let second = try server.cli(["apply", "-f", dangling])
        #expect(second.status == 1)
        #expect(second.stderr.contains("dangling.yaml:8:12: Route/github: spec.backend: MCPBackend \"gitlab\" does not exist"))
        #expect(try server.cli(["get", "credential", "other"]).status == 1)
        #expect(try server.cli(["history"]).stdout.split(separator: "\n").count == 2)

        // Offline validation needs no server and reports the same errors.
        let offline = try tetherControl(["validate", "-f", bad])
        #expect(offline.status == 1)
        #expect(offline.stderr.contains("bad.yaml:9:12"))
        #expect(try tetherControl(["validate", "-f", example]).stdout == "7 resources valid\n")
        #expect(try server.cli(["apply", "-f", "/nonexistent.yaml"]).stderr == "error: cannot read /nonexistent.yaml: no such file or directory\n")
        #expect(try server.cli(["get", "widgets"]).stderr.hasPrefix("error: unknown kind \"widgets\""))
    }

    @Test func explainReportsTheDecidingRuleWithCanIExitCodes() throws {
        let server = try ControlPlaneProcess()
        #expect(try server.cli(["apply", "-f", example]).status == 0)
        let base = ["explain", "--agent", "spiffe://example.org/agent/triage", "--route", "github", "--claim", "groups=engineering"]
        let allowed = try server.cli(base + ["--method", "tools/call", "--tool", "get_issue"])
        #expect(allowed.status == 0 && allowed.stdout.hasPrefix("ALLOW") && allowed.stdout.contains("github-read-only, rule 2"), "\(allowed)")
        let denied = try server.cli(base + ["--method", "tools/call", "--tool", "delete_repo"])
        #expect(denied.status == 1 && denied.stdout.contains("DENY  denied by AuthorizationPolicy github-no-writes, rule 1"), "\(denied)")
        let tooDeep = try server.cli(base + ["--method", "tools/list", "--actor", "spiffe://example.org/agent/a", "--actor", "spiffe://example.org/agent/b", "-o", "json"])
        #expect(tooDeep.status == 1 && tooDeep.stdout.contains(#""verdict" : "deny""#) && tooDeep.stdout.contains("3 agents deep"), "\(tooDeep)")
        let bad = try server.cli(base + ["--method", "tools/destroy"])
        #expect(bad.status == 2 && bad.stderr.contains("is not an MCP method"), "\(bad)")
    }

    @Test func stdinAndDirectoriesAreSources() throws {
        let server = try ControlPlaneProcess()
        let piped = try server.cli(["apply", "-f", "-"], stdin: try String(contentsOfFile: example, encoding: .utf8))
        #expect(piped.status == 0, "\(piped.stderr)")
        let dir = server.root.appendingPathComponent("configs")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try credential("from-dir-a", "a").write(to: dir.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try credential("from-dir-b", "b").write(to: dir.appendingPathComponent("b.yml"), atomically: true, encoding: .utf8)
        try "ignored".write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let result = try server.cli(["apply", "-f", dir.path, "--dry-run"])
        #expect(result.stdout == "Credential/from-dir-a created (dry run)\nCredential/from-dir-b created (dry run)\n")
    }

    @Test func joinTokensArePrintedOnceAndStoredOnlyAsHashes() throws {
        let server = try ControlPlaneProcess()
        let created = try server.cli(["token", "create", "--spiffe-id", "spiffe://example.org/agent/triage", "--ttl", "5m"])
        #expect(created.status == 0, "\(created.stderr)")
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("tjt.") && token.count > 40)
        #expect(created.stderr.contains("single use"))
        let database = ["", "-wal"].reduce(into: Data()) { $0 += FileManager.default.contents(atPath: server.dataDirectory + "/tether.db" + $1) ?? Data() }
        #expect(database.range(of: Data(token.utf8)) == nil)
        let wrongDomain = try server.cli(["token", "create", "--spiffe-id", "spiffe://other.org/agent/triage"])
        #expect(wrongDomain.status == 1)
        #expect(wrongDomain.stderr.contains("is not in trust domain example.org"))
        // The generated CA: certificate readable, key for the owner only.
        let key = try FileManager.default.attributesOfItem(atPath: server.dataDirectory + "/ca.key")
        #expect((try FileManager.default.attributesOfItem(atPath: server.dataDirectory + "/jwt.key")[.posixPermissions] as? Int ?? 0) & 0o077 == 0)
        #expect((key[.posixPermissions] as? Int ?? 0) & 0o077 == 0)
        #expect(FileManager.default.fileExists(atPath: server.dataDirectory + "/ca.pem"))
    }

    @Test func aStoppedControlPlaneGivesOneClearLine() throws {
        let server = try ControlPlaneProcess()
        #expect(server.terminate() == 0)
        let result = try server.cli(["get", "routes"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: cannot reach the control plane at"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func twoCLIProcessesApplyingConcurrentlySerializeWithoutLoss() async throws {
        let server = try ControlPlaneProcess()
        let perWriter = 15
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in ["a", "b"] {
                group.addTask {
                    for index in 0..<perWriter {
                        let result = try server.cli(["apply", "-f", "-"], stdin: credential("\(writer)-\(index)", "v-\(writer)-\(index)") + "\n---\n" + credential("\(writer)-last", "v\(index)", description: "\(index)"))
                        guard result.status == 0 else { throw IntegrationError("apply failed: \(result.stderr)") }
                    }
                }
            }
            try await group.waitForAll()
        }
        let history = try server.cli(["history", "--limit", "100"])
        #expect(history.stdout.split(separator: "\n").count == 1 + 2 * perWriter)
        let json = try server.cli(["get", "credentials", "-o", "json"])
        let names = try ConfigParser.parse([ConfigSource(name: "get", text: json.stdout)]).map(\.resource.metadata.name)
        #expect(names.count == 2 * perWriter + 2)
        for writer in ["a", "b"] {
            let last = try server.cli(["get", "credential", "\(writer)-last", "-o", "yaml"])
            #expect(last.stdout.contains("description: '\(perWriter - 1)'"))
        }
    }

    /// SIGKILL mid-loop, restart, and check nothing committed was lost and
    /// nothing uncommitted half-landed.
    @Test func killedDuringAnApplyLoopTheDatabaseStaysConsistent() async throws {
        let server = try ControlPlaneProcess()
        #expect(try server.cli(["apply", "-f", example]).status == 0)
        // Each apply changes two resources to the same counter; a partial
        // revision would leave them different.
        func document(_ counter: Int) -> String {
            credential("loop-a", "secret-\(counter)", description: "\(counter)") + "\n---\n" + credential("loop-b", "secret-\(counter)", description: "\(counter)")
        }
        var acknowledged: [Int64: Int] = [:]
        var failures = 0
        for counter in 0..<200 {
            if counter == 60 || counter == 140 {
                // Kill while the next apply is in flight, then restart.
                let killer = Task.detached {
                    usleep(UInt32.random(in: 0...15_000))
                    server.killHard()
                }
                _ = try? server.cli(["apply", "-f", "-"], stdin: document(counter))
                await killer.value
                try server.start()
                continue
            }
            let result = try server.cli(["apply", "-f", "-"], stdin: document(counter))
            if result.status == 0, let line = result.stdout.split(separator: "\n").last, line.hasPrefix("revision "), let revision = Int64(line.dropFirst(9)) {
                acknowledged[revision] = counter
            } else {
                failures += 1
            }
        }
        #expect(failures == 0)
        #expect(acknowledged.count >= 198)
        #expect(server.terminate() == 0)

        let queue = try DatabaseQueue(path: server.dataDirectory + "/tether.db")
        let committed = acknowledged
        try await queue.read { db in
            #expect(try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok")
            let latest = try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM revisions") ?? 0
            // Every acknowledged revision is there, with both resources at its counter.
            for (revision, counter) in committed {
                let descriptions = try String.fetchAll(db, sql: "SELECT document FROM resource_versions WHERE revision = ? ORDER BY name", arguments: [revision])
                #expect(descriptions.count == 2)
                #expect(descriptions.allSatisfy { $0.contains("\"description\":\"\(counter)\"") })
            }
            // The latest revision is complete: both resources changed together.
            let latestChanges = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resource_versions WHERE revision = ?", arguments: [latest]) ?? 0
            #expect(latestChanges == 2)
            let current = try String.fetchAll(db, sql: "SELECT document FROM resources WHERE name IN ('loop-a', 'loop-b')")
            #expect(current.count == 2)
            let counters = Set(current.map { document in
                document.range(of: "\"description\":\"[0-9]+\"", options: .regularExpression).map { String(document[$0]) }
            })
            #expect(counters.count == 1)
            // Every revision has at least one change and revisions are dense.
            let empty = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM revisions r WHERE NOT EXISTS (SELECT 1 FROM resource_versions v WHERE v.revision = r.number)") ?? -1
            #expect(empty == 0)
        }
    }
}

func credential(_ name: String, _ value: String, description: String? = nil) -> String {
    """
    apiVersion: tether.dev/v1alpha1
    kind: Credential
    metadata:
      name: \(name)
    spec:
      value: \(value)\(description.map { "\n  description: '\($0)'" } ?? "")
    """
}
