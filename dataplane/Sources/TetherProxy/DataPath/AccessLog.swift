import Foundation
import Synchronization

/// One access-log record: what was asked, by whom, what was decided and
/// what came back. Never a token, a credential or a session ID.
struct AccessLogEntry: Encodable, Sendable {
    var time: String
    var requestID: String
    var traceID: String
    var listener: String
    var httpVersion: String
    /// The calling agent's SPIFFE ID.
    var agent: String?
    /// The user's subject, once user tokens are validated (token translation).
    var user: String?
    /// The agents that delegated this call, nearest first (from the token's `act` chain).
    var actors: [String]?
    var route: String?
    var backend: String?
    var httpMethod: String
    var path: String
    var mcpMethod: String?
    var tool: String?
    var resource: String?
    var prompt: String?
    /// allow, deny, invalid (rejected before authorization), unauthenticated
    /// (no valid user token on a route that needs one), or none (no route).
    var decision: String
    var policy: String?
    var rule: Int?
    var reason: String?
    var status: Int
    var upstreamStatus: Int?
    var upstreamError: String?
    var durationMs: Double
    var requestBytes: Int
    var responseBytes: Int
}

/// Writes access-log records as JSON lines to a file or stdout. Each line is
/// one `write`, so records from concurrent requests never interleave.
final class AccessLog: Sendable {
    private let handle: FileHandle?
    private let lock = Mutex(())

    /// - Parameter destination: a path, "-" for stdout, or nil for none.
    init(destination: String?) throws(ProxyError) {
        switch destination {
        case nil:
            handle = nil
        case "-"?:
            handle = FileHandle.standardOutput
        case let path?:
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]) else {
                    throw ProxyError(.files, "cannot create the access log \(path)")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw ProxyError(.files, "cannot open the access log \(path) for writing")
            }
            handle.seekToEndOfFile()
            self.handle = handle
        }
    }

    var isEnabled: Bool { handle != nil }

    func write(_ entry: AccessLogEntry) {
        guard let handle else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(entry) else { return }
        line.append(0x0A)
        lock.withLock { _ in handle.write(line) }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
