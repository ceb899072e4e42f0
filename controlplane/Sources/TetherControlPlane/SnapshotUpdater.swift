import Logging
import ServiceLifecycle
import Synchronization
import TetherXDS

/// Rebuilds and publishes the mesh snapshot after commits. Commits are
/// debounced: a rebuild waits for `quiet` without commits, but never more
/// than `maximumDelay` after the first — a burst of applies becomes one push,
/// and a steady stream of them still pushes every `maximumDelay`.
public final class SnapshotUpdater: Service, Sendable {
    private let builder: SnapshotBuilder
    private let publisher: SnapshotPublisher
    private let logger: Logger
    private let quiet: Duration
    private let maximumDelay: Duration
    private let generation = Atomic<UInt64>(0)
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>

    public init(builder: SnapshotBuilder, publisher: SnapshotPublisher, logger: Logger, quiet: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(1)) {
        self.builder = builder
        self.publisher = publisher
        self.logger = logger
        self.quiet = quiet
        self.maximumDelay = maximumDelay
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Called after every commit (from any thread).
    public func committed() {
        generation.add(1, ordering: .sequentiallyConsistent)
        signal.yield()
    }

    public func run() async throws {
        // However it ends — stopped, cancelled, or failing at its first
        // build — subscribers' streams end with it.
        defer { publisher.close() }
        // The commits the published snapshot includes: a signal left over
        // from a burst already built is no reason to build it again.
        var built = generation.load(ordering: .sequentiallyConsistent)
        try await rebuild()
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                guard generation.load(ordering: .sequentiallyConsistent) != built else { continue }
                let clock = ContinuousClock()
                let start = clock.now
                var seen = generation.load(ordering: .sequentiallyConsistent)
                while true {
                    do { try await Task.sleep(for: quiet) } catch { return }
                    let now = generation.load(ordering: .sequentiallyConsistent)
                    if now == seen || clock.now - start >= maximumDelay { break }
                    seen = now
                }
                let target = generation.load(ordering: .sequentiallyConsistent)
                do {
                    try await rebuild()
                    built = target
                } catch {
                    logger.error("snapshot rebuild failed; proxies keep the previous config", metadata: ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            self.signal.finish()
        }
    }

    private func rebuild() async throws {
        let snapshot = try await builder.build()
        publisher.publish(snapshot)
        logger.info("snapshot published", metadata: ["tether.revision": "\(snapshot.revision)", "tether.resources": "\(snapshot.resources.count)"])
    }
}
