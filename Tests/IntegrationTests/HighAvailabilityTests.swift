import Foundation
import Synchronization
import Testing

/// Several `tether-control` replicas on one throwaway PostgreSQL cluster:
/// any replica serves any proxy and operator, commits reach every replica's
/// proxies, a killed replica's proxies fail over without a failed MCP call,
/// a database outage is ridden out, concurrent applies and join-token
/// redemptions serialize, a SQLite control plane migrates without its
/// proxies noticing, and no key or credential is in the database in clear.
@Suite("High availability on PostgreSQL", .enabled(if: PostgresCluster.isAvailable), .timeLimit(.minutes(5)))
struct HighAvailabilityTests {
    /// A replica of the control plane on `cluster`, named `name` in `proxies`.
    static func replica(_ name: String, on cluster: PostgresCluster, kek: String, extra: [String] = []) throws -> ControlPlaneProcess {
        try ControlPlaneProcess(arguments: ["--store", cluster.url, "--key-encryption-key-file", kek, "--replica-name", name] + extra)
    }

    /// A key-encryption key file (0600) under `directory`.
    static func keyEncryptionKey(in directory: URL) throws -> String {
        let path = directory.appendingPathComponent("kek-\(UUID().uuidString.prefix(8))").path
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        #expect(FileManager.default.createFile(atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600]))
        return path
    }

