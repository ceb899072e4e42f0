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

    public func currentState() async throws(ControlPlaneError) -> StoreState {
        try await read { db in try Self.currentState(db) }
    }

    public func state(at revision: Int64) async throws(ControlPlaneError) -> StoreState {
        try await read { db in
            guard try Int64.fetchOne(db, sql: "SELECT number FROM revisions WHERE number = ?", arguments: [revision]) != nil else {
                throw ControlPlaneError.unknownRevision(revision)
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT v.kind, v.name, v.document, v.revision FROM resource_versions v
                WHERE v.revision = (SELECT MAX(revision) FROM resource_versions
                                    WHERE kind = v.kind AND name = v.name AND revision <= ?)
                  AND v.action != 'deleted'
                """, arguments: [revision])
            return try StoreState(revision: revision, documents: rows.map(Self.document))
        }
    }

    public func revisions(limit: Int) async throws(ControlPlaneError) -> [Revision] {
        try await read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM revisions ORDER BY number DESC LIMIT ?", arguments: [limit])
            return try rows.map { row in
                let number: Int64 = row["number"]
                let changes = try Row.fetchAll(db, sql: "SELECT kind, name, action FROM resource_versions WHERE revision = ? ORDER BY kind, name", arguments: [number])
                    .map { change in
                        Change(id: try StoreState.id(kind: change["kind"], name: change["name"]), action: Change.Action(rawValue: change["action"]) ?? .configured)
                    }
                return Revision(
                    number: number,
                    createdAt: StoreDates.parse(row["created_at"]),
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
        _ plan: @escaping CommitPlan
    ) async throws(ControlPlaneError) -> CommitResult {
        try await write { db in
            let current = try Self.currentState(db)
            let desired: [ResourceID: Resource?]
            do throws(ControlPlaneError) { desired = try plan(current) } catch { throw error }
            let (changes, writes) = CommitResult.changes(from: current, to: desired)
            guard !writes.isEmpty else { return CommitResult(revision: nil, changes: changes) }

            try db.execute(
                sql: "INSERT INTO revisions (created_at, author, operation, rollback_to) VALUES (?, ?, ?, ?)",
                arguments: [StoreDates.format(Date()), author, operation.rawValue, rollbackTo]
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
                        arguments: [write.id.kind.rawValue, write.id.name, document, StoreState.hash(document), revision]
                    )
                } else {
                    try db.execute(sql: "DELETE FROM resources WHERE kind = ? AND name = ?", arguments: [write.id.kind.rawValue, write.id.name])
                }
            }
            return CommitResult(revision: revision, changes: changes)
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ControlPlaneError) -> T {
        do {
            return try await pool.write(body)
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.storage, "cannot write the database: \(error); nothing was changed")
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(ControlPlaneError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.storage, "cannot read the database: \(error)")
        }
    }

    static func currentState(_ db: Database) throws -> StoreState {
        let revision = try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM revisions") ?? 0
        let rows = try Row.fetchAll(db, sql: "SELECT kind, name, document, revision FROM resources")
        return try StoreState(revision: revision, documents: rows.map(document))
    }

    static func document(_ row: Row) -> StoreState.Document {
        StoreState.Document(kind: row["kind"], name: row["name"], document: row["document"], revision: row["revision"])
    }
}
