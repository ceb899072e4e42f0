import Foundation
import PostgresNIO
import TetherCore

extension PostgresStore: IdentityStore {
    public func createJoinToken(hash: String, spiffeID: SPIFFEID, expiresAt: Date, author: String) async throws(ControlPlaneError) {
        let logger = self.logger
        _ = try await withConnection("store the join token") { connection in
            try await connection.query("""
                INSERT INTO join_tokens (hash, spiffe_id, created_at, created_by, expires_at)
                VALUES (\(hash), \(spiffeID.description), \(StoreDates.format(Date())), \(author), \(StoreDates.format(expiresAt)))
                """, logger: logger)
            return true
        }
    }

    /// One `UPDATE … WHERE used_at IS NULL`: of two replicas redeeming one
    /// token at the same instant, the second waits for the first's row lock,
    /// re-checks the condition, and updates nothing.
    public func consumeJoinToken(hash: String, at now: Date) async throws(ControlPlaneError) -> JoinTokenRecord? {
        let logger = self.logger
        let row = try await withConnection("redeem the join token") { connection in
            try await connection.query("""
                UPDATE join_tokens SET used_at = \(StoreDates.format(now)) WHERE hash = \(hash) AND used_at IS NULL
                RETURNING spiffe_id, expires_at
                """, logger: logger).collect().map { try $0.decode((String, String).self) }.first
        }
        guard let row else { return nil }
        do {
            return JoinTokenRecord(spiffeID: try SPIFFEID(row.0), expiresAt: StoreDates.parse(row.1))
        } catch {
            throw ControlPlaneError(.storage, "the stored join token names \(row.0), which is not a SPIFFE ID: it \(error.reason)")
        }
    }

    public func recordIssued(_ certificates: [IssuedCertificate]) async throws(ControlPlaneError) {
        let logger = self.logger
        _ = try await withTransaction("record the issued SVID") { connection in
            for certificate in certificates {
                try await connection.query("""
                    INSERT INTO issued_certificates (serial, spiffe_id, issued_at, not_after)
                    VALUES (\(certificate.serial), \(certificate.spiffeID), \(StoreDates.format(certificate.issuedAt)), \(StoreDates.format(certificate.notAfter)))
                    ON CONFLICT (serial) DO NOTHING
                    """, logger: logger)
            }
        }
    }

    public func setRevoked(_ id: SPIFFEID, revoked: Bool, author: String, reason: String?) async throws(ControlPlaneError) {
        let logger = self.logger
        _ = try await withTransaction("change the revocation of \(id)") { connection in
            if revoked {
                try await connection.query("""
                    INSERT INTO revoked_identities (spiffe_id, revoked_at, revoked_by, reason) VALUES (\(id.description), \(StoreDates.format(Date())), \(author), \(reason))
                    ON CONFLICT (spiffe_id) DO UPDATE SET revoked_at = excluded.revoked_at, revoked_by = excluded.revoked_by, reason = excluded.reason
                    """, logger: logger)
            } else {
                try await connection.query("DELETE FROM revoked_identities WHERE spiffe_id = \(id.description)", logger: logger)
            }
            try await Self.notify(connection, "revocations", logger: logger)
        }
    }

    public func revokedIdentities() async throws(ControlPlaneError) -> [RevokedIdentity] {
        let logger = self.logger
        return try await withConnection("read the revocations") { connection in
            try await connection.query("SELECT spiffe_id, revoked_at, revoked_by, reason FROM revoked_identities ORDER BY spiffe_id", logger: logger).collect().map { try $0.decode((String, String, String, String?).self) }
                .map { RevokedIdentity(spiffeID: $0.0, revokedAt: StoreDates.parse($0.1), revokedBy: $0.2, reason: $0.3) }
        }
    }

    /// Done by one replica at a time (an advisory lock); the others skip it.
    public func purge(expiredBefore cutoff: Date) async throws(ControlPlaneError) {
        let logger = self.logger
        let text = StoreDates.format(cutoff)
        _ = try await singleton(.purge, "purge expired records") { connection in
            try await connection.query("DELETE FROM join_tokens WHERE expires_at < \(text)", logger: logger)
            try await connection.query("DELETE FROM issued_certificates WHERE not_after < \(text)", logger: logger)
            try await connection.query("DELETE FROM replica_proxies WHERE heartbeat_at < now() - interval '1 hour'", logger: logger)
            return true
        }
    }
}
