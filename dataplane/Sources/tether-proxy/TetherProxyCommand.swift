import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TetherCore
import TetherIdentity
import TetherMeshIdentity
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
        abstract: "Run the proxy: obtain its SPIFFE identity, subscribe to its config over xDS (mTLS) and serve it.",
        discussion: """
            First start: the proxy generates its private key, redeems a single-use join token \
            (tether-control token create) for an X.509-SVID, and verifies the control plane \
            against --trust-bundle or --ca-hash. The SVID is kept in the data directory \
            (key 0600) and renewed at half its lifetime, so restarts need no new token. The \
            proxy keeps the last config it accepted and serves it while the control plane is \
            unreachable.

              tether-proxy run --control cp.example:15012 --bootstrap cp.example:15013 \\
                --join-token tjt.… --ca-hash sha256:…
              tether-proxy run --control cp.example:15012      # later starts
              tether-proxy run --control 127.0.0.1:15012 --insecure-xds \\
                --node-id spiffe://example.org/agent/triage    # tests only
            """
    )

    @Option(help: ArgumentHelp("The control plane's xDS address (mTLS); with replicas, several, comma-separated, or a DNS name with several addresses. The proxy fails over between them.", valueName: "host:port[,host:port…]"))
    var control: String

    @Option(help: ArgumentHelp("The control plane's bootstrap address (default: the first --control host, port 15013).", valueName: "host:port"))
    var bootstrap: String?

    @Option(help: ArgumentHelp("Single-use join token for the first SVID. Or set TETHER_JOIN_TOKEN, which keeps it out of the process list.", valueName: "token"))
    var joinToken: String?

    @Option(help: ArgumentHelp("CA certificates (PEM) to verify the control plane with when joining.", valueName: "file"))
    var trustBundle: String?

    @Option(help: ArgumentHelp("Pin of the control plane's CA public key, as printed by tether-control token create.", valueName: "sha256:hex"))
    var caHash: String?

    @Option(help: ArgumentHelp("Take the SVID from this SPIFFE Workload API endpoint (e.g. a SPIRE agent: --spiffe-endpoint-socket \"$SPIFFE_ENDPOINT_SOCKET\") instead of a join token.", valueName: "unix:///path"))
    var spiffeEndpointSocket: String?

    @Option(help: ArgumentHelp("This proxy's SPIFFE ID. Required with --insecure-xds; otherwise it must match the SVID.", valueName: "spiffe-id"))
    var nodeID: String?

    @Flag(help: "Connect to the control plane without TLS (loopback only; tests and local development).")
    var insecureXDS = false

    @Option(help: ArgumentHelp("Where to keep the SVID and the last good config.", valueName: "dir"))
    var dataDir = "./tether-proxy-data"

    @Option(help: ArgumentHelp("Unix socket for the SPIFFE Workload API, which gives the co-located agent this proxy's identity (point the agent's SPIFFE_ENDPOINT_SOCKET at unix://<path>); \"none\" to serve none. Default: <data-dir>/workload.sock.", valueName: "path"))
    var workloadAPISocket: String?

    @Option(help: ArgumentHelp("Loopback address of the admin endpoint (/ready, /config_dump, /metrics).", valueName: "host:port"))
    var adminAddress = "127.0.0.1:15000"

    @Option(help: ArgumentHelp("The agent's MCP listener: cleartext HTTP/1.1 and h2c, loopback only; \"none\" to serve none.", valueName: "host:port"))
    var outboundAddress = "127.0.0.1:15001"

    @Option(help: ArgumentHelp("The mTLS listener in front of a local MCP server (peers must present an X.509-SVID of the trust domain); \"none\" to serve none.", valueName: "host:port"))
    var inboundAddress = "0.0.0.0:15006"

    @Option(help: ArgumentHelp("The control plane's token service, for builtin token exchanges (default: the first --control host, port 15014).", valueName: "host:port"))
    var tokenService: String?

    @Option(help: ArgumentHelp("Where to write the JSON access log, one line per MCP request: a file, \"-\" for stdout, or \"none\".", valueName: "path"))
    var accessLog = "-"

    @OptionGroup(title: "Listener limits (outbound and inbound)")
    var limits: ListenerLimitOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        Proxy.runConcurrencyOnEventLoops()
        Proxy.returnLargeBuffersToTheSystem()
        umask(0o077)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tether-proxy")
        let controlAddresses: ControlPlaneAddresses
        do { controlAddresses = try ControlPlaneAddresses(parsing: control, what: "--control") } catch {
            throw ValidationError(error.description)
        }
        guard let admin = try? HostPort(adminAddress), EndpointURL.isLoopback(admin.host) else {
            throw ValidationError("--admin-address \(adminAddress) must be a loopback host:port")
        }
        let node: SPIFFEID?
        do { node = try nodeID.map(SPIFFEID.init) } catch {
            throw ValidationError("--node-id \(nodeID ?? "") is not a SPIFFE ID: it \(error.reason)")
        }
        var configuration = Proxy.Configuration(control: controlAddresses, identity: try identitySource(control: controlAddresses.first, node: node))
        configuration.dataDirectory = dataDir
        configuration.adminHost = admin.host
        configuration.adminPort = admin.port
        func listener(_ flag: String, _ value: String) throws -> HostPort? {
            guard value != "none" else { return nil }
            guard let address = try? HostPort(value) else { throw ValidationError("--\(flag) \(value) is not host:port (or \"none\")") }
            return address
        }
        configuration.outbound = try listener("outbound-address", outboundAddress)
        configuration.inbound = try listener("inbound-address", inboundAddress)
        configuration.accessLog = accessLog == "none" ? nil : accessLog
        if let tokenService {
            guard let address = try? HostPort(tokenService) else { throw ValidationError("--token-service \(tokenService) is not host:port") }
            configuration.tokenService = address
        }
        configuration.listenerLimits = try limits.limits()
        if !insecureXDS {
            let socket = workloadAPISocket ?? URL(fileURLWithPath: dataDir).standardizedFileURL.appendingPathComponent("workload.sock").path
            configuration.workloadAPISocket = socket == "none" ? nil : socket
        } else if workloadAPISocket != nil, workloadAPISocket != "none" {
            throw ValidationError("--workload-api-socket needs an identity; it cannot be used with --insecure-xds")
        }
        // A runtime failure, not a usage error: ProxyError prints without the usage text.
        let proxy = try await Proxy(configuration: configuration, logger: logger)
        logger.info("proxy starting", metadata: ["tether.control": "\(control)", "tether.node": "\(proxy.identity?.current.id.description ?? node?.description ?? "")"])
        let group = ServiceGroup(configuration: .init(services: proxy.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("proxy stopped")
    }

    func identitySource(control: HostPort, node: SPIFFEID?) throws -> Proxy.IdentitySource {
        if insecureXDS {
            guard let node else { throw ValidationError("--insecure-xds needs --node-id: without a certificate nothing else names this proxy") }
            guard joinToken == nil else { throw ValidationError("--join-token cannot be used with --insecure-xds") }
            return .insecure(node: node)
        }
        if let endpoint = spiffeEndpointSocket {
            guard joinToken == nil, trustBundle == nil, caHash == nil else {
                throw ValidationError("--spiffe-endpoint-socket replaces --join-token, --trust-bundle and --ca-hash; give one or the other")
            }
            return .workloadAPI(endpoint: endpoint, expectedNode: node)
        }
        let bootstrapAddress: HostPort
        if let bootstrap {
            guard let parsed = try? HostPort(bootstrap) else { throw ValidationError("--bootstrap \(bootstrap) is not host:port") }
            bootstrapAddress = parsed
        } else {
            bootstrapAddress = try HostPort(control.host.contains(":") ? "[\(control.host)]:15013" : "\(control.host):15013")
        }
        var join: (token: String, trust: IdentityBootstrap.Trust)?
        let environmentToken = ProcessInfo.processInfo.environment["TETHER_JOIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let joinToken = joinToken ?? environmentToken {
            switch (trustBundle, caHash) {
            case (let path?, nil):
                guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("--trust-bundle \(path) cannot be read") }
                do {
                    join = (joinToken, .certificates(try TrustBundle(trustDomain: "", pem: pem).x509Authorities))
                } catch {
                    throw ValidationError("--trust-bundle \(path): \(error.reason)")
                }
            case (nil, let pin?):
                guard pin.hasPrefix("sha256:"), pin.count == 71, pin.dropFirst(7).allSatisfy(\.isHexDigit) else {
                    throw ValidationError("--ca-hash \(pin) is not sha256:<64 hex digits>; copy it from tether-control token create")
                }
                join = (joinToken, .caHash(pin.lowercased()))
            case (nil, nil):
                throw ValidationError("--join-token needs --trust-bundle FILE or --ca-hash sha256:… to verify the control plane")
            case (_?, _?):
                throw ValidationError("give --trust-bundle or --ca-hash, not both")
            }
        } else if trustBundle != nil || caHash != nil {
            throw ValidationError("--trust-bundle and --ca-hash are for bootstrapping with --join-token")
        }
        return .controlPlane(bootstrap: bootstrapAddress, join: join, expectedNode: node)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
