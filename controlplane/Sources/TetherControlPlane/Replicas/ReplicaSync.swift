import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import TetherXDS

/// Brings what other replicas commit to this one: `LISTEN tether_events`
/// for promptness, and a check every `interval` as the fallback for a
/// notification lost to a dropped connection or a database restart. A new
/// revision rebuilds the snapshot (pushed to this replica's proxies); a
/// revocation change replaces the revoked set, which ends the revoked
/// identity's streams here too. It also writes the SVID records kept while
/// the database was away.
final class ReplicaSync: Service, Sendable {
    let store: PostgresStore
    let identity: IdentityService
    let updater: SnapshotUpdater
    let interval: Duration
    let logger: Logger

    /// The newest revision this replica has asked its updater to build.
    private let seen = Atomic<Int64>(-1)
    private let healthy = Atomic<Bool>(true)

    init(store: PostgresStore, identity: IdentityService, updater: SnapshotUpdater, interval: Duration = .seconds(5), logger: Logger) {
        self.store = store
        self.identity = identity
        self.updater = updater
        self.interval = interval
        self.logger = logger
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.poll() }
            await group.waitForAll()
        }
    }

    private func listen() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.store.client.withConnection { connection in
                        try await connection.listen(on: PostgresStore.eventsChannel) { notifications in
                            // Anything committed while no one listened.
                            await self.check()
                            for try await notification in notifications {
                                await self.handle(notification.payload)
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    self.logger.debug("lost the database notification channel; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func poll() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: self.interval) } catch { return }
                await self.check()
            }
        }
    }

    private func handle(_ payload: String) async {
        if payload.hasPrefix("revision:"), let revision = Int64(payload.dropFirst("revision:".count)) {
            if seen.max(revision) { updater.committed() }
        } else if payload == "revocations" {
            await refreshRevocations()
        }
    }

    /// Compares the store with what this replica has; catches up on any difference.
    private func check() async {
        do {
            let latest = try await store.latestRevision()
            try await identity.refreshRevocations()
            try await identity.flushIssuanceRecords()
            if seen.max(latest) { updater.committed() }
            if !healthy.exchange(true, ordering: .relaxed) {
                logger.notice("the database is reachable again", metadata: ["tether.revision": "\(latest)"])
            }
        } catch {
            if healthy.exchange(false, ordering: .relaxed) {
                logger.error("cannot reach the database; proxies keep their config, renewals continue from memory, applies fail until it is back", metadata: ["error": "\(error.message)"])
            }
        }
    }

    private func refreshRevocations() async {
        do {
            try await identity.refreshRevocations()
        } catch {
            logger.warning("cannot read the revocations another replica changed; the periodic check retries", metadata: ["error": "\(error.message)"])
        }
    }
}

extension Atomic where Value == Int64 {
    /// Raises the value to `candidate`; true when it rose.
    fileprivate func max(_ candidate: Int64) -> Bool {
        var current = load(ordering: .relaxed)
        while candidate > current {
            let (exchanged, original) = compareExchange(expected: current, desired: candidate, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
