import Foundation
import GRDB
import TetherCore

/// What a join token was created for.
public struct JoinTokenRecord: Hashable, Sendable {
    public var spiffeID: SPIFFEID
    public var expiresAt: Date
}

/// Durable identity state: join tokens (stored as hashes only) and a record
/// of every certificate issued.
public protocol IdentityStore: Sendable {
    func createJoinToken(hash: String, spiffeID: SPIFFEID, expiresAt: Date, author: String) async throws(ControlPlaneError)
    /// Marks the token used — whether or not it turns out to be valid, so a
    /// token is good for one attempt only — and returns what it was for;
    /// nil when it is unknown or was used before. Atomic: of two concurrent
    /// calls for one token (on any replicas), exactly one gets the record.
    func consumeJoinToken(hash: String, at: Date) async throws(ControlPlaneError) -> JoinTokenRecord?
    func recordIssued(_ certificates: [IssuedCertificate]) async throws(ControlPlaneError)
    /// Revoked identities get no SVID, renewal or xDS stream until unrevoked.
    func setRevoked(_ id: SPIFFEID, revoked: Bool, author: String, reason: String?) async throws(ControlPlaneError)
    func revokedIdentities() async throws(ControlPlaneError) -> [RevokedIdentity]
    /// Forgets join tokens and certificate records nobody can use any more:
    /// expired before `cutoff`.
    func purge(expiredBefore cutoff: Date) async throws(ControlPlaneError)
}

/// The record of one issued X.509-SVID.
public struct IssuedCertificate: Hashable, Sendable {
    public var serial: String
    public var spiffeID: String
    public var issuedAt: Date
    public var notAfter: Date
}

/// An identity cut off by an operator.
public struct RevokedIdentity: Hashable, Sendable, Codable {
    public var spiffeID: String
    public var revokedAt: Date
    public var revokedBy: String
    public var reason: String?
}

extension SQLiteConfigStore: IdentityStore {
    static func registerIdentityMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2: join tokens and issued certificates") { db in
            try db.execute(sql: """
                CREATE TABLE join_tokens (
                    hash TEXT PRIMARY KEY,
                    spiffe_id TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    created_by TEXT NOT NULL,
                    expires_at TEXT NOT NULL,
                    used_at TEXT
                );
                CREATE TABLE issued_certificates (
                    serial TEXT PRIMARY KEY,
                    spiffe_id TEXT NOT NULL,
                    issued_at TEXT NOT NULL,
                    not_after TEXT NOT NULL
                );
                CREATE INDEX issued_certificates_by_id ON issued_certificates(spiffe_id);
                """)
        }
        migrator.registerMigration("v3: revoked identities") { db in
            try db.execute(sql: """
                CREATE TABLE revoked_identities (
                    spiffe_id TEXT PRIMARY KEY,
                    revoked_at TEXT NOT NULL,
                    revoked_by TEXT NOT NULL,
                    reason TEXT
                );
                """)
        }
    }

    public func createJoinToken(hash: String, spiffeID: SPIFFEID, expiresAt: Date, author: String) async throws(ControlPlaneError) {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO join_tokens (hash, spiffe_id, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [hash, spiffeID.description, StoreDates.format(Date()), author, StoreDates.format(expiresAt)]
            )
        }
    }

    public func consumeJoinToken(hash: String, at now: Date) async throws(ControlPlaneError) -> JoinTokenRecord? {
        try await write { db in
            guard let row = try Row.fetchOne(
                db,
                sql: "UPDATE join_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL RETURNING spiffe_id, expires_at",
                arguments: [StoreDates.format(now), hash]
            ) else { return nil }
            let id = try SPIFFEID(row["spiffe_id"] as String)
            return JoinTokenRecord(spiffeID: id, expiresAt: StoreDates.parse(row["expires_at"]))
        }
    }

    public func setRevoked(_ id: SPIFFEID, revoked: Bool, author: String, reason: String?) async throws(ControlPlaneError) {
        try await write { db in
            if revoked {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO revoked_identities (spiffe_id, revoked_at, revoked_by, reason) VALUES (?, ?, ?, ?)",
                    arguments: [id.description, StoreDates.format(Date()), author, reason]
                )
            } else {
                try db.execute(sql: "DELETE FROM revoked_identities WHERE spiffe_id = ?", arguments: [id.description])
            }
        }
    }

    public func revokedIdentities() async throws(ControlPlaneError) -> [RevokedIdentity] {
        try await read { db in
            try Self.revoked(db)
        }
    }

    public func recordIssued(_ certificates: [IssuedCertificate]) async throws(ControlPlaneError) {
        try await write { db in
            for certificate in certificates {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO issued_certificates (serial, spiffe_id, issued_at, not_after) VALUES (?, ?, ?, ?)",
                    arguments: [certificate.serial, certificate.spiffeID, StoreDates.format(certificate.issuedAt), StoreDates.format(certificate.notAfter)]
                )
            }
        }
    }

    public func purge(expiredBefore cutoff: Date) async throws(ControlPlaneError) {
        try await write { db in
            try db.execute(sql: "DELETE FROM join_tokens WHERE expires_at < ?", arguments: [StoreDates.format(cutoff)])
            try db.execute(sql: "DELETE FROM issued_certificates WHERE not_after < ?", arguments: [StoreDates.format(cutoff)])
        }
    }

    /// Everything `migrate` copies, in one consistent read.
    func identityRecords() async throws(ControlPlaneError) -> IdentityRecords {
        try await read { db in
            IdentityRecords(
                joinTokens: try Row.fetchAll(db, sql: "SELECT * FROM join_tokens ORDER BY hash").map { row in
                    IdentityRecords.JoinToken(
                        hash: row["hash"], spiffeID: row["spiffe_id"], createdAt: StoreDates.parse(row["created_at"]), createdBy: row["created_by"],
                        expiresAt: StoreDates.parse(row["expires_at"]), usedAt: (row["used_at"] as String?).map(StoreDates.parse)
                    )
                },
                issued: try Row.fetchAll(db, sql: "SELECT * FROM issued_certificates ORDER BY serial").map { row in
                    IssuedCertificate(serial: row["serial"], spiffeID: row["spiffe_id"], issuedAt: StoreDates.parse(row["issued_at"]), notAfter: StoreDates.parse(row["not_after"]))
                },
                revoked: try Self.revoked(db)
            )
        }
    }

    private static func revoked(_ db: Database) throws -> [RevokedIdentity] {
        try Row.fetchAll(db, sql: "SELECT spiffe_id, revoked_at, revoked_by, reason FROM revoked_identities ORDER BY spiffe_id").map { row in
            RevokedIdentity(spiffeID: row["spiffe_id"], revokedAt: StoreDates.parse(row["revoked_at"]), revokedBy: row["revoked_by"], reason: row["reason"])
        }
    }
}

/// A store's identity tables, as `migrate` copies them.
struct IdentityRecords: Sendable {
    struct JoinToken: Sendable {
        var hash: String
        var spiffeID: String
        var createdAt: Date
        var createdBy: String
        var expiresAt: Date
        var usedAt: Date?
    }

    var joinTokens: [JoinToken]
    var issued: [IssuedCertificate]
    var revoked: [RevokedIdentity]
}
