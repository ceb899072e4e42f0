import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves the SPIFFE Workload API on a Unix socket (gRPC, plaintext, as the
/// SPIFFE Workload Endpoint standard prescribes) until graceful shutdown.
///
/// The socket is the authentication: it is made 0600 right after binding, so
/// only processes of the proxy's user can reach the proxy's identity. (The
/// proxy runs with umask 077, so the socket never exists with a wider mode;
/// with a looser umask there is a moment between bind and chmod: put the
/// socket in a directory only the workload's user can enter.) A stale socket
/// left by a crash is replaced; a live one, or a file that is not a socket,
/// is an error. The socket is removed on exit.
///
/// ```swift
/// let server = WorkloadAPIServer(socketPath: "/run/tether/agent.sock", service: service, logger: logger)
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public struct WorkloadAPIServer: Service {
    public let socketPath: String
    let service: WorkloadAPIService
    let logger: Logger
    let bound: (@Sendable (String) -> Void)?

    /// - Parameters:
    ///   - service: its open streams are ended on graceful shutdown
    ///     (`endStreams()`); give each server its own service.
    ///   - bound: called with the socket path once clients can connect.
    public init(socketPath: String, service: WorkloadAPIService, logger: Logger, bound: (@Sendable (String) -> Void)? = nil) {
        self.socketPath = socketPath
        self.service = service
        self.logger = logger
        self.bound = bound
    }

    public func run() async throws {
        try Self.removeStaleSocket(at: socketPath)
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext, config: Self.transportConfig),
            services: [service]
        )
        // The socket we created, so we never remove one a successor bound.
        var created: (device: UInt64, inode: UInt64)?
        defer {
            if let created, let now = Self.fileIdentity(socketPath), now == created {
                unlink(socketPath)
            }
        }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                guard try await server.listeningAddress != nil else { return }
                created = Self.fileIdentity(socketPath)
                guard chmod(socketPath, 0o600) == 0 else {
                    let reason = String(cString: strerror(errno))
                    server.beginGracefulShutdown()
                    throw ProxyError(.files, "cannot restrict the Workload API socket \(socketPath) to its owner: \(reason)")
                }
                logger.info("listening", metadata: ["tether.listener": "workload-api", "tether.address": "\(socketPath)", "tether.tls": "none (Unix socket, 0600)"])
                bound?(socketPath)
            }
        } onGracefulShutdown: {
            service.endStreams()
            server.beginGracefulShutdown()
        }
        logger.info("Workload API stopped", metadata: ["tether.workload_api.socket": "\(socketPath)"])
    }

    /// The endpoint's limits. Its clients are the co-located agent's SPIFFE
    /// libraries: a few streams that stay open (X.509 SVID and bundle
    /// watches) and small requests. A connection with no stream is closed
    /// after a minute (GOAWAY), requests over 64 KiB are refused, and one
    /// connection may hold at most 32 streams.
    static let transportConfig = HTTP2ServerTransport.Posix.Config.defaults { config in
        config.connection.maxIdleTime = .seconds(60)
        config.connection.maxGraceTime = .seconds(10)
        config.http2.maxConcurrentStreams = 32
        config.rpc.maxRequestPayloadSize = 64 * 1024
    }

    /// Removes a socket file nobody listens on any more. Refuses to touch
    /// anything else: a regular file, or a socket another process serves.
    static func removeStaleSocket(at path: String) throws(ProxyError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            guard errno == ENOENT else {
                throw ProxyError(.files, "cannot inspect the Workload API socket path \(path): \(String(cString: strerror(errno)))")
            }
            return
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ProxyError(.files, "\(path) exists and is not a socket; remove it or choose another Workload API socket path")
        }
        if isAcceptingConnections(path) {
            throw ProxyError(.files, "another process serves \(path) already; stop it or choose another Workload API socket path")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ProxyError(.files, "cannot remove the stale Workload API socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether something accepts connections on the Unix socket at `path`.
    static func isAcceptingConnections(_ path: String) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    static func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }
}
