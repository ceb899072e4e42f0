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
/// report their protocol state after each event; the per-type status is
/// computed from it only when someone reads it — a stream handles messages
/// far more often than operators look, and at thousands of streams computing
/// it on every message cost the control plane more than answering them.
/// Ended streams are forgotten after `retention`.
public final class ProxyRegistry: Sendable {
    private struct Entry: Sendable {
        var status: ProxyStatus
        /// The stream's state machine as of its last event.
        var source: (any SyncStatusSource)?
    }

    private let entries = Mutex<[Int: Entry]>([:])
    private let nextStream = Atomic<Int>(1)
    private let changes = Atomic<UInt64>(0)
    public let retention: TimeInterval

    public init(retention: TimeInterval = 3600) {
        self.retention = retention
    }

    public func connect(node: String, mode: ProxyStatus.Mode) -> Int {
        let stream = nextStream.add(1, ordering: .relaxed).oldValue
        entries.withLock {
            $0[stream] = Entry(status: ProxyStatus(node: node, stream: stream, mode: mode, connectedAt: Date(), types: []), source: nil)
        }
        changes.add(1, ordering: .relaxed)
        return stream
    }

    func update(stream: Int, source: any SyncStatusSource) {
        entries.withLock { $0[stream]?.source = source }
        changes.add(1, ordering: .relaxed)
    }

    public func disconnect(stream: Int) {
        entries.withLock { $0[stream]?.status.disconnectedAt = Date() }
        changes.add(1, ordering: .relaxed)
    }

    /// Grows with every connect, event and disconnect: unchanged means `all` is too.
    public var generation: UInt64 { changes.load(ordering: .relaxed) }

    public var all: [ProxyStatus] {
        let cutoff = Date().addingTimeInterval(-retention)
        let current = entries.withLock { entries in
            entries = entries.filter { ($0.value.status.disconnectedAt ?? .distantFuture) > cutoff }
            return Array(entries.values)
        }
        return current.map { entry in
            var status = entry.status
            status.types = entry.source?.status ?? []
            return status
        }.sorted { ($0.node, $0.stream) < ($1.node, $1.stream) }
    }
}

/// What a stream's per-type sync status is computed from.
protocol SyncStatusSource: Sendable {
    var status: [TypeSyncStatus] { get }
}
