import Foundation
import PostgresNIO
import TetherCore

extension PostgresStore: ConfigStore {
    public func currentState() async throws(ControlPlaneError) -> StoreState {
        let logger = self.logger
        return try await withConnection("read the current config") { connection in
            try await Self.currentState(connection, logger: logger)
        }
    }

    public func state(at revision: Int64) async throws(ControlPlaneError) -> StoreState {
        let logger = self.logger
        return try await withConnection("read revision \(revision)") { connection in
            let exists = try await connection.query("SELECT number FROM revisions WHERE number = \(revision)", logger: logger).collect().map { try $0.decode(Int64.self) }
            guard !exists.isEmpty else { throw ControlPlaneError.unknownRevision(revision) }
            let rows = try await connection.query("""
                SELECT v.kind, v.name, v.document, v.revision FROM resource_versions v
                WHERE v.revision = (SELECT MAX(revision) FROM resource_versions
                                    WHERE kind = v.kind AND name = v.name AND revision <= \(revision))
                  AND v.action != 'deleted'
                """, logger: logger).collect().map { try $0.decode((String, String, String, Int64).self) }
            return try StoreState(revision: revision, documents: rows.map { StoreState.Document(kind: $0.0, name: $0.1, document: $0.2, revision: $0.3) })
        }
    }

    public func revisions(limit: Int) async throws(ControlPlaneError) -> [Revision] {
        let logger = self.logger
        return try await withConnection("read the history") { connection in
            let heads = try await connection.query(
                "SELECT number, created_at, author, operation, rollback_to FROM revisions ORDER BY number DESC LIMIT \(limit)", logger: logger
            ).collect().map { try $0.decode((Int64, String, String, String, Int64?).self) }
            guard let oldest = heads.last?.0 else { return [] }
            let changes = try await connection.query(
                "SELECT revision, kind, name, action FROM resource_versions WHERE revision >= \(oldest)", logger: logger
            ).collect().map { try $0.decode((Int64, String, String, String).self) }
            var byRevision: [Int64: [Change]] = [:]
            for (revision, kind, name, action) in changes {
                byRevision[revision, default: []].append(Change(id: try StoreState.id(kind: kind, name: name), action: Change.Action(rawValue: action) ?? .configured))
            }
            return heads.map { head in
                Revision(
                    number: head.0, createdAt: StoreDates.parse(head.1), author: head.2,
                    operation: Revision.Operation(rawValue: head.3) ?? .apply, rollbackTo: head.4,
                    changes: (byRevision[head.0] ?? []).sorted { $0.id < $1.id }
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
        let logger = self.logger
        return try await withTransaction("commit the change (nothing was changed)") { connection in
            // Serializes commits across replicas; released when this transaction ends.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Lock.commit.rawValue))", logger: logger)
            let current = try await Self.currentState(connection, logger: logger)
            let desired = try plan(current)
            let (changes, writes) = CommitResult.changes(from: current, to: desired)
            guard !writes.isEmpty else { return CommitResult(revision: nil, changes: changes) }
            let revision = current.revision + 1
            try await connection.query("""
                INSERT INTO revisions (number, created_at, author, operation, rollback_to)
                VALUES (\(revision), \(StoreDates.format(Date())), \(author), \(operation.rawValue), \(rollbackTo))
                """, logger: logger)
            for write in writes {
                try await connection.query("""
                    INSERT INTO resource_versions (revision, kind, name, action, document)
                    VALUES (\(revision), \(write.id.kind.rawValue), \(write.id.name), \(write.action.rawValue), \(write.document))
                    """, logger: logger)
                if let document = write.document {
                    try await connection.query("""
                        INSERT INTO resources (kind, name, document, hash, revision) VALUES (\(write.id.kind.rawValue), \(write.id.name), \(document), \(StoreState.hash(document)), \(revision))
                        ON CONFLICT (kind, name) DO UPDATE SET document = excluded.document, hash = excluded.hash, revision = excluded.revision
                        """, logger: logger)
                } else {
                    try await connection.query("DELETE FROM resources WHERE kind = \(write.id.kind.rawValue) AND name = \(write.id.name)", logger: logger)
                }
            }
            try await Self.notify(connection, "revision:\(revision)", logger: logger)
            return CommitResult(revision: revision, changes: changes)
        }
    }

    /// The newest revision number: what the periodic check compares.
    func latestRevision() async throws(ControlPlaneError) -> Int64 {
        let logger = self.logger
        return try await withConnection("read the latest revision") { connection in
            try await connection.query("SELECT COALESCE(MAX(number), 0) FROM revisions", logger: logger).collect().map { try $0.decode(Int64.self) }.first ?? 0
        }
    }

    static func currentState(_ connection: PostgresConnection, logger: Logger) async throws -> StoreState {
        let revision = try await connection.query("SELECT COALESCE(MAX(number), 0) FROM revisions", logger: logger).collect().map { try $0.decode(Int64.self) }.first ?? 0
        let documents = try await connection.query("SELECT kind, name, document, revision FROM resources", logger: logger).collect().map { try $0.decode((String, String, String, Int64).self) }
        return try StoreState(revision: revision, documents: documents.map { StoreState.Document(kind: $0.0, name: $0.1, document: $0.2, revision: $0.3) })
    }
}
