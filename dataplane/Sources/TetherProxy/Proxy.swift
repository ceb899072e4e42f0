import Foundation
import Logging
import ServiceLifecycle
import TetherAdminHTTP
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherXDS

#if canImport(Glibc)
import Glibc
#endif

/// Assembles a proxy: its data directory, identity, last good config, xDS
/// client and admin endpoint. `services` run in one `ServiceGroup`.
///
/// ```swift
/// let proxy = try await Proxy(configuration: .init(
///     control: HostPort("127.0.0.1:15012"),
///     identity: .controlPlane(bootstrap: HostPort("127.0.0.1:15013"), join: (token, .caHash(pin)), expectedNode: nil)
/// ), logger: logger)
/// try await ServiceGroup(services: proxy.services, gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public struct Proxy: Sendable {
    public enum IdentitySource: Sendable {
        /// Plaintext xDS to a loopback control plane, as `node` (tests and
        /// local development only).
        case insecure(node: SPIFFEID)
        /// mTLS with an SVID from the control plane: the one saved in the
        /// data directory, or a new one from a join token.
        case controlPlane(bootstrap: HostPort, join: (token: String, trust: IdentityBootstrap.Trust)?, expectedNode: SPIFFEID?)
        /// mTLS with the SVID of an existing SPIFFE Workload API endpoint
        /// (a SPIRE agent), following its rotations.
        case workloadAPI(endpoint: String, expectedNode: SPIFFEID?)
    }

    public struct Configuration: Sendable {
        public var control: HostPort
        public var identity: IdentitySource
        public var dataDirectory: String = "./tether-proxy-data"
        public var adminHost: String = "127.0.0.1"
        public var adminPort: Int = 15000
        /// Where to serve the SPIFFE Workload API to the co-located agent
        /// (not with an insecure control connection); nil serves none.
        public var workloadAPISocket: String?

        public init(control: HostPort, identity: IdentitySource) {
            self.control = control
            self.identity = identity
        }
    }

    public let store: ProxyConfigStore
    /// The proxy's SVID and bundle; nil with an insecure control connection.
    public let identity: WorkloadIdentityPublisher?
    /// JWT-SVIDs for the proxy's own identity, from wherever its SVID comes from.
    public let mintJWTSVID: (@Sendable (_ audience: [String]) async throws -> String)?
    public let services: [any Service]

    public init(configuration: Configuration, logger: Logger) async throws(ProxyError) {
        let metrics = ProxyMetrics()
        guard mkdir(configuration.dataDirectory, 0o700) == 0 || errno == EEXIST else {
            throw ProxyError("cannot create data directory \(configuration.dataDirectory): \(String(cString: strerror(errno)))")
        }
        let node: SPIFFEID
        var services: [any Service] = []
        switch configuration.identity {
        case .insecure(let insecureNode):
            guard EndpointURL.isLoopback(configuration.control.host) else {
                throw ProxyError("--insecure-xds connects without TLS and only to loopback; \(configuration.control.host) is not a loopback address")
            }
            node = insecureNode
            identity = nil
            mintJWTSVID = nil
        case .controlPlane(let bootstrap, let join, let expectedNode):
            let files = SVIDFiles(directory: configuration.dataDirectory)
            let current = try await Self.obtainIdentity(files: files, bootstrap: bootstrap, join: join, logger: logger)
            if let expectedNode, expectedNode != current.id {
                throw ProxyError("this proxy's SVID is for \(current.id), not --node-id \(expectedNode)")
            }
            node = current.id
            let publisher = WorkloadIdentityPublisher(current)
            identity = publisher
            let client = try ControlPlaneIdentityClient(control: configuration.control, identity: publisher, logger: logger)
            mintJWTSVID = { audience in try await client.mintJWTSVID(audience: audience) }
            services += [client, SVIDRotator(identity: publisher, client: client, files: files, metrics: metrics, logger: logger)]
        case .workloadAPI(let endpoint, let expectedNode):
            let current = try await WorkloadAPIIdentitySource.fetchInitial(endpoint: endpoint, logger: logger)
            if let expectedNode, expectedNode != current.id {
                throw ProxyError("the Workload API at \(endpoint) gives this proxy \(current.id), not --node-id \(expectedNode)")
            }
            logger.info("using the SVID from the Workload API", metadata: ["tether.node": "\(current.id)", "tether.svid.expires": "\(current.svid.notAfter.formatted(.iso8601))"])
            node = current.id
            let publisher = WorkloadIdentityPublisher(current)
            identity = publisher
            let source = try WorkloadAPIIdentitySource(endpoint: endpoint, identity: publisher, logger: logger)
            mintJWTSVID = { audience in try await source.mintJWTSVID(audience: audience) }
            services.append(source)
        }
        store = ProxyConfigStore()
        let file = LastGoodConfigFile(directory: configuration.dataDirectory)
        do {
            if let saved = try file.load() {
                store.replace(saved, source: .cache)
                store.markComplete()
                logger.info("serving the last good config until the control plane answers", metadata: ["tether.revision": "\(saved.systemVersion)", "tether.resources": "\(saved.resources.count)"])
            }
        } catch {
            logger.error("ignoring the saved config: it cannot be read", metadata: ["path": "\(file.path)", "error": "\(error)"])
        }
        if let socket = configuration.workloadAPISocket, let identity, let mintJWTSVID {
            guard socket.utf8.count <= 107 else {
                throw ProxyError("the Workload API socket path \(socket) is \(socket.utf8.count) bytes; Unix socket paths are limited to 107: pass a shorter --workload-api-socket")
            }
            let service = WorkloadAPIService(identity: identity, mintJWTSVID: mintJWTSVID, logger: logger)
            services.append(WorkloadAPIServer(socketPath: socket, service: service, logger: logger))
        }
        let admin = ProxyAdmin(node: node, store: store, identity: identity, metrics: metrics)
        services += [
            XDSClient(
                configuration: .init(host: configuration.control.host, port: configuration.control.port, node: node, identity: identity),
                store: store, file: file, metrics: metrics, logger: logger
            ),
            LocalHTTPServer(address: .tcp(host: configuration.adminHost, port: configuration.adminPort), logger: logger) { request, _ in
                admin.handle(request)
            },
        ]
        self.services = services
    }

    /// The saved SVID while it is still valid — a restart needs no new
    /// token, and a token given again is ignored — otherwise a join.
    static func obtainIdentity(
        files: SVIDFiles, bootstrap: HostPort, join: (token: String, trust: IdentityBootstrap.Trust)?, logger: Logger
    ) async throws(ProxyError) -> WorkloadIdentity {
        if let saved = try files.load() {
            if saved.svid.notAfter > Date() {
                logger.info("using the saved SVID", metadata: ["tether.node": "\(saved.id)", "tether.svid.expires": "\(saved.svid.notAfter.formatted(.iso8601))"])
                if join != nil {
                    logger.notice("not using --join-token: the saved SVID is still valid (the token stays unused)")
                }
                return saved
            }
            guard join != nil else {
                throw ProxyError("the saved SVID for \(saved.id) expired at \(saved.svid.notAfter.formatted(.iso8601)); bootstrap again with a new join token (--join-token with --trust-bundle or --ca-hash)")
            }
        }
        guard let join else {
            throw ProxyError("this proxy has no SVID yet: pass --join-token (from tether-control token create) with --trust-bundle or --ca-hash")
        }
        let identity = try await IdentityBootstrap.join(bootstrap: bootstrap, token: join.token, trust: join.trust, logger: logger)
        try files.save(identity)
        logger.info("joined the trust domain", metadata: ["tether.node": "\(identity.id)", "tether.svid.expires": "\(identity.svid.notAfter.formatted(.iso8601))"])
        return identity
    }
}
