import Synchronization
import TetherCore

/// The control plane's one publish point for mesh snapshots: a writer (the
/// snapshot updater) and one subscriber per xDS stream. Each subscriber sees
/// the current snapshot first and then only the newest one — a slow stream
/// skips intermediate snapshots instead of holding anyone up.
public final class SnapshotPublisher: Sendable {
    private struct State {
        var snapshot: MeshSnapshot
        var subscribers: [Int: AsyncStream<MeshSnapshot>.Continuation] = [:]
        var nextID = 0
        var closed = false
    }

    private let state: Mutex<State>

    public init(_ initial: MeshSnapshot = .empty) {
        state = Mutex(State(snapshot: initial))
    }

    public var current: MeshSnapshot {
        state.withLock { $0.snapshot }
    }

    public func publish(_ snapshot: MeshSnapshot) {
        let subscribers = state.withLock { state in
            state.snapshot = snapshot
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.yield(snapshot) }
    }

    /// The current snapshot, then each newer one; ends when the publisher closes.
    public func updates() -> AsyncStream<MeshSnapshot> {
        let (stream, continuation) = AsyncStream<MeshSnapshot>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            continuation.yield(state.snapshot)
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every subscription (the streams then close): graceful shutdown.
    public func close() {
        let subscribers = state.withLock { state in
            state.closed = true
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
