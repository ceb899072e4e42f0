import Foundation
import Logging
import ServiceLifecycle
import TetherAdminHTTP
import TetherCore
import TetherXDS

#if canImport(Glibc)
import Glibc
#endif

/// Assembles a proxy: its data directory, last good config, xDS client and
/// admin endpoint. `services` run in one `ServiceGroup`.
///
/// ```swift
/// let proxy = try Proxy(configuration: .init(node: id, controlHost: "127.0.0.1", controlPort: 15012), logger: logger)
/// try await ServiceGroup(services: proxy.services, gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public struct Proxy: Sendable {
    public struct Configuration: Sendable {
        public var node: SPIFFEID
        public var controlHost: String
        public var controlPort: Int
        public var dataDirectory: String = "./tether-proxy-data"
        public var adminHost: String = "127.0.0.1"
        public var adminPort: Int = 15000

        public init(node: SPIFFEID, controlHost: String, controlPort: Int) {
            self.node = node
            self.controlHost = controlHost
            self.controlPort = controlPort
        }
    }

    public let store: ProxyConfigStore
    public let services: [any Service]

    public init(configuration: Configuration, logger: Logger) throws(ProxyError) {
        guard EndpointURL.isLoopback(configuration.controlHost) else {
            throw ProxyError("--insecure-xds connects without TLS and only to loopback; \(configuration.controlHost) is not a loopback address")
        }
        guard mkdir(configuration.dataDirectory, 0o700) == 0 || errno == EEXIST else {
            throw ProxyError("cannot create data directory \(configuration.dataDirectory): \(String(cString: strerror(errno)))")
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
        let admin = ProxyAdmin(node: configuration.node, store: store)
        services = [
            XDSClient(
                configuration: .init(host: configuration.controlHost, port: configuration.controlPort, node: configuration.node),
                store: store, file: file, logger: logger
            ),
            LocalHTTPServer(address: .tcp(host: configuration.adminHost, port: configuration.adminPort), logger: logger) { request, _ in
                admin.handle(request)
            },
        ]
    }
}
