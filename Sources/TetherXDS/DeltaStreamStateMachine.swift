import SwiftProtobuf
import TetherCore

/// The server side of one incremental (delta) ADS stream, for every type on
/// it: subscriptions, what the client holds, the response awaiting its ACK,
/// and the last NACK. Pure: requests and snapshot changes in, responses out;
/// the stream handler does the I/O.
///
/// Rules (xDS protocol, "Incremental xDS"):
/// - `*` (or an empty first subscription) subscribes to every resource of the
///   type; names subscribe explicitly. A subscribed name is always (re)sent.
/// - `initial_resource_versions` on a type's first request says what a
///   reconnecting client holds; only differences are sent.
/// - A request carrying the nonce of the outstanding response ACKs it, or
///   NACKs it when `error_detail` is set. Subscription changes apply whatever
///   the nonce.
/// - One response per type is outstanding at a time; further changes wait
///   for its ACK/NACK and then go out together.
/// - A NACKed state is not sent again until the desired state changes.
/// - The first request of each type is always answered, even when there is
///   nothing to send (an empty response): that is how a client, reconnecting
///   with everything it needs, learns that its state is complete.
public struct DeltaStreamStateMachine: Sendable {
    public typealias Request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
    public typealias Response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

    struct Pending: Sendable {
        var nonce: String
        var sent: [String: String]
        var removed: Set<String>
        /// The desired state this response was computed for.
        var desired: [String: String]
    }

    struct TypeState: Sendable {
        var seen = false
        var answered = false
        var wildcard = false
        var explicit: Set<String> = []
        /// What the client holds, by name: ACKed, or reported on reconnect.
        var client: [String: String] = [:]
        var pending: Pending?
        /// The desired state whose response the client NACKed, and why.
        var nacked: (desired: [String: String], message: String)?
    }

    public let node: SPIFFEID
    private(set) var view: MeshView
    private var types: [ResourceKind: TypeState] = [:]
    private var nonces: UInt64 = 0

    public init(node: SPIFFEID, view: MeshView) {
        self.node = node
        self.view = view
    }

    /// Handles one client request; returns the response to send, if any.
    public mutating func receive(_ request: Request) -> Response? {
        guard let kind = TetherTypes.kind(typeURL: request.typeURL) else { return nil }
        var state = types[kind] ?? TypeState()
        if !state.seen {
            state.seen = true
            state.client = request.initialResourceVersions
            if request.resourceNamesSubscribe.isEmpty { state.wildcard = true }
        }
        for name in request.resourceNamesSubscribe {
            if name == "*" {
                state.wildcard = true
            } else {
                state.explicit.insert(name)
                // The client may have dropped it; a subscribed name is always sent.
                state.client[name] = nil
            }
        }
        for name in request.resourceNamesUnsubscribe {
            if name == "*" {
                state.wildcard = false
            } else {
                state.explicit.remove(name)
            }
        }
        if !state.wildcard {
            // The client drops what it no longer subscribes to.
            state.client = state.client.filter { state.explicit.contains($0.key) }
        }
        if !request.responseNonce.isEmpty, let pending = state.pending, pending.nonce == request.responseNonce {
            state.pending = nil
            if request.hasErrorDetail {
                state.nacked = (pending.desired, request.errorDetail.message)
            } else {
                state.nacked = nil
                for (name, version) in pending.sent { state.client[name] = version }
                for name in pending.removed { state.client[name] = nil }
            }
        }
        types[kind] = state
        return respond(kind)
    }

    /// A new snapshot view; returns the responses to send, in push order.
    public mutating func update(view: MeshView) -> [Response] {
        self.view = view
        return TetherTypes.pushOrder.compactMap { types[$0] == nil ? nil : respond($0) }
    }

    /// What the client should hold for a type: name → version.
    func desired(_ kind: ResourceKind, _ state: TypeState) -> [String: String] {
        let all = view.versions[kind] ?? [:]
        return state.wildcard ? all : all.filter { state.explicit.contains($0.key) }
    }

    private mutating func respond(_ kind: ResourceKind) -> Response? {
        guard var state = types[kind], state.pending == nil else { return nil }
        let desired = desired(kind, state)
        if let nacked = state.nacked, nacked.desired == desired { return nil }
        let changed = desired.filter { state.client[$0.key] != $0.value }
        let removed = Set(state.client.keys).subtracting(desired.keys)
        guard !changed.isEmpty || !removed.isEmpty || !state.answered else { return nil }
        state.answered = true

        nonces += 1
        let nonce = String(nonces)
        let all = view.resources(of: kind)
        var response = Response()
        response.typeURL = TetherTypes.typeURL(kind)
        response.systemVersionInfo = String(view.revision)
        response.nonce = nonce
        response.removedResources = removed.sorted()
        response.resources = changed.keys.sorted().compactMap { name in
            guard let item = all[name] else { return nil }
            var resource = Envoy_Service_Discovery_V3_Resource()
            resource.name = name
            resource.version = item.version
            resource.resource = ResourceCoding.any(item.resource)
            return resource
        }
        state.pending = Pending(nonce: nonce, sent: changed, removed: removed, desired: desired)
        types[kind] = state
        return response
    }

    /// Per-type sync state, for `tether-control proxies`.
    public var status: [TypeSyncStatus] {
        TetherTypes.pushOrder.map { kind in
            guard let state = types[kind] else {
                return TypeSyncStatus(kind: kind, state: .notSent, version: nil, message: nil)
            }
            let desired = desired(kind, state)
            let held = combinedVersion(state.client)
            if let nacked = state.nacked, nacked.desired == desired {
                return TypeSyncStatus(kind: kind, state: .nacked, version: held, message: nacked.message)
            }
            if state.client == desired {
                return TypeSyncStatus(kind: kind, state: .synced, version: held, message: nil)
            }
            return TypeSyncStatus(kind: kind, state: .stale, version: held, message: nil)
        }
    }
}

/// How far one proxy is with one type of config.
public struct TypeSyncStatus: Hashable, Sendable, Codable {
    public enum State: String, Hashable, Sendable, Codable {
        /// The proxy ACKed exactly what it should have.
        case synced = "SYNCED"
        /// Sent and not yet ACKed, or the desired state moved on since.
        case stale = "STALE"
        /// The proxy rejected the latest state; `message` says why.
        case nacked = "NACKED"
        /// The proxy has not subscribed to this type.
        case notSent = "NOT SENT"
    }

    public var kind: ResourceKind
    public var state: State
    /// The version of the set the proxy holds (a combined hash).
    public var version: String?
    public var message: String?

    public init(kind: ResourceKind, state: State, version: String?, message: String?) {
        self.kind = kind
        self.state = state
        self.version = version
        self.message = message
    }
}
