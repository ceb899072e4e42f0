import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TetherControlPlane
import TetherCore

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the control plane.",
        discussion: """
            Uses an embedded SQLite database and a generated secrets key under the data \
            directory (created 0700 on first run). Stops gracefully on SIGTERM or SIGINT.

              tether-control run
              tether-control run --data-dir /var/lib/tether
              tether-control run --insecure-xds --xds-address 127.0.0.1:15012
            """
    )

    @Option(name: .long, help: ArgumentHelp("Data directory (database, secrets key, admin socket).", valueName: "dir"))
    var dataDir: String = DataDirectory.defaultPath

    @Option(name: .long, help: ArgumentHelp("Where to serve xDS to proxies.", valueName: "host:port"))
    var xdsAddress = "127.0.0.1:15012"

    @Flag(help: "Serve xDS without TLS. Loopback addresses only; for tests and local development until workload identity (mTLS) is configured.")
    var insecureXDS = false

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
        if insecureXDS {
            guard let address = try? HostPort(xdsAddress) else {
                throw CLIError("--xds-address \(xdsAddress) is not host:port")
            }
            configuration.insecureXDS = (address.host, address.port)
        } else {
            logger.notice("xDS is not served: pass --insecure-xds (loopback only) until workload identity is configured")
        }
        let controlPlane: ControlPlane
        do {
            controlPlane = try ControlPlane(configuration: configuration, logger: logger)
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

extension Logger.Level: @retroactive ExpressibleByArgument {}
