import Foundation
import Logging
import Synchronization
import Testing
@testable import TetherControlPlane
import TetherCore
import TetherXDS

/// The snapshot updater publishes the stored state when it starts and again
/// after commits: a burst of commits (each less than `quiet` apart) becomes
/// one rebuild, a steady stream still publishes within `maximumDelay`, the
/// newest revision is always the one left published, a failed rebuild keeps
/// the previous snapshot, and stopping closes the publisher.
///
/// These tests run on the real clock with generous margins: they wait for
/// outcomes (with a deadline) rather than for fixed times where they can.
@Suite("Snapshot updater", .timeLimit(.minutes(1)))
struct SnapshotUpdaterTests {
    /// The test store, counting the reads rebuilds have made, and able to fail them.
    final class CountingStore: ConfigStore {
        let base: SQLiteConfigStore
        let reads = Atomic<Int>(0)
        let failing = Atomic<Bool>(false)

        init(_ base: SQLiteConfigStore) { self.base = base }

        /// Counted once the read is done: a rebuild counted has read its state,
        /// so a commit after the count cannot be in it.
        func currentState() async throws(ControlPlaneError) -> StoreState {
            defer { reads.add(1, ordering: .sequentiallyConsistent) }
            if failing.load(ordering: .sequentiallyConsistent) { throw ControlPlaneError(.storage, "the test store is failing") }
            return try await base.currentState()
        }

        func state(at revision: Int64) async throws(ControlPlaneError) -> StoreState { try await base.state(at: revision) }
        func revisions(limit: Int) async throws(ControlPlaneError) -> [Revision] { try await base.revisions(limit: limit) }
        func commit(
            author: String, operation: Revision.Operation, rollbackTo: Int64?,
            _ plan: @escaping CommitPlan
        ) async throws(ControlPlaneError) -> CommitResult {
            try await base.commit(author: author, operation: operation, rollbackTo: rollbackTo, plan)
        }

        var rebuilds: Int { reads.load(ordering: .sequentiallyConsistent) }
    }

    /// What the publisher's one subscriber saw: every revision, and whether its stream ended.
    final class Subscriber: Sendable {
        let revisions = Mutex<[Int64]>([])
        let ended = Atomic<Bool>(false)

        var seen: [Int64] { revisions.withLock { $0 } }
        var hasEnded: Bool { ended.load(ordering: .sequentiallyConsistent) }
    }

    /// A running updater over a fresh store, with a subscriber to its publisher.
    final class Running {
        let plane: TestControlPlane
        let store: CountingStore
        let publisher = SnapshotPublisher(.empty)
        let updater: SnapshotUpdater
        let subscriber = Subscriber()
        private var tasks: [Task<Void, Never>] = []

        init(quiet: Duration, maximumDelay: Duration, before: (TestControlPlane) async throws -> Void = { _ in }) async throws {
            plane = try TestControlPlane()
            try await before(plane)
            store = CountingStore(plane.store)
            updater = SnapshotUpdater(
                builder: SnapshotBuilder(store: store, secrets: plane.secrets), publisher: publisher, logger: Logger(label: "test"),
                quiet: quiet, maximumDelay: maximumDelay
            )
            let (updates, subscriber, updater) = (publisher.updates(), subscriber, updater)
            tasks.append(Task {
                for await snapshot in updates { subscriber.revisions.withLock { $0.append(snapshot.revision) } }
                subscriber.ended.store(true, ordering: .sequentiallyConsistent)
            })
            tasks.append(Task { try? await updater.run() })
        }

        /// Applies one change and tells the updater, as the control plane's commit hook does.
        func commit(_ timeout: String) async throws {
            let text = try await exampleMesh().replacingOccurrences(of: "timeout: 30s", with: "timeout: \(timeout)")
            _ = try await plane.apply(text)
            updater.committed()
        }

        var revision: Int64 { get async { (try? await plane.store.currentState().revision) ?? -1 } }

        /// Cancels the updater's task.
        func stop() { tasks.last?.cancel() }

