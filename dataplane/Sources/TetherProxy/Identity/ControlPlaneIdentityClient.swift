import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import Synchronization
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import X509

/// The proxy's connections for identity calls to the control plane — SVID
/// renewal and JWT-SVIDs — over mTLS on the xDS address, presenting its
/// current SVID (new connections pick up a rotated one) and accepting only
/// the control plane's own SVID. With several replicas a call goes to the
/// one that last answered and, if it cannot be reached, to each other in
/// turn: any replica can renew any proxy.
public final class ControlPlaneIdentityClient: Service, Sendable {
    let clients: [(address: HostPort, client: GRPCClient<HTTP2ClientTransport.Posix>)]
    let identity: WorkloadIdentityPublisher
    let logger: Logger
    /// The entry that answered last.
    private let preferred = Atomic<Int>(0)
    static let callTimeout: Duration = .seconds(10)

    public init(control: ControlPlaneAddresses, identity: WorkloadIdentityPublisher, logger: Logger) throws(ProxyError) {
        self.identity = identity
        self.logger = logger
        do {
            let security = try MeshTLS.controlPlaneClient(identity: identity, logger: logger)
            clients = try control.all.map { address in
                (address, GRPCClient(transport: try ControlPlaneAddresses.transport(to: address, security: security)))
            }
        } catch {
            throw ProxyError(.identity, "cannot set up mTLS to the control plane at \(control): \(error)")
        }
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                for (_, client) in clients {
                    group.addTask { try await client.runConnections() }
                }
            }
        } onGracefulShutdown: {
            for (_, client) in self.clients { client.beginGracefulShutdown() }
        }
    }

    /// A new SVID over a fresh key, with the current bundle.
    public func renew() async throws -> WorkloadIdentity {
        let key = P256.Signing.PrivateKey()
        let current = identity.current.svid.id
        var request = Tether_Identity_V1_RenewX509SVIDRequest()
        request.csr = Data(try X509SVID.certificateSigningRequest(for: current, key: key))
        let response = try await call { client, options in
            try await Tether_Identity_V1_Identity.Client(wrapping: client).renewX509SVID(request, options: options)
        }
        do {
            return try await IdentityResponse.identity(from: response, key: key, expected: current)
        } catch {
            throw ProxyError(.identity, error.reason)
        }
    }

    /// A JWT-SVID for this proxy's own SPIFFE ID.
    public func mintJWTSVID(audience: [String]) async throws -> String {
        var request = Tether_Identity_V1_MintJWTSVIDRequest()
        request.audience = audience
        return try await call { client, options in
            try await Tether_Identity_V1_Identity.Client(wrapping: client).mintJWTSVID(request, options: options).token
        }
    }

    /// Runs `body` against the preferred replica, then the others while the
    /// failure is one another replica might not have (unreachable, timed
    /// out, shutting down); a refusal on the merits is final.
    private func call<T: Sendable>(_ body: (GRPCClient<HTTP2ClientTransport.Posix>, CallOptions) async throws -> T) async throws -> T {
        var options = CallOptions.defaults
        options.timeout = Self.callTimeout
        let start = preferred.load(ordering: .relaxed)
        var lastError: (any Error)?
        for offset in 0..<clients.count {
            let index = (start + offset) % clients.count
            do {
                let result = try await body(clients[index].client, options)
                preferred.store(index, ordering: .relaxed)
                return result
            } catch let error as RPCError where [.unavailable, .deadlineExceeded, .unknown, .internalError].contains(error.code) && clients.count > 1 {
                logger.warning("control plane replica unavailable for an identity call; trying the next", metadata: ["tether.control": "\(clients[index].address)", "error": "\(error)"])
                lastError = error
            }
        }
        throw lastError!
    }
}

extension MeshTLS {
    /// mTLS to the control plane: present the current SVID, accept only
    /// `spiffe://<td>/tether/control` chaining to the current bundle.
    static func controlPlaneClient(identity: WorkloadIdentityPublisher, logger: Logger) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        let verifier = SPIFFEPeerVerifier(role: "control-plane-client", logger: logger, bundle: { identity.current.bundle }) { id in
            let expected = ControlPlaneIdentity.id(trustDomain: identity.current.id.trustDomain)
            return id == expected ? nil : "expected the control plane \(expected), the server is \(id)"
        }
        return try MeshTLS.client(identity: identity, serverVerifier: verifier, bundle: identity.current.bundle)
    }
}
