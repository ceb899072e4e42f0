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
    func createJoinToken(hash: String, spiffeID: SPIFFEID, expiresAt: Date, author: String) throws(ControlPlaneError)
    /// Marks the token used — whether or not it turns out to be valid, so a
    /// token is good for one attempt only — and returns what it was for;
    /// nil when it is unknown or was used before.
    func consumeJoinToken(hash: String, at: Date) throws(ControlPlaneError) -> JoinTokenRecord?
    func recordIssued(serial: String, spiffeID: SPIFFEID, notAfter: Date, at: Date) throws(ControlPlaneError)
    /// Revoked identities get no SVID, renewal or xDS stream until unrevoked.
    func setRevoked(_ id: SPIFFEID, revoked: Bool, author: String, reason: String?) throws(ControlPlaneError)
    func revokedIdentities() throws(ControlPlaneError) -> [RevokedIdentity]
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

    public func createJoinToken(hash: String, spiffeID: SPIFFEID, expiresAt: Date, author: String) throws(ControlPlaneError) {
        try write { db in
            try db.execute(
                sql: "INSERT INTO join_tokens (hash, spiffe_id, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [hash, spiffeID.description, Self.formatDate(Date()), author, Self.formatDate(expiresAt)]
            )
        }
    }

    public func consumeJoinToken(hash: String, at now: Date) throws(ControlPlaneError) -> JoinTokenRecord? {
        try write { db in
            guard let row = try Row.fetchOne(
                db,
                sql: "UPDATE join_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL RETURNING spiffe_id, expires_at",
                arguments: [Self.formatDate(now), hash]
            ) else { return nil }
            let id = try SPIFFEID(row["spiffe_id"] as String)
            return JoinTokenRecord(spiffeID: id, expiresAt: Self.parseDate(row["expires_at"]))
        }
    }

    public func setRevoked(_ id: SPIFFEID, revoked: Bool, author: String, reason: String?) throws(ControlPlaneError) {
        try write { db in
            if revoked {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO revoked_identities (spiffe_id, revoked_at, revoked_by, reason) VALUES (?, ?, ?, ?)",
                    arguments: [id.description, Self.formatDate(Date()), author, reason]
                )
            } else {
                try db.execute(sql: "DELETE FROM revoked_identities WHERE spiffe_id = ?", arguments: [id.description])
            }
        }
    }

    public func revokedIdentities() throws(ControlPlaneError) -> [RevokedIdentity] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT spiffe_id, revoked_at, revoked_by, reason FROM revoked_identities ORDER BY spiffe_id").map { row in
                RevokedIdentity(spiffeID: row["spiffe_id"], revokedAt: Self.parseDate(row["revoked_at"]), revokedBy: row["revoked_by"], reason: row["reason"])
            }
        }
    }

    public func recordIssued(serial: String, spiffeID: SPIFFEID, notAfter: Date, at now: Date) throws(ControlPlaneError) {
        try write { db in
            try db.execute(
                sql: "INSERT INTO issued_certificates (serial, spiffe_id, issued_at, not_after) VALUES (?, ?, ?, ?)",
                arguments: [serial, spiffeID.description, Self.formatDate(now), Self.formatDate(notAfter)]
            )
        }
    }
}
