import Foundation
import TetherAdminHTTP
import TetherCore
import TetherMeshIdentity
import TetherXDS

/// The proxy's loopback admin endpoint: `/ready`, `/metrics` and `/config_dump`
/// (credential values removed; of the identity only public facts).
public struct ProxyAdmin: Sendable {
    let node: SPIFFEID
    let store: ProxyConfigStore
    /// nil with an insecure control connection.
    let identity: WorkloadIdentityPublisher?
    let metrics: ProxyMetrics

    public init(node: SPIFFEID, store: ProxyConfigStore, identity: WorkloadIdentityPublisher? = nil, metrics: ProxyMetrics = ProxyMetrics()) {
        self.node = node
        self.store = store
        self.identity = identity
        self.metrics = metrics
    }

    public func handle(_ request: AdminRequest) -> AdminResponse {
        guard request.method == "GET" else {
            return text(405, "only GET is served here\n")
        }
        switch request.path {
        case "/ready":
            let state = store.current
            if let svid = identity?.current.svid, svid.notAfter <= Date() {
                // Peers and the control plane refuse an expired SVID: nothing here can work.
                return text(503, "not ready: the SVID expired at \(svid.notAfter.formatted(.iso8601)) and could not be renewed; see the log, or bootstrap again with a new join token\n")
            }
            if !state.complete {
                return text(503, "not ready: no complete config yet (the control plane has not sent every type and there is no saved config)\n")
            }
            let unresolved = state.config.unresolvedReferences(for: node)
            if !unresolved.isEmpty {
                return text(503, "not ready: waiting for \(unresolved.joined(separator: ", "))\n")
            }
            return text(200, "ready\n")
        case "/config_dump":
            return configDump()
        case "/metrics":
            return AdminResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Data(metrics.scrape(store: store, identity: identity)))
        default:
            return text(404, "unknown path \(request.path); try /ready, /config_dump or /metrics\n")
        }
    }

    struct Dump: Encodable {
        struct Entry: Encodable {
            var version: String
            var resource: Resource
        }
        var node: String
        var source: ProxyConfigStore.Source
        var complete: Bool
        var systemVersion: String
        var connected: Bool
        var lastError: String?
        var lastNACK: String?
        var unresolvedReferences: [String]
        var identity: Identity?
        var resources: [Entry]
    }

    /// The public facts of the proxy's identity (never its key).
    struct Identity: Encodable {
        var spiffeID: String
        var serial: String
        var notBefore: Date
        var notAfter: Date
        var trustDomain: String
        var x509Authorities: Int
        var jwtAuthorities: [String]
    }

    func configDump() -> AdminResponse {
        let state = store.current
        let dump = Dump(
            node: node.description,
            source: state.source,
            complete: state.complete,
            systemVersion: state.config.systemVersion,
            connected: state.connected,
            lastError: state.lastError,
            lastNACK: state.lastNACK,
            unresolvedReferences: state.config.unresolvedReferences(for: node),
            identity: identity.map { publisher in
                let current = publisher.current
                return Identity(
                    spiffeID: current.id.description, serial: current.svid.leaf.serialNumber.openSSLText,
                    notBefore: current.svid.notBefore, notAfter: current.svid.notAfter, trustDomain: current.bundle.trustDomain,
                    x509Authorities: current.bundle.x509Authorities.count, jwtAuthorities: current.bundle.jwtAuthorities.map(\.kid)
                )
            },
            resources: state.config.resources.values.sorted { $0.resource.id < $1.resource.id }.map {
                Dump.Entry(version: $0.version, resource: $0.resource.redactingSecrets())
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return AdminResponse(status: 200, body: (try? encoder.encode(dump)) ?? Data())
    }

    func text(_ status: Int, _ body: String) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: Data(body.utf8))
    }
}
