import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Serves the admin API as HTTP/1.1 on a Unix socket (0600, inside the 0700
/// data directory). The caller's identity is the socket peer's uid, read
/// with SO_PEERCRED, and recorded as the author of each revision.
///
/// On graceful shutdown it stops accepting, lets in-flight requests finish,
/// then returns.
public struct AdminServer: Service {
    public let socketPath: String
    public let api: AdminAPI
    public let logger: Logger
    /// Largest request body accepted (a config bundle).
    public static let maximumBodySize = 32 * 1024 * 1024

    public init(socketPath: String, api: AdminAPI, logger: Logger) {
        self.socketPath = socketPath
        self.api = api
        self.logger = logger
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    public func run() async throws {
        // We hold the data directory lock, so a socket file left here is stale.
        unlink(socketPath)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: socketPath) { channel in
                Self.peerIdentity(of: channel).flatMapThrowing { author in
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return (try Connection(wrappingChannelSynchronously: channel), author)
                }
            }
        guard chmod(socketPath, 0o600) == 0 else {
            try? await server.channel.close()
            throw ControlPlaneError(.dataDirectory, "cannot restrict \(socketPath) to its owner: \(String(cString: strerror(errno)))")
        }
        logger.info("admin API listening", metadata: ["tether.admin.socket": "\(socketPath)"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await (connection, author) in connections {
                        group.addTask { await serve(connection, author: author) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        unlink(socketPath)
        logger.info("admin API stopped")
    }

    /// One request per connection: read it whole, answer, close.
    private func serve(_ connection: Connection, author: String) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                    case .body(var chunk):
                        guard body.readableBytes + chunk.readableBytes <= Self.maximumBodySize else {
                            try await respond(outbound, AdminResponse(status: 413, body: errorBody(.badRequest, "request body exceeds \(Self.maximumBodySize) bytes")))
                            return
                        }
                        body.writeBuffer(&chunk)
                    case .end:
                        guard let head else { return }
                        let request = Self.request(head, body: body)
                        let api = self.api
                        let response = try await NIOThreadPool.singleton.runIfActive {
                            api.handle(request, author: author)
                        }
                        logger.debug("admin request", metadata: [
                            "tether.admin.method": "\(request.method)", "tether.admin.path": "\(request.path)",
                            "tether.admin.status": "\(response.status)", "tether.admin.author": "\(author)",
                        ])
                        try await respond(outbound, response)
                        return
                    }
                }
            }
        } catch {
            logger.warning("admin connection failed", metadata: ["error": "\(error)"])
        }
    }

    private func respond(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, _ response: AdminResponse) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: "\(response.body.count)")
        headers.add(name: "connection", value: "close")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: response.status), headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
        try await outbound.write(.end(nil))
    }

    private func errorBody(_ code: ControlPlaneError.Code, _ message: String) -> Data {
        try! AdminProtocol.encoder.encode(ControlPlaneError(code, message))
    }

    static func request(_ head: HTTPRequestHead, body: ByteBuffer) -> AdminRequest {
        let components = URLComponents(string: head.uri)
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] {
            query[item.name] = item.value ?? ""
        }
        return AdminRequest(method: head.method.rawValue, path: components?.path ?? head.uri, query: query, body: Data(body.readableBytesView))
    }

    /// `unix:NAME(uid=N)` of the connecting process, from SO_PEERCRED.
    static func peerIdentity(of channel: any Channel) -> EventLoopFuture<String> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture("unix:unknown")
        }
        return provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET),
            name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
        ).map { (credentials: PeerCredentials) in
            "unix:\(userName(uid: credentials.uid))(uid=\(credentials.uid))"
        }
    }

    /// Linux `struct ucred` (pid, uid, gid), which Glibc only exports under
    /// _GNU_SOURCE; three 32-bit fields lay out the same in Swift.
    typealias PeerCredentials = (pid: Int32, uid: UInt32, gid: UInt32)

    static func userName(uid: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 1024)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else {
            return "uid\(uid)"
        }
        return String(cString: name)
    }
}