    static func proxies(_ control: ControlPlaneProcess) async throws -> [[String: Any]] {
        let result = try await control.run(["proxies", "-o", "json"])
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    /// The revision numbers `history` lists, oldest first.
    static func revisions(_ control: ControlPlaneProcess) async throws -> [Int] {
        try await control.run(["history"]).stdout.split(separator: "\n").dropFirst().compactMap { Int($0.split(separator: " ").first ?? "") }.reversed()
    }

    @Test func anApplyOnOneReplicaReachesEveryProxyAndAKilledReplicaCostsNoCall() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        // 10 s SVIDs: the proxies renew every ~5 s, so renewals are tested through the failover too.
        let ttl = ["--svid-ttl", "10s"]
        let a = try await offPool { try Self.replica("replica-a", on: cluster, kek: try Self.keyEncryptionKey(in: cluster.root), extra: ttl) }
        let kek = a.arguments[a.arguments.firstIndex(of: "--key-encryption-key-file")! + 1]
        let b = try await offPool { try Self.replica("replica-b", on: cluster, kek: kek, extra: ttl) }
        let c = try await offPool { try Self.replica("replica-c", on: cluster, kek: kek, extra: ttl) }
        @Sendable func list(_ replicas: ControlPlaneProcess...) -> String { replicas.map { "127.0.0.1:\($0.xdsPort)" }.joined(separator: ",") }
        // Tokens made on one replica are redeemed on another.
        let server = try await offPool { try MCPServerProcess(root: a.root) }
        let serving = try await offPool { try MCPMesh.join(a, MCPMesh.serving, arguments: [], replicas: list(c, a, b)) }
        let agent = try await offPool { try MCPMesh.join(c, MCPMesh.agent, arguments: [], replicas: list(b, c, a)) }
        let applied = try await offPool { try a.cli(["apply", "-f", try a.file("mesh.yaml", MCPMesh.config(serverProxy: serving, serverPort: server.port, allowAdd: true))]) }
        #expect(applied.status == 0, "\(applied.stderr)")
        for proxy in [agent, serving] {
            try await proxy.waitUntil("the mesh config through replicas B and C", seconds: 30) {
                let ready = try await proxy.get("/ready").status == 200
                let versions = try await proxy.versions()
                return ready && versions["AuthorizationPolicy/github-tools"] != nil
            }
        }
        // Every replica lists both proxies, with the replica each is on.
        try await agent.waitUntil("every replica to list both proxies", seconds: 20) {
            for replica in [a, b, c] {
                let listed = try await Self.proxies(replica).filter { $0["disconnectedAt"] == nil }
                let seen = Set(listed.compactMap { "\($0["node"] ?? "")@\($0["replica"] ?? "")" })
                if seen != ["\(MCPMesh.agent)@replica-b", "\(MCPMesh.serving)@replica-c"] { return false }
            }
            return true
        }
        // An apply on A changes both proxies' policy (they are on B and C).
        let before = try await agent.versions()["AuthorizationPolicy/github-tools"]
        let reapplied = try await offPool { try a.cli(["apply", "-f", try a.file("mesh2.yaml", MCPMesh.config(serverProxy: serving, serverPort: server.port, allowAdd: false))]) }
        #expect(reapplied.status == 0, "\(reapplied.stderr)")
        for proxy in [agent, serving] {
            try await proxy.waitUntil("the new policy through replicas B and C", seconds: 20) {
                try await proxy.versions()["AuthorizationPolicy/github-tools"] != before
            }
        }

        // MCP calls in a loop while the agent's replica dies.
        let loop = CallLoop(url: "http://127.0.0.1:\(agent.outboundPort)/github")
        let running = Task { await loop.run() }
        try await waitFor("the first calls through the mesh", seconds: 20) { loop.succeeded >= 5 }
        let versions = try await agent.allVersions()
        let logBeforeKill = agent.log.count
        let established = agent.log.components(separatedBy: "xDS stream established").count
        let killedAt = Date()
        b.killHard()
        let callsAtKill = loop.succeeded
        try await agent.waitUntil("the agent's proxy to resync through another replica", seconds: 5) {
            agent.log.components(separatedBy: "xDS stream established").count > established
        }
        let resynced = Date().timeIntervalSince(killedAt)
        // The agent renews its SVID through another replica: its first, B, is gone.
        try await agent.waitUntil("an SVID renewal after replica B died", seconds: 15) {
            String(agent.log.dropFirst(logBeforeKill)).contains("SVID rotated")
        }
        #expect(!String(agent.log.dropFirst(logBeforeKill)).contains("SVID renewal failed"), "\(agent.log)")
        // Calls go on through the failover, and after it.
        try await waitFor("20 more calls after the kill", seconds: 60) { loop.succeeded >= callsAtKill + 20 }
        loop.stop()
        await running.value
        #expect(loop.failures.isEmpty, "\(loop.failures.count) of \(loop.succeeded + loop.failures.count) MCP calls failed while a replica died: \(loop.failures.prefix(3))")
        #expect(resynced < 5)
        // Every replica versions the same revision identically: the new one resends nothing.
        #expect(try await agent.allVersions() == versions)
        let sinceKill = String(agent.log.dropFirst(logBeforeKill))
        let counts = sinceKill.split(whereSeparator: \.isWhitespace).filter { $0.hasPrefix("tether.xds.updated=") || $0.hasPrefix("tether.xds.removed=") }
        #expect(!counts.isEmpty && counts.allSatisfy { $0.hasSuffix("=0") }, "the new replica resent resources: \(sinceKill)")
        // The proxy still gets changes: from A, through C or A.
        let third = try await offPool { try a.cli(["apply", "-f", try a.file("mesh3.yaml", MCPMesh.config(serverProxy: serving, serverPort: server.port, allowAdd: true, routeTimeout: "20s"))]) }
        #expect(third.status == 0, "\(third.stderr)")
        try await agent.waitUntil("a change after the failover", seconds: 20) {
            let dump = try await agent.configDump()["resources"] as? [[String: Any]] ?? []
            return dump.contains { "\($0)".contains("20s") || "\($0)".contains("20000") }
        }

        // The killed replica restarts and rejoins: it serves the current state.
        try await offPool { try b.start() }
        await #expect(try Self.revisions(b) == [1, 2, 3])
        try await agent.waitUntil("the restarted replica to list the proxies", seconds: 20) {
            try await Set(Self.proxies(b).filter { $0["disconnectedAt"] == nil }.compactMap { $0["node"] as? String }) == [MCPMesh.agent, MCPMesh.serving]
        }
    }

