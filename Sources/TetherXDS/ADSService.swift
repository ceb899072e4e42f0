import GRPCCore
import Logging
import TetherCore

/// Decides which SPIFFE ID an xDS stream speaks for. With mTLS this is the
/// client certificate's SPIFFE ID, and `node.id` must equal it.
public protocol XDSNodeAuthenticator: Sendable {
    func authenticate(nodeID: String, context: ServerContext) throws(RPCError) -> SPIFFEID
}

/// For `--insecure-xds` (loopback only): trusts `node.id`, which must still
/// be a SPIFFE ID.
public struct InsecureNodeAuthenticator: XDSNodeAuthenticator {
    public init() {}

    public func authenticate(nodeID: String, context: ServerContext) throws(RPCError) -> SPIFFEID {
        do {
            return try SPIFFEID(nodeID)
        } catch {
            throw RPCError(code: .invalidArgument, message: "node.id \"\(nodeID)\" is not a SPIFFE ID: it \(error.reason)")
        }
    }
}

/// One ADS stream's protocol logic, delta or state of the world.
protocol ADSStreamStateMachine: SyncStatusSource {
    associatedtype Request: Sendable
    associatedtype Response: Sendable
    static var mode: ProxyStatus.Mode { get }
    static func nodeID(of request: Request) -> String?
    init(node: SPIFFEID, view: MeshView)
    var node: SPIFFEID { get }
    mutating func receive(_ request: Request) -> Response?
    mutating func update(view: MeshView) -> [Response]
}

extension DeltaStreamStateMachine: ADSStreamStateMachine {
    static var mode: ProxyStatus.Mode { .delta }
    static func nodeID(of request: Request) -> String? { request.hasNode ? request.node.id : nil }
}

extension SotWStreamStateMachine: ADSStreamStateMachine {
    static var mode: ProxyStatus.Mode { .sotw }
    static func nodeID(of request: Request) -> String? { request.hasNode ? request.node.id : nil }
}

/// The Aggregated Discovery Service: serves each proxy its own view of the
/// current snapshot over delta and state-of-the-world streams.
///
/// Each stream runs in its own task and waits only on its own client, so a
/// slow proxy never delays the others; snapshots reach a busy stream as
/// "newest only".
public struct ADSService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
    let publisher: SnapshotPublisher
    let registry: ProxyRegistry
    let authenticator: any XDSNodeAuthenticator
    /// Revoked identities: their streams end at once.
    let revoked: LatestValuePublisher<Set<SPIFFEID>>
    let logger: Logger

    public init(
        publisher: SnapshotPublisher, registry: ProxyRegistry, authenticator: any XDSNodeAuthenticator,
        revoked: LatestValuePublisher<Set<SPIFFEID>> = LatestValuePublisher([]), logger: Logger
    ) {
        self.publisher = publisher
        self.registry = registry
        self.authenticator = authenticator
        self.revoked = revoked
        self.logger = logger
    }

    public func deltaAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>,
        context: ServerContext
    ) async throws {
        try await serve(DeltaStreamStateMachine.self, requests: request, writer: response, context: context)
    }

    public func streamAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
        context: ServerContext
    ) async throws {
        try await serve(SotWStreamStateMachine.self, requests: request, writer: response, context: context)
    }

    private enum Event<Request: Sendable>: Sendable {
        case request(Request)
        case snapshot(MeshSnapshot)
        case revoked(Set<SPIFFEID>)
        case clientDone
        case shutdown
    }

    private func serve<Machine: ADSStreamStateMachine>(
        _: Machine.Type,
        requests: RPCAsyncSequence<Machine.Request, any Error>,
        writer: RPCWriter<Machine.Response>,
        context: ServerContext
    ) async throws {
        let (events, continuation) = AsyncStream<Event<Machine.Request>>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await request in requests { continuation.yield(.request(request)) }
                } catch {}
                continuation.yield(.clientDone)
            }
            group.addTask {
                for await snapshot in publisher.updates() { continuation.yield(.snapshot(snapshot)) }
                continuation.yield(.shutdown)
            }
            group.addTask {
                for await set in revoked.updates() { continuation.yield(.revoked(set)) }
            }
            defer { group.cancelAll() }

            var machine: Machine?
            var stream: Int?
            var latest = publisher.current
            defer { if let stream { registry.disconnect(stream: stream) } }
            loop: for await event in events {
                switch event {
                case .request(let request):
                    if machine == nil {
                        guard let nodeID = Machine.nodeID(of: request) else {
                            throw RPCError(code: .invalidArgument, message: "the first request on a stream must carry node.id")
                        }
                        let node = try authenticator.authenticate(nodeID: nodeID, context: context)
                        if revoked.current.contains(node) {
                            throw RPCError(code: .permissionDenied, message: "\(node) has been revoked")
                        }
                        machine = Machine(node: node, view: latest.view(for: node))
                        stream = registry.connect(node: node.description, mode: Machine.mode)
                        logger.info("xDS stream opened", metadata: ["tether.node": "\(node)", "tether.xds.mode": "\(Machine.mode.rawValue)"])
                    }
                    if let response = machine!.receive(request) {
                        try await writer.write(response)
                    }
                case .snapshot(let snapshot):
                    latest = snapshot
                    guard var current = machine else { continue }
                    let responses = current.update(view: snapshot.view(for: current.node))
                    machine = current
                    for response in responses { try await writer.write(response) }
                case .revoked(let set):
                    if let node = machine?.node, set.contains(node) {
                        logger.notice("xDS stream closed: the node was revoked", metadata: ["tether.node": "\(node)"])
                        throw RPCError(code: .permissionDenied, message: "\(node) has been revoked")
                    }
                case .clientDone, .shutdown:
                    break loop
                }
                if let stream, let machine { registry.update(stream: stream, source: machine) }
            }
            if let machine {
                logger.info("xDS stream closed", metadata: ["tether.node": "\(machine.node)"])
            }
        }
    }
}
