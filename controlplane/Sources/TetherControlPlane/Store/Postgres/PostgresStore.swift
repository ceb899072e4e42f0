import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import TetherCore

/// The store several control-plane replicas share: the same tables and
/// revision semantics as `SQLiteConfigStore`, on PostgreSQL through
/// postgres-nio's connection pool.
///
/// Every commit takes one transaction-scoped advisory lock, so commits on
/// all replicas serialize: the plan runs against the state it commits over,
/// and revision numbers are `MAX + 1` under that lock — consecutive, never
/// duplicated, with no gaps (a sequence would leave gaps on rollback). Each
/// commit and each revocation change sends a `NOTIFY` on
/// `tether_events`, delivered to the other replicas when it commits.
///
/// Private keys and credential values live here only sealed under the
/// key-encryption key every replica is given (`SealedKeyVault`).
public final class PostgresStore: Service, Sendable {
    public let location: PostgresLocation
    let client: PostgresClient
    let logger: Logger
    /// How long one store operation may take before it fails: an operator
    /// gets an error, not a hang, while the database is away.
    let deadline: Duration
    private let runner: Task<Void, Never>

    static let eventsChannel = "tether_events"
    /// Advisory-lock keys (one namespace for Tether: "TTHR" and a number).
    enum Lock: Int64 {
        case commit = 0x5454_4852_0000_0001
        case migrate = 0x5454_4852_0000_0002
        case purge = 0x5454_4852_0000_0003
        case tokenKeys = 0x5454_4852_0000_0004
    }

    /// Connects (the pool starts at once, so the store is usable before the
    /// service group runs) and brings the schema up to date.
    public init(location: PostgresLocation, logger: Logger, deadline: Duration = .seconds(5)) async throws(ControlPlaneError) {
        self.location = location
        self.logger = logger
        self.deadline = deadline
        let client = PostgresClient(configuration: try location.clientConfiguration(), backgroundLogger: Logger(label: "tether-control.postgres", factory: { _ in SwiftLogNoOpLogHandler() }))
        self.client = client
        runner = Task { await client.run() }
        do {
            try await PostgresMigrations.migrate(self)
        } catch {
            runner.cancel()
            throw error
        }
    }

    /// Runs until graceful shutdown, then closes the pool. Listed first in
    /// the service group so it stops last.
    public func run() async throws {
        try? await gracefulShutdown()
        close()
    }

    /// Closes the pool (for one-shot users such as `migrate`).
    public func close() {
        runner.cancel()
    }

    // MARK: - Running queries

    /// Runs `body` on a pooled connection within `deadline`, turning every
    /// failure into a `ControlPlaneError` that names the database.
    func withConnection<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(ControlPlaneError) -> T {
        try await withDeadline(what) { [client] in try await client.withConnection { connection in try await body(connection) } }
    }

    /// Runs `body` in one transaction within `deadline`.
    func withTransaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(ControlPlaneError) -> T {
        try await withDeadline(what) { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    private func withDeadline<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws(ControlPlaneError) -> T {
        let deadline = self.deadline
        let outcome: Result<T, any Error> = await withTaskGroup(of: Result<T, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await body()) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: deadline)
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            return first ?? .failure(TimedOut())
        }
        switch outcome {
        case .success(let value):
            return value
        case .failure(let error as ControlPlaneError):
            throw error
        case .failure(let error as PostgresTransactionError):
            throw describe(error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? error, what)
        case .failure(let error):
            throw describe(error, what)
        }
    }

    private struct TimedOut: Error {}

    /// One line an operator can act on; never the query's bound values.
    func describe(_ error: any Error, _ what: String) -> ControlPlaneError {
        let database = "PostgreSQL at \(location.host):\(location.port)"
        if error is TimedOut {
            return ControlPlaneError(.unavailable, "cannot \(what): \(database) did not answer within \(deadline); is the database up?")
        }
        if let error = error as? ControlPlaneError { return error }
        guard let error = error as? PSQLError else {
            return ControlPlaneError(.unavailable, "cannot \(what): \(database) failed (\(error))")
        }
        if error.code == .server, let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " [SQLSTATE \($0)]" } ?? ""
            return ControlPlaneError(.storage, "cannot \(what): \(database) refused it: \(message)\(state)")
        }
        let cause = error.underlying.map { "\($0)" } ?? "\(error.code)"
        return ControlPlaneError(.unavailable, "cannot \(what): \(database) is unreachable (\(cause)); is the database up?")
    }

    // MARK: - Shared helpers

    /// Sends `payload` to every replica (delivered when the transaction commits).
    static func notify(_ connection: PostgresConnection, _ payload: String, logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(eventsChannel), \(payload))", logger: logger)
    }

    /// Runs `body` only if no other replica holds `lock` right now, inside
    /// one transaction (the lock ends with it); nil when another replica had it.
    func singleton<T: Sendable>(_ lock: Lock, _ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(ControlPlaneError) -> T? {
        let logger = self.logger
        return try await withTransaction(what) { connection in
            let acquired = try await connection.query("SELECT pg_try_advisory_xact_lock(\(lock.rawValue))", logger: logger).collect().map { try $0.decode(Bool.self) }
            guard acquired.first == true else { return nil }
            return try await body(connection)
        }
    }
}
