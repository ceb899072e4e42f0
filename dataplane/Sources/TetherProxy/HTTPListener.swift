import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOHTTPTypesHTTP2
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import TetherCore
import TetherIdentity
import X509

/// What a listener knows about a request besides its head and body.
struct RequestContext: Sendable {
    /// The verified SPIFFE ID of the mTLS peer; nil on a cleartext listener.
    var peer: SPIFFEID?
    var remoteAddress: String
    var httpVersion: String
}

typealias ResponseWriter = NIOAsyncChannelOutboundWriter<HTTPResponsePart>

/// Serves one request: the listener has read its whole body (within the
/// limit) and hands over the writer for the response parts. Each part
/// written is flushed at once, so streamed responses stay streamed.
protocol HTTPRequestHandler: Sendable {
    func handle(_ head: HTTPRequest, body: ByteBuffer, context: RequestContext, response: ResponseWriter) async throws
}

/// An HTTP listener on SwiftNIO: HTTP/1.1 and HTTP/2 — by ALPN under TLS,
/// by the connection preface (h2c) in cleartext — with mTLS for mesh
/// listeners. It owns the transport limits (request-head timeout, body
/// limit) and hands complete requests to its handler.
///
/// On graceful shutdown it stops accepting, lets open requests finish for
/// `drainTimeout`, then closes what is left.
final class HTTPListener: Service {
    struct Configuration: Sendable {
        var name: String
        var host: String
        var port: Int
        /// mTLS (server context plus the peer verifier); nil for cleartext.
        var tls: TLS?
        var headerTimeout: TimeAmount = .seconds(30)
        var bodyLimit: Int = MCPRequestInspector.defaultBodyLimit
        var drainTimeout: Duration = .seconds(10)
    }

    struct TLS: Sendable {
        var context: NIOSSLContext
        var verifier: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void
    }

    typealias HTTP1Connection = (NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, SPIFFEID?)
    typealias HTTP2Stream = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    typealias Negotiated = NIONegotiatedHTTPVersion<HTTP1Connection, (SPIFFEID?, NIOHTTP2Handler.AsyncStreamMultiplexer<HTTP2Stream>)>

    let configuration: Configuration
    let handler: any HTTPRequestHandler
    let logger: Logger
    let metrics: ProxyMetrics
    /// The bound address, once listening (port 0 binds an ephemeral one).
    let boundAddress = Mutex<SocketAddress?>(nil)

    init(configuration: Configuration, handler: any HTTPRequestHandler, metrics: ProxyMetrics, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.metrics = metrics
        self.logger = logger
    }

    func run() async throws {
        let configuration = configuration
        let quiesce = ServerQuiescingHelper(group: MultiThreadedEventLoopGroup.singleton)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                do {
                    return try Self.configure(channel, configuration: configuration)
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        boundAddress.withLock { $0 = server.channel.localAddress }
        logger.info("listening", metadata: ["tether.listener": "\(configuration.name)", "address": "\(server.channel.localAddress?.description ?? "?")"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { connectionGroup in
                        for try await negotiation in connections {
                            connectionGroup.addTask { await self.serve(negotiation) }
                        }
                    }
                }
            }
            group.addTask {
                // At shutdown: stop accepting, close idle connections, let open
                // requests finish (HTTP/2 peers get GOAWAY), for at most the drain time.
                try? await gracefulShutdown()
                quiesce.initiateShutdown(promise: nil)
                try await Task.sleep(for: configuration.drainTimeout)
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// The pipeline of an accepted connection, up to the negotiated protocol.
    static func configure(_ channel: any Channel, configuration: Configuration) throws -> EventLoopFuture<EventLoopFuture<Negotiated>> {
        let sync = channel.pipeline.syncOperations
        if let tls = configuration.tls {
            try sync.addHandler(NIOSSLServerHandler(context: tls.context, customVerificationCallbackWithMetadata: tls.verifier))
        } else {
            try sync.addHandler(CleartextProtocolDetector())
        }
        let headerTimeout = configuration.headerTimeout
        let secure = configuration.tls != nil
        let drain = TimeAmount(configuration.drainTimeout)
        return channel.configureHTTP2AsyncSecureUpgrade(
            http1ConnectionInitializer: { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // NIO's server pipeline: keep-alive, and on quiesce (shutdown) closing once the response in flight ends.
                    try sync.configureHTTPServerPipeline()
                    try sync.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
                    try sync.addHandler(RequestHeadTimeoutHandler(timeout: headerTimeout))
                    return (try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(wrappingChannelSynchronously: channel), try peer(of: channel))
                }
            },
            http2ConnectionInitializer: { channel in
                channel.eventLoop.makeCompletedFuture {
                    // On quiesce: GOAWAY, then close when the open streams end (or after the drain time).
                    let manager = NIOHTTP2ServerConnectionManagementHandler.Configuration(
                        maxIdleTime: .minutes(5), maxAge: nil, maxGraceTime: drain, keepalive: nil
                    )
                    let multiplexer = try channel.pipeline.syncOperations.configureAsyncHTTP2Pipeline(
                        mode: .server, connectionManagerConfiguration: manager
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTPServerCodec())
                            return try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(wrappingChannelSynchronously: stream)
                        }
                    }
                    return (try peer(of: channel), multiplexer)
                }
            }
        )
    }

