import Foundation
import HTTPTypes
import Logging
import NIOCertificateReloading
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import TetherCore
import TetherMeshIdentity

/// Pooled, reused connections to upstreams: one multiplexed HTTP/2
/// connection per serving proxy (mesh hops), a set of keep-alive HTTP/1.1
/// connections per MCP server — each per event loop, like Envoy's per-worker
/// pools, so a request is read, forwarded and answered on one thread. A
/// request that fails on a reused connection before any response byte —
/// the server closed it while idle — is retried once on a new connection;
/// nothing else is retried.
final class UpstreamPool: Sendable {
    struct Key: Hashable {
        var target: UpstreamTarget
        var loop: ObjectIdentifier
    }

    struct State {
        enum HTTP2Entry {
            case connecting(EventLoopFuture<HTTP2UpstreamConnection>)
            case ready(HTTP2UpstreamConnection)
        }

        var http2: [Key: HTTP2Entry] = [:]
        var idle: [Key: [HTTP1UpstreamConnection]] = [:]
        var sslContexts: [UpstreamTarget.Security: NIOSSLContext] = [:]
    }

    /// The proxy's identity for mesh hops; nil without one (then mesh
    /// backends are unreachable and say so).
    let identity: WorkloadIdentityPublisher?
    let logger: Logger
    let maxIdlePerTarget = 64
    let connectTimeout: TimeAmount = .seconds(5)
    private let state = Mutex(State())

    init(identity: WorkloadIdentityPublisher?, logger: Logger) {
        self.identity = identity
        self.logger = logger
    }

    /// Sends one request and hands the response to `receive` as it arrives,
    /// in batches of parts, through its end. `loop` is the event loop of the
    /// downstream request (nil: any); `timeout` bounds each wait for the
    /// upstream (nil: none, for event streams that may idle).
    func send(
        _ head: HTTPRequest, body: ByteBuffer, to target: UpstreamTarget, on loop: (any EventLoop)? = nil, timeout: ConfigDuration? = nil,
        receive: ([HTTPResponsePart]) async throws -> Void
    ) async throws {
        let loop = loop ?? MultiThreadedEventLoopGroup.singleton.any()
        let key = Key(target: target, loop: ObjectIdentifier(loop))
        if case .mesh = target.security {
            let connection = try await http2Connection(for: key, on: loop)
            do {
                _ = try await Self.read(try await connection.open(head, body: body), timeout: timeout, receive: receive)
            } catch let error as UpstreamError where error.code == .closedBeforeResponse && connection.mayRetry(after: error.cause) {
                // The serving proxy did not process it (GOAWAY, a refused stream, a
                // connection gone while idle in the pool): once more on a new connection.
                _ = try await Self.read(try await http2Connection(for: key, on: loop).open(head, body: body), timeout: timeout, receive: receive)
            }
            return
        }
        func exchange(_ connection: HTTP1UpstreamConnection) async throws -> Bool {
            connection.response.send(head, body: body)
            return try await Self.read(connection.response, timeout: timeout, receive: receive)
        }
        let connection = try await http1Connection(for: key, on: loop)
        let reused = connection.used.exchange(true, ordering: .relaxed)
        do {
            release(connection, to: key, keepAlive: try await exchange(connection))
        } catch let error as UpstreamError where error.code == .closedBeforeResponse && reused {
            connection.close()
            let fresh = try await newHTTP1Connection(to: target, on: loop)
            fresh.used.store(true, ordering: .relaxed)
            do {
                release(fresh, to: key, keepAlive: try await exchange(fresh))
            } catch {
                fresh.close()
                throw error
            }
        } catch {
            connection.close()
            throw error
        }
    }

    /// A small whole response (a token endpoint's, a JWKS): its status and
    /// at most `limit` bytes of its body.
    func fetch(_ head: HTTPRequest, body: ByteBuffer, to target: UpstreamTarget, limit: Int = 1024 * 1024) async throws -> (status: Int, body: ByteBuffer) {
        var status = 0
        var bytes = ByteBuffer()
        try await send(head, body: body, to: target, timeout: .seconds(30)) { parts in
            for part in parts {
                switch part {
                case .head(let response): status = response.status.code
                case .body(var chunk): if bytes.readableBytes + chunk.readableBytes <= limit { bytes.writeBuffer(&chunk) }
                case .end: break
                }
            }
        }
        return (status, bytes)
    }

