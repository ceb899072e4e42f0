import Foundation
import Synchronization
import TetherCore

/// What the control plane knows about one xDS stream of one proxy.
public struct ProxyStatus: Hashable, Sendable, Codable {
    /// The ADS variant: incremental or state of the world.
    public enum Mode: String, Hashable, Sendable, Codable {
        case delta, sotw
    }

    public var node: String
    public var stream: Int
    public var mode: Mode
    public var connectedAt: Date
    /// Set once the stream ended; the entry is kept for a while so operators
    /// see proxies that went away.
    public var disconnectedAt: Date?
    public var types: [TypeSyncStatus]
    /// The control-plane replica serving the stream (with a shared store).
    public var replica: String?
}

/// Every proxy stream's sync state, for `tether-control proxies`. Streams
/// report after each event; ended streams are forgotten after `retention`.
public final class ProxyRegistry: Sendable {
    private let entries = Mutex<[Int: ProxyStatus]>([:])
    private let nextStream = Atomic<Int>(1)
    public let retention: TimeInterval

    public init(retention: TimeInterval = 3600) {
        self.retention = retention
    }

    public func connect(node: String, mode: ProxyStatus.Mode) -> Int {
        let stream = nextStream.add(1, ordering: .relaxed).oldValue
        entries.withLock {
            $0[stream] = ProxyStatus(node: node, stream: stream, mode: mode, connectedAt: Date(), types: [])
        }
        return stream
    }

    public func update(stream: Int, types: [TypeSyncStatus]) {
        entries.withLock { $0[stream]?.types = types }
    }

    public func disconnect(stream: Int) {
        entries.withLock { $0[stream]?.disconnectedAt = Date() }
    }

    public var all: [ProxyStatus] {
        let cutoff = Date().addingTimeInterval(-retention)
        return entries.withLock { entries in
            entries = entries.filter { ($0.value.disconnectedAt ?? .distantFuture) > cutoff }
            return entries.values.sorted { ($0.node, $0.stream) < ($1.node, $1.stream) }
        }
    }
}
