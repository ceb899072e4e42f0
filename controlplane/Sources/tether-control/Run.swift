import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TetherControlPlane

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the control plane.",
        discussion: """
            Uses an embedded SQLite database and a generated secrets key under the data \
            directory (created 0700 on first run). Stops gracefully on SIGTERM or SIGINT.

              tether-control run
              tether-control run --data-dir /var/lib/tether
            """
    )

    @Option(name: .long, help: ArgumentHelp("Data directory (database, secrets key, admin socket).", valueName: "dir"))
    var dataDir: String = DataDirectory.defaultPath

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
        let controlPlane: ControlPlane
        do {
            controlPlane = try ControlPlane(configuration: .init(dataDirectory: dataDir), logger: logger)
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