    /// Reads one response through its end; whether the connection may
    /// carry another (HTTP/1.1 keep-alive).
    static func read(_ response: UpstreamResponse, timeout: ConfigDuration?, receive: ([HTTPResponsePart]) async throws -> Void) async throws -> Bool {
        var started = false
        var keepAlive = true
        let wait = timeout.map { TimeAmount.milliseconds(Int64($0.milliseconds)) }
        while true {
            var parts: [HTTPResponsePart]
            do {
                parts = try await response.next(timeout: wait)
            } catch UpstreamResponseReader.Failure.timedOut {
                response.channel.close(promise: nil)
                throw UpstreamError(code: .timeout, reason: "it sent nothing for \(timeout.map { "\($0)" } ?? "?") (the route's timeout)")
            } catch {
                let cause: any Error = switch error as? UpstreamResponseReader.Failure {
                case .failed(let underlying)?: underlying
                default: error
                }
                throw started
                    ? UpstreamError(code: .truncated, reason: "it ended the response early: \(UpstreamError.describe(cause))", cause: cause)
                    : UpstreamError(code: .closedBeforeResponse, reason: "it closed the connection before answering: \(UpstreamError.describe(cause))", cause: cause)
            }
            parts.removeAll { part in
                if case .head(let head) = part { head.status.kind == .informational } else { false }
            }
            var end: Int?
            for (index, part) in parts.enumerated() {
                switch part {
                case .head(let head):
                    started = true
                    keepAlive = !(head.headerFields[.connection]?.lowercased().contains("close") ?? false)
                case .end:
                    end = end ?? index
                case .body:
                    break
                }
            }
            if let end {
                // Anything after the end was not asked for: that connection is not reused.
                if end < parts.count - 1 {
                    keepAlive = false
                    parts.removeSubrange((end + 1)...)
                }
                try await receive(parts)
                return keepAlive
            }
            if !parts.isEmpty { try await receive(parts) }
        }
    }

    func close() {
        let (http2, idle) = state.withLock { state in
            defer { state = State() }
            return (state.http2.values, state.idle.values.joined())
        }
        for entry in http2 {
            switch entry {
            case .connecting(let pending): pending.whenSuccess { $0.channel.close(promise: nil) }
            case .ready(let connection): connection.channel.close(promise: nil)
            }
        }
        for connection in idle { connection.close() }
    }

    // MARK: HTTP/1.1

    private func http1Connection(for key: Key, on loop: any EventLoop) async throws -> HTTP1UpstreamConnection {
        let pooled: HTTP1UpstreamConnection? = state.withLock { state in
            while let connection = state.idle[key]?.popLast() {
                if connection.isActive { return connection }
            }
            return nil
        }
        if let pooled { return pooled }
        return try await newHTTP1Connection(to: key.target, on: loop)
    }

