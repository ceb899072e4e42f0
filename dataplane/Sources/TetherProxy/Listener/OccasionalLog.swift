import Logging
import NIOCore
import Synchronization

/// Logs a condition that can recur thousands of times a second (accepts
/// failing for want of file descriptors, connections over the limit) at most
/// once per interval, with how often it happened since the last line — so
/// the log tells the operator without becoming the next problem.
final class OccasionalLog: Sendable {
    private struct State {
        var nextLine: NIODeadline = .uptimeNanoseconds(0)
        var suppressed = 0
    }

    let interval: TimeAmount
    private let state = Mutex(State())

    init(interval: TimeAmount = .seconds(10)) {
        self.interval = interval
    }

    /// Whether to write a line now and, if so, how many occurrences since
    /// the last line went unlogged.
    func occurred(now: NIODeadline = .now()) -> Int? {
        state.withLock { state in
            guard now >= state.nextLine else {
                state.suppressed += 1
                return nil
            }
            defer { state = State(nextLine: now + interval, suppressed: 0) }
            return state.suppressed
        }
    }
}
