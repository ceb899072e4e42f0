import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import TetherCore
import TetherXDS

/// Serves ADS (gRPC over HTTP/2) until graceful shutdown.
///
/// Until workload identity lands the server runs plaintext, and only on a
/// loopback address (`--insecure-xds`); node identity comes from an
/// `XDSNodeAuthenticator`, which becomes the peer certificate's SPIFFE ID
/// with mTLS.
public struct XDSServer: Service {
    public let host: String
    public let port: Int
    let service: ADSService
    let publisher: SnapshotPublisher
    let logger: Logger
    let bound: (@Sendable (Int) -> Void)?

    /// - Parameter publisher: closed on shutdown, which ends every open
    ///   stream; xDS streams never end on their own, and the gRPC server's
    ///   graceful shutdown waits for every RPC.
    public init(host: String, port: Int, service: ADSService, publisher: SnapshotPublisher, logger: Logger, bound: (@Sendable (Int) -> Void)? = nil) throws(ControlPlaneError) {
        guard EndpointURL.isLoopback(host) else {
            throw ControlPlaneError(.badRequest, "--insecure-xds serves without TLS and only on loopback; \(host) is not a loopback address")
        }
        self.host = host
        self.port = port
        self.service = service
        self.publisher = publisher
        self.logger = logger
        self.bound = bound
    }

    public func run() async throws {
        let address: GRPCNIOTransportCore.SocketAddress = host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        let server = GRPCServer(transport: .http2NIOPosix(address: address, transportSecurity: .plaintext), services: [service])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                if let listening = try await server.listeningAddress {
                    let port = listening.ipv4?.port ?? listening.ipv6?.port ?? port
                    logger.info("xDS listening (insecure, loopback only)", metadata: ["tether.xds.address": "\(host):\(port)"])
                    bound?(port)
                }
            }
        } onGracefulShutdown: {
            publisher.close()
            server.beginGracefulShutdown()
        }
    }
}