    /// The SPIFFE ID of the TLS peer, which the verifier already checked.
    static func peer(of channel: any Channel) throws -> SPIFFEID? {
        guard let tls = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
            let certificate = tls.peerCertificate
        else { return nil }
        let leaf = try Certificate(derEncoded: try certificate.toDERBytes())
        return try SVIDValidator.spiffeID(of: leaf).get()
    }

    func serve(_ negotiation: EventLoopFuture<Negotiated>) async {
        metrics.connectionOpened(listener: configuration.name)
        defer { metrics.connectionClosed(listener: configuration.name) }
        do {
            switch try await negotiation.get() {
            case .http1_1(let (channel, peer)):
                try await serveHTTP1(channel, peer: peer)
            case .http2(let (peer, multiplexer)):
                try await withThrowingDiscardingTaskGroup { group in
                    for try await stream in multiplexer.inbound {
                        group.addTask { await self.serveHTTP2(stream, peer: peer) }
                    }
                }
            }
        } catch {
            // Handshake failures and resets are the peer's business; the verifier logs rejections.
            logger.debug("connection ended", metadata: ["tether.listener": "\(configuration.name)", "error": "\(error)"])
        }
    }

    func serveHTTP1(_ channel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, peer: SPIFFEID?) async throws {
        let remote = channel.channel.remoteAddress?.description ?? "?"
        try await channel.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            while let part = try await parts.next() {
                guard case .head(let head) = part else { continue }
                let context = RequestContext(peer: peer, remoteAddress: remote, httpVersion: "HTTP/1.1")
                guard try await serveRequest(head, parts: &parts, context: context, response: outbound) else { return }
            }
        }
    }

    func serveHTTP2(_ stream: HTTP2Stream, peer: SPIFFEID?) async {
        metrics.streamOpened(listener: configuration.name)
        defer { metrics.streamClosed(listener: configuration.name) }
        let remote = stream.channel.parent?.remoteAddress?.description ?? "?"
        try? await stream.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            guard case .head(let head)? = try await parts.next() else { return }
            let context = RequestContext(peer: peer, remoteAddress: remote, httpVersion: "HTTP/2")
            _ = try await serveRequest(head, parts: &parts, context: context, response: outbound)
        }
    }

    /// Reads the body of `head` and serves it; whether the connection may
    /// carry another request.
    func serveRequest(
        _ head: HTTPRequest, parts: inout NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator, context: RequestContext, response: ResponseWriter
    ) async throws -> Bool {
        let limit = configuration.bodyLimit
        func tooLarge(_ size: Int, close: Bool = false) async throws {
            let error = MCPProtocolError(status: 413, code: MCPProtocolError.invalidRequest, message: "the request body is \(size) bytes; the limit is \(limit)")
            try await Self.writeError(error, to: response, close: close)
        }
        if let declared = head.headerFields[.contentLength].flatMap(Int.init), declared > 4 * limit {
            // Not worth reading: refuse at once and close the connection.
            try await tooLarge(declared, close: true)
            return false
        }
        if head.headerFields[.expect]?.lowercased() == "100-continue" {
            // The proxy reads the whole body before forwarding: invite it now.
            try await response.write(.head(HTTPResponse(status: .continue)))
        }
        // A body over the limit is read and dropped, so the client sees the
        // 413 rather than a reset in the middle of its upload.
        var body = ByteBuffer()
        var received = 0
        reading: while let part = try await parts.next() {
            switch part {
            case .body(var chunk):
                received += chunk.readableBytes
                if received <= limit { body.writeBuffer(&chunk) }
                guard received <= 4 * limit else {
                    try await tooLarge(received, close: true)
                    return false
                }
            case .end:
                break reading
            case .head:
                return false
            }
        }
        guard received <= limit else {
            try await tooLarge(received)
            return true
        }
        try await handler.handle(head, body: body, context: context, response: response)
        return true
    }

    /// A JSON-RPC error response, complete.
    static func writeError(_ error: MCPProtocolError, to response: ResponseWriter, headers extra: HTTPFields = [:], close: Bool = false) async throws {
        let body = error.body
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = "\(body.count)"
        if close { fields[.connection] = "close" }
        fields.append(contentsOf: extra)
        try await response.write(contentsOf: [
            .head(HTTPResponse(status: .init(code: error.status), headerFields: fields)),
            .body(ByteBuffer(bytes: body)),
            .end(nil),
        ])
    }
}
