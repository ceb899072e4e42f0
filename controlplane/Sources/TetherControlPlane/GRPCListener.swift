import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import TetherCore

/// One gRPC listener of the control plane (xDS, bootstrap), served until
/// graceful shutdown.
public struct GRPCListener: Service {
    public enum Security: Sendable {
        /// Plaintext, refused unless the address is loopback (`--insecure-xds`).
        case plaintextLoopback
        /// TLS; `clientCertificates` when peers must present an X.509-SVID (mTLS).
        case tls(HTTP2ServerTransport.Posix.TransportSecurity, clientCertificates: Bool)
    }

    public let name: String
    public let address: HostPort
    let security: Security
    let services: [any RegistrableRPCService]
    let onShutdown: @Sendable () -> Void
    let logger: Logger
    let bound: (@Sendable (Int) -> Void)?

    /// - Parameter onShutdown: runs when graceful shutdown begins, before the
    ///   server drains: it must end the listener's long-lived streams (xDS
    ///   streams never end on their own, and gRPC's graceful shutdown waits
    ///   for every RPC).
    public init(
        name: String, address: HostPort, security: Security, services: [any RegistrableRPCService],
        logger: Logger, onShutdown: @escaping @Sendable () -> Void = {}, bound: (@Sendable (Int) -> Void)? = nil
    ) throws(ControlPlaneError) {
        if case .plaintextLoopback = security, !EndpointURL.isLoopback(address.host) {
            throw ControlPlaneError(.badRequest, "--insecure-xds serves without TLS and only on loopback; \(address.host) is not a loopback address")
        }
        self.name = name
        self.address = address
        self.security = security
        self.services = services
        self.onShutdown = onShutdown
        self.logger = logger
        self.bound = bound
    }

    public func run() async throws {
        let socket: GRPCNIOTransportCore.SocketAddress = address.host.contains(":")
            ? .ipv6(host: address.host, port: address.port) : .ipv4(host: address.host, port: address.port)
        let transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity
        switch security {
        case .plaintextLoopback: transportSecurity = .plaintext
        case .tls(let tls, _): transportSecurity = tls
        }
        let server = GRPCServer(transport: .http2NIOPosix(address: socket, transportSecurity: transportSecurity), services: services)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                if let listening = try await server.listeningAddress {
                    let port = listening.ipv4?.port ?? listening.ipv6?.port ?? address.port
                    let mode = switch security {
                    case .plaintextLoopback: "none (plaintext, loopback only)"
                    case .tls(_, let clientCertificates): clientCertificates ? "mtls" : "tls"
                    }
                    logger.info("listening", metadata: ["tether.listener": "\(name)", "tether.address": "\(address.host):\(port)", "tether.tls": "\(mode)"])
                    bound?(port)
                }
            }
        } onGracefulShutdown: {
            onShutdown()
            server.beginGracefulShutdown()
        }
    }
}
