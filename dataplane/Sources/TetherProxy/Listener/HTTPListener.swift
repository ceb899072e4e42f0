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
        var limits = ListenerLimits()
        var drainTimeout: Duration = .seconds(10)
    }

    struct TLS: Sendable {
        var context: NIOSSLContext
        var verifier: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void
    }

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
        let open = OpenChannels()
        let quiesce = ServerQuiescingHelper(group: MultiThreadedEventLoopGroup.singleton)
        let server = try await bootstrap(open: open, quiesce: quiesce).bind(host: configuration.host, port: configuration.port).get()
        boundAddress.withLock { $0 = server.localAddress }
        logger.info("listening", metadata: [
            "tether.listener": "\(configuration.name)", "tether.address": "\(server.localAddress?.description ?? "?")",
            "tether.tls": "\(configuration.tls == nil ? "none (loopback)" : "mtls")",
        ])
        // At shutdown: stop accepting, close idle connections, let open
        // requests finish (HTTP/2 peers get GOAWAY), for at most the drain
        // time; then close what is left.
        try? await gracefulShutdown()
        let drained = server.eventLoop.makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        let drainTimeout = configuration.drainTimeout
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await drained.futureResult.get() }
            group.addTask { try? await Task.sleep(for: drainTimeout) }
            await group.next()
            group.cancelAll()
        }
        open.closeAll()
    }

    /// The listening socket: quiescing for shutdown, accepts paused while
    /// out of descriptors, new connections over the limit closed at once,
    /// and each accepted one configured by `configure`.
    func bootstrap(open: OpenChannels, quiesce: ServerQuiescingHelper) -> ServerBootstrap {
        let (configuration, handler, metrics, logger) = (configuration, handler, metrics, logger)
        let overLimit = OccasionalLog(), outOfDescriptors = OccasionalLog()
        return ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler { error in
                        metrics.connectionRefused(listener: configuration.name, reason: "accept_failed")
                        if let unlogged = outOfDescriptors.occurred() {
                            logger.error("cannot accept connections; pausing accepts for 250 ms at a time", metadata: [
                                "tether.listener": "\(configuration.name)", "error": "\(error)", "tether.unlogged": "\(unlogged)",
                                "hint": "raise the file-descriptor limit (ulimit -n / LimitNOFILE) or lower --max-connections",
                            ])
                        }
                    })
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard open.insert(channel, limit: configuration.limits.maxConnections) else {
                    metrics.connectionRefused(listener: configuration.name, reason: "max_connections")
                    if let unlogged = overLimit.occurred() {
                        logger.warning("connection limit reached; closing new connections", metadata: [
                            "tether.listener": "\(configuration.name)", "tether.max_connections": "\(configuration.limits.maxConnections)",
                            "tether.unlogged": "\(unlogged)",
                        ])
                    }
                    return channel.close()
                }
                metrics.connectionOpened(listener: configuration.name)
                channel.closeFuture.whenComplete { _ in
                    open.remove(channel)
                    metrics.connectionClosed(listener: configuration.name)
                }
                return channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, configuration: configuration, handler: handler, metrics: metrics, logger: logger)
                }.flatMap { $0 }
            }
    }

    /// The pipeline of an accepted connection: TLS (or the h2c sniffer)
    /// within the handshake timeout, then HTTP/1.1 or HTTP/2 as negotiated,
    /// each request handed to a `RequestDispatcher` — on the connection for
    /// HTTP/1.1, on each stream for HTTP/2.
    static func configure(
        _ channel: any Channel, configuration: Configuration, handler: any HTTPRequestHandler, metrics: ProxyMetrics, logger: Logger
    ) throws -> EventLoopFuture<Void> {
        let sync = channel.pipeline.syncOperations
        let (name, limits) = (configuration.name, configuration.limits)
        if let tls = configuration.tls {
            try sync.addHandler(NIOSSLServerHandler(context: tls.context, customVerificationCallbackWithMetadata: tls.verifier))
        } else {
            try sync.addHandler(CleartextProtocolDetector())
        }
        try sync.addHandler(HandshakeTimeoutHandler(timeout: TimeAmount(limits.handshakeTimeout)) {
            metrics.connectionRefused(listener: name, reason: "handshake_timeout")
        })
        let secure = configuration.tls != nil
        let drain = TimeAmount(configuration.drainTimeout)
        return channel.configureHTTP2SecureUpgrade(
            h2ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    let peer = try peer(of: channel)
                    let remote = channel.remoteAddress?.description ?? "?"
                    // On quiesce: GOAWAY, then close when the open streams end (or after the
                    // drain time). Idle connections are the guard's (see HTTP2ConnectionGuard).
                    let manager = NIOHTTP2ServerConnectionManagementHandler(
                        eventLoop: channel.eventLoop,
                        configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: drain, keepalive: nil)
                    )
                    let streams = HTTP2ConnectionGuard.StreamTracker(next: manager.http2StreamDelegate)
                    let http2 = NIOHTTP2Handler(
                        mode: .server, eventLoop: channel.eventLoop, connectionConfiguration: limits.http2Connection,
                        streamConfiguration: limits.http2Stream, streamDelegate: streams
                    ) { stream in
                        metrics.streamOpened(listener: name)
                        stream.closeFuture.whenComplete { _ in metrics.streamClosed(listener: name) }
                        return stream.eventLoop.makeCompletedFuture {
                            let context = RequestContext(peer: peer, remoteAddress: remote, httpVersion: "HTTP/2")
                            try stream.pipeline.syncOperations.addHandlers(
                                HTTP2FramePayloadToHTTPServerCodec(), RequestDispatcher(handler: handler, context: context, limits: limits)
                            )
                        }
                    }
                    let guardHandler = HTTP2ConnectionGuard(listener: name, streams: streams, idleTimeout: TimeAmount(limits.idleTimeout), logger: logger)
                    try channel.pipeline.syncOperations.addHandlers(http2, manager, guardHandler)
                }
            },
            http1ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    let context = RequestContext(peer: try peer(of: channel), remoteAddress: channel.remoteAddress?.description ?? "?", httpVersion: "HTTP/1.1")
                    let sync = channel.pipeline.syncOperations
                    let timeouts = HTTP1ConnectionTimeouts(idleTimeout: TimeAmount(limits.idleTimeout), headTimeout: TimeAmount(limits.requestHeadTimeout))
                    try sync.addHandler(timeouts.bytesObserver)
                    // NIO's server pipeline: keep-alive, one request at a time
                    // (pipelined ones wait), and on quiesce (shutdown) closing once
                    // the response in flight ends.
                    try sync.configureHTTPServerPipeline()
                    try sync.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
                    try sync.addHandler(timeouts)
                    try sync.addHandler(RequestDispatcher(handler: handler, context: context, limits: limits))
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
}

/// The listener's open connections: to refuse one over the limit, and to
/// close those still open when the drain time is over.
final class OpenChannels: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    /// Adds `channel` unless `limit` are open already.
    func insert(_ channel: any Channel, limit: Int) -> Bool {
        channels.withLock { channels in
            guard channels.count < limit else { return false }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) { _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) } }

    func closeAll() {
        for channel in channels.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }
}

extension ListenerLimits {
    /// The HTTP/2 settings a listener announces, and the flood limits it
    /// enforces on the connection.
    var http2Connection: NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: decodableHeaderListSize),
        ]
        configuration.maximumSequentialContinuationFrames = maxContinuationFrames
        return configuration
    }

    var http2Stream: NIOHTTP2Handler.StreamConfiguration {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.streamResetFrameRateLimit.maximumCount = maxStreamResets
        configuration.streamResetFrameRateLimit.windowLength = .seconds(30)
        return configuration
    }
}
