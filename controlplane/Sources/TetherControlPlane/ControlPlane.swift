import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import TetherAdminHTTP
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherXDS
import X509

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
        /// Where to serve xDS; nil serves none.
        public var listeners: Listeners?
        /// The SPIFFE trust domain this control plane is the CA of.
        public var trustDomain: String
        /// PEM files of an operator-provided CA (certificate, key); generated when nil.
        public var providedCA: (certificate: String, key: String)?
        public var svidTTL: TimeInterval = TrustDomainCA.defaultSVIDTTL
        /// Other X.509 authorities of the trust domain to trust and publish
        /// (e.g. a SPIRE server's bundle, for proxies on `--spiffe-endpoint-socket`).
        public var additionalAuthorities: [Certificate] = []
        /// Where to serve the built-in token service (HTTPS, with mTLS for
        /// token exchange); nil serves none. Only with mTLS listeners.
        public var tokenService: HostPort?
        /// The token service's issuer URL; default `https://<tokenService>`.
        public var tokenIssuer: String?
        /// The remote admin endpoint (mTLS, operators on the allow-list);
        /// nil serves none. Only with mTLS listeners.
        public var remoteAdmin: (address: HostPort, operators: OperatorAllowList)?
        /// How long each token signing key signs (staged: published one
        /// period before, kept one period after).
        public var tokenKeyRotation: Duration = .seconds(7 * 24 * 3600)

        /// Where config, identity records and keys live.
        public var store: Store = .sqlite

        public static let defaultTrustDomain = "tether.local"

        public init(dataDirectory: String = DataDirectory.defaultPath, listeners: Listeners? = nil, trustDomain: String = defaultTrustDomain) {
            self.dataDirectory = dataDirectory
            self.listeners = listeners
            self.trustDomain = trustDomain
        }
    }

    public enum Store: Sendable {
        /// The embedded default: SQLite and key files in the data directory.
        case sqlite
        /// Shared by replicas: keys sealed under `kek`; `replica` names this
        /// one in `tether-control proxies`.
        case postgres(PostgresLocation, kek: KeyEncryptionKey, replica: String)
    }

    public enum Listeners: Sendable {
        /// xDS and the identity service over mTLS, and the join-token
        /// bootstrap over server-authenticated TLS.
        case mTLS(xds: HostPort, bootstrap: HostPort)
        /// xDS only, plaintext, loopback only: tests and local development.
        case insecure(xds: HostPort)
    }

    public let directory: DataDirectory
    public let manager: ConfigManager
    public let identity: IdentityService
    public let services: [any Service]
    /// Held for the life of the control plane.
    private let lock: DataDirectoryLock

    /// - Parameter bound: called with each listener's name ("xds", "bootstrap") and bound port.
    public init(configuration: Configuration, logger: Logger, bound: (@Sendable (String, Int) -> Void)? = nil) async throws(ControlPlaneError) {
        directory = try DataDirectory.prepare(path: configuration.dataDirectory)
        lock = try DataDirectoryLock(directory)
        let registry = ProxyRegistry()
        let store: any ConfigStore & IdentityStore
        let keys: ControlPlaneKeys
        let storeDescription: String
        var postgres: PostgresStore?
        var proxies: any ProxyDirectory = registry
        switch configuration.store {
        case .sqlite:
            store = try SQLiteConfigStore(path: directory.databasePath)
            keys = try ControlPlaneKeys.load(in: directory, trustDomain: configuration.trustDomain, provided: configuration.providedCA)
            storeDescription = directory.path
        case .postgres(let location, let kek, let replica):
            let shared = try await PostgresStore(location: location, logger: logger)
            postgres = shared
            store = shared
            keys = try await ControlPlaneKeys.load(in: SealedKeyVault(store: shared, kek: kek), trustDomain: configuration.trustDomain, provided: configuration.providedCA)
            storeDescription = location.description
            proxies = ReplicaPresence(store: shared, replica: replica, registry: registry)
        }
        let ca = keys.ca
        let secrets = keys.secrets
        let jwtIssuer: JWTSVIDIssuer
        do {
            jwtIssuer = try await JWTSVIDIssuer(trustDomain: ca.trustDomain, key: keys.jwtKey)
        } catch {
            throw ControlPlaneError(.secrets, "cannot use the JWT-SVID signing key: \(error)")
        }
        identity = IdentityService(
            ca: ca, jwtIssuer: jwtIssuer, store: store, svidTTL: configuration.svidTTL, additionalAuthorities: configuration.additionalAuthorities,
            revoked: Set(try await store.revokedIdentities().compactMap { try? SPIFFEID($0.spiffeID) })
        )
        let publisher = SnapshotPublisher(.empty)
        let updater = SnapshotUpdater(builder: SnapshotBuilder(store: store, secrets: secrets, published: [identity.bundleResource]), publisher: publisher, logger: logger)
        manager = ConfigManager(store: store, secrets: secrets, onCommit: { _ in updater.committed() })
        let api = AdminAPI(manager: manager, identity: identity, dataDirectory: storeDescription, proxies: proxies)
        let admin = LocalHTTPServer(name: "admin", address: .unixSocket(directory.adminSocketPath), logger: logger) { request, caller in
            await api.handle(request, author: caller)
        }
        // ServiceGroup stops services in reverse order: xDS streams first,
        // then snapshot updates, and the admin API last.
        var services: [any Service] = []
        if let postgres, let presence = proxies as? ReplicaPresence {
            // The store first, so it stops last.
            services += [postgres, ReplicaSync(store: postgres, identity: identity, updater: updater, logger: logger), presence, StorePurge(store: store, logger: logger)]
        } else {
            services.append(StorePurge(store: store, logger: logger))
        }
        services += [admin, updater]
        func report(_ name: String) -> (@Sendable (Int) -> Void)? {
            guard let bound else { return nil }
            return { port in bound(name, port) }
        }
        switch configuration.listeners {
        case .mTLS(let xdsAddress, let bootstrapAddress):
            let own = try await OwnSVIDRotator(identity: identity, logger: logger)
            let trustDomain = ca.trustDomain
            let revoked = identity.revoked
            let verifier = SPIFFEPeerVerifier(role: "xds-server", logger: logger, bundle: { own.publisher.current.bundle }) { id in
                if revoked.current.contains(id) { return "\(id) is revoked" }
                return id.trustDomain == trustDomain ? nil : "\(id) is not in trust domain \(trustDomain)"
            }
            let ads = ADSService(publisher: publisher, registry: registry, authenticator: MTLSNodeAuthenticator(), revoked: revoked, logger: logger)
            do {
                services.append(own)
                services.append(try GRPCListener(
                    name: "bootstrap", address: bootstrapAddress,
                    security: .tls(try MeshTLS.server(identity: own.publisher, clientVerifier: nil), clientCertificates: false),
                    services: [BootstrapAPI(identity: identity, logger: logger)], logger: logger,
                    bound: report("bootstrap")
                ))
                services.append(try GRPCListener(
                    name: "xds", address: xdsAddress,
                    security: .tls(try MeshTLS.server(identity: own.publisher, clientVerifier: verifier), clientCertificates: true),
                    services: [ads, IdentityAPI(identity: identity, logger: logger)], logger: logger,
                    onShutdown: { publisher.close() }, bound: report("xds")
                ))
                if let (adminAddress, operators) = configuration.remoteAdmin {
                    let remote = RemoteAdmin(api: api, identity: identity, operators: operators)
                    let reportAdmin = report("admin")
                    services.append(LocalHTTPServer(
                        name: "remote-admin", address: .tcp(host: adminAddress.host, port: adminAddress.port),
                        tls: try SVIDServerTLS.make(identity: own.publisher, verifier: verifier, clientCertificate: .noHostnameVerification),
                        logger: logger, bound: { address in if case .tcp(_, let port) = address { reportAdmin?(port) } }
                    ) { request, _ in await remote.handle(request) })
                }
                if let tokenAddress = configuration.tokenService {
                    let issuerURL = configuration.tokenIssuer ?? "https://\(tokenAddress)"
                    let tokenIssuer = try await keys.tokenKeys.load().issuer(url: issuerURL)
                    let identityService = identity
                    let tokens = TokenService(issuer: tokenIssuer, snapshot: publisher, bundle: { identityService.bundle }, logger: logger)
                    services.append(TokenKeyRotator(keys: keys.tokenKeys, period: configuration.tokenKeyRotation, issuerURL: issuerURL, service: tokens, logger: logger))
                    let reportToken = report("token")
                    services.append(LocalHTTPServer(
                        name: "token-service", address: .tcp(host: tokenAddress.host, port: tokenAddress.port), tls: try SVIDServerTLS.make(identity: own.publisher, verifier: verifier, clientCertificate: .optionalVerification),
                        logger: logger, bound: { address in if case .tcp(_, let port) = address { reportToken?(port) } }
                    ) { request, _ in await tokens.handle(request) })
                }
            } catch let error as ControlPlaneError {
                throw error
            } catch {
                throw ControlPlaneError(.internal, "cannot set up TLS for the xDS listeners: \(error)")
            }
        case .insecure(let xdsAddress):
            let ads = ADSService(publisher: publisher, registry: registry, authenticator: InsecureNodeAuthenticator(), logger: logger)
            services.append(try GRPCListener(
                name: "xds", address: xdsAddress, security: .plaintextLoopback, services: [ads], logger: logger,
                onShutdown: { publisher.close() }, bound: report("xds")
            ))
        case nil:
            break
        }
        self.services = services
    }
}
