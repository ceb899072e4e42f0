import Crypto
import Foundation
import GRDB
import Logging
import PostgresNIO

/// `tether-control migrate`: copies a single-machine control plane (SQLite
/// and key files in its data directory) into an empty PostgreSQL store —
/// the whole history row for row, join tokens, certificate records,
/// revocations, and every key sealed under the key-encryption key — in one
/// transaction, so a failure leaves the target empty. Revision numbers,
/// documents and keys are unchanged: proxies keep their SVIDs (same CA) and
/// are resent nothing (same resource versions).
public enum StoreMigration {
    public struct Summary: Sendable {
        public var revisions: Int
        public var resources: Int
        public var joinTokens: Int
        public var certificates: Int
        public var revocations: Int
        public var keys: [String]
    }

    /// The history tables as stored, row for row.
    struct History: Sendable {
        var revisions: [(number: Int64, createdAt: String, author: String, operation: String, rollbackTo: Int64?)]
        var versions: [(revision: Int64, kind: String, name: String, action: String, document: String?)]
        var resources: [(kind: String, name: String, document: String, hash: String, revision: Int64)]
    }

    public static func run(from directory: DataDirectory, to target: PostgresStore, kek: KeyEncryptionKey) async throws(ControlPlaneError) -> Summary {
        // The source must be at rest: no control plane writing it meanwhile.
        let lock: DataDirectoryLock
        do { lock = try DataDirectoryLock(directory) } catch {
            throw ControlPlaneError(.alreadyRunning, "a tether-control is running on \(directory.path); stop it before migrating, so nothing changes during the copy")
        }
        defer { withExtendedLifetime(lock) {} }
        guard FileManager.default.fileExists(atPath: directory.databasePath) else {
            throw ControlPlaneError(.dataDirectory, "\(directory.databasePath) does not exist; --from must be a control plane's data directory")
        }
        let source = try SQLiteConfigStore(path: directory.databasePath)
        let history = try await source.history()
        let identity = try await source.identityRecords()
        let keys = try sealedKeys(in: directory, kek: kek)
        let logger = target.logger
        _ = try await target.withTransaction("copy into \(target.location)") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresStore.Lock.commit.rawValue))", logger: logger)
            let occupied = try await connection.query("""
                SELECT (SELECT COUNT(*) FROM revisions) + (SELECT COUNT(*) FROM sealed_keys) + (SELECT COUNT(*) FROM join_tokens)
                     + (SELECT COUNT(*) FROM issued_certificates) + (SELECT COUNT(*) FROM revoked_identities)
                """, logger: logger).collect().map { try $0.decode(Int64.self) }.first ?? 0
            guard occupied == 0 else {
                throw ControlPlaneError(.badRequest, "the target database is not empty (it holds \(occupied) rows of Tether state); migrate only into a new database")
            }
            for row in history.revisions {
                try await connection.query("INSERT INTO revisions (number, created_at, author, operation, rollback_to) VALUES (\(row.number), \(row.createdAt), \(row.author), \(row.operation), \(row.rollbackTo))", logger: logger)
            }
            for row in history.versions {
                try await connection.query("INSERT INTO resource_versions (revision, kind, name, action, document) VALUES (\(row.revision), \(row.kind), \(row.name), \(row.action), \(row.document))", logger: logger)
            }
            for row in history.resources {
                try await connection.query("INSERT INTO resources (kind, name, document, hash, revision) VALUES (\(row.kind), \(row.name), \(row.document), \(row.hash), \(row.revision))", logger: logger)
            }
            for token in identity.joinTokens {
                try await connection.query("""
                    INSERT INTO join_tokens (hash, spiffe_id, created_at, created_by, expires_at, used_at)
                    VALUES (\(token.hash), \(token.spiffeID), \(StoreDates.format(token.createdAt)), \(token.createdBy), \(StoreDates.format(token.expiresAt)), \(token.usedAt.map(StoreDates.format)))
                    """, logger: logger)
            }
            for certificate in identity.issued {
                try await connection.query("INSERT INTO issued_certificates (serial, spiffe_id, issued_at, not_after) VALUES (\(certificate.serial), \(certificate.spiffeID), \(StoreDates.format(certificate.issuedAt)), \(StoreDates.format(certificate.notAfter)))", logger: logger)
            }
            for revoked in identity.revoked {
                try await connection.query("INSERT INTO revoked_identities (spiffe_id, revoked_at, revoked_by, reason) VALUES (\(revoked.spiffeID), \(StoreDates.format(revoked.revokedAt)), \(revoked.revokedBy), \(revoked.reason))", logger: logger)
            }
            for (name, sealed) in keys {
                try await connection.query("INSERT INTO sealed_keys (name, sealed, updated_at) VALUES (\(name), \(sealed), \(StoreDates.format(Date())))", logger: logger)
            }
            if let latest = history.revisions.map(\.number).max() {
                try await PostgresStore.notify(connection, "revision:\(latest)", logger: logger)
            }
            return true
        }
        return Summary(
            revisions: history.revisions.count, resources: history.resources.count, joinTokens: identity.joinTokens.count,
            certificates: identity.issued.count, revocations: identity.revoked.count, keys: keys.map(\.name)
        )
    }

    /// The data directory's keys, each sealed under `kek` by its vault name.
    /// A CA given as files (`--ca-cert`) is not in the directory and is not
    /// copied: give the replicas the same files.
    static func sealedKeys(in directory: DataDirectory, kek: KeyEncryptionKey) throws(ControlPlaneError) -> [(name: String, sealed: String)] {
        var keys: [(String, Data)] = []
        let path = { (name: String) in "\(directory.path)/\(name)" }
        if FileManager.default.fileExists(atPath: path("ca.pem")) {
            keys.append((ControlPlaneKeys.Name.ca, try StoredCA(certificate: try CAFiles.read(path("ca.pem")), key: try CAFiles.read(path("ca.key"))).encoded()))
        }
        // Read, never created: migrate writes nothing into the source.
        guard FileManager.default.fileExists(atPath: path("jwt.key")) else {
            throw ControlPlaneError(.secrets, "\(path("jwt.key")) is missing; --from must be the data directory of a control plane that has run")
        }
        keys.append((ControlPlaneKeys.Name.jwt, Data(try CAFiles.loadOrCreateSigningKey("jwt.key", in: directory).pemRepresentation.utf8)))
        guard let secrets = FileManager.default.contents(atPath: directory.secretsKeyPath), secrets.count == 32 else {
            throw ControlPlaneError(.secrets, "\(directory.secretsKeyPath) is missing or not a 32-byte key; without it the stored credentials cannot be read")
        }
        keys.append((ControlPlaneKeys.Name.secrets, secrets))
        if FileManager.default.fileExists(atPath: path(TokenSigningKeys.files.current)) {
            keys.append((ControlPlaneKeys.Name.tokenKeys, try VaultTokenKeys.Stored(try TokenSigningKeys.load(in: directory)).encoded()))
        }
        var sealed: [(name: String, sealed: String)] = []
        for (name, value) in keys { sealed.append((name, try kek.seal(value, name: name))) }
        return sealed
    }
}

extension SQLiteConfigStore {
    func history() async throws(ControlPlaneError) -> StoreMigration.History {
        try await read { db in
            StoreMigration.History(
                revisions: try Row.fetchAll(db, sql: "SELECT * FROM revisions ORDER BY number").map { ($0["number"], $0["created_at"], $0["author"], $0["operation"], $0["rollback_to"]) },
                versions: try Row.fetchAll(db, sql: "SELECT * FROM resource_versions ORDER BY revision, kind, name").map { ($0["revision"], $0["kind"], $0["name"], $0["action"], $0["document"]) },
                resources: try Row.fetchAll(db, sql: "SELECT * FROM resources ORDER BY kind, name").map { ($0["kind"], $0["name"], $0["document"], $0["hash"], $0["revision"]) }
            )
        }
    }
}
