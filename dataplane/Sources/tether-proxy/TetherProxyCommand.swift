import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TetherCore
import TetherProxy

/// `tether-proxy`: the data plane beside each agent and each MCP server.
@main
struct TetherProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether-proxy",
        abstract: "Tether's data-plane proxy.",
        subcommands: [Run.self]
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy: subscribe to its config over xDS and serve it.",
        discussion: """
            The proxy keeps the last config it accepted in its data directory and serves it when \
            the control plane is unreachable. Until workload identity is configured the xDS \
            connection is plaintext and must be to loopback (--insecure-xds).

              tether-proxy run --control 127.0.0.1:15012 --insecure-xds \\
                --node-id spiffe://example.org/agent/triage --admin-address 127.0.0.1:15000
            """
    )

    @Option(help: ArgumentHelp("The control plane's xDS address.", valueName: "host:port"))
    var control: String

    @Option(help: ArgumentHelp("This proxy's SPIFFE ID (its xDS node id).", valueName: "spiffe-id"))
    var nodeID: String

    @Flag(help: "Connect to the control plane without TLS (loopback only).")
    var insecureXDS = false

    @Option(help: ArgumentHelp("Where to keep the last good config.", valueName: "dir"))
    var dataDir = "./tether-proxy-data"

    @Option(help: ArgumentHelp("Loopback address of the admin endpoint (/ready, /config_dump).", valueName: "host:port"))
    var adminAddress = "127.0.0.1:15000"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        umask(0o077)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tether-proxy")
        guard insecureXDS else {
            throw ValidationError("workload identity is not configured yet: pass --insecure-xds to connect to a loopback control plane without TLS")
        }
        let node: SPIFFEID
        do { node = try SPIFFEID(nodeID) } catch {
            throw ValidationError("--node-id \(nodeID) is not a SPIFFE ID: it \(error.reason)")
        }
        guard let controlAddress = try? HostPort(control) else {
            throw ValidationError("--control \(control) is not host:port")
        }
        guard let admin = try? HostPort(adminAddress), EndpointURL.isLoopback(admin.host) else {
            throw ValidationError("--admin-address \(adminAddress) must be a loopback host:port")
        }
        var configuration = Proxy.Configuration(node: node, controlHost: controlAddress.host, controlPort: controlAddress.port)
        configuration.dataDirectory = dataDir
        configuration.adminHost = admin.host
        configuration.adminPort = admin.port
        let proxy: Proxy
        do {
            proxy = try Proxy(configuration: configuration, logger: logger)
        } catch {
            throw ValidationError(error.description)
        }
        logger.info("proxy starting", metadata: ["tether.node": "\(node)", "tether.control": "\(control)"])
        let group = ServiceGroup(configuration: .init(services: proxy.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("proxy stopped")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