        deinit { tasks.forEach { $0.cancel() } }
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes.
    func eventually(_ timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func itPublishesTheStoredStateAtStartAndEachNewRevision() async throws {
        let running = try await Running(quiet: .milliseconds(50), maximumDelay: .seconds(1)) { plane in
            _ = try await plane.apply(try exampleMesh())
        }
        #expect(try await eventually { running.publisher.current.revision == 1 })
        let first = running.publisher.current
        #expect(first.resources.count == 7)
        // Credential values are opened for the proxies.
        guard case .credential(let credential)? = first.resources[ResourceID(.credential, "github-pat")]?.resource.spec,
            case .plaintext(let value)? = credential.value
        else {
            Issue.record("Credential/github-pat is not in plaintext in the snapshot")
            return
        }
        #expect(value.hasPrefix("github_pat_"))

        try await running.commit("45s")
        #expect(try await eventually { running.publisher.current.revision == 2 })
        let second = running.publisher.current
        let route = ResourceID(.route, "github")
        #expect(second.resources[route]?.version != first.resources[route]?.version, "a changed resource gets a new version")
        let backend = ResourceID(.mcpBackend, "github")
        #expect(second.resources[backend]?.version == first.resources[backend]?.version, "an unchanged resource keeps its version")
        // The subscriber sees it too (its task runs after the publish).
        #expect(try await eventually { running.subscriber.seen.last == 2 })
    }

    @Test func nothingIsRebuiltWithoutACommit() async throws {
        let running = try await Running(quiet: .milliseconds(20), maximumDelay: .milliseconds(100))
        #expect(try await eventually { running.store.rebuilds == 1 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(running.store.rebuilds == 1)
    }

    @Test func aBurstOfCommitsBecomesOneRebuildOfTheLastRevision() async throws {
        // `quiet` is 3 s: at the start of a full run one commit can take over a
        // second on a 2-core machine, and the burst must stay one burst.
        let running = try await Running(quiet: .seconds(3), maximumDelay: .seconds(20))
        #expect(try await eventually { running.store.rebuilds == 1 })
        // Five commits, each well within `quiet` of the one before.
        for timeout in ["31s", "32s", "33s", "34s", "35s"] {
            try await running.commit(timeout)
            try await Task.sleep(for: .milliseconds(50))
        }
        await #expect(running.revision == 5)
        #expect(try await eventually { running.publisher.current.revision == 5 })
        // Nothing in between was built: the burst was one rebuild.
        #expect(running.store.rebuilds == 2)
        #expect(running.subscriber.seen.allSatisfy { $0 == 0 || $0 == 5 }, "\(running.subscriber.seen)")
        // And no further rebuild follows once the burst is built (two quiet periods later):
        // a commit signal buffered while the loop waited out `quiet` names commits already built.
        try await Task.sleep(for: .seconds(6))
        #expect(running.store.rebuilds == 2)
    }

    @Test func aSteadyStreamOfCommitsStillPublishesWithinTheMaximumDelay() async throws {
        let running = try await Running(quiet: .milliseconds(400), maximumDelay: .milliseconds(800))
        #expect(try await eventually { running.store.rebuilds == 1 })
        // A commit every 100 ms, never `quiet` for 400 ms, until something is
        // published (at most 30 s: at the start of a full run a 2-core CI
        // machine is busy starting control planes, proxies and PostgreSQL, and
        // the updater may get its turn only seconds later).
        let clock = ContinuousClock()
        let start = clock.now
        var published: Int64 = 0
        var index = 0
        while published == 0, clock.now - start < .seconds(30) {
            index += 1
            try await running.commit("\(31 + index)s")
            published = max(published, running.publisher.current.revision)
            try await Task.sleep(for: .milliseconds(100))
        }
        let last = await running.revision
        #expect(published > 0, "something was published while the commits kept coming")
        // The newest revision is the one left published, and none went backwards.
        #expect(try await eventually { running.publisher.current.revision == last })
        let seen = running.subscriber.seen
        #expect(seen == seen.sorted(), "\(seen)")
    }

    @Test func aFailedRebuildKeepsThePreviousSnapshotUntilTheNextCommit() async throws {
        let running = try await Running(quiet: .milliseconds(30), maximumDelay: .milliseconds(300)) { plane in
            _ = try await plane.apply(try exampleMesh())
        }
        #expect(try await eventually { running.publisher.current.revision == 1 })
        running.store.failing.store(true, ordering: .sequentiallyConsistent)
        try await running.commit("45s")
        #expect(try await eventually { running.store.rebuilds >= 2 })
        try await Task.sleep(for: .milliseconds(200))
        #expect(running.publisher.current.revision == 1 && running.publisher.current.resources.count == 7)

        running.store.failing.store(false, ordering: .sequentiallyConsistent)
        try await running.commit("46s")
        #expect(try await eventually { running.publisher.current.revision == 3 })
    }

    @Test func stoppingClosesThePublisher() async throws {
        let running = try await Running(quiet: .milliseconds(20), maximumDelay: .milliseconds(100))
        #expect(try await eventually { running.store.rebuilds == 1 })
        #expect(!running.subscriber.hasEnded)
        running.stop()
        #expect(try await eventually { running.subscriber.hasEnded }, "the subscriber's stream ends")
    }
}
