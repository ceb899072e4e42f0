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
/// connections per MCP server. A request that fails on a reused HTTP/1.1
/// connection before any response byte — the server closed it while idle —
/// is retried once on a new connection; nothing else is retried.
final class UpstreamPool: Sendable {
    struct State {
        enum HTTP2Entry {
            case connecting(EventLoopFuture<HTTP2UpstreamConnection>)
            case ready(HTTP2UpstreamConnection)
        }

        var http2: [UpstreamTarget: HTTP2Entry] = [:]
        var idle: [UpstreamTarget: [HTTP1UpstreamConnection]] = [:]
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

    /// Sends one request and hands each response part to `receive`.
    func send(_ head: HTTPRequest, body: ByteBuffer, to target: UpstreamTarget, receive: @escaping ResponsePartReceiver) async throws {
        if case .mesh = target.security {
            let connection = try await http2Connection(to: target)
            do {
                try await connection.exchange(head, body: body, receive: receive)
            } catch let error as UpstreamError where error.code == .closedBeforeResponse && !connection.isActive {
                // The pooled connection died (the serving proxy restarted): once more on a new one.
                try await http2Connection(to: target).exchange(head, body: body, receive: receive)
            }
            return
        }
        let connection = try await http1Connection(to: target)
        let reused = connection.used.load(ordering: .relaxed)
        let keepAlive: Bool
        do {
            keepAlive = try await connection.exchange(head, body: body, receive: receive)
        } catch let error as UpstreamError where error.code == .closedBeforeResponse && reused {
            connection.close()
            let fresh = try await newHTTP1Connection(to: target)
            release(fresh, to: target, keepAlive: try await fresh.exchange(head, body: body, receive: receive))
            return
        } catch {
            connection.close()
            throw error
        }
        release(connection, to: target, keepAlive: keepAlive)
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

    private func http1Connection(to target: UpstreamTarget) async throws -> HTTP1UpstreamConnection {
        let pooled: HTTP1UpstreamConnection? = state.withLock { state in
            while let connection = state.idle[target]?.popLast() {
                if connection.isActive { return connection }
            }
            return nil
        }
        if let pooled { return pooled }
        return try await newHTTP1Connection(to: target)
    }

    private func release(_ connection: HTTP1UpstreamConnection, to target: UpstreamTarget, keepAlive: Bool) {
        guard keepAlive, connection.isActive else {
            connection.close()
            return
        }
        let kept = state.withLock { state in
            guard state.idle[target, default: []].count < maxIdlePerTarget else { return false }
            state.idle[target, default: []].append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    private func newHTTP1Connection(to target: UpstreamTarget) async throws -> HTTP1UpstreamConnection {
        let context = try sslContext(for: target.security)
        let verifier: SPIFFEPeerVerifier? = if case .controlPlane(let expected) = target.security, let identity {
            SPIFFEPeerVerifier(role: "token-client", logger: logger, bundle: { identity.current.bundle }, authorize: SPIFFEPeerVerifier.only(expected))
        } else {
            nil
        }
        do {
            let channel = try await bootstrap().connect(host: target.host, port: target.port) { channel in
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
                    try sync.addHandler(HTTP1ToHTTPClientCodec())
                    return try NIOAsyncChannel<HTTPResponsePart, HTTPRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
            return HTTP1UpstreamConnection(channel)
        } catch {
            throw UpstreamError(code: .connect, reason: "cannot connect to \(target): \(error)")
        }
    }

    // MARK: HTTP/2 (mesh)

    private func http2Connection(to target: UpstreamTarget) async throws -> HTTP2UpstreamConnection {
        enum Next { case use(HTTP2UpstreamConnection), wait(EventLoopFuture<HTTP2UpstreamConnection>) }
        let context = try sslContext(for: target.security)
        let next: Next = try state.withLock { state in
            switch state.http2[target] {
            case .ready(let connection)? where connection.isActive:
                return .use(connection)
            case .connecting(let pending)?:
                // Requests that arrive while it connects share the one connection.
                return .wait(pending)
            default:
                let pending = try connectHTTP2(to: target, context: context)
                state.http2[target] = .connecting(pending)
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
                if case .connecting(let current)? = state.http2[target], current === pending { state.http2[target] = .ready(connection) }
            }
            return connection
        } catch {
            state.withLock { state in
                if case .connecting(let current)? = state.http2[target], current === pending { state.http2[target] = nil }
            }
            throw UpstreamError(code: .connect, reason: "cannot connect to \(target): \(error)")
        }
    }

    private func connectHTTP2(to target: UpstreamTarget, context: NIOSSLContext?) throws -> EventLoopFuture<HTTP2UpstreamConnection> {
        guard let context else {
            throw UpstreamError(code: .connect, reason: "\(target) is a mesh backend and this proxy has no SVID (it runs with --insecure-xds)")
        }
        guard case .mesh(let expected) = target.security, let identity else {
            throw UpstreamError(code: .connect, reason: "\(target) is not a mesh target")
        }
        let verifier = SPIFFEPeerVerifier(role: "mesh-client", logger: logger, bundle: { identity.current.bundle }, authorize: SPIFFEPeerVerifier.only(expected))
        return bootstrap().connect(host: target.host, port: target.port).flatMap { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil, customVerificationCallbackWithMetadata: verifier.callback))
                let multiplexer = try sync.configureAsyncHTTP2Pipeline(mode: .client) { stream in
                    stream.eventLoop.makeSucceededVoidFuture()
                }
                return HTTP2UpstreamConnection(channel: channel, multiplexer: multiplexer)
            }
        }
    }

    // MARK: TLS

    private func bootstrap() -> ClientBootstrap {
        ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
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
        configuration.minimumTLSVersion = .tlsv12
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
