import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `tether-proxy run` against a test control plane, with its own data
/// directory and admin port. Killed when released.
final class ProxyProcess: @unchecked Sendable {
    // @unchecked: `process` changes only in start()/stop(), called by the
    // owning test from one task at a time.
    let xdsPort: Int
    let control: String
    let adminPort: Int
    /// The data-path listeners, on free loopback ports.
    let outboundPort: Int
    let inboundPort: Int
    /// The JSON access log, one line per MCP request.
    let accessLogPath: String
    /// Added to the command line.
    var extraArguments: [String]
    let dataDirectory: String
    let logPath: String
    /// How it gets its identity: `--insecure-xds --node-id …` or a join.
    var identityArguments: [String]
    /// Added to the inherited environment.
    var environment: [String: String] = [:]
    private var process: Process?

    /// Plaintext xDS as `node` (`--insecure-xds`).
    convenience init(node: String, xdsPort: Int, root: URL) throws {
        try self.init(xdsPort: xdsPort, root: root, identity: ["--insecure-xds", "--node-id", node])
    }

    /// `control`: the `--control` value, by default 127.0.0.1:`xdsPort`.
    init(xdsPort: Int, root: URL, identity: [String], environment: [String: String] = [:], arguments: [String] = [], control: String? = nil, waitForAdmin: Bool = true) throws {
        self.xdsPort = xdsPort
        self.control = control ?? "127.0.0.1:\(xdsPort)"
        identityArguments = identity
        self.environment = environment
        extraArguments = arguments
        adminPort = freePort()
        outboundPort = freePort()
        inboundPort = freePort()
        // Short: the Workload API socket lives in it, and socket paths are limited to 107 bytes.
        let directory = root.appendingPathComponent("proxy-\(UUID().uuidString.prefix(8))")
        dataDirectory = directory.path
        logPath = directory.path + ".log"
        accessLogPath = directory.path + ".access.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        try start(waitForAdmin: waitForAdmin)
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Starts the proxy and, unless told otherwise, waits (at most 20 s)
    /// for its admin endpoint.
    func start(waitForAdmin: Bool = true) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tetherProxyBinary)
        process.arguments = [
            "run", "--control", control, "--data-dir", dataDirectory, "--admin-address", "127.0.0.1:\(adminPort)",
            "--outbound-address", "127.0.0.1:\(outboundPort)", "--inbound-address", "127.0.0.1:\(inboundPort)", "--access-log", accessLogPath,
        ] + identityArguments + extraArguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        while waitForAdmin, Date() < deadline, !isListening(adminPort) {
            guard process.isRunning else { throw IntegrationError("tether-proxy exited: \(self.log)") }
            usleep(50_000)
        }
    }

    /// Waits (at most `seconds`) for the process to exit by itself.
    func exitStatus(within seconds: Double = 20) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while let process, process.isRunning {
            guard Date() < deadline else { throw IntegrationError("tether-proxy did not exit; log:\n\(log)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process?.terminationStatus ?? -1
    }

    /// The running process's PID (nil when stopped).
    func processID() async throws -> Int32? {
        guard let process, process.isRunning else { return nil }
        return process.processIdentifier
    }

    func stop() -> Int32 {
        guard let process else { return -1 }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The access-log records written so far.
    var accessLog: [[String: Any]] {
        let text = (try? String(contentsOfFile: accessLogPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func get(_ path: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(adminPort)\(path)")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// The parsed `/config_dump`.
    func configDump() async throws -> [String: Any] {
        let (_, body) = try await get("/config_dump")
        return try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
    }

    /// `Kind/name` → version in the config dump, of the applied resources
    /// (not the trust bundle the control plane publishes).
    func versions() async throws -> [String: String] {
        try await allVersions().filter { !$0.key.hasPrefix("TrustBundle/") }
    }

    /// `Kind/name` → version of everything in the config dump.
    func allVersions() async throws -> [String: String] {
        let entries = try await configDump()["resources"] as? [[String: Any]] ?? []
        var result: [String: String] = [:]
        for entry in entries {
            guard let resource = entry["resource"] as? [String: Any], let kind = resource["kind"] as? String,
                let name = (resource["metadata"] as? [String: Any])?["name"] as? String
            else { continue }
            result["\(kind)/\(name)"] = entry["version"] as? String
        }
        return result
    }

    /// Polls (every 50 ms, at most `seconds`) until `condition` holds. The
    /// default is generous: on a loaded 2-core CI machine a proxy that is
    /// fine may need more than a few seconds.
    func waitUntil(_ what: String, seconds: Double = 30, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw IntegrationError("timed out waiting for \(what); proxy log:\n\(log)")
    }
}
