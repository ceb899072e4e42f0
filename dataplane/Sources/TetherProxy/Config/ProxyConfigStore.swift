import Foundation
import Synchronization
import TetherCore
import TetherXDS

/// The proxy's one publish point for config: the xDS client writes, request
/// handling and the admin endpoint read. A reader takes one snapshot and
/// keeps it for the whole of its work.
public final class ProxyConfigStore: Sendable {
    public struct State: Sendable {
        public var config: ProxyConfig
        /// Where the config came from: nothing yet, the on-disk cache, or xDS.
        public var source: Source
        /// Whether the proxy has had a complete config at least once: from
        /// the cache, or every type from the control plane. Once true it
        /// stays true; a reconnecting proxy keeps serving what it has.
        public var complete: Bool
        public var connected: Bool
        public var lastError: String?
        public var lastNACK: String?
        /// `config` compiled for the request path.
        public var dataPlane: DataPlaneConfig
    }

    public enum Source: String, Sendable, Codable {
        case none, cache, xds
    }

    /// Whose config this is: routes and served backends are this node's.
    public let node: SPIFFEID
    private let state: Mutex<State>

    public init(node: SPIFFEID) {
        self.node = node
        state = Mutex(State(config: ProxyConfig(), source: .none, complete: false, connected: false, dataPlane: DataPlaneConfig(config: ProxyConfig(), node: node)))
    }

    public var current: State { state.withLock { $0 } }

    public func replace(_ config: ProxyConfig, source: Source) {
        // Compiled outside the lock: requests keep reading the old one meanwhile.
        let dataPlane = DataPlaneConfig(config: config, node: node)
        state.withLock {
            $0.dataPlane = dataPlane
            $0.config = config
            $0.source = source
            $0.lastNACK = nil
        }
    }

    public func markComplete() {
        state.withLock { $0.complete = true }
    }

    public func rejected(_ reason: String) {
        state.withLock { $0.lastNACK = reason }
    }

    public func connection(up: Bool, error: String? = nil) {
        state.withLock {
            $0.connected = up
            if let error { $0.lastError = error }
            if up { $0.lastError = nil }
        }
    }
}
