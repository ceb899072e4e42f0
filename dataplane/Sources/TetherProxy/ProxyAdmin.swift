import Foundation
import TetherAdminHTTP
import TetherCore
import TetherXDS

/// The proxy's loopback admin endpoint: `/ready` and `/config_dump`
/// (credential values removed).
public struct ProxyAdmin: Sendable {
    let node: SPIFFEID
    let store: ProxyConfigStore

    public init(node: SPIFFEID, store: ProxyConfigStore) {
        self.node = node
        self.store = store
    }

    public func handle(_ request: AdminRequest) -> AdminResponse {
        guard request.method == "GET" else {
            return text(405, "only GET is served here\n")
        }
        switch request.path {
        case "/ready":
            let state = store.current
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
        default:
            return text(404, "unknown path \(request.path); try /ready or /config_dump\n")
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
        var resources: [Entry]
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
            resources: state.config.resources.values.sorted { $0.resource.id < $1.resource.id }.map {
                Dump.Entry(version: $0.version, resource: $0.resource.redactingSecrets())
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return AdminResponse(status: 200, body: (try? encoder.encode(dump)) ?? Data())
    }

    func text(_ status: Int, _ body: String) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: Data(body.utf8))
    }
}
