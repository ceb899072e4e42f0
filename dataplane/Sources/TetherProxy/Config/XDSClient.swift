import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import TetherCore
import TetherMeshIdentity
import TetherXDS

/// Keeps the proxy subscribed to its config over a delta ADS stream:
/// connects, subscribes to every Tether type (saying what it already holds),
/// validates each response, swaps the config atomically, persists it, and
/// ACKs — or NACKs and keeps the last good config. Reconnects with capped
/// exponential backoff and full jitter.
public struct XDSClient: Service {
    public struct Configuration: Sendable {
        /// The replicas; each new stream goes to the entry after the last one's.
        public var control: ControlPlaneAddresses
        public var node: SPIFFEID
        /// nil: plaintext to a loopback control plane (`--insecure-xds`).
        public var identity: WorkloadIdentityPublisher?
        /// Reconnect timing; see `ReconnectBackoff` (within a second for the
        /// first minute after a working stream is lost, then up to 15 s).
        var backoff = ReconnectBackoff()

        public init(control: ControlPlaneAddresses, node: SPIFFEID, identity: WorkloadIdentityPublisher?) {
            self.control = control
            self.node = node
            self.identity = identity
        }
    }

    let configuration: Configuration
    let checks: LocalResourceChecks
    let store: ProxyConfigStore
    let file: LastGoodConfigFile
    let metrics: ProxyMetrics
    let logger: Logger

    public init(configuration: Configuration, store: ProxyConfigStore, file: LastGoodConfigFile, metrics: ProxyMetrics = ProxyMetrics(), logger: Logger) {
        self.metrics = metrics
        self.configuration = configuration
        checks = LocalResourceChecks(identity: configuration.identity)
        self.store = store
        self.file = file
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var backoff = configuration.backoff
            var entry = 0
            while !Task.isCancelled {
                let failure: String
                let address = configuration.control.all[entry]
                do {
                    try await session(address)
                    failure = "the control plane closed the stream"
                } catch is CancellationError {
                    break
                } catch {
                    failure = "\(error)"
                    logger.warning("xDS stream failed; will retry", metadata: ["error": "\(error)", "tether.control": "\(address)"])
                }
                // The replica may be gone: the next stream tries another.
                entry = configuration.control.next(after: entry)
                // Up means the control plane answered on this stream: it was healthy.
                let healthy = store.current.connected
                store.connection(up: false, error: failure)
                let now = ContinuousClock.now
                backoff.streamEnded(healthy: healthy, at: now)
                do { try await Task.sleep(for: backoff.delay(at: now)) } catch { break }
            }
        }
    }

    /// One stream, marked up in the store once the control plane answers.
    /// Each session dials anew, so it presents the SVID current at that time.
    private func session(_ address: HostPort) async throws {
        let transport = try ControlPlaneAddresses.transport(
            to: address, security: try configuration.identity.map { try MeshTLS.controlPlaneClient(identity: $0, logger: logger) } ?? .plaintext
        )
        try await withGRPCClient(transport: transport) { client in
            let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
            let machine = XDSClientStateMachine(node: configuration.node.description, config: store.current.config)
            let (outgoing, send) = AsyncStream<XDSClientStateMachine.Request>.makeStream()
            for request in machine.initialRequests() { send.yield(request) }
            try await ads.deltaAggregatedResources { writer in
                for await request in outgoing { try await writer.write(request) }
            } onResponse: { response in
                defer { send.finish() }
                var machine = machine
                var received = false
                var accepted = Set<String>()
                for try await message in response.messages {
                    if !received {
                        received = true
                        store.connection(up: true)
                        logger.info("xDS stream established", metadata: ["tether.control": "\(address)"])
                    }
                    switch machine.handle(message, localCheck: checks.check) {
                    case .accepted(let config, let ack):
                        store.replace(config, source: .xds)
                        checks.apply(config)
                        metrics.configAccepted.increment()
                        do {
                            try file.save(config)
                        } catch {
                            logger.error("cannot persist the last good config", metadata: ["error": "\(error)"])
                        }
                        logger.info("config accepted", metadata: [
                            "tether.xds.type": "\(message.typeURL)", "tether.revision": "\(message.systemVersionInfo)",
                            "tether.xds.updated": "\(message.resources.count)", "tether.xds.removed": "\(message.removedResources.count)",
                        ])
                        send.yield(ack)
                        accepted.insert(message.typeURL)
                        if accepted.count == TetherTypes.pushOrder.count { store.markComplete() }
                    case .rejected(let reason, let nack):
                        store.rejected(reason)
                        metrics.configRejected.increment()
                        logger.warning("config rejected; keeping the last good config", metadata: ["tether.xds.type": "\(message.typeURL)", "reason": "\(reason)"])
                        send.yield(nack)
                    }
                }
            }
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