    private func release(_ connection: HTTP1UpstreamConnection, to key: Key, keepAlive: Bool) {
        guard keepAlive, connection.isActive else {
            connection.close()
            return
        }
        let kept = state.withLock { state in
            guard state.idle[key, default: []].count < maxIdlePerTarget else { return false }
            state.idle[key, default: []].append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    private func newHTTP1Connection(to target: UpstreamTarget, on loop: any EventLoop) async throws -> HTTP1UpstreamConnection {
        let context = try sslContext(for: target.security)
        let verifier: SPIFFEPeerVerifier? = if case .controlPlane(let expected) = target.security, let identity {
            SPIFFEPeerVerifier(role: "token-client", logger: logger, bundle: { identity.current.bundle }, authorize: SPIFFEPeerVerifier.only(expected))
        } else {
            nil
        }
        do {
            let made = loop.makePromise(of: HTTP1UpstreamConnection.self)
            _ = try await bootstrap(on: loop).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    switch (context, target.security) {
                    case (let context?, .tls(let serverName, _, _)):
                        try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName.isIPAddress ? nil : serverName))
                    case (let context?, .controlPlane):
                        guard let verifier else { throw UpstreamError(code: .connect, reason: "no SVID to verify the control plane with") }
                        try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil, customVerificationCallbackWithMetadata: verifier.callback))
                    default:
                        break
                    }
                    try sync.addHTTPClientHandlers()
                    let reader = UpstreamResponseReader()
                    try sync.addHandlers(HTTP1ToHTTPClientCodec(), reader)
                    made.succeed(HTTP1UpstreamConnection(UpstreamResponse(channel: channel, reader: reader)))
                }
            }.connect(host: target.host, port: target.port).get()
            return try await made.futureResult.get()
        } catch let error as UpstreamError {
            throw error
        } catch {
            throw UpstreamError(code: .connect, reason: "cannot connect: \(UpstreamError.describe(error))", cause: error)
        }
    }

    // MARK: HTTP/2 (mesh)

    private func http2Connection(for key: Key, on loop: any EventLoop) async throws -> HTTP2UpstreamConnection {
        enum Next { case use(HTTP2UpstreamConnection), wait(EventLoopFuture<HTTP2UpstreamConnection>) }
        let context = try sslContext(for: key.target.security)
        let next: Next = try state.withLock { state in
            switch state.http2[key] {
            case .ready(let connection)? where connection.isUsable:
                return .use(connection)
            case .connecting(let pending)?:
                // Requests that arrive while it connects share the one connection.
                return .wait(pending)
            default:
                let pending = try connectHTTP2(to: key.target, context: context, on: loop)
                state.http2[key] = .connecting(pending)
                return .wait(pending)
            }
        }
        let pending: EventLoopFuture<HTTP2UpstreamConnection>
        switch next {
        case .use(let connection): return connection
        case .wait(let future): pending = future
        }
        do {
            let connection = try await pending.get()
            state.withLock { state in
                if case .connecting(let current)? = state.http2[key], current === pending { state.http2[key] = .ready(connection) }
            }
            return connection
        } catch {
            state.withLock { state in
                if case .connecting(let current)? = state.http2[key], current === pending { state.http2[key] = nil }
            }
            throw UpstreamError(code: .connect, reason: "cannot connect: \(UpstreamError.describe(error))", cause: error)
        }
    }

    private func connectHTTP2(to target: UpstreamTarget, context: NIOSSLContext?, on loop: any EventLoop) throws -> EventLoopFuture<HTTP2UpstreamConnection> {
        guard let context else {
            throw UpstreamError(code: .connect, reason: "it is a mesh backend and this proxy has no SVID (it runs with --insecure-xds)")
        }
        guard case .mesh(let expected) = target.security, let identity else {
            throw UpstreamError(code: .connect, reason: "it is not a mesh target")
        }
        let verifier = SPIFFEPeerVerifier(role: "mesh-client", logger: logger, bundle: { identity.current.bundle }, authorize: SPIFFEPeerVerifier.only(expected))
        return bootstrap(on: loop).connect(host: target.host, port: target.port).flatMap { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil, customVerificationCallbackWithMetadata: verifier.callback))
                // Serving proxies never push: a stream they open is refused.
                let multiplexer = try sync.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { stream in stream.close() }
                let connection = HTTP2UpstreamConnection(channel: channel, multiplexer: multiplexer)
                try sync.addHandler(HTTP2UpstreamConnection.Monitor(connection))
                return connection
            }
        }
    }

    // MARK: TLS

    private func bootstrap(on loop: any EventLoop) -> ClientBootstrap {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
    }

    /// One NIOSSL context per kind of security, built once: building one
    /// parses roots and keys, far too slow per connection. The mesh context
    /// takes the current SVID on every handshake (certificate reloader).
    private func sslContext(for security: UpstreamTarget.Security) throws -> NIOSSLContext? {
        if case .cleartext = security { return nil }
        if let cached = state.withLock({ $0.sslContexts[security] }) { return cached }
        var configuration: TLSConfiguration
        switch security {
        case .cleartext:
            return nil
        case .mesh, .controlPlane:
            guard let identity else {
                throw UpstreamError(code: .connect, reason: "this proxy has no SVID (it runs with --insecure-xds), so it cannot use mTLS")
            }
            configuration = try TLSConfiguration.makeClientConfiguration(certificateReloader: SVIDCertificateReloader { identity.current.svid })
            // The verifier checks the chain against the bundle current at handshake time.
            configuration.certificateVerification = .noHostnameVerification
            if case .mesh = security { configuration.applicationProtocols = ["h2"] } else { configuration.applicationProtocols = ["http/1.1"] }
        case .tls(_, let caPEM, let caFile):
            configuration = TLSConfiguration.makeClientConfiguration()
            configuration.applicationProtocols = ["http/1.1"]
            if let caPEM {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
            } else if let caFile {
                configuration.trustRoots = .file(caFile)
            }
        }
        configuration.harden()
        let context = try NIOSSLContext(configuration: configuration)
        state.withLock { $0.sslContexts[security] = context }
        return context
    }
}

extension String {
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
