import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TetherControlPlane
import TetherCore
import TetherIdentity

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the control plane.",
        discussion: """
            Uses an embedded SQLite database, a generated CA and secrets key under the data \
            directory (created 0700 on first run). With --store postgres://…, several replicas \
            share one PostgreSQL database: any replica serves any proxy and operator, and keys \
            are stored sealed under --key-encryption-key-file (docs/high-availability.md). Serves xDS and SVID renewal over mTLS on \
            --xds-address and join-token bootstrap over TLS on --bootstrap-address; the control \
            plane presents its own SVID, spiffe://<trust-domain>/tether/control. Stops gracefully \
            on SIGTERM or SIGINT.

              tether-control run
              tether-control run --data-dir /var/lib/tether --trust-domain example.org \\
                --xds-address 0.0.0.0:15012 --bootstrap-address 0.0.0.0:15013
            """
    )

    @Option(name: .long, help: ArgumentHelp("Data directory (database, secrets key, admin socket). Default: $TETHER_DATA_DIR, else ./tether-data.", valueName: "dir"))
    var dataDir: String = ProcessInfo.processInfo.environment["TETHER_DATA_DIR"] ?? DataDirectory.defaultPath

    @Option(name: .long, help: ArgumentHelp("Where config, identity records and keys live: \"sqlite\" (the data directory) or postgres://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=FILE, shared by several replicas. Default: $TETHER_STORE, else sqlite.", valueName: "store"))
    var store: String = ProcessInfo.processInfo.environment["TETHER_STORE"] ?? "sqlite"

    @Option(name: .long, help: ArgumentHelp("File holding the PostgreSQL password (else $TETHER_STORE_PASSWORD); never put it in the URL.", valueName: "file"))
    var storePasswordFile: String?

    @Option(name: .long, help: ArgumentHelp("With a postgres store: the key-encryption key every replica shares (32 random bytes, base64; else $TETHER_KEY_ENCRYPTION_KEY). Keys and credentials are stored sealed under it.", valueName: "file"))
    var keyEncryptionKeyFile: String?

    @Option(name: .long, help: ArgumentHelp("With a postgres store: this replica's name in `tether-control proxies` (default: HOSTNAME/XDS-ADDRESS).", valueName: "name"))
    var replicaName: String?

    @Option(name: .long, help: ArgumentHelp("Where to serve xDS and SVID renewal (mTLS) to proxies.", valueName: "host:port"))
    var xdsAddress = "127.0.0.1:15012"

    @Option(name: .long, help: ArgumentHelp("Where proxies redeem join tokens (TLS).", valueName: "host:port"))
    var bootstrapAddress = "127.0.0.1:15013"

    @Option(name: .long, help: ArgumentHelp("Where to serve the built-in token service (HTTPS; RFC 8693 token exchange with the proxy's SVID, JWKS, RFC 8414 metadata); \"none\" to serve none.", valueName: "host:port"))
    var tokenAddress = "127.0.0.1:15014"

    @Option(name: .long, help: ArgumentHelp("The token service's issuer URL, the iss of its tokens (default https://<token-address>).", valueName: "url"))
    var tokenIssuer: String?

    @Option(name: .long, help: ArgumentHelp("How long each token signing key signs; the next key is published one period ahead and the previous kept one period after.", valueName: "duration"))
    var tokenKeyRotation = "168h"

    @Option(name: .long, help: ArgumentHelp("Serve the admin API on TCP for remote operators (mTLS: an operator SVID on the --operator list); \"none\" serves none.", valueName: "host:port"))
    var adminAddress = "none"

    @Option(name: .long, help: ArgumentHelp("A SPIFFE ID allowed to use --admin-address (repeatable; a trailing /* allows a path prefix), e.g. spiffe://example.org/operator/alice.", valueName: "spiffe-id"))
    var `operator`: [String] = []

    @Flag(help: "Serve xDS without TLS and without identity services. Loopback addresses only; for tests and local development.")
    var insecureXDS = false

    @Option(help: ArgumentHelp("The SPIFFE trust domain this control plane is the CA of.", valueName: "name"))
    var trustDomain = ControlPlane.Configuration.defaultTrustDomain

    @Option(help: ArgumentHelp("PEM certificate of an operator-provided CA or intermediate (with --ca-key); otherwise a P-256 root is generated in the data directory.", valueName: "file"))
    var caCert: String?

    @Option(help: ArgumentHelp("PEM private key of --ca-cert.", valueName: "file"))
    var caKey: String?

    @Option(help: ArgumentHelp("More X.509 authorities of the trust domain (PEM), e.g. a SPIRE server's bundle: SVIDs they issue are accepted, and they are published in the trust bundle.", valueName: "file"))
    var trustBundle: String?

    @Option(help: ArgumentHelp("Lifetime of issued X.509-SVIDs, at least 10s; proxies renew at half of it.", valueName: "duration"))
    var svidTTL = "1h"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        // Everything the control plane creates (database, WAL, keys, socket)
        // is for its owner only.
        umask(0o077)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tether-control")
        var configuration = ControlPlane.Configuration(dataDirectory: dataDir)
        do {
            configuration.trustDomain = try SPIFFEID("spiffe://\(trustDomain)").trustDomain
        } catch {
            throw CLIError("--trust-domain \(trustDomain) is not a SPIFFE trust domain: it \(error.reason)")
        }
        switch (caCert, caKey) {
        case (let certificate?, let key?): configuration.providedCA = (certificate, key)
        case (nil, nil): break
        default: throw CLIError("give --ca-cert and --ca-key together")
        }
        if let trustBundle {
            guard let pem = try? String(contentsOfFile: trustBundle, encoding: .utf8) else {
                throw CLIError("--trust-bundle \(trustBundle) cannot be read")
            }
            do {
                configuration.additionalAuthorities = try TrustBundle(trustDomain: configuration.trustDomain, pem: pem).x509Authorities
            } catch {
                throw CLIError("--trust-bundle \(trustBundle): \(error.reason)")
            }
        }
        guard let ttl = try? ConfigDuration(parsing: svidTTL), ttl.milliseconds >= 10_000 else {
            throw CLIError("--svid-ttl \(svidTTL) is not a duration of at least 10s (e.g. 1h, 30s)")
        }
        configuration.svidTTL = Double(ttl.milliseconds) / 1000
        guard let xds = try? HostPort(xdsAddress) else {
            throw CLIError("--xds-address \(xdsAddress) is not host:port")
        }
        guard let bootstrap = try? HostPort(bootstrapAddress) else {
            throw CLIError("--bootstrap-address \(bootstrapAddress) is not host:port")
        }
        configuration.listeners = insecureXDS ? .insecure(xds: xds) : .mTLS(xds: xds, bootstrap: bootstrap)
        configuration.store = try storeConfiguration()
        if adminAddress != "none" {
            guard !insecureXDS else { throw CLIError("--admin-address needs mTLS; it cannot be used with --insecure-xds") }
            guard let address = try? HostPort(adminAddress) else { throw CLIError("--admin-address \(adminAddress) is not host:port (or \"none\")") }
            guard !`operator`.isEmpty else { throw CLIError("--admin-address needs at least one --operator SPIFFE ID allowed to use it") }
            do {
                configuration.remoteAdmin = (address, try OperatorAllowList(`operator`, trustDomain: configuration.trustDomain))
            } catch {
                throw CLIError(error.message)
            }
        } else if !`operator`.isEmpty {
            throw CLIError("--operator applies to the remote admin endpoint; give --admin-address too")
        }
        if tokenAddress != "none", !insecureXDS {
            guard let token = try? HostPort(tokenAddress) else {
                throw CLIError("--token-address \(tokenAddress) is not host:port (or \"none\")")
            }
            configuration.tokenService = token
            configuration.tokenIssuer = tokenIssuer
            // At least a day: the previous key must outlive every token it signed (ttl ≤ 24h).
            guard let rotation = try? ConfigDuration(parsing: tokenKeyRotation), rotation.milliseconds >= 24 * 3_600_000 else {
                throw CLIError("--token-key-rotation \(tokenKeyRotation) is not a duration of at least 24h (e.g. 168h)")
            }
            configuration.tokenKeyRotation = .milliseconds(rotation.milliseconds)
        }
        let controlPlane: ControlPlane
        do {
            controlPlane = try await ControlPlane(configuration: configuration, logger: logger)
        } catch {
            throw CLIError(error.description)
        }
        logger.info("control plane starting", metadata: ["tether.data_dir": "\(controlPlane.directory.path)"])
        let group = ServiceGroup(
            configuration: .init(services: controlPlane.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
        logger.info("control plane stopped")
    }
}

extension Run {
    func storeConfiguration() throws -> ControlPlane.Store {
        guard store != "sqlite" else {
            if keyEncryptionKeyFile != nil || storePasswordFile != nil {
                throw CLIError("--key-encryption-key-file and --store-password-file apply to a postgres store only (--store postgres://…)")
            }
            return .sqlite
        }
        let environment = ProcessInfo.processInfo.environment
        do {
            let location = try PostgresLocation(url: store, password: try PostgresLocation.password(file: storePasswordFile, environment: environment), what: "--store")
            let kek = try KeyEncryptionKey.load(file: keyEncryptionKeyFile, environment: environment)
            return .postgres(location, kek: kek, replica: replicaName ?? "\(ProcessInfo.processInfo.hostName)/\(xdsAddress)")
        } catch {
            throw CLIError(error.message)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
