import Foundation
import GRPCCore
import Logging
import SwiftProtobuf
import TetherCore
import TetherIdentity
import TetherMeshIdentity

/// The SPIFFE Workload API (X.509-SVID and JWT-SVID profiles) for the one
/// workload a proxy stands beside: it hands that workload the proxy's own
/// identity, so an agent using a SPIFFE library (go-spiffe, py-spiffe,
/// java-spiffe) needs no Tether-specific code.
///
/// Caller authentication is the Unix socket's file mode (see
/// `WorkloadAPIServer`): whoever can connect is the workload, and there is
/// exactly one identity to hand out. The standard's behaviours kept here:
/// every call must carry the `workload.spiffe.io: true` metadata
/// (InvalidArgument otherwise, an SSRF guard); stream messages always carry
/// the full state, the first is sent at once and the next whenever the
/// content changes; a JWT-SVID for any other SPIFFE ID is PermissionDenied.
///
/// ```swift
/// let service = WorkloadAPIService(identity: publisher, mintJWTSVID: { audience in
///     try await controlPlane.mintJWTSVID(audience: audience)
/// }, logger: logger)
/// let server = WorkloadAPIServer(socketPath: "/run/tether/agent.sock", service: service, logger: logger)
/// ```
public struct WorkloadAPIService: Workload_SpiffeWorkloadAPI.ServiceProtocol {
    /// Mints a JWT-SVID for the proxy's own SPIFFE ID and `audience`
    /// (JWS compact serialization). Errors become Unavailable.
    public typealias MintJWTSVID = @Sendable (_ audience: [String]) async throws -> String

    /// The metadata every Workload API request must carry, exactly.
    public static let securityHeader = (key: "workload.spiffe.io", value: "true")

    let identity: WorkloadIdentityPublisher
    let mintJWTSVID: MintJWTSVID
    let logger: Logger
    /// Closed by `endStreams()`; every open stream watches it. Never gets a
    /// value other than `false`: only its end matters.
    private let streamsEnd = LatestValuePublisher(false)

    public init(identity: WorkloadIdentityPublisher, mintJWTSVID: @escaping MintJWTSVID, logger: Logger) {
        self.identity = identity
        self.mintJWTSVID = mintJWTSVID
        self.logger = logger
    }

    /// Ends every open stream with OK, and any stream opened later right
    /// after its first message: graceful shutdown. Workload API streams never
    /// end on their own, and the gRPC server's graceful shutdown waits for
    /// every RPC. Clients reconnect, as the standard asks them to.
    /// `WorkloadAPIServer` calls this; the identity publisher stays open
    /// (its owner closes it).
    public func endStreams() {
        streamsEnd.close()
    }

    // MARK: X.509-SVID profile

