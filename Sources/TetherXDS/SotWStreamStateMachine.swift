import SwiftProtobuf
import TetherCore

/// The server side of one state-of-the-world ADS stream.
///
/// Every Tether type is full-state in SotW, like Envoy's Listener and
/// Cluster: each response carries every resource of the type the client
/// subscribes to (all of them for a wildcard, empty `resource_names`), and a
/// resource missing from a response is deleted. `version_info` is a hash of
/// the set, so an unchanged set is never resent.
///
/// Rules (xDS protocol, "ACK/NACK and resource type instance version"):
/// - A request whose `response_nonce` is not the latest sent for its type is
///   stale and ignored entirely (a newer response is already on its way).
/// - With the latest nonce, no `error_detail` ACKs the version; with it, the
///   version is NACKed and not sent again until the desired set changes.
/// - Each request carries the full subscription; a change of it is answered.
public struct SotWStreamStateMachine: Sendable {
    public typealias Request = Envoy_Service_Discovery_V3_DiscoveryRequest
    public typealias Response = Envoy_Service_Discovery_V3_DiscoveryResponse

    struct TypeState: Sendable {
        var names: Set<String> = []
        var latestNonce: String?
        var sentVersion: String?
        var ackedVersion: String?
        var nacked: (version: String, message: String)?
    }

    public let node: SPIFFEID
    private(set) var view: MeshView
    private var types: [ResourceKind: TypeState] = [:]
    private var nonces: UInt64 = 0

    public init(node: SPIFFEID, view: MeshView) {
        self.node = node
        self.view = view
    }

    public mutating func receive(_ request: Request) -> Response? {
        guard let kind = TetherTypes.kind(typeURL: request.typeURL) else { return nil }
        var state = types[kind] ?? TypeState()
        if let latest = state.latestNonce, request.responseNonce != latest {
            return nil
        }
        if state.latestNonce != nil {
            if request.hasErrorDetail {
                state.nacked = (state.sentVersion ?? "", request.errorDetail.message)
            } else {
                state.ackedVersion = request.versionInfo
                state.nacked = nil
            }
        } else if !request.versionInfo.isEmpty {
            // A reconnecting client says which version it still runs.
            state.ackedVersion = request.versionInfo
        }
        let subscriptionChanged = Set(request.resourceNames) != state.names
        state.names = Set(request.resourceNames)
        types[kind] = state
        return respond(kind, force: state.latestNonce == nil || subscriptionChanged)
    }

    public mutating func update(view: MeshView) -> [Response] {
        self.view = view
        return TetherTypes.pushOrder.compactMap { types[$0] == nil ? nil : respond($0, force: false) }
    }

    func desired(_ kind: ResourceKind, _ state: TypeState) -> [String: VersionedResource] {
        let all = view.resources(of: kind)
        return state.names.isEmpty ? all : all.filter { state.names.contains($0.key) }
    }

    private mutating func respond(_ kind: ResourceKind, force: Bool) -> Response? {
        guard var state = types[kind] else { return nil }
        let desired = desired(kind, state)
        let version = combinedVersion(desired.mapValues(\.version))
        if let nacked = state.nacked, nacked.version == version { return nil }
        guard force || version != state.sentVersion else { return nil }
        if state.latestNonce == nil, state.ackedVersion == version, !force { return nil }

        nonces += 1
        var response = Response()
        response.typeURL = TetherTypes.typeURL(kind)
        response.versionInfo = version
        response.nonce = String(nonces)
        response.resources = desired.sorted { $0.key < $1.key }.map { ResourceCoding.any($0.value.resource) }
        state.latestNonce = response.nonce
        state.sentVersion = version
        types[kind] = state
        return response
    }

    public var status: [TypeSyncStatus] {
        TetherTypes.pushOrder.map { kind in
            guard let state = types[kind] else {
                return TypeSyncStatus(kind: kind, state: .notSent, version: nil, message: nil)
            }
            let version = combinedVersion(desired(kind, state).mapValues(\.version))
            if let nacked = state.nacked, nacked.version == version {
                return TypeSyncStatus(kind: kind, state: .nacked, version: state.ackedVersion, message: nacked.message)
            }
            return TypeSyncStatus(kind: kind, state: state.ackedVersion == version ? .synced : .stale, version: state.ackedVersion, message: nil)
        }
    }
}
