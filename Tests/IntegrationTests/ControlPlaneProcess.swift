import Foundation

/// The directory of the built products: swift test builds every product
/// into the same directory as the test runner.
let productsDirectory: URL = {
    let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = runner.deletingLastPathComponent()
    // The runner may sit inside a .xctest bundle directory.
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("tether-control").path), directory.path != "/" {
        directory.deleteLastPathComponent()
    }
    return directory
}()

let tetherControlBinary = productsDirectory.appendingPathComponent("tether-control").path
let tetherProxyBinary = productsDirectory.appendingPathComponent("tether-proxy").path

/// A loopback TCP port nobody listens on right now.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// What a CLI invocation did.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `tether-control ARGS` to completion, output captured through files
/// (pipes could fill and block).
func tetherControl(_ arguments: [String], stdin: String? = nil, workingDirectory: String? = nil) throws -> CommandResult {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tether-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let out = scratch.appendingPathComponent("out"), err = scratch.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tetherControlBinary)
    process.arguments = arguments
    if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? ""
    )
}

/// A real `tether-control run` on a temporary data directory. Killed and
/// its directory removed when released.
final class ControlPlaneProcess: @unchecked Sendable {
    // @unchecked: `process` is replaced only by start()/kill(), which the
    // owning test calls from one task at a time.
    let root: URL
    let dataDirectory: String
    enum XDS {
        /// xDS + identity over mTLS, bootstrap over TLS (the default).
        case mTLS
        /// `--insecure-xds`: plaintext xDS on loopback.
        case insecure
    }

    let xds: XDS
    let xdsPort: Int
    let bootstrapPort: Int
    /// The built-in token service (HTTPS).
    let tokenPort: Int
    /// Added to `tether-control run`; a test may change them before a restart.
    var arguments: [String]
    private var process: Process?
    private(set) var logPath = ""

    /// Trust domain example.org, as in examples/mesh.yaml; `arguments` are
    /// added to `tether-control run`.
    init(xds: XDS = .mTLS, arguments: [String] = [], start: Bool = true) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tether-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        dataDirectory = root.appendingPathComponent("data").path
        self.xds = xds
        xdsPort = freePort()
        bootstrapPort = freePort()
        tokenPort = freePort()
        self.arguments = arguments
        if start { try self.start() }
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: root)
    }

    var pid: Int32? { process?.processIdentifier }

    /// Starts the server and waits (at most 20 s) until its admin API answers.
    func start() throws {
        let log = root.appendingPathComponent("control-\(UUID().uuidString).log")
        logPath = log.path
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tetherControlBinary)
        process.arguments = [
            "run", "--data-dir", dataDirectory, "--trust-domain", "example.org",
            "--xds-address", "127.0.0.1:\(xdsPort)", "--bootstrap-address", "127.0.0.1:\(bootstrapPort)",
            "--token-address", "127.0.0.1:\(tokenPort)",
        ] + (xds == .insecure ? ["--insecure-xds"] : []) + arguments
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if try cli(["history"]).status == 0, isListening(xdsPort) { return }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        throw IntegrationError("tether-control run did not become ready; log: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    /// SIGKILL, as a crash would.
    func killHard() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, and the exit status once it stopped.
    func terminate() -> Int32 {
        guard let process else { return -1 }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func cli(_ arguments: [String], stdin: String? = nil) throws -> CommandResult {
        try tetherControl(arguments + ["--data-dir", dataDirectory], stdin: stdin, workingDirectory: root.path)
    }

    func file(_ name: String, _ contents: String) throws -> String {
        let path = root.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:port.
func isListening(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

struct IntegrationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `/usr/bin/env ARGS` with output to `log`, killed after `seconds`;
/// returns the exit status and the output.
func runTool(_ arguments: [String], log: String, seconds: Double) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    defer { try? handle.close() }
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning, Date() < deadline {
        try await Task.sleep(for: .milliseconds(50))
    }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw IntegrationError("\(arguments.joined(separator: " ")) did not finish within \(seconds) s:\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
    return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
}
