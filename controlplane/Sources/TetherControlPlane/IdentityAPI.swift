import Foundation
import GRPCCore
import Logging
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherXDS
import X509

/// `tether.identity.v1.Bootstrap`: redeems join tokens. Served on the
/// bootstrap port (server-authenticated TLS; the caller has no certificate
/// yet and the token is its only credential).
public struct BootstrapAPI: Tether_Identity_V1_Bootstrap.SimpleServiceProtocol {
    let identity: IdentityService
    let logger: Logger

    public init(identity: IdentityService, logger: Logger) {
        self.identity = identity
        self.logger = logger
    }

    public func join(request: Tether_Identity_V1_JoinRequest, context: ServerContext) async throws -> Tether_Identity_V1_X509SVIDResponse {
        guard !request.joinToken.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "join_token is empty; create one with tether-control token create")
        }
        let result = try await rpc { () async throws(ControlPlaneError) in try await identity.join(token: request.joinToken, csrDER: Array(request.csr)) }
        let id = (try? SVIDValidator.spiffeID(of: result.svid).get())?.description ?? ""
        logger.info("proxy joined", metadata: ["tether.node": "\(id)", "tether.svid.serial": "\(result.svid.serialNumber.openSSLText)", "tether.peer": "\(context.remotePeer)"])
        return .init(result)
    }
}

/// `tether.identity.v1.Identity`: renewals and JWT-SVIDs for a proxy that
/// holds an SVID. Served beside ADS on the mTLS xDS port; the caller is the
/// SPIFFE ID of its verified client certificate and can act only as itself.
public struct IdentityAPI: Tether_Identity_V1_Identity.SimpleServiceProtocol {
    let identity: IdentityService
    let logger: Logger

    public init(identity: IdentityService, logger: Logger) {
        self.identity = identity
        self.logger = logger
    }

    public func renewX509SVID(request: Tether_Identity_V1_RenewX509SVIDRequest, context: ServerContext) async throws -> Tether_Identity_V1_X509SVIDResponse {
        let peer = try context.requirePeer()
        let result = try await rpc { () async throws(ControlPlaneError) in try await identity.renew(csrDER: Array(request.csr), for: peer) }
        logger.info("SVID renewed", metadata: ["tether.node": "\(peer)", "tether.svid.serial": "\(result.svid.serialNumber.openSSLText)"])
        return .init(result)
    }

    public func mintJWTSVID(request: Tether_Identity_V1_MintJWTSVIDRequest, context: ServerContext) async throws -> Tether_Identity_V1_MintJWTSVIDResponse {
        let peer = try context.requirePeer()
        if !request.spiffeID.isEmpty, request.spiffeID != peer.description {
            throw RPCError(code: .permissionDenied, message: "\(peer) may only get JWT-SVIDs for itself, not \(request.spiffeID)")
        }
        do {
            let token = try await identity.mintJWTSVID(for: peer, audience: request.audience)
            return .with {
                $0.spiffeID = peer.description
                $0.token = token
            }
        } catch {
            throw RPCError(error)
        }
    }
}

extension Tether_Identity_V1_X509SVIDResponse {
    init(_ result: IdentityService.JoinResult) {
        self = .with {
            $0.certificateChain = [Data(result.svid.derBytes)]
            $0.spiffeBundle = result.bundle.spiffeBundleJSON
        }
    }
}

extension RPCError {
    init(_ error: ControlPlaneError) {
        let code: RPCError.Code = switch error.code {
        case .badRequest, .invalidConfig: .invalidArgument
        case .permissionDenied: .permissionDenied
        case .notFound: .notFound
        case .unavailable: .unavailable
        default: .internalError
        }
        self.init(code: code, message: error.message)
    }
}

/// A control-plane call with its error as the gRPC status it maps to.
func rpc<T: Sendable>(_ body: () async throws(ControlPlaneError) -> T) async throws(RPCError) -> T {
    do {
        return try await body()
    } catch {
        throw RPCError(error)
    }
}

/// xDS over mTLS: a stream speaks for the SPIFFE ID of its verified client
/// certificate, and its `node.id` must say the same — so a proxy can only
/// ever receive its own view.
public struct MTLSNodeAuthenticator: XDSNodeAuthenticator {
    public init() {}

    public func authenticate(nodeID: String, context: ServerContext) throws(RPCError) -> SPIFFEID {
        let peer = try context.requirePeer()
        guard nodeID == peer.description else {
            throw RPCError(code: .permissionDenied, message: "node.id \"\(nodeID)\" is not the SPIFFE ID of the client certificate (\(peer)); a proxy may only ask for its own config")
        }
        return peer
    }
}
