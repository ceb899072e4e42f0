import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP request to an admin endpoint, independent of the transport.
public struct AdminRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var body: Data
    /// On a TLS listener: the client certificate (DER) its verifier accepted, if any.
    public var peerCertificate: [UInt8]?

    public init(method: String, path: String, query: [String: String] = [:], body: Data = Data(), peerCertificate: [UInt8]? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.peerCertificate = peerCertificate
    }
}

public struct AdminResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: Data

    public init(status: Int, contentType: String = "application/json", body: Data) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// A small HTTP/1.1 server for local admin endpoints — the control plane's
/// Unix-socket admin API and the proxy's loopback admin port. One request per
/// connection, bodies read whole (bounded), answers from a handler.
///
/// On a Unix socket the caller's identity is the peer's uid (SO_PEERCRED),
/// passed to the handler as `unix:NAME(uid=N)`; on TCP it is the peer address.
/// On graceful shutdown it stops accepting, lets in-flight requests finish,
/// then returns.
public struct LocalHTTPServer: Service {
    public enum Address: Sendable, CustomStringConvertible {
        /// A Unix socket, created 0600 (a stale file is replaced).
        case unixSocket(String)
        case tcp(host: String, port: Int)

        public var description: String {
            switch self {
            case .unixSocket(let path): path
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            }
        }
    }

    public typealias Handler = @Sendable (AdminRequest, _ caller: String) async -> AdminResponse

    /// TLS for a TCP listener: the server context, and the verifier of
    /// client certificates (with optional or required verification, as the
    /// context says).
    public struct TLS: Sendable {
        public var context: NIOSSLContext
        public var verify: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void

        public init(context: NIOSSLContext, verify: @escaping @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void) {
            self.context = context
            self.verify = verify
        }
    }

    public let address: Address
    /// What it is, for its `listening` log line: `admin`, `token-service`.
    public let name: String
    public let logger: Logger
    public let maximumBodySize: Int
    /// The longest a client may take to send its whole request, from the
    /// moment it connects: this is the handshake, first-byte, head, body and
    /// idle timeout at once, as there is one request per connection.
    public let requestTimeout: TimeAmount
    public let tls: TLS?
    private let handler: Handler
    private let bound: (@Sendable (Address) -> Void)?

    /// - Parameter bound: called with the actual address once listening (for
    ///   port 0).
    public init(
        name: String, address: Address, tls: TLS? = nil, maximumBodySize: Int = 32 * 1024 * 1024, requestTimeout: TimeAmount = .seconds(30), logger: Logger,
        bound: (@Sendable (Address) -> Void)? = nil, handler: @escaping Handler
    ) {
        self.name = name
        self.address = address
        self.tls = tls
        self.maximumBodySize = maximumBodySize
        self.requestTimeout = requestTimeout
        self.logger = logger
        self.bound = bound
        self.handler = handler
    }

    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// How its clients connect, for the log: a Unix socket is private to its
    /// owner by file mode; TCP is TLS (client certificates as the context
    /// asks) or plaintext on loopback.
    var tlsMode: String {
        switch (address, tls) {
        case (.unixSocket, _): "none (Unix socket, 0600)"
        case (.tcp, nil): "none"
        case (.tcp, _?): "tls"
        }
    }

    public func run() async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let (tls, requestTimeout) = (tls, requestTimeout)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<(Connection, String)> = { channel in
            // The whole request within the timeout: a client trickling bytes
            // cannot hold a connection (and graceful shutdown) for longer.
            let deadline = channel.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in deadline.cancel() }
            return Self.callerIdentity(of: channel).flatMapThrowing { caller in
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context, customVerificationCallbackWithMetadata: tls.verify))
                }
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(RequestDeadline(deadline))
                return (try Connection(wrappingChannelSynchronously: channel), caller)
            }
        }
        let server: NIOAsyncChannel<(Connection, String), Never>
        var actual = address
        switch address {
        case .unixSocket(let path):
            unlink(path)
            server = try await bootstrap.bind(unixDomainSocketPath: path, childChannelInitializer: initializer)
            guard chmod(path, 0o600) == 0 else {
                try? await server.channel.close()
                throw LocalHTTPServerError(message: "cannot restrict \(path) to its owner: \(String(cString: strerror(errno)))")
            }
        case .tcp(let host, let port):
            server = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
            actual = .tcp(host: host, port: server.channel.localAddress?.port ?? port)
        }
        logger.info("listening", metadata: ["tether.listener": "\(name)", "tether.address": "\(actual)", "tether.tls": "\(tlsMode)"])
        bound?(actual)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await (connection, caller) in connections {
                        group.addTask { await serve(connection, caller: caller) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        if case .unixSocket(let path) = address { unlink(path) }
        logger.info("stopped listening", metadata: ["tether.listener": "\(name)", "tether.address": "\(actual)"])
    }

    private func serve(_ connection: Connection, caller: String) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                    case .body(var chunk):
                        guard body.readableBytes + chunk.readableBytes <= maximumBodySize else {
                            let message = #"{"code":"badRequest","message":"request body exceeds \#(maximumBodySize) bytes","diagnostics":[]}"#
                            try await respond(outbound, AdminResponse(status: 413, body: Data(message.utf8)))
                            return
                        }
                        body.writeBuffer(&chunk)
                    case .end:
                        guard let head else { return }
                        var request = Self.request(head, body: body)
                        if tls != nil { request.peerCertificate = try await Self.peerCertificate(of: connection.channel) }
                        let response = await handler(request, caller)
                        logger.debug("admin request", metadata: [
                            "tether.admin.method": "\(request.method)", "tether.admin.path": "\(request.path)",
                            "tether.admin.status": "\(response.status)", "tether.admin.caller": "\(caller)",
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
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: "\(response.body.count)")
        headers.add(name: "connection", value: "close")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: response.status), headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
        try await outbound.write(.end(nil))
    }

    static func request(_ head: HTTPRequestHead, body: ByteBuffer) -> AdminRequest {
        let components = URLComponents(string: head.uri)
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] {
            query[item.name] = item.value ?? ""
        }
        return AdminRequest(method: head.method.rawValue, path: components?.path ?? head.uri, query: query, body: Data(body.readableBytesView))
    }

    /// The verified client certificate of a TLS connection (the handshake
    /// is over once a request has arrived).
    static func peerCertificate(of channel: any Channel) async throws -> [UInt8]? {
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate?.toDERBytes()
        }.get()
    }

    /// `unix:NAME(uid=N)` for a Unix-socket peer (SO_PEERCRED), else the
    /// peer's address.
    static func callerIdentity(of channel: any Channel) -> EventLoopFuture<String> {
        guard case .unixDomainSocket? = channel.localAddress, let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(channel.remoteAddress.map { "\($0)" } ?? "unknown")
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

/// Lifts a connection's request deadline once its request has been read
/// whole: the handler's answer may take as long as it takes.
final class RequestDeadline: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let deadline: Scheduled<Void>

    init(_ deadline: Scheduled<Void>) {
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { deadline.cancel() }
        context.fireChannelRead(data)
    }
}

public struct LocalHTTPServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
