import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import TetherCore
import TetherIdentity
import TetherMeshIdentity

/// Takes the proxy's identity from an existing SPIFFE Workload API endpoint
/// (a SPIRE agent, or another Workload API server) instead of a join token:
/// the SVID, key and bundle from FetchX509SVID, the JWT-SVID keys from
/// FetchJWTBundles, following every rotation the endpoint pushes. JWT-SVIDs
/// for the proxy come from the endpoint too.
public final class WorkloadAPIIdentitySource: Service, Sendable {
    public let socketPath: String
    let identity: WorkloadIdentityPublisher
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    let logger: Logger
    static let metadata: Metadata = ["workload.spiffe.io": "true"]

    /// - Parameters:
    ///   - endpoint: `unix:///path`, `unix:/path` or a plain path (the
    ///     forms of `SPIFFE_ENDPOINT_SOCKET`).
    ///   - identity: where updates go; starts from `fetchInitial`.
    public init(endpoint: String, identity: WorkloadIdentityPublisher, logger: Logger) throws(ProxyError) {
        let path = try Self.socketPath(endpoint)
        socketPath = path
        self.identity = identity
        self.logger = logger
        do {
            client = GRPCClient(transport: try HTTP2ClientTransport.Posix(
                target: .unixDomainSocket(path: path), transportSecurity: .plaintext,
                config: .defaults { $0.backoff.max = .seconds(5) }
            ))
        } catch {
            throw ProxyError(.identity, "cannot set up a Workload API client for \(endpoint): \(error)")
        }
    }

    /// The first identity the endpoint offers (at most `timeout` to wait),
    /// before the proxy starts anything that needs it.
    public static func fetchInitial(endpoint: String, timeout: Duration = .seconds(15), logger: Logger) async throws(ProxyError) -> WorkloadIdentity {
        let path = try socketPath(endpoint)
        do {
            return try await withGRPCClient(transport: try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: path), transportSecurity: .plaintext)) { client in
                let api = Workload_SpiffeWorkloadAPI.Client(wrapping: client)
                var options = CallOptions.defaults
                options.timeout = timeout
                let jwks = try await api.fetchJWTBundles(Workload_JWTBundlesRequest(), metadata: metadata, options: options) { response in
                    for try await message in response.messages { return message }
                    throw ProxyError(.identity, "the Workload API closed the JWT bundle stream")
                }
                return try await api.fetchX509SVID(Workload_X509SVIDRequest(), metadata: metadata, options: options) { response in
                    for try await message in response.messages {
                        let identity = try WorkloadAPIMessages.identity(from: message)
                        return try Self.withJWTBundles(identity, jwks)
                    }
                    throw ProxyError(.identity, "the Workload API closed the X.509-SVID stream without sending one")
                }
            }
        } catch let error as ProxyError {
            throw error
        } catch let error as RPCError {
            throw ProxyError(.identity, "cannot get an SVID from the Workload API at \(endpoint): \(error.message) (\(error.code))")
        } catch {
            throw ProxyError(.identity, "cannot get an SVID from the Workload API at \(endpoint): \(error)")
        }
    }

    static func socketPath(_ endpoint: String) throws(ProxyError) -> String {
        var path = endpoint
        if path.hasPrefix("unix://") { path.removeFirst(7) } else if path.hasPrefix("unix:") { path.removeFirst(5) }
        guard path.hasPrefix("/") else {
            throw ProxyError(.configuration, "--spiffe-endpoint-socket \(endpoint) must be an absolute unix socket path (unix:///path)")
        }
        return path
    }

    static func withJWTBundles(_ identity: WorkloadIdentity, _ response: Workload_JWTBundlesResponse) throws -> WorkloadIdentity {
        var identity = identity
        let trustDomain = identity.id.trustDomain
        if let jwks = response.bundles["spiffe://\(trustDomain)"] {
            identity.bundle.jwtAuthorities = try WorkloadAPIMessages.jwtAuthorities(jwks: jwks, trustDomain: trustDomain)
        }
        return identity
    }

    /// Follows the endpoint's streams until shutdown, reconnecting with
    /// backoff; the current identity stays in use meanwhile.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.client.runConnections() }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { streams in
                        streams.addTask { await self.loop("X.509-SVID") { try await self.followX509() } }
                        streams.addTask { await self.loop("JWT bundle") { try await self.followJWTBundles() } }
                    }
                }
                self.client.beginGracefulShutdown()
            }
        }
    }

    private func loop(_ what: String, _ body: @Sendable () async throws -> Void) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await body()
                failures = 0
            } catch {
                failures += 1
                logger.warning("Workload API stream failed; will retry", metadata: ["tether.workload_api.stream": "\(what)", "error": "\(error)"])
            }
            do { try await Task.sleep(for: .milliseconds(200 * (1 << min(failures, 5)))) } catch { return }
        }
    }

    private func followX509() async throws {
        let api = Workload_SpiffeWorkloadAPI.Client(wrapping: client)
        try await api.fetchX509SVID(Workload_X509SVIDRequest(), metadata: Self.metadata) { response in
            for try await message in response.messages {
                let received = try WorkloadAPIMessages.identity(from: message)
                let changed = self.identity.update { current in
                    guard current.svid.leaf != received.svid.leaf || current.bundle.x509Authorities != received.bundle.x509Authorities else { return false }
                    let jwt = current.bundle.jwtAuthorities
                    current = received
                    current.bundle.jwtAuthorities = jwt
                    return true
                }
                guard changed else { continue }
                self.logger.info("SVID rotated by the Workload API endpoint", metadata: [
                    "tether.node": "\(received.id)", "tether.svid.serial": "\(received.svid.leaf.serialNumber.openSSLText)", "tether.svid.expires": "\(received.svid.notAfter.formatted(.iso8601))",
                ])
            }
        }
    }

    private func followJWTBundles() async throws {
        let api = Workload_SpiffeWorkloadAPI.Client(wrapping: client)
        try await api.fetchJWTBundles(Workload_JWTBundlesRequest(), metadata: Self.metadata) { response in
            for try await message in response.messages {
                let updated = try Self.withJWTBundles(self.identity.current, message)
                self.identity.update { current in
                    guard current.bundle.jwtAuthorities != updated.bundle.jwtAuthorities else { return false }
                    current.bundle.jwtAuthorities = updated.bundle.jwtAuthorities
                    return true
                }
            }
        }
    }

    /// A JWT-SVID for the proxy's own identity, from the endpoint.
    public func mintJWTSVID(audience: [String]) async throws -> String {
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        let response = try await Workload_SpiffeWorkloadAPI.Client(wrapping: client).fetchJWTSVID(
            .with { $0.audience = audience }, metadata: Self.metadata, options: options
        )
        guard let token = response.svids.first?.svid else {
            throw ProxyError(.identity, "the Workload API returned no JWT-SVID")
        }
        return token
    }
}