    public func fetchX509SVID(
        request: ServerRequest<Workload_X509SVIDRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Workload_X509SVIDResponse> {
        try requireSecurityHeader(request.metadata, context)
        return stream(context, message: WorkloadAPIMessages.x509SVIDResponse)
    }

    public func fetchX509Bundles(
        request: ServerRequest<Workload_X509BundlesRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Workload_X509BundlesResponse> {
        try requireSecurityHeader(request.metadata, context)
        return stream(context) { identity in
            var response = Workload_X509BundlesResponse()
            response.bundles = [Self.bundleKey(identity.bundle): Data(identity.bundle.x509AuthoritiesDER)]
            return response
        }
    }

    // MARK: JWT-SVID profile

    public func fetchJWTSVID(
        request: ServerRequest<Workload_JWTSVIDRequest>, context: ServerContext
    ) async throws -> ServerResponse<Workload_JWTSVIDResponse> {
        try requireSecurityHeader(request.metadata, context)
        let audience = request.message.audience
        guard !audience.isEmpty, audience.allSatisfy({ !$0.isEmpty }) else {
            throw RPCError(code: .invalidArgument, message: "FetchJWTSVID needs at least one audience, and no empty one: set JWTSVIDRequest.audience")
        }
        let id = identity.current.id
        if !request.message.spiffeID.isEmpty {
            let requested: SPIFFEID
            do {
                requested = try SPIFFEID(request.message.spiffeID)
            } catch {
                throw RPCError(code: .invalidArgument, message: "JWTSVIDRequest.spiffe_id \(request.message.spiffeID) is not a SPIFFE ID: it \(error.reason)")
            }
            guard requested == id else {
                logger.warning("Workload API refused a JWT-SVID for another identity", metadata: ["tether.spiffe_id": "\(requested)"])
                throw RPCError(code: .permissionDenied, message: "this workload is \(id), not \(requested); leave spiffe_id empty or ask for \(id)")
            }
        }
        let token: String
        do {
            token = try await mintJWTSVID(audience)
        } catch {
            logger.error("Workload API cannot mint a JWT-SVID", metadata: ["tether.spiffe_id": "\(id)", "error": "\(error)"])
            throw RPCError(code: .unavailable, message: "cannot mint a JWT-SVID for \(id) right now (\(error)); retry with a backoff")
        }
        var svid = Workload_JWTSVID()
        svid.spiffeID = id.description
        svid.svid = token
        var response = Workload_JWTSVIDResponse()
        response.svids = [svid]
        logger.debug("Workload API minted a JWT-SVID", metadata: ["tether.spiffe_id": "\(id)", "tether.jwt.audience": "\(audience)"])
        return ServerResponse(message: response)
    }

    public func fetchJWTBundles(
        request: ServerRequest<Workload_JWTBundlesRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Workload_JWTBundlesResponse> {
        try requireSecurityHeader(request.metadata, context)
        return stream(context) { identity in
            var response = Workload_JWTBundlesResponse()
            response.bundles = [Self.bundleKey(identity.bundle): Data(identity.bundle.jwtJWKS.utf8)]
            return response
        }
    }

    public func validateJWTSVID(
        request: ServerRequest<Workload_ValidateJWTSVIDRequest>, context: ServerContext
    ) async throws -> ServerResponse<Workload_ValidateJWTSVIDResponse> {
        try requireSecurityHeader(request.metadata, context)
        guard !request.message.audience.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "ValidateJWTSVID needs the audience to check for: set ValidateJWTSVIDRequest.audience")
        }
        guard !request.message.svid.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "ValidateJWTSVID needs the JWT-SVID to validate: set ValidateJWTSVIDRequest.svid")
        }
        let validator = JWTSVIDValidator(bundle: identity.current.bundle)
        switch await validator.validate(request.message.svid, audience: request.message.audience) {
        case .failure(let error):
            logger.info("Workload API rejected a JWT-SVID", metadata: ["tether.jwt.audience": "\(request.message.audience)", "reason": "\(error.reason)"])
            throw RPCError(code: .invalidArgument, message: "the JWT-SVID is not valid: \(error.reason)")
        case .success(let validated):
            var response = Workload_ValidateJWTSVIDResponse()
            response.spiffeID = validated.id.description
            do {
                response.claims = try Google_Protobuf_Struct(jsonUTF8Data: validated.claimsJSON)
            } catch {
                // The validator decoded the payload as a JSON object already.
                throw RPCError(code: .invalidArgument, message: "the JWT-SVID's claims cannot be represented as a protobuf Struct: \(error)")
            }
            return ServerResponse(message: response)
        }
    }

    // MARK: Shared

    /// Bundles are keyed by the trust domain's SPIFFE ID (`spiffe://td`).
    static func bundleKey(_ bundle: TrustBundle) -> String {
        "spiffe://\(bundle.trustDomain)"
    }

    private func requireSecurityHeader(_ metadata: Metadata, _ context: ServerContext) throws {
        guard metadata[stringValues: Self.securityHeader.key].contains(Self.securityHeader.value) else {
            logger.warning("Workload API request without the security header", metadata: ["tether.workload.rpc": "\(context.descriptor.method)"])
            throw RPCError(
                code: .invalidArgument,
                message: "security header missing: Workload API requests must carry the gRPC metadata \(Self.securityHeader.key): \(Self.securityHeader.value) (SPIFFE Workload Endpoint, Transport)"
            )
        }
    }

    /// A Workload API stream: the current state at once, then a full message
    /// each time the state it is built from changes. It ends, with OK, when
    /// the client goes away (or its deadline passes), when the identity
    /// publisher closes, or on `endStreams()`.
    private func stream<Response: SwiftProtobuf.Message & Equatable>(
        _ context: ServerContext, message: @escaping @Sendable (WorkloadIdentity) -> Response
    ) -> StreamingServerResponse<Response> {
        StreamingServerResponse { writer in
            let method = context.descriptor.method
            // Subscribe before reading the current value, so no change is lost.
            let updates = identity.updates()
            let first = message(identity.current)
            try await writer.write(first)
            logger.debug("Workload API stream opened", metadata: ["tether.workload.rpc": "\(method)"])
            let ended = try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    var last = first
                    for await identity in updates {
                        let next = message(identity)
                        // A rotation that leaves this stream's content as it
                        // was (a new SVID, for a bundles stream) sends nothing.
                        guard next != last else { continue }
                        try await writer.write(next)
                        last = next
                    }
                    return "the identity publisher closed"
                }
                group.addTask {
                    // The client went away, its deadline passed, or the
                    // transport is shutting down (the NIO transport cancels
                    // open RPCs when it quiesces).
                    try? await context.cancellation.cancelled
                    return "the RPC was cancelled"
                }
                group.addTask {
                    for await _ in streamsEnd.updates() {}
                    return "endStreams (graceful shutdown)"
                }
                defer { group.cancelAll() }
                return try await group.next() ?? ""
            }
            logger.debug("Workload API stream ended", metadata: ["tether.workload.rpc": "\(method)", "reason": "\(ended)"])
            return [:]
        }
    }
}
