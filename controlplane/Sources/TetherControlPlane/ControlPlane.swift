import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import TetherAdminHTTP
import TetherIdentity
import TetherXDS

/// Assembles the control plane from its configuration: data directory, store,
/// secrets, admin API, snapshot updates and the xDS server. `services` run
/// in one `ServiceGroup`.
///
/// ```swift
/// let controlPlane = try ControlPlane(configuration: .init(dataDirectory: "./tether-data"), logger: logger)
/// let group = ServiceGroup(services: controlPlane.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public struct ControlPlane: Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: String
        /// Where to serve xDS without TLS (loopback only); nil serves no xDS.
        public var insecureXDS: (host: String, port: Int)?
        /// The SPIFFE trust domain this control plane is the CA of.
        public var trustDomain: String
        /// PEM files of an operator-provided CA (certificate, key); generated when nil.
        public var providedCA: (certificate: String, key: String)?
        public var svidTTL: TimeInterval = TrustDomainCA.defaultSVIDTTL

        public static let defaultTrustDomain = "tether.local"

        public init(dataDirectory: String = DataDirectory.defaultPath, insecureXDS: (host: String, port: Int)? = nil, trustDomain: String = defaultTrustDomain) {
            self.dataDirectory = dataDirectory
            self.insecureXDS = insecureXDS
            self.trustDomain = trustDomain
        }
    }

    public let directory: DataDirectory
    public let manager: ConfigManager
    public let identity: IdentityService
    public let services: [any Service]
    /// Held for the life of the control plane.
    private let lock: DataDirectoryLock

    public init(configuration: Configuration, logger: Logger, xdsBound: (@Sendable (Int) -> Void)? = nil) throws(ControlPlaneError) {
        directory = try DataDirectory.prepare(path: configuration.dataDirectory)
        lock = try DataDirectoryLock(directory)
        let secrets = try SecretBox.loadOrCreate(keyFile: directory.secretsKeyPath)
        let store = try SQLiteConfigStore(path: directory.databasePath)
        let ca = try CAFiles.loadOrCreate(in: directory, trustDomain: configuration.trustDomain, provided: configuration.providedCA)
        identity = IdentityService(ca: ca, store: store, svidTTL: configuration.svidTTL)
        let publisher = SnapshotPublisher(.empty)
        let updater = SnapshotUpdater(builder: SnapshotBuilder(store: store, secrets: secrets), publisher: publisher, logger: logger)
        manager = ConfigManager(store: store, secrets: secrets, onCommit: { _ in updater.committed() })
        let registry = ProxyRegistry()
        let api = AdminAPI(manager: manager, identity: identity, dataDirectory: directory.path, proxies: registry)
        let admin = LocalHTTPServer(address: .unixSocket(directory.adminSocketPath), logger: logger) { request, caller in
            do {
                return try await NIOThreadPool.singleton.runIfActive { api.handle(request, author: caller) }
            } catch {
                return AdminResponse(status: 503, body: Data(#"{"code":"unavailable","message":"the control plane is shutting down","diagnostics":[]}"#.utf8))
            }
        }
        // ServiceGroup stops services in reverse order: xDS streams first,
        // then snapshot updates, and the admin API last.
        var services: [any Service] = [admin, updater]
        if let xds = configuration.insecureXDS {
            let ads = ADSService(publisher: publisher, registry: registry, authenticator: InsecureNodeAuthenticator(), logger: logger)
            services.append(try XDSServer(host: xds.host, port: xds.port, service: ads, publisher: publisher, logger: logger, bound: xdsBound))
        }
        self.services = services
    }
}