    @Test func aDatabaseOutageIsRiddenOutAndAppliesDuringItChangeNothing() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        let a = try await offPool { try Self.replica("replica-a", on: cluster, kek: try Self.keyEncryptionKey(in: cluster.root)) }
        let kek = a.arguments[a.arguments.firstIndex(of: "--key-encryption-key-file")! + 1]
        let b = try await offPool { try Self.replica("replica-b", on: cluster, kek: kek) }
        let credential = { @Sendable (value: String) in "{apiVersion: tether.dev/v1alpha1, kind: Credential, metadata: {name: pat}, spec: {value: \(value)}}" }
        #expect(try await a.run(["apply", "-f", "-"], stdin: credential("v1")).status == 0)

        try await offPool { try cluster.stop() }
        let started = Date()
        let failed = try await offPool { try b.cli(["apply", "-f", "-"], stdin: credential("v2")) }
        #expect(failed.status == 1)
        #expect(failed.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("PostgreSQL"), "\(failed.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
        try await Task.sleep(for: .seconds(max(0, 10 - Date().timeIntervalSince(started))))
        try await offPool { try cluster.start() }

        // Both replicas reconnect by themselves; nothing was lost or doubled.
        for (replica, value) in [(a, "v3"), (b, "v4")] {
            try await waitFor("\(replica.arguments.last ?? "") to reach the database again", seconds: 30) {
                try await replica.run(["apply", "-f", "-"], stdin: credential(value)).status == 0
            }
        }
        await #expect(try Self.revisions(a) == [1, 2, 3])
        await #expect(try Self.revisions(b) == [1, 2, 3])
        #expect(try await cluster.query("SELECT count(*) FROM revisions") == "3")
    }

    @Test func simultaneousAppliesSerializeAndAJoinTokenRedeemsOnce() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        let a = try await offPool { try Self.replica("replica-a", on: cluster, kek: try Self.keyEncryptionKey(in: cluster.root)) }
        let kek = a.arguments[a.arguments.firstIndex(of: "--key-encryption-key-file")! + 1]
        let b = try await offPool { try Self.replica("replica-b", on: cluster, kek: kek) }
        let credential = { @Sendable (name: String) in "{apiVersion: tether.dev/v1alpha1, kind: Credential, metadata: {name: \(name)}, spec: {value: secret-\(name)}}" }
        for round in 0..<5 {
            async let first = offPool { try a.cli(["apply", "-f", "-"], stdin: credential("a\(round)")) }
            async let second = offPool { try b.cli(["apply", "-f", "-"], stdin: credential("b\(round)")) }
            let (x, y) = try await (first, second)
            #expect(x.status == 0 && y.status == 0, "\(x.stderr) \(y.stderr)")
        }
        await #expect(try Self.revisions(a) == Array(1...10))
        let history = try await a.run(["history"]).stdout
        for round in 0..<5 {
            #expect(history.contains("Credential/a\(round) created") && history.contains("Credential/b\(round) created"))
        }

        // One token, redeemed at both replicas at once: one SVID.
        let created = try await a.run(["token", "create", "--spiffe-id", "spiffe://example.org/operator/race"])
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let pin = created.stderr.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("sha256:") }.map(String.init) ?? ""
        @Sendable func enroll(_ replica: ControlPlaneProcess) throws -> CommandResult {
            try tetherControl(["operator", "enroll", "--bootstrap", "127.0.0.1:\(replica.bootstrapPort)", "--join-token", token, "--ca-hash", pin,
                               "--operator-dir", replica.root.appendingPathComponent("operator-\(UUID().uuidString.prefix(6))").path])
        }
        async let first = offPool { try enroll(a) }
        async let second = offPool { try enroll(b) }
        let outcomes = try await [first, second]
        #expect(outcomes.filter { $0.status == 0 }.count == 1, "\(outcomes.map(\.stderr))")
        #expect(outcomes.contains { $0.stderr.contains("unknown or was already used") }, "\(outcomes.map(\.stderr))")
        #expect(try await cluster.query("SELECT count(*) FROM issued_certificates WHERE spiffe_id = 'spiffe://example.org/operator/race'") == "1")
    }

    @Test func migrateMovesASQLiteControlPlaneWithoutItsProxiesNoticing() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        let control = try await offPool { try ControlPlaneProcess() }
        let kek = try Self.keyEncryptionKey(in: control.root)
        let proxy = try await offPool { try MCPMesh.join(control, MCPMesh.agent, arguments: []) }
        for index in 1...20 {
            let document = "{apiVersion: tether.dev/v1alpha1, kind: Credential, metadata: {name: pat}, spec: {value: ghp_plaintext_\(index), description: rev \(index)}}"
            #expect(try await control.run(["apply", "-f", "-"], stdin: document).status == 0)
        }
        #expect(try await control.run(["revoke", "spiffe://example.org/agent/gone"]).status == 0)
        try await proxy.waitUntil("the proxy to be ready", seconds: 20) { try await proxy.get("/ready").status == 200 }
        let history = try await control.run(["history"]).stdout
        let resources = try await control.run(["get", "all", "-o", "yaml"]).stdout
        let versions = try await proxy.allVersions()
        await #expect(try Self.revisions(control) == Array(1...20))
        #expect(try await offPool { control.terminate() } == 0)

        let empty = try await runTetherControl(["migrate", "--from", control.dataDirectory, "--to", cluster.url, "--key-encryption-key-file", kek])
        #expect(empty.status == 0, "\(empty.stderr)")
        #expect(empty.stdout.contains("copied 20 revisions"), "\(empty.stdout)")
        let again = try await runTetherControl(["migrate", "--from", control.dataDirectory, "--to", cluster.url, "--key-encryption-key-file", kek])
        #expect(again.status == 1 && again.stderr.contains("not empty"), "\(again.stderr)")

        // Not one key or secret in clear in the database.
        let dump = try await offPool { try cluster.dump() }
        var secrets: [(String, Data)] = (1...20).map { ("credential value \($0)", Data("ghp_plaintext_\($0)".utf8)) }
        secrets.append(("a PEM private key", Data("PRIVATE KEY".utf8)))
        for name in ["ca.key", "jwt.key", "token.key", "token-next.key"] {
            let pem = try String(contentsOfFile: "\(control.dataDirectory)/\(name)", encoding: .utf8)
            for line in pem.split(separator: "\n") where !line.hasPrefix("-----") && line.count >= 32 {
                secrets.append((name, Data(line.utf8)))
            }
        }
        let secretsKey = try Data(contentsOf: URL(fileURLWithPath: "\(control.dataDirectory)/secrets.key"))
        secrets += [("secrets.key", secretsKey), ("secrets.key (base64)", Data(secretsKey.base64EncodedString().utf8))]
        for (what, bytes) in secrets {
            #expect(dump.range(of: bytes) == nil, "the database dump contains \(what) in clear")
        }

        // The same data directory, now a replica on PostgreSQL: same ports.
        control.arguments = ["--store", cluster.url, "--key-encryption-key-file", kek, "--replica-name", "replica-a"]
        try await offPool { try control.start() }
        #expect(try await control.run(["history"]).stdout == history)
        #expect(try await control.run(["get", "all", "-o", "yaml"]).stdout == resources)
        #expect(try await control.run(["revoke", "--list"]).stdout.contains("spiffe://example.org/agent/gone"))
        // The proxy reconnects with the SVID it has, and is resent nothing new.
        try await proxy.waitUntil("the proxy to sync with the PostgreSQL replica", seconds: 30) {
            let listed = try await Self.proxies(control).filter { $0["disconnectedAt"] == nil && $0["node"] as? String == MCPMesh.agent }
            let types = listed.first?["types"] as? [[String: Any]] ?? []
            return !types.isEmpty && types.allSatisfy { $0["state"] as? String == "SYNCED" }
        }
        #expect(try await proxy.allVersions() == versions)
    }

    @Test func theRemoteAdminEndpointServesOnlyOperatorsOnTheList() async throws {
        let adminPort = freePort()
        let control = try await offPool {
            try ControlPlaneProcess(arguments: ["--admin-address", "127.0.0.1:\(adminPort)", "--operator", "spiffe://example.org/operator/alice", "--svid-ttl", "12s"])
        }
        let pin = try await control.run(["bundle", "-o", "ca-hash"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        func enroll(_ name: String) async throws -> String {
            let directory = control.root.appendingPathComponent("operator-\(name)").path
            let token = try await control.run(["token", "create", "--spiffe-id", "spiffe://example.org/operator/\(name)"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let enrolled = try await runTetherControl(["operator", "enroll", "--bootstrap", "127.0.0.1:\(control.bootstrapPort)", "--join-token", token, "--ca-hash", pin, "--operator-dir", directory])
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
            return directory
        }
        func remote(_ directory: String, _ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
            try await runTetherControl(arguments + ["--admin", "127.0.0.1:\(adminPort)", "--operator-dir", directory], stdin: stdin)
        }
        // No client certificate: the TLS handshake fails.
        let anonymous = try await runTool(["curl", "-sSk", "--max-time", "5", "https://127.0.0.1:\(adminPort)/v1/status"], log: control.root.appendingPathComponent("curl.log").path, seconds: 15)
        #expect(anonymous.status != 0, "\(anonymous.output)")
        // A valid SVID that is not on the operator list: 403.
        let bob = try await enroll("bob")
        let refused = try await remote(bob, ["history"])
        #expect(refused.status == 1 && refused.stderr.contains("spiffe://example.org/operator/bob is not an operator"), "\(refused.stderr)")
        // Alice applies; the revision names her.
        let alice = try await enroll("alice")
        let applied = try await remote(alice, ["apply", "-f", "-"], stdin: "{apiVersion: tether.dev/v1alpha1, kind: Credential, metadata: {name: pat}, spec: {value: v1}}")
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(try await remote(alice, ["history"]).stdout.contains("spiffe://example.org/operator/alice"))
        // Past half its lifetime the CLI renews her SVID over the endpoint.
        let before = try String(contentsOfFile: alice + "/svid.pem", encoding: .utf8)
        try await Task.sleep(for: .seconds(7))
        let renewed = try await remote(alice, ["history"])
        #expect(renewed.status == 0, "\(renewed.stderr)")
        #expect(try String(contentsOfFile: alice + "/svid.pem", encoding: .utf8) != before)
    }
}

extension ControlPlaneProcess {
    /// `cli` off the concurrency pool: it waits for a process.
    func run(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
        try await offPool { try self.cli(arguments, stdin: stdin) }
    }
}

extension PostgresCluster {
    func query(_ sql: String) async throws -> String {
        try await offPool { try self.psql(sql) }
    }
}

/// `tetherControl` off the concurrency pool.
func runTetherControl(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
    try await offPool { try tetherControl(arguments, stdin: stdin) }
}

/// MCP `tools/call`s one after another until stopped — by a flag, not by
/// cancellation, which would cancel the call in flight — recording every
/// failure.
final class CallLoop: Sendable {
    let url: String
    private let stopped = Atomic<Bool>(false)
    private let okCount = Atomic<Int>(0)
    private let failed = Mutex<[String]>([])

    init(url: String) { self.url = url }

    var succeeded: Int { okCount.load(ordering: .relaxed) }
    var failures: [String] { failed.withLock { $0 } }
    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() async {
        var id = 0
        while !stopped.load(ordering: .relaxed) {
            id += 1
            do {
                let response = try await post(url, body: modernRequest(id: id, method: "tools/call", params: ["name": "echo", "arguments": ["text": "call \(id)"]]), method: "tools/call", name: "echo")
                if response.status == 200, response.body.contains("call \(id)") {
                    okCount.add(1, ordering: .relaxed)
                } else {
                    let line = "\(Date()): \(response.status) \(response.body.prefix(200))"
                    failed.withLock { $0.append(line) }
                }
            } catch {
                let line = "\(Date()): \(error)"
                failed.withLock { $0.append(line) }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Polls `condition` every 200 ms until it holds, at most `seconds`.
func waitFor(_ what: String, seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw IntegrationError("timed out waiting for \(what)")
}
