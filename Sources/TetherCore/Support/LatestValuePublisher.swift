import Synchronization

/// One publish point for a value that changes over time — mesh snapshots in
/// the control plane, the current SVID and bundle in a proxy: one writer,
/// many subscribers. Each subscriber sees the current value first and then
/// only the newest one, so a slow subscriber skips intermediate values
/// instead of holding anyone up.
public final class LatestValuePublisher<Value: Sendable>: Sendable {
    private struct State {
        var value: Value
        var subscribers: [Int: AsyncStream<Value>.Continuation] = [:]
        var nextID = 0
        var closed = false
    }

    private let state: Mutex<State>

    public init(_ initial: Value) {
        state = Mutex(State(value: initial))
    }

    public var current: Value {
        state.withLock { $0.value }
    }

    public func publish(_ value: Value) {
        let subscribers = state.withLock { state in
            state.value = value
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.yield(value) }
    }

    /// Changes the current value in place, atomically with respect to other
    /// writers, and publishes the result if `change` returns true; returns
    /// whether it did.
    @discardableResult
    public func update(_ change: (inout Value) -> Bool) -> Bool {
        let (changed, value, subscribers) = state.withLock { state in
            let changed = change(&state.value)
            return (changed, state.value, changed ? Array(state.subscribers.values) : [])
        }
        guard changed else { return false }
        for subscriber in subscribers { subscriber.yield(value) }
        return true
    }

    /// The current value, then each newer one; ends when the publisher closes.
    public func updates() -> AsyncStream<Value> {
        let (stream, continuation) = AsyncStream<Value>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            continuation.yield(state.value)
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
