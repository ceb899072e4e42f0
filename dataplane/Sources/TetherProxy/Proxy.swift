import Foundation
import Logging
import NIOCertificateReloading
import NIOCore
import NIOPosix
import NIOSSL
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
///     control: ControlPlaneAddresses([HostPort("127.0.0.1:15012")]),
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
        /// The control-plane replicas' xDS addresses.
        public var control: ControlPlaneAddresses
        public var identity: IdentitySource
        public var dataDirectory: String = "./tether-proxy-data"
        public var adminHost: String = "127.0.0.1"
        public var adminPort: Int = 15000
        /// Where to serve the SPIFFE Workload API to the co-located agent
        /// (not with an insecure control connection); nil serves none.
        public var workloadAPISocket: String?
        /// The agent's listener (cleartext, loopback only); nil serves none.
        public var outbound: HostPort? = try? HostPort("127.0.0.1:15001")
        /// The mTLS listener in front of a local MCP server; nil serves none.
        public var inbound: HostPort? = try? HostPort("0.0.0.0:15006")
        /// The control plane's token service (for `builtin` token exchanges);
        /// by default the first control-plane replica's host, port 15014.
        public var tokenService: HostPort?
        /// Access log: a path, "-" for stdout, nil for none.
        public var accessLog: String? = "-"
        /// Connection, header, body and timeout limits of the data-path listeners.
        public var listenerLimits = ListenerLimits()

        public init(control: ControlPlaneAddresses, identity: IdentitySource) {
            self.control = control
            self.identity = identity
            let host = control.first.host
            tokenService = try? HostPort(host.contains(":") ? "[\(host)]:15014" : "\(host):15014")
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
            throw ProxyError(.files, "cannot create data directory \(configuration.dataDirectory): \(String(cString: strerror(errno)))")
        }
        let node: SPIFFEID
        var services: [any Service] = []
        switch configuration.identity {
        case .insecure(let insecureNode):
            if let remote = configuration.control.all.first(where: { !EndpointURL.isLoopback($0.host) }) {
                throw ProxyError(.configuration, "--insecure-xds connects without TLS and only to loopback; \(remote.host) is not a loopback address")
            }
            node = insecureNode
            identity = nil
            mintJWTSVID = nil
        case .controlPlane(let bootstrap, let join, let expectedNode):
            let files = SVIDFiles(directory: configuration.dataDirectory)
            let current = try await Self.obtainIdentity(files: files, bootstrap: bootstrap, join: join, logger: logger)
            if let expectedNode, expectedNode != current.id {
                throw ProxyError(.identity, "this proxy's SVID is for \(current.id), not --node-id \(expectedNode)")
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
                throw ProxyError(.identity, "the Workload API at \(endpoint) gives this proxy \(current.id), not --node-id \(expectedNode)")
            }
            logger.info("using the SVID from the Workload API", metadata: ["tether.node": "\(current.id)", "tether.svid.expires": "\(current.svid.notAfter.formatted(.iso8601))"])
            node = current.id
            let publisher = WorkloadIdentityPublisher(current)
            identity = publisher
            let source = try WorkloadAPIIdentitySource(endpoint: endpoint, identity: publisher, logger: logger)
            mintJWTSVID = { audience in try await source.mintJWTSVID(audience: audience) }
            services.append(source)
        }
        store = ProxyConfigStore(node: node)
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
                throw ProxyError(.configuration, "the Workload API socket path \(socket) is \(socket.utf8.count) bytes; Unix socket paths are limited to 107: pass a shorter --workload-api-socket")
            }
            let service = WorkloadAPIService(identity: identity, mintJWTSVID: mintJWTSVID, logger: logger)
            services.append(WorkloadAPIServer(socketPath: socket, service: service, logger: logger))
        }
        services += try Self.dataPath(configuration: configuration, node: node, store: store, identity: identity, mintJWTSVID: mintJWTSVID, metrics: metrics, logger: logger)
        let admin = ProxyAdmin(node: node, store: store, identity: identity, metrics: metrics)
        services += [
            XDSClient(
                configuration: .init(control: configuration.control, node: node, identity: identity),
                store: store, file: file, metrics: metrics, logger: logger
            ),
            LocalHTTPServer(name: "admin", address: .tcp(host: configuration.adminHost, port: configuration.adminPort), logger: logger) { request, _ in
                admin.handle(request)
            },
        ]
        self.services = services
    }

    /// The outbound and inbound listeners, sharing one upstream pool.
    static func dataPath(
        configuration: Configuration, node: SPIFFEID, store: ProxyConfigStore, identity: WorkloadIdentityPublisher?,
        mintJWTSVID: (@Sendable (_ audience: [String]) async throws -> String)?, metrics: ProxyMetrics, logger: Logger
    ) throws(ProxyError) -> [any Service] {
        let accessLog = try AccessLog(destination: configuration.accessLog)
        let upstreams = UpstreamPool(identity: identity, logger: logger)
        let tokenService = configuration.tokenService.flatMap { address -> UpstreamTarget? in
            guard identity != nil else { return nil }
            return UpstreamTarget(host: address.host, port: address.port, security: .controlPlane(ControlPlaneIdentity.id(trustDomain: node.trustDomain)))
        }
        let authenticator = UserAuthenticator(upstreams: upstreams, tokenService: tokenService)
        let credentials = UpstreamCredentials(cache: TokenCache(), mintJWTSVID: mintJWTSVID, tokenService: tokenService, upstreams: upstreams)
        func handler(_ role: Destination.Role) -> MCPProxyHandler {
            MCPProxyHandler(
                role: role, node: node, store: store, upstreams: upstreams, metrics: metrics, accessLog: accessLog, logger: logger,
                authenticator: authenticator, credentials: credentials, maxHeaderListSize: configuration.listenerLimits.maxHeaderListSize
            )
        }
        func listener(_ name: String, _ address: HostPort, tls: HTTPListener.TLS?) -> HTTPListener.Configuration {
            HTTPListener.Configuration(name: name, host: address.host, port: address.port, tls: tls, limits: configuration.listenerLimits)
        }
        var services: [any Service] = []
        if let outbound = configuration.outbound {
            guard EndpointURL.isLoopback(outbound.host) else {
                throw ProxyError(.configuration, "the outbound listener is cleartext and serves the co-located agent only: bind it to a loopback address, not \(outbound.host)")
            }
            services.append(HTTPListener(configuration: listener("outbound", outbound, tls: nil), handler: handler(.outbound), metrics: metrics, logger: logger))
        }
        if let inbound = configuration.inbound {
            if let identity {
                let tls = try inboundTLS(identity: identity, logger: logger)
                services.append(HTTPListener(configuration: listener("inbound", inbound, tls: tls), handler: handler(.inbound), metrics: metrics, logger: logger))
            } else {
                logger.notice("not serving the inbound listener: it is mTLS only, and with --insecure-xds this proxy has no SVID")
            }
        }
        return services
    }

    /// The inbound listener's TLS: the current SVID on every handshake, and
    /// the peer must present an X.509-SVID of the trust domain.
    static func inboundTLS(identity: WorkloadIdentityPublisher, logger: Logger) throws(ProxyError) -> HTTPListener.TLS {
        do {
            let roots = try identity.current.bundle.x509Authorities.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) }
            var tls = try TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateReloader: SVIDCertificateReloader { identity.current.svid }, trustRoots: .certificates(roots)
            )
            tls.applicationProtocols = ["h2", "http/1.1"]
            tls.harden()
            let verifier = SPIFFEPeerVerifier(role: "inbound", logger: logger, bundle: { identity.current.bundle })
            return HTTPListener.TLS(context: try NIOSSLContext(configuration: tls), verifier: verifier.callback)
        } catch {
            throw ProxyError(.identity, "cannot set up the inbound listener's TLS: \(error)")
        }
    }

    /// The saved SVID while it is still valid — a restart needs no new
    /// token, and a token given again is ignored — otherwise a join.
    static func obtainIdentity(
        files: SVIDFiles, bootstrap: HostPort, join: (token: String, trust: IdentityBootstrap.Trust)?, logger: Logger
    ) async throws(ProxyError) -> WorkloadIdentity {
        let saved: WorkloadIdentity?
        do { saved = try files.load() } catch { throw ProxyError(.identity, error.reason) }
        if let saved {
            if saved.svid.notAfter > Date() {
                logger.info("using the saved SVID", metadata: ["tether.node": "\(saved.id)", "tether.svid.expires": "\(saved.svid.notAfter.formatted(.iso8601))"])
                if join != nil {
                    logger.notice("not using --join-token: the saved SVID is still valid (the token stays unused)")
                }
                return saved
            }
            guard join != nil else {
                throw ProxyError(.identity, "the saved SVID for \(saved.id) expired at \(saved.svid.notAfter.formatted(.iso8601)); bootstrap again with a new join token (--join-token with --trust-bundle or --ca-hash)")
            }
        }
        guard let join else {
            throw ProxyError(.identity, "this proxy has no SVID yet: pass --join-token (from tether-control token create) with --trust-bundle or --ca-hash")
        }
        let identity: WorkloadIdentity
        do {
            identity = try await IdentityBootstrap.join(bootstrap: bootstrap, token: join.token, trust: join.trust, logger: logger)
        } catch {
            throw ProxyError(.identity, error.reason)
        }
        do { try files.save(identity) } catch { throw ProxyError(.files, error.reason) }
        logger.info("joined the trust domain", metadata: ["tether.node": "\(identity.id)", "tether.svid.expires": "\(identity.svid.notAfter.formatted(.iso8601))"])
        return identity
    }
}

extension Proxy {
    /// Makes glibc hand large buffers (request bodies of up to megabytes)
    /// back to the system when they are freed. By default glibc raises its
    /// mmap threshold to the size of each large block freed, so after one
    /// big request later ones come from the heap and stay resident: a proxy
    /// that refused one 4 MiB body kept 8 MiB more for good. A fixed
    /// threshold costs an mmap/munmap pair per body over 256 KiB, which MCP
    /// calls rarely are. Call once, first thing in the process.
    public static func returnLargeBuffersToTheSystem() {
        #if canImport(Glibc)
        // mallopt is in <malloc.h>, which the Glibc module does not export.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {  // RTLD_DEFAULT
            _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 256 * 1024)
        }
        #endif
    }

    /// Runs Swift concurrency's jobs on the NIO event loops that do the
    /// proxy's I/O, instead of on a separate thread pool. Every request
    /// crosses between async code and channels several times; with one set
    /// of threads those crossings are queue pushes on the same thread rather
    /// than wake-ups of another, which on a 2-core sidecar was the largest
    /// single cost per request (see docs/performance.md). Call once, first
    /// thing in the process; false when the runtime offers no hook.
    @discardableResult
    public static func runConcurrencyOnEventLoops() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
