import Foundation
import PostgresNIO

/// The PostgreSQL schema, as numbered migrations applied once each, in
/// order, under an advisory lock — so replicas starting together never race
/// — and recorded in `schema_migrations`. A database migrated by a newer
/// Tether is refused rather than misread.
enum PostgresMigrations {
    static let all: [(version: Int, name: String, sql: [String])] = [
        (1, "revisions and resources", [
            """
            CREATE TABLE revisions (
                number BIGINT PRIMARY KEY,
                created_at TEXT NOT NULL,
                author TEXT NOT NULL,
                operation TEXT NOT NULL CHECK (operation IN ('apply', 'delete', 'rollback')),
                rollback_to BIGINT REFERENCES revisions(number)
            )
            """,
            """
            CREATE TABLE resource_versions (
                revision BIGINT NOT NULL REFERENCES revisions(number),
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('created', 'configured', 'deleted')),
                document TEXT CHECK ((action = 'deleted') = (document IS NULL)),
                PRIMARY KEY (kind, name, revision)
            )
            """,
            "CREATE INDEX resource_versions_by_revision ON resource_versions(revision)",
            """
            CREATE TABLE resources (
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                document TEXT NOT NULL,
                hash TEXT NOT NULL,
                revision BIGINT NOT NULL REFERENCES revisions(number),
                PRIMARY KEY (kind, name)
            )
            """,
        ]),
        (2, "identity: join tokens, issued certificates, revocations", [
            """
            CREATE TABLE join_tokens (
                hash TEXT PRIMARY KEY,
                spiffe_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                used_at TEXT
            )
            """,
            """
            CREATE TABLE issued_certificates (
                serial TEXT PRIMARY KEY,
                spiffe_id TEXT NOT NULL,
                issued_at TEXT NOT NULL,
                not_after TEXT NOT NULL
            )
            """,
            "CREATE INDEX issued_certificates_by_id ON issued_certificates(spiffe_id)",
            """
            CREATE TABLE revoked_identities (
                spiffe_id TEXT PRIMARY KEY,
                revoked_at TEXT NOT NULL,
                revoked_by TEXT NOT NULL,
                reason TEXT
            )
            """,
        ]),
        (3, "sealed keys and replica state", [
            // AES-GCM boxes under the key-encryption key; never plaintext.
            "CREATE TABLE sealed_keys (name TEXT PRIMARY KEY, sealed TEXT NOT NULL, updated_at TEXT NOT NULL)",
            // Each replica's proxy streams, for `tether-control proxies` on any replica.
            "CREATE TABLE replica_proxies (replica TEXT PRIMARY KEY, heartbeat_at TIMESTAMPTZ NOT NULL, proxies TEXT NOT NULL)",
        ]),
    ]

    static func migrate(_ store: PostgresStore) async throws(ControlPlaneError) {
        let logger = store.logger
        try await store.withTransaction("migrate the database schema") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresStore.Lock.migrate.rawValue))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())", logger: logger)
            let applied = Set(try await connection.query("SELECT version FROM schema_migrations", logger: logger).collect().map { try $0.decode(Int.self) })
            if let newest = applied.max(), newest > all.last!.version {
                throw ControlPlaneError(.storage, "the database schema is at version \(newest), newer than this tether-control knows (\(all.last!.version)); run the newer tether-control")
            }
            for migration in all where !applied.contains(migration.version) {
                for statement in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
            }
        }
    }
}
