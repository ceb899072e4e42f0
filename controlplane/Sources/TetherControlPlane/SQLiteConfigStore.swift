import Crypto
import Foundation
import GRDB
import TetherCore

/// The embedded default store: SQLite in WAL mode through GRDB.
///
/// Tables: `revisions` (one row per commit), `resource_versions` (every
/// resource's document at every revision that changed it — the history
/// rollback reads), and `resources` (the current state, for fast reads).
/// Documents are canonical JSON; credentials in them are sealed.
public final class SQLiteConfigStore: ConfigStore {
    let pool: DatabasePool

    /// Opens (creating if needed) the database at `path` and migrates it.
    public init(path: String) throws(ControlPlaneError) {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // A committed revision must survive a crash of the process or
            // of the machine.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw ControlPlaneError(.storage, "cannot open database \(path): \(error)")
        }
        chmod(path, 0o600)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: revisions and resources") { db in
            try db.execute(sql: """
                CREATE TABLE revisions (
                    number INTEGER PRIMARY KEY AUTOINCREMENT,
                    created_at TEXT NOT NULL,
                    author TEXT NOT NULL,
                    operation TEXT NOT NULL CHECK (operation IN ('apply', 'delete', 'rollback')),
                    rollback_to INTEGER REFERENCES revisions(number)
                );
                CREATE TABLE resource_versions (
                    revision INTEGER NOT NULL REFERENCES revisions(number),
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    action TEXT NOT NULL CHECK (action IN ('created', 'configured', 'deleted')),
                    document TEXT CHECK ((action = 'deleted') = (document IS NULL)),
                    PRIMARY KEY (kind, name, revision)
                );
                CREATE INDEX resource_versions_by_revision ON resource_versions(revision);
                CREATE TABLE resources (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    document TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    revision INTEGER NOT NULL REFERENCES revisions(number),
                    PRIMARY KEY (kind, name)
                );
                """)
        }
        registerIdentityMigrations(&migrator)
        return migrator
    }

    public func currentState() throws(ControlPlaneError) -> StoreState {
        try read { db in try Self.currentState(db) }
    }

    public func state(at revision: Int64) throws(ControlPlaneError) -> StoreState {
        try read { db in
            guard try Int64.fetchOne(db, sql: "SELECT number FROM revisions WHERE number = ?", arguments: [revision]) != nil else {
                throw ControlPlaneError(.notFound, "revision \(revision) does not exist; run tether-control history to list revisions")
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT v.kind, v.name, v.document, v.revision FROM resource_versions v
                WHERE v.revision = (SELECT MAX(revision) FROM resource_versions
                                    WHERE kind = v.kind AND name = v.name AND revision <= ?)
                  AND v.action != 'deleted'
                """, arguments: [revision])
            return try Self.state(revision: revision, rows)
        }
    }

    public func revisions(limit: Int) throws(ControlPlaneError) -> [Revision] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM revisions ORDER BY number DESC LIMIT ?", arguments: [limit])
            return try rows.map { row in
                let number: Int64 = row["number"]
                let changes = try Row.fetchAll(db, sql: "SELECT kind, name, action FROM resource_versions WHERE revision = ? ORDER BY kind, name", arguments: [number])
                    .map { change in
                        Change(id: try Self.id(change), action: Change.Action(rawValue: change["action"]) ?? .configured)
                    }
                return Revision(
                    number: number,
                    createdAt: Self.parseDate(row["created_at"]),
                    author: row["author"],
                    operation: Revision.Operation(rawValue: row["operation"]) ?? .apply,
                    rollbackTo: row["rollback_to"],
                    changes: changes.sorted { $0.id < $1.id }
                )
            }
        }
    }

    public func commit(
        author: String,
        operation: Revision.Operation,
        rollbackTo: Int64?,
        _ plan: (StoreState) throws(ControlPlaneError) -> [ResourceID: Resource?]
    ) throws(ControlPlaneError) -> CommitResult {
        do {
            return try pool.write { db in
                let current = try Self.currentState(db)
                let desired: [ResourceID: Resource?]
                do throws(ControlPlaneError) { desired = try plan(current) } catch { throw PlanFailure(error: error) }

                var changes: [Change] = []
                var writes: [(id: ResourceID, action: Change.Action, document: String?)] = []
                for (id, resource) in desired.sorted(by: { $0.key < $1.key }) {
                    let before = current.resources[id].map(ConfigEncoding.canonicalJSON)
                    let after = resource.map(ConfigEncoding.canonicalJSON)
                    let action: Change.Action = switch (before, after) {
                    case (nil, nil): .unchanged
                    case (nil, .some): .created
                    case (.some, nil): .deleted
                    case (let before?, let after?): before == after ? .unchanged : .configured
                    }
                    if before == nil && after == nil { continue }
                    changes.append(Change(id: id, action: action))
                    if action != .unchanged {
                        writes.append((id, action, after.map { String(decoding: $0, as: UTF8.self) }))
                    }
                }
                guard !writes.isEmpty else { return CommitResult(revision: nil, changes: changes) }

                try db.execute(
                    sql: "INSERT INTO revisions (created_at, author, operation, rollback_to) VALUES (?, ?, ?, ?)",
                    arguments: [Self.formatDate(Date()), author, operation.rawValue, rollbackTo]
                )
                let revision = db.lastInsertedRowID
                for write in writes {
                    try db.execute(
                        sql: "INSERT INTO resource_versions (revision, kind, name, action, document) VALUES (?, ?, ?, ?, ?)",
                        arguments: [revision, write.id.kind.rawValue, write.id.name, write.action.rawValue, write.document]
                    )
                    if let document = write.document {
                        try db.execute(
                            sql: """
                                INSERT INTO resources (kind, name, document, hash, revision) VALUES (?, ?, ?, ?, ?)
                                ON CONFLICT (kind, name) DO UPDATE SET document = excluded.document, hash = excluded.hash, revision = excluded.revision
                                """,
                            arguments: [write.id.kind.rawValue, write.id.name, document, Self.hash(document), revision]
                        )
                    } else {
                        try db.execute(sql: "DELETE FROM resources WHERE kind = ? AND name = ?", arguments: [write.id.kind.rawValue, write.id.name])
                    }
                }
                return CommitResult(revision: revision, changes: changes)
            }
        } catch let failure as PlanFailure {
            throw failure.error
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.storage, "cannot commit the change: \(error); nothing was changed")
        }
    }

    /// Carries the plan's typed error out of GRDB's untyped closure.
    private struct PlanFailure: Error {
        var error: ControlPlaneError
    }

    func write<T>(_ body: (Database) throws -> T) throws(ControlPlaneError) -> T {
        do {
            return try pool.write(body)
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.storage, "cannot write the database: \(error)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(ControlPlaneError) -> T {
        do {
            return try pool.read(body)
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.storage, "cannot read the database: \(error)")
        }
    }

    static func currentState(_ db: Database) throws -> StoreState {
        let revision = try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM revisions") ?? 0
        let rows = try Row.fetchAll(db, sql: "SELECT kind, name, document, revision FROM resources")
        return try state(revision: revision, rows)
    }

    static func state(revision: Int64, _ rows: [Row]) throws -> StoreState {
        var resources: [ResourceID: Resource] = [:]
        var lastChanged: [ResourceID: Int64] = [:]
        for row in rows {
            let id = try id(row)
            lastChanged[id] = row["revision"]
            let document: String = row["document"]
            do {
                resources[id] = try ConfigEncoding.decode(canonicalJSON: Data(document.utf8))
            } catch {
                throw ControlPlaneError(.storage, "stored document of \(id) cannot be read (\(error)); the database may be from a newer Tether")
            }
        }
        return StoreState(revision: revision, resources: resources, lastChanged: lastChanged)
    }

    static func id(_ row: Row) throws -> ResourceID {
        let kindName: String = row["kind"]
        guard let kind = ResourceKind(rawValue: kindName) else {
            throw ControlPlaneError(.storage, "stored resource has unknown kind \(kindName); the database may be from a newer Tether")
        }
        return ResourceID(kind, row["name"])
    }

    static func hash(_ document: String) -> String {
        SHA256.hash(data: Data(document.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func formatDate(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func parseDate(_ text: String) -> Date {
        (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))) ?? Date(timeIntervalSince1970: 0)
    }
}
